"""Benchmark: the training loop fit_classifier against a plain PyTorch loop on the same net,
data and threads, one process (the measuring code is
:mod:`factorlab.experiments.train_throughput`; the record's experiment is
``train_throughput``).

    python benchmarks/train_throughput.py                # mlp, conv1, conv2 on one CPU thread, prints the table (~2 min idle)
    python benchmarks/train_throughput.py --record       # ... through the run store (the stored record if there is one)
    python benchmarks/train_throughput.py --quick        # a few steps per net: seconds (smoke test)
    python benchmarks/train_throughput.py --device cuda  # on a GPU

``--record`` is ``python -m factorlab run train_throughput --profile cpu`` (``full`` with
``--device cuda``, ``smoke`` with ``--quick``). Run it on an otherwise idle machine.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("train_throughput", doc=__doc__))
