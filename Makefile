# factorlab: the reproducible report. `make help` lists the targets.
# Everything runs in a project venv (.venv/), created on first use from requirements.txt.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
KERNEL   := factorlab
PROFILE  ?= cpu
DEVICE   ?= auto
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
SMOKE_DIR := .smoke
PAPERMILL := $(BIN)/papermill --no-progress-bar -k $(KERNEL)

.PHONY: help install book test unit nbval smoke reproduce clean

help:      ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt && $(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (factorlab)" >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned environment and register the Jupyter kernel

book: install  ## build the site into _build/html from the committed notebook outputs (strict)
	$(BIN)/jupyter-book build . -W -n --keep-going

unit: install  ## unit tests of the library (tests/unit)
	$(BIN)/python -m pytest -q tests/unit

nbval: install  ## replay every committed notebook from the run store (no training allowed)
	FACTORLAB_REQUIRE_CACHED=1 $(BIN)/python -m pytest -q --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg $(NOTEBOOKS)

smoke: install  ## run every notebook and the CLI with profile=smoke into a throw-away run store
	rm -rf $(SMOKE_DIR) && mkdir -p $(SMOKE_DIR)
	FACTORLAB_RESULTS_DIR=$(abspath $(SMOKE_DIR))/results $(BIN)/python -m pytest -q tests/smoke

test: unit nbval smoke book  ## everything CI checks: unit tests, nbval replay, smoke runs, strict book build

reproduce: install  ## measure missing PROFILE benchmarks, fill the run store via the notebooks, re-execute them clean
	for b in $$($(BIN)/python -m factorlab list --kind benchmark --names); do \
	  $(BIN)/python -m factorlab run $$b --profile $(PROFILE) || exit 1; \
	done && for nb in $(NOTEBOOKS); do \
	  $(PAPERMILL) -p profile $(PROFILE) -p device $(DEVICE) $$nb $$nb && \
	  FACTORLAB_REQUIRE_CACHED=1 $(PAPERMILL) -p profile $(PROFILE) -p device $(DEVICE) $$nb $$nb || exit 1; \
	done

clean:     ## remove the built site and smoke outputs (never the run store)
	rm -rf _build $(SMOKE_DIR)
