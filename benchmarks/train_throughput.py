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

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.registry import record_run  # noqa: E402
from factorlab.experiments.train_throughput import NAME, make_config, report, run  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps per net (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help=f"run it through the run store (experiment {NAME}): the stored record if there is one, "
                             "else measured now and stored")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available here", file=sys.stderr)
        return 2
    profile = "smoke" if args.quick else ("full" if args.device == "cuda" else "cpu")
    cfg = make_config(profile)
    steps = ", ".join(f"{n} {cfg.steps[n]}" for n in cfg.nets)
    print(f"fit_classifier against a plain loop, profile {profile}, steps per repetition: {steps}, "
          f"{cfg.repeats} repetitions each, device {cfg.device}", flush=True)
    rec = record_run(NAME, cfg, cfg.device) if args.record else run(cfg.to_dict())
    print(report(rec["metrics"], rec["timing"]["threads"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
