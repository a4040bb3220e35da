"""Smoke runs: the headless CLI and every notebook with ``profile=smoke``.

Run by ``make smoke`` with ``FACTORLAB_RESULTS_DIR`` pointing at a throw-away store, so the
committed run store is never touched. Needs MNIST (downloaded, or from FACTORLAB_DATA_MIRROR).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The book's notebooks, and those in notebooks/pending/ (written, waiting for their cpu records).
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "notebooks" / "pending").glob("*.ipynb"))


def test_cli_trains_the_smoke_grid_then_hits_the_cache():
    from factorlab.experiments.mnist_baselines import grid

    cmd = [sys.executable, "-m", "factorlab", "run", "mnist_baselines", "--profile", "smoke", "--device", "cpu"]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True)
    n = len(grid("smoke"))
    records = list((Path(os.environ["FACTORLAB_RESULTS_DIR"]) / "mnist_baselines").glob("*.json"))
    assert len(records) == n, first.stdout + first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert second.stdout.count("cached") == n and "training" not in second.stdout


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_with_smoke_profile(notebook, tmp_path):
    import papermill

    out = tmp_path / notebook.name
    papermill.execute_notebook(str(notebook), str(out), parameters={"profile": "smoke", "device": "cpu"},
                               kernel_name="factorlab", cwd=str(notebook.parent), progress_bar=False)
    assert out.exists()
