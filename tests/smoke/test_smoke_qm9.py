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


def _tensor_mtl(stdout: str, records: list[Path]) -> None:
    """Each run's own single-task stack equals qm9_single_task's smoke record, target by target."""
    for path in records:
        check = json.loads(path.read_text())["metrics"]["reference_check"]
        assert check["equal"] is True and len(check["compared"]) == 11, check


def _relatedness(stdout: str, records: list[Path]) -> None:
    """Every measure is recorded, and the single-task stack each record trains for encoder swap
    is qm9_single_task's networks: the same per-target test MAEs, exactly, for both task sets
    (qm9_single_task's smoke records were made by the CLI before, on one thread like these)."""
    from factorlab.experiments import run_experiment
    from factorlab.report.qm9_relatedness import stack_consistency

    recs = [json.loads(path.read_text()) for path in records]
    for rec in recs:
        measures = rec["metrics"]["measures"]
        assert {"pearson_raw", "dcor_residual", "gradient_cosine", "tag_affinity", "encoder_swap"} <= set(measures)
    stl = run_experiment("qm9_single_task", "smoke", "cpu", where={"model": "gine"})  # cached: never trains here
    for task_set in ("nash11", "all19"):
        check = stack_consistency(recs, stl, task_set)
        assert check["seeds"] == 1 and check["identical"] and check["max_diff_pct"] == 0.0, (task_set, check)


def _pairs(stdout: str, records: list[Path]) -> None:
    """The pair gains are taken against qm9_single_task's smoke records (nothing else needed)."""
    from factorlab.experiments import qm9_pairs

    assert qm9_pairs.missing_runs("smoke") == ""
    seeds, gains = qm9_pairs.pair_gains("smoke")
    assert seeds == [0] and gains.shape == (1, 3, 3)


@pytest.mark.parametrize("experiment, check", [("qm9_single_task", None), ("qm9_hard_sharing", None),
                                               ("qm9_soft_sharing", _soft_sharing),
                                               # after qm9_single_task: its check reads those records
                                               ("qm9_tensor_mtl", _tensor_mtl),
                                               # after qm9_single_task: both checks read its records
                                               ("qm9_relatedness", _relatedness),
                                               ("qm9_weighting", None),
                                               # pairs first: grouping chooses its groups from their records
                                               ("qm9_pairs", _pairs), ("qm9_grouping", None)])
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
