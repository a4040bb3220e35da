"""Benchmark: airbench94 itself beside our airbench-style baseline, same data, same device, one
process (the comparing code is :mod:`factorlab.experiments.cifar_anchor`, which documents it;
the record's experiment is ``cifar_anchor``).

    python benchmarks/airbench_anchor.py                # on a CUDA GPU: 3 runs of each, prints the table
    python benchmarks/airbench_anchor.py --record       # ... through the run store (the stored record if there is one)
    python benchmarks/airbench_anchor.py --runs 5       # seeds 0..4
    python benchmarks/airbench_anchor.py --profile cpu --torchvision-shim --record   # this CPU machine (5 seeds)

``--profile full`` (the default) needs a CUDA GPU; without one it exits with a one-line error
(status 2). ``--record`` with a profile's defaults is ``python -m factorlab run cifar_anchor
--profile PROFILE``. See ``benchmarks/README.md`` for running it on a lent GPU machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.experiments.cifar_anchor import (ACC_TOLERANCE, AIRBENCH_VERSION, DEFAULT_RUNS, MAX_RUNS,  # noqa: E402
                                                NAME, PROFILE_DEVICE, AnchorError, anchor_configs, cuda_error,
                                                format_table, import_airbench, make_config, measure)
from factorlab.experiments.registry import record_run  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None,
                        help=f"seeds per method: 1..{MAX_RUNS} (full, cpu) or 1 (smoke); default the profile's "
                             f"({', '.join(f'{p} {n}' for p, n in DEFAULT_RUNS.items())})")
    parser.add_argument("--profile", choices=sorted(PROFILE_DEVICE), default="full",
                        help="full (default): the comparison at full scale, on a CUDA GPU; cpu, smoke: the same "
                             "comparison at cifar_baselines' reduced scale, on the CPU")
    parser.add_argument("--record", action="store_true",
                        help=f"run it through the run store (experiment {NAME}): the stored record if there is one, "
                             "else measured now and stored")
    parser.add_argument("--acc-tolerance", type=float, default=ACC_TOLERANCE,
                        help="'the same accuracy': ours at most this far (a fraction) below airbench94's mean")
    parser.add_argument("--torchvision-shim", action="store_true",
                        help="stand in for torchvision's Normalize where torchvision cannot be imported")
    args = parser.parse_args(argv)
    try:
        problem = cuda_error() if PROFILE_DEVICE[args.profile] == "cuda" else None
        if problem:
            raise AnchorError(problem)
        runs = DEFAULT_RUNS[args.profile] if args.runs is None else args.runs
        try:
            anchor_configs(runs, args.profile)
        except ValueError as err:
            raise AnchorError(str(err)) from None
        _, tv_version = import_airbench(args.torchvision_shim)  # fail early, before the data are read
    except AnchorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cfg = make_config(runs, "shim" if tv_version == "shim" else "installed", args.acc_tolerance, args.profile)
    device_name = torch.cuda.get_device_name(0) if cfg.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"profile {args.profile}, device {device_name}, torch {torch.__version__}, airbench {AIRBENCH_VERSION}, "
          f"torchvision {tv_version}, {runs} runs each", flush=True)
    rec = record_run(NAME, cfg, cfg.device) if args.record else measure(cfg.to_dict())
    m = rec["metrics"]
    print()
    print(format_table(m, m["dataset_variant"], header=f"profile {cfg.profile}, device {rec['timing']['device_name']}, "
                                                      f"seeds {cfg.seeds}", device=cfg.device,
                       width=anchor_configs(1, cfg.profile)[0]["width"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
