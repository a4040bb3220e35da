"""A benchmark runs through the command line like any experiment: ``python -m factorlab run
memory_format_benchmark --profile smoke`` measures it into the store with the benchmark's own
progress label, and a second call returns the stored record without measuring again."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_run_a_benchmark_through_the_store(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path)}
    env.pop("FACTORLAB_REQUIRE_CACHED", None)
    cmd = [sys.executable, "-m", "factorlab", "run", "memory_format_benchmark", "--profile", "smoke"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    (path,) = (tmp_path / "memory_format_benchmark").glob("*.json")
    assert f"[1/1] measuring {path.stem} device=cpu batch_size=16" in out.stdout
    assert "1 runs of memory_format_benchmark (smoke)" in out.stdout
    rec = json.loads(path.read_text())
    assert rec["config"]["profile"] == "smoke" and rec["metrics"]["n"] == 2
    again = subprocess.run(cmd, capture_output=True, text=True, env={**env, "FACTORLAB_REQUIRE_CACHED": "1"},
                           timeout=600, cwd=REPO)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"[1/1] cached  {path.stem} device=cpu batch_size=16" in again.stdout
    assert json.loads(path.read_text()) == rec  # the stored record, not a new measurement
