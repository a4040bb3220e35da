"""The sweep speed-up benchmark runs end to end (``--quick``: the smoke profile's 2 MLP runs,
sequential and with 2 worker processes), prints its ratio and leaves the run store alone."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sweep_speedup_quick(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "sweep_speedup.py"), "--quick"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("2 runs, ")
    seq = float(re.search(r"sequential \(local\): +([0-9.]+) s", out.stdout).group(1))
    par = float(re.search(r"--executor processes --jobs 2: +([0-9.]+) s", out.stdout).group(1))
    ratio, speedup = map(float, re.search(r"ratio jobs 2 / sequential: ([0-9.]+)  \(speed-up ([0-9.]+)x\)",
                                          out.stdout).groups())
    assert seq > 0 and par > 0 and abs(ratio * speedup - 1) < 0.01  # printed to 3 decimals
    # seconds are printed to 0.1 s and the ratio to 3 decimals: the printed ratio must lie in the
    # interval the rounded seconds allow (a sequential pass of 0.3 s may have been 0.25-0.35 s)
    assert (par - 0.05) / (seq + 0.05) - 0.0005 <= ratio <= (par + 0.05) / max(seq - 0.05, 1e-9) + 0.0005
    assert "metrics identical: " in out.stdout and "other trainings live: 0" in out.stdout
    assert not any(tmp_path.rglob("*.json"))  # trained into temporary stores only


def test_sweep_speedup_rejects_a_bad_slice():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "sweep_speedup.py"), "--runs", "99"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr == "error: runs must be between 1 and 6 (the cpu grid's MLP runs), got 99\n"
