"""The DFT thread benchmark runs end to end (``--quick``: methane from the fixture, on one and
two threads), prints its table, and stores one run record in a temporary store."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dft_threads_benchmark_quick(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "dft_threads.py"), "--quick", "--record"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 thread s" in out.stdout and "2 threads s" in out.stdout
    records = list((tmp_path / "dft_threads_benchmark").glob("*.json"))
    assert len(records) == 1
    m = json.loads(records[0].read_text())["metrics"]
    (row,) = m["rows"]
    assert row["smiles"] == "C" and row["n_basis"] == 48
    assert row["speedup"] == row["scf_1_s"] / row["scf_2_s"] and row["scf_1_s"] > 0
    assert m["max_energy_diff_hartree"] < 1e-8  # the thread count does not change the result
