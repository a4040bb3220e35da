"""Benchmark: airbench94 itself beside our airbench-style baseline, same data, same device, one
process (the comparing code is :mod:`factorlab.experiments.cifar_anchor`, which documents it;
the record's experiment is ``cifar_anchor``).

    python benchmarks/airbench_anchor.py                # on a CUDA GPU: 3 runs of each, prints the table
    python benchmarks/airbench_anchor.py --record       # ... through the run store (the stored record if there is one)
    python benchmarks/airbench_anchor.py --runs 5       # seeds 0..4
    python benchmarks/airbench_anchor.py --profile cpu --torchvision-shim --record   # this CPU machine (5 seeds)

``--profile full`` (the default) needs a CUDA GPU; without one it exits with a one-line error
(status 2). ``--record`` with a profile's defaults is ``python -m factorlab run cifar_anchor
--profile PROFILE``. See ``benchmarks/README.md`` for running it on a lent GPU machine.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("cifar_anchor", doc=__doc__))
