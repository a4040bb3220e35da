"""Benchmark: forward+backward time of every factorized layer against the dense layer of the
same shape and against TensorLy-Torch at the same rank, all in one process (the measuring code
is :mod:`factorlab.experiments.layers_benchmark`; the record's experiment is ``layers_benchmark``).

    python benchmarks/layers.py                  # CPU here (or --device cuda), prints the tables
    python benchmarks/layers.py --record         # ... through the run store (the stored record if there is one)
    python benchmarks/layers.py --quick          # two configurations, batch 32, few repeats (smoke)

``--record`` is ``python -m factorlab run layers_benchmark --profile cpu`` (``full`` with
``--device cuda``, ``smoke`` with ``--quick``) where the options are the profile's defaults,
with the roofline view added (the machine's measured peak and bandwidth, every candidate path
of every layer timed, the autotuned path, eval-mode times, and the issue-19 goals as met / not
met; the registered grid of the chapter has it off until the chapter is re-measured).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/layers.py --threads 1 --record   # quiet CPU, ~15-25 min
    .venv/bin/python benchmarks/layers.py --device cuda --record                  # a lent GPU
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("layers_benchmark", doc=__doc__))
