"""Benchmark: a CIFAR-10 training step in the NCHW and the channels-last memory format, one
process (the measuring code is :mod:`factorlab.experiments.memory_format_benchmark`; the
record's experiment is ``memory_format_benchmark``).

    python benchmarks/memory_format.py                # every net of the cpu grids, prints the table (~3 min)
    python benchmarks/memory_format.py --record       # ... through the run store (the stored record if there is one)
    python benchmarks/memory_format.py --quick        # two small nets, batch 16: seconds (smoke test)
    python benchmarks/memory_format.py --device cuda  # on a GPU: the nets of the full grids

``--record`` is ``python -m factorlab run memory_format_benchmark --profile cpu`` (``full`` with
``--device cuda``, ``smoke`` with ``--quick``). Run it on an otherwise idle machine.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("memory_format_benchmark", doc=__doc__))
