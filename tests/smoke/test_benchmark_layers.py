"""The layer benchmark runs end to end (quick subset) and prints its table and targets."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_layers_benchmark_quick_prints_table_and_targets(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "layers.py"), "--quick", "--budget", "0.05",
                          "--record"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "ours/dense" in out.stdout and "measured/predicted" in out.stdout
    assert out.stdout.count("target: ") == 3
    assert list((tmp_path / "layers_benchmark").glob("*.json"))
