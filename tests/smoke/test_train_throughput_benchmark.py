"""The training-loop throughput benchmark runs end to end (``--quick``: a few steps of mlp,
conv1 and conv2 per loop), prints its table, and stores one run record in a temporary store;
both loops end with the same weights."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_train_throughput_benchmark_quick(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_throughput.py"), "--quick", "--record"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "plain ms" in out.stdout and "fit_classifier / plain loop (1 thread): at most" in out.stdout
    (path,) = (tmp_path / "train_throughput").glob("*.json")
    rec = json.loads(path.read_text())
    m = rec["metrics"]
    assert rec["config"]["profile"] == "smoke" and rec["config"]["threads"] == 1 and rec["timing"]["threads"] == 1
    assert [r["net"] for r in m["rows"]] == ["mlp", "conv1", "conv2"] and m["n"] == 3
    for r in m["rows"]:
        assert r["same_weights"] is True  # the plain loop trains exactly what fit_classifier trains
        assert len(r["fit_reps_s"]) == len(r["plain_reps_s"]) == rec["config"]["repeats"]
        assert r["fit_s"] > 0 and r["plain_s"] > 0 and r["ratio"] == r["fit_s"] / r["plain_s"]
    assert m["ratio_max"] == max(r["ratio"] for r in m["rows"]) and m["all_same_weights"] is True
    assert m["n_within_target"] == sum(r["ratio"] <= m["target_ratio"] for r in m["rows"])
