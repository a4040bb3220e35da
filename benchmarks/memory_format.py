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

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.memory_format_benchmark import NAME, make_config, report, run  # noqa: E402
from factorlab.experiments.registry import record_run  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small nets at batch 16 (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help=f"run it through the run store (experiment {NAME}): the stored record if there is one, "
                             "else measured now and stored")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available here", file=sys.stderr)
        return 2
    profile = "smoke" if args.quick else ("full" if args.device == "cuda" else "cpu")
    cfg = make_config(profile, args.device)
    batch = cfg.batch_size if cfg.batch_size is not None else "per net"
    print(f"training step, NCHW against channels-last, profile {profile}, {len(cfg.nets)} nets, batch "
          f"{batch}, device {args.device} ({torch.get_num_threads()} threads)", flush=True)
    metrics = record_run(NAME, cfg, args.device)["metrics"] if args.record else run(cfg.to_dict())["metrics"]
    print(report(metrics, cfg.batch_size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
