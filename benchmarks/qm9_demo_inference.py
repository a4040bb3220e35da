"""Benchmark: the inference time of the saved demo networks of ``qm9_demo_model`` (single-task,
hard-shared, grouped), loaded into one process and timed with repeats interleaved, each with
its ratio to the single-task network (the measuring code is
:mod:`factorlab.experiments.qm9_demo_inference`; the record's experiment is
``qm9_demo_inference``).

    python benchmarks/qm9_demo_inference.py            # the cpu networks of data/models, one thread (prints the table)
    python benchmarks/qm9_demo_inference.py --record   # ... through the run store (the stored record if there is one)
    python benchmarks/qm9_demo_inference.py --quick    # the smoke networks, seconds (train them first)

``--record`` is ``python -m factorlab run qm9_demo_inference --profile cpu`` (``full`` with
``--device cuda``, ``smoke`` with ``--quick``). Run it on a quiet machine.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.benchmark_cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(benchmark_main("qm9_demo_inference", doc=__doc__))
