"""Smoke run of ``qm9_relatedness`` through the headless CLI (the committed fixture: no QM9
download needed), into the throw-away store of ``make smoke``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NAME = "qm9_relatedness"


@pytest.fixture(autouse=True)
def _throwaway_store():
    store = os.environ.get("FACTORLAB_RESULTS_DIR")
    if not store or Path(store).resolve() == (REPO / "data" / "results").resolve():
        pytest.fail("smoke tests must run with FACTORLAB_RESULTS_DIR set to a temporary store (use `make smoke`)")
    os.environ.pop("FACTORLAB_REQUIRE_CACHED", None)


def test_cli_computes_the_relatedness_smoke_grid_then_hits_the_cache():
    from factorlab.experiments import get_experiment

    cmd = [sys.executable, "-m", "factorlab", "run", NAME, "--profile", "smoke", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    n = len(get_experiment(NAME).grid("smoke"))
    records = list((Path(os.environ["FACTORLAB_RESULTS_DIR"]) / NAME).glob("*.json"))
    assert len(records) == n, first.stdout + first.stderr
    for path in records:
        measures = json.loads(path.read_text())["metrics"]["measures"]
        assert {"pearson_raw", "dcor_residual", "gradient_cosine", "tag_affinity", "encoder_swap"} <= set(measures)
    second = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    assert second.stdout.count("cached") == n and "training" not in second.stdout
