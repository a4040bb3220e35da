"""The layer benchmark runs end to end (``--quick``: two configurations, batch 32) and prints
its table, the three targets and the roofline view with its three goals. It needs no TensorLy-Torch: without it the script says so
and leaves the peer columns empty. The run record goes to a temporary store."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_layers_benchmark_quick_prints_table_and_targets(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "layers.py"), "--quick", "--record"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    header = next((line for line in out.stdout.splitlines() if "ours/dense" in line), "")
    for column in ("dense ms", "ours ms", "predicted", "meas/pred", "tl-fact ms", "tl-rec ms"):
        assert column in header, f"table header lacks {column!r}: {header!r}"
    assert out.stdout.count("target: ") == 3
    assert "Roofline view: peak" in out.stdout and out.stdout.count("goal: ") == 3
    assert "tltorch 0.5.0" in out.stdout or "tltorch not installed: peer column empty" in out.stdout
    records = list((tmp_path / "layers_benchmark").glob("*.json"))
    assert len(records) == 1
    rec = json.loads(records[0].read_text())
    assert rec["config"]["experiment"] == "layers_benchmark" and rec["config"]["profile"] == "smoke"
    assert len(rec["metrics"]["rows"]) == 2 and rec["metrics"]["threads"] >= 1
    assert rec["config"]["roofline"] is True and len(rec["metrics"]["goals"]) == 3
    for row in rec["metrics"]["rows"]:  # the roofline view: every candidate path timed, the tuned one kept
        assert row["tuned_path"] in row["paths"] and row["eval_path"] in row["paths"] and "factored" in row["paths"]
        assert row["bound"] in ("compute", "memory") and row["roofline_s"] > 0 and row["peak_flops"] > 0
