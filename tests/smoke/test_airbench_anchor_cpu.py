"""The airbench94 anchor runs end to end on the CPU (``--profile smoke``: the fixture, width
1/8, one epoch, one seed of each): airbench94's own ``train94`` through the CPU runtime beside
our ``cifar_baselines`` smoke config, its table, and one run record in a temporary store."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_airbench_anchor_smoke_on_the_cpu(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "airbench_anchor.py"), "--profile", "smoke",
                          "--torchvision-shim", "--record"], capture_output=True, text=True, env=env, timeout=600,
                         cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "airbench94 (airbench package, on the CPU)" in out.stdout and "width 0.125" in out.stdout
    assert "no verdict on the 1.2x target" in out.stdout and "LOSSY" in out.stdout
    (path,) = (tmp_path / "cifar_anchor").glob("*.json")
    rec = json.loads(path.read_text())
    cfg, m, t = rec["config"], rec["metrics"], rec["timing"]
    assert cfg["profile"] == "smoke" and cfg["device"] == "cpu" and cfg["seeds"] == [0] and cfg["runs"] == 1
    assert m["n_airbench"] == m["n_ours"] == 1 and m["n_train"] == 250 and m["n_test"] == 100
    (a,), (o,) = m["airbench_runs"], m["ours_runs"]
    assert 0 <= a["acc"] <= 1 and 0 <= o["acc"] <= 1 and a["time_s"] > 0 and o["time_s"] > 0
    assert [row["epoch"] for row in a["epochs"]] == [0]  # airbench's table: one epoch
    assert m["ratio"] == o["time_s"] / a["time_s"]
    assert a["params_all"] == o["params_all"] == rec["model"]["airbench_params_all"]  # the same net, both sides
    assert t["device_name"] == "cpu" and t["airbench_precision"].startswith("fp32") and t["torchvision"] == "shim"
