"""Benchmark: one training epoch on QM9 with the on-device loader against PyTorch Geometric's
``DataLoader``, same model, same molecules, in one process (the measuring code is
:mod:`factorlab.experiments.qm9_loader_benchmark`; the record's experiment is
``qm9_loader_benchmark``).

    python benchmarks/qm9_loader.py                   # CPU here (or --device cuda), prints the table
    python benchmarks/qm9_loader.py --record          # ... through the run store (the stored record if there is one)
    python benchmarks/qm9_loader.py --quick           # the 300-molecule fixture, seconds (smoke)

``--record`` is ``python -m factorlab run qm9_loader_benchmark --profile cpu`` (``full`` with
``--device cuda``, ``smoke`` with ``--quick``).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("qm9_loader_benchmark", doc=__doc__))
