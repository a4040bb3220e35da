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

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.dft_threads_benchmark import NAME, make_config, report, run  # noqa: E402
from factorlab.experiments.registry import record_run  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="methane from the committed fixture (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help=f"run it through the run store (experiment {NAME}): the stored record if there is one, "
                             "else measured now and stored")
    args = parser.parse_args(argv)
    profile = "smoke" if args.quick else "cpu"
    cfg = make_config(profile)
    print(f"SCF at QM9's level of theory on {', '.join(map(str, cfg.threads))} threads, profile {profile}", flush=True)
    metrics = record_run(NAME, cfg, "cpu")["metrics"] if args.record else run(cfg.to_dict())["metrics"]
    print(report(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
