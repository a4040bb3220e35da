"""Benchmark: wall time of a grid slice with ``--executor processes --jobs 2`` against one run
after another (logic: :mod:`factorlab.experiments.sweep_benchmark`).

    python benchmarks/sweep_speedup.py             # 4 MLP runs of mnist_baselines' cpu grid at 1 epoch
    python benchmarks/sweep_speedup.py --runs 6 --epochs 2 --jobs 2
    python benchmarks/sweep_speedup.py --quick     # the smoke profile's 2 MLP runs (smoke test)

Prints both wall times, their ratio (jobs 2 / sequential) and the speed-up. Both passes train
into temporary stores (the run store is not touched). Run it on an otherwise idle machine.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("sweep_benchmark", doc=__doc__))
