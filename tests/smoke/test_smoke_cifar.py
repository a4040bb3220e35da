"""Smoke runs of the CIFAR-10 experiments through the headless CLI (the committed 350-image
fixture: no CIFAR-10 download needed), into the throw-away store of ``make smoke``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("experiment", ["cifar_baselines", "cifar_factorized", "cifar_long", "cifar_init"])
def test_cli_trains_the_cifar_smoke_grid_then_hits_the_cache(experiment):
    from factorlab.experiments import get_experiment

    cmd = [sys.executable, "-m", "factorlab", "run", experiment, "--profile", "smoke", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("FACTORLAB_CIFAR10_VARIANT", None)
    first = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    n = len(get_experiment(experiment).grid("smoke"))
    records = list((Path(os.environ["FACTORLAB_RESULTS_DIR"]) / experiment).glob("*.json"))
    assert len(records) == n, first.stdout + first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    assert second.stdout.count("cached") == n and "training" not in second.stdout
