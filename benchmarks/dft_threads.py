"""Benchmark: the DFT's SCF on one and on two CPU threads, same molecules, one process (the
measuring code is :mod:`factorlab.experiments.dft_threads_benchmark`; the record's experiment
is ``dft_threads_benchmark``).

    python benchmarks/dft_threads.py                  # three QM9 molecules (3, 5, 6 heavy atoms), prints the table
    python benchmarks/dft_threads.py --record         # ... through the run store (the stored record if there is one)
    python benchmarks/dft_threads.py --quick          # methane from the fixture, seconds (smoke)

``--record`` is ``python -m factorlab run dft_threads_benchmark --profile cpu`` (``smoke`` with
``--quick``). Run it on an otherwise idle machine.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("dft_threads_benchmark", doc=__doc__))
