"""The memory-format benchmark runs end to end (``--quick``: two small airbench nets, batch 16,
both formats), prints its table, and stores one run record in a temporary store."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_memory_format_benchmark_quick(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "memory_format.py"), "--quick", "--record"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "NCHW ms" in out.stdout and "channels-last faster for" in out.stdout
    (path,) = (tmp_path / "memory_format_benchmark").glob("*.json")
    rec = json.loads(path.read_text())
    m = rec["metrics"]
    assert rec["config"]["profile"] == "smoke" and rec["config"]["batch_size"] == 16 and m["n"] == 2
    assert [r["family"] for r in m["rows"]] == ["dense", "separable_tt"]
    for r in m["rows"]:
        assert r["nchw_s"] > 0 and r["channels_last_s"] > 0 and r["speedup"] == r["nchw_s"] / r["channels_last_s"]
    assert m["n_faster"] == sum(r["speedup"] > 1 for r in m["rows"]) and m["speedup_min"] <= m["speedup_max"]


def test_memory_format_benchmark_refuses_cuda_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        return  # nothing to refuse
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "memory_format.py"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2 and out.stderr == "error: --device cuda but no CUDA GPU is available here\n"
