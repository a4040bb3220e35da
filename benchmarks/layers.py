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

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.layers_benchmark import (NAME, default_budget, make_config, measure_record,  # noqa: E402,F401
                                                    record, report, summarize, tltorch)
from factorlab.experiments.registry import record_run  # noqa: E402
from factorlab.train.device import resolve_device  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--quick", action="store_true", help="two configurations, batch 32, few repeats (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help=f"run it through the run store (experiment {NAME}): the stored record if there is one, "
                             "else measured now and stored")
    parser.add_argument("--budget", type=float, default=None,
                        help="about this many seconds per measurement (default 0.3; 0.02 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's default; the number used is recorded)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    peer_txt = "tltorch not installed: peer column empty" if tltorch is None else f"tltorch {tltorch.__version__}"
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {peer_txt}", flush=True)
    profile = "smoke" if args.quick else "cpu" if device.type == "cpu" else "full"
    cfg = make_config(profile, device, args.budget)
    if args.record:
        rows = record_run(NAME, cfg, str(device))["metrics"]["rows"]
    else:
        rows = measure_record(cfg.to_dict(), device)["metrics"]["rows"]
    df, targets = summarize(rows)
    print()
    print(report(df, targets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
