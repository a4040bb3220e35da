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
# System packages for `browser` and `pdf`: Chromium (headless) and a font with wide Unicode coverage.
CHROMIUM ?= $(firstword $(foreach b,chromium chromium-browser google-chrome google-chrome-stable,$(shell command -v $(b) 2>/dev/null)))
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help install book test unit nbval smoke browser chromium pdf lab publish reproduce clean

help:      ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt && $(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (factorlab)" >/dev/null
	touch $(STAMP)

# Sphinx does not know that a prose page gluing a notebook's values ({glue:text}`../x.ipynb::v`)
# depends on that notebook, so an incremental build kept such pages stale after a notebook was
# re-executed: touch them before every build so that they are read again.
TOUCH_GLUE_PAGES = touch $$(grep -l 'ipynb::' book/*.md)

install: $(STAMP)  ## create .venv with the pinned environment and register the Jupyter kernel

book: install  ## build the site into _build/html from the committed notebook outputs (strict)
	$(TOUCH_GLUE_PAGES)
	$(BIN)/jupyter-book build . -W -n --keep-going

unit: install  ## unit tests of the library (tests/unit)
	$(BIN)/python -m pytest -q tests/unit

nbval: install  ## replay every committed notebook from the run store (no training allowed)
	FACTORLAB_REQUIRE_CACHED=1 $(BIN)/python -m pytest -q --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg $(NOTEBOOKS)

smoke: install  ## run every notebook and the CLI with profile=smoke into a throw-away run store
	rm -rf $(SMOKE_DIR) && mkdir -p $(SMOKE_DIR)
	FACTORLAB_RESULTS_DIR=$(abspath $(SMOKE_DIR))/results $(BIN)/python -m pytest -q tests/smoke

browser: book chromium  ## open every page of _build/html in headless Chromium, offline; screenshots in _build/screenshots
	FACTORLAB_SITE=$(abspath _build/html) $(BIN)/python -m pytest -q tests/browser

test: unit nbval smoke book browser  ## everything CI checks: unit tests, nbval replay, smoke runs, strict book build, browser check

chromium:  ## install the system's Chromium with apt-get if none is on PATH (used by browser and pdf)
	@if [ -n "$(CHROMIUM)" ]; then echo "Chromium: $(CHROMIUM)"; \
	elif command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q chromium fonts-liberation fonts-dejavu-core; \
	else echo "no Chromium and no apt-get: install Chromium or Chrome, or set CHROMIUM=/path/to/it" >&2; exit 1; fi

pdf: install chromium  ## the whole book as one PDF, _build/pdf/book.pdf (single-page HTML printed by headless Chromium; no TeX)
	$(TOUCH_GLUE_PAGES)
	$(BIN)/jupyter-book build . --builder singlehtml -n --keep-going
	$(BIN)/python tests/browser/print_pdf.py _build/singlehtml _build/pdf/book.pdf

lab: install  ## JupyterLab on notebooks/ with the project's kernel (runs are cached: re-running a notebook trains nothing)
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks \
	  $(if $(SUDO),,--allow-root) $(LAB_ARGS)

publish: book  ## push _build/html to the gh-pages branch of origin (GitHub Pages) with ghp-import
	$(BIN)/ghp-import --no-jekyll --push --force --message "book from $$(git rev-parse --short HEAD)" _build/html

reproduce: install  ## measure missing PROFILE benchmarks, fill the run store via the notebooks, re-execute them clean
	$(BIN)/python -m factorlab run qm9_demo_model --profile $(PROFILE) --device $(DEVICE) || exit 1; \
	for b in $$($(BIN)/python -m factorlab list --kind benchmark --names); do \
	  $(BIN)/python -m factorlab run $$b --profile $(PROFILE) || exit 1; \
	done && for nb in $(NOTEBOOKS); do \
	  $(PAPERMILL) -p profile $(PROFILE) -p device $(DEVICE) $$nb $$nb && \
	  FACTORLAB_REQUIRE_CACHED=1 $(PAPERMILL) -p profile $(PROFILE) -p device $(DEVICE) $$nb $$nb || exit 1; \
	done

clean:     ## remove the built site and smoke outputs (never the run store)
	rm -rf _build $(SMOKE_DIR)
