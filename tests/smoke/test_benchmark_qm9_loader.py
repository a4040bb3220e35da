"""The QM9 loader benchmark runs end to end on the fixture (``--quick``), prints both
loaders' epoch times and their ratio, and stores one run record in a temporary store."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_qm9_loader_benchmark_quick(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "qm9_loader.py"), "--quick", "--record"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pyg/ours" in out.stdout
    assert "300 molecules, 3 batches per epoch" in out.stdout
    records = list((tmp_path / "qm9_loader_benchmark").glob("*.json"))
    assert len(records) == 1
    m = json.loads(records[0].read_text())["metrics"]
    for phase in ("load", "train"):
        assert m[f"{phase}_ratio"] == m[f"pyg_{phase}_s"] / m[f"ours_{phase}_s"]
        assert m[f"ours_{phase}_s"] > 0 and m[f"pyg_{phase}_s"] > 0
