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

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.qm9_loader_benchmark import NAME, make_config, record, report, run  # noqa: E402,F401
from factorlab.experiments.registry import record_run  # noqa: E402
from factorlab.train.device import resolve_device  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--quick", action="store_true", help="the committed 300-molecule fixture (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help=f"run it through the run store (experiment {NAME}): the stored record if there is one, "
                             "else measured now and stored")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    profile = "smoke" if args.quick else "cpu" if device.type == "cpu" else "full"
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, profile {profile}",
          flush=True)
    cfg = make_config(profile, device)
    if args.record:
        metrics = record_run(NAME, cfg, str(device))["metrics"]
    else:
        metrics = run(cfg.to_dict(), device, cfg.fixture)["metrics"]
    print(report(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
