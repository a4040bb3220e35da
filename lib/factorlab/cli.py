"""Command line: ``python -m factorlab run <experiment> --profile {smoke,cpu,full} --device
{auto,cpu,cuda}`` trains every missing run of an experiment's grid into the run store, without
Jupyter; ``python -m factorlab list`` lists experiments and how many runs each profile has."""
from __future__ import annotations

import argparse
import sys
import time

from factorlab.experiments import EXPERIMENTS, PROFILES, get_experiment, run_experiment
from factorlab.train.device import VALID_DEVICES


def _cmd_run(args: argparse.Namespace) -> int:
    from factorlab.results import RunStore, config_hash

    store = RunStore()
    t0 = time.perf_counter()

    def log(i: int, n: int, cfg: dict, cached: bool) -> None:
        what = "cached " if cached else "training"
        keys = ("net", "variant", "family", "compression", "width", "seed")
        label = " ".join(f"{k}={cfg[k]}" for k in keys if cfg.get(k) is not None)
        print(f"[{i + 1}/{n}] {what} {config_hash(cfg)} {label}  ({time.perf_counter() - t0:.0f} s)", flush=True)

    where = {}
    for item in args.where or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--where expects KEY=VALUE, got {item!r}")
        where[key] = value
    records = run_experiment(args.experiment, args.profile, args.device, store=store, log=log, where=where)
    print(f"{len(records)} runs of {args.experiment} ({args.profile}) in {store.root / args.experiment}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for name in sorted(EXPERIMENTS):
        exp = get_experiment(name)
        sizes = ", ".join(f"{p}: {len(exp.grid(p))} runs" for p in PROFILES)
        print(f"{name}  ({sizes})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m factorlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train an experiment's grid into the run store")
    p_run.add_argument("experiment", choices=sorted(EXPERIMENTS))
    p_run.add_argument("--profile", choices=PROFILES, default="cpu")
    p_run.add_argument("--device", choices=VALID_DEVICES, default="auto")
    p_run.add_argument("--where", action="append", metavar="KEY=VALUE",
                       help="only the runs whose config has KEY equal to VALUE (repeatable), e.g. net=mlp")
    p_run.set_defaults(func=_cmd_run)
    p_list = sub.add_parser("list", help="list the experiments and their grid sizes")
    p_list.set_defaults(func=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 with a one-line message on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, LookupError) as err:  # clear one-line errors, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
