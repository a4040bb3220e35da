"""Smoke runs of the QM9 experiments through the headless CLI (the committed fixture: no
QM9 download needed), into the throw-away store of ``make smoke``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


#: Per experiment, a check of its smoke records' contents beyond their number (None: none).
def _soft_sharing(stdout: str, records: list[Path]) -> None:
    assert "lam=inf" in stdout and "method=cross_stitch" in stdout


def _relatedness(stdout: str, records: list[Path]) -> None:
    for path in records:
        measures = json.loads(path.read_text())["metrics"]["measures"]
        assert {"pearson_raw", "dcor_residual", "gradient_cosine", "tag_affinity", "encoder_swap"} <= set(measures)


@pytest.mark.parametrize("experiment, check", [("qm9_single_task", None), ("qm9_hard_sharing", None),
                                               ("qm9_soft_sharing", _soft_sharing),
                                               ("qm9_relatedness", _relatedness),
                                               ("qm9_weighting", None),
                                               # pairs first: grouping chooses its groups from their records
                                               ("qm9_pairs", None), ("qm9_grouping", None)])
def test_cli_trains_the_qm9_smoke_grid_then_hits_the_cache(experiment, check):
    from factorlab.experiments import get_experiment

    cmd = [sys.executable, "-m", "factorlab", "run", experiment, "--profile", "smoke", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    n = len(get_experiment(experiment).grid("smoke"))
    records = list((Path(os.environ["FACTORLAB_RESULTS_DIR"]) / experiment).glob("*.json"))
    assert len(records) == n, first.stdout + first.stderr
    if check is not None:
        check(first.stdout, records)
    second = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    assert second.stdout.count("cached") == n and "training" not in second.stdout
