"""Smoke run of ``mnist_architecture`` through the headless CLI: the smoke grid trains (one
epoch on 512 images per architecture variant), a second run only hits the cache, the records
hold the variants' parameter counts, and the report pairs them with the ``journal`` runs of
``mnist_baselines`` trained into the same throw-away store. Needs MNIST (downloaded, or from
FACTORLAB_DATA_MIRROR)."""
from __future__ import annotations

import os
import subprocess
import sys

from factorlab.experiments.mnist_architecture import grid


def _run(store, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(store)}
    cmd = [sys.executable, "-m", "factorlab", "run", *args, "--profile", "smoke", "--device", "cpu"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)


def test_cli_trains_the_architecture_variants_and_the_report_pairs_them(tmp_path):
    from factorlab.report import mnist_architecture as report
    from factorlab.results import RunStore

    store = tmp_path / "results"  # its own store: the counts below see only this test's runs
    first = _run(store, "mnist_architecture")
    n = len(grid("smoke"))
    assert n == 4 and len(list((store / "mnist_architecture").glob("*.json"))) == n, first.stdout + first.stderr
    second = _run(store, "mnist_architecture")
    assert second.stdout.count("cached") == n and "training" not in second.stdout
    _run(store, "mnist_baselines", "--where", "variant=journal")

    arch, base = report.stored_records("smoke", RunStore(store))
    assert len(arch) == n and [r["config"]["net"] for r in base] == ["conv1", "conv2"]
    assert [r["model"]["params"] for r in arch] == [629_142, 42_154, 167_478, 184_374]
    f = report.variants_frame(arch, base, "smoke")
    assert list(f.n) == [1] * 6 and list(f.n_pairs) == [0, 1, 0, 1, 1, 1]
    assert f["diff"].iloc[[1, 3, 4, 5]].notna().all() and f["diff_se"].isna().all()  # one seed: no standard error
    table = report.variants_table(arch, base, "smoke")
    assert "not run" not in set(table["test acc. (%)"])
