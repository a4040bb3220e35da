"""Command line: ``python -m factorlab run <experiment> --profile {smoke,cpu,full} --device
{auto,cpu,cuda}`` trains (or measures) every missing run of a registered experiment or benchmark
into the run store, without Jupyter; ``python -m factorlab list`` lists everything that writes
a record, its kind and how many runs each profile has;
``python -m factorlab predict SMILES --method dft|net|both [--network single-task|hard-sharing|grouped]
[--train-size budget|full]`` prints a molecule's QM9 properties by DFT (see :mod:`factorlab.dft`)
and/or by a saved network (``qm9_demo_model``; ``qm9_demo_full`` with ``--train-size full``),
side by side."""
from __future__ import annotations

import argparse
import sys
import time

from factorlab.experiments import EXPERIMENTS, KINDS, PROFILES, get, names
from factorlab.train.device import VALID_DEVICES


def _cmd_run(args: argparse.Namespace) -> int:
    from factorlab.results import RunStore, config_hash
    from factorlab.train.allocator import retain_freed_memory

    retain_freed_memory()  # this process trains: the C allocator keeps freed memory (recorded with each timing)
    store = RunStore()
    t0 = time.perf_counter()
    exp = get(args.experiment)

    def log(i: int, n: int, cfg: dict, cached: bool) -> None:
        what = "cached " if cached else "training" if exp.kind == "experiment" else "measuring"
        label = exp.label(cfg)
        print(f"[{i + 1}/{n}] {what} {config_hash(cfg)} {label}  ({time.perf_counter() - t0:.0f} s)", flush=True)

    where = {}
    for item in args.where or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--where expects KEY=VALUE, got {item!r}")
        where[key] = value
    from factorlab.experiments.executors import run_grid

    records = run_grid(args.experiment, args.profile, args.device, executor=args.executor, jobs=args.jobs,
                       address=args.address, store=store, log=log, where=where)
    print(f"{len(records)} runs of {args.experiment} ({args.profile}) in {store.root / args.experiment}")
    return 0


def _grid_size(exp, profile: str) -> str:
    """The number of runs of ``exp``'s grid under ``profile``, or ``needs records`` for a grid
    chosen from records the store lacks."""
    from factorlab.experiments.registry import GridNeedsRecordsError

    try:
        return str(len(exp.grid(profile)))
    except GridNeedsRecordsError:
        return "needs records"


def _cmd_list(args: argparse.Namespace) -> int:
    for name in names(args.kind):
        if args.names:
            print(name)
            continue
        exp = get(name)
        sizes = ", ".join(f"{p}: {_grid_size(exp, p)}" for p in PROFILES)
        print(f"{name:24s} {exp.kind:10s} runs per profile: {sizes}")
    return 0


#: ``predict --network`` choices -> the ``sharing`` of the saved network (``qm9_demo_model``).
NETWORKS = {"single-task": "none", "hard-sharing": "hard", "grouped": "grouped"}


def _cmd_predict(args: argparse.Namespace) -> int:
    from factorlab.predict import predict_main

    def tri(v: str):
        return {"auto": "auto", "yes": True, "no": False}[v]

    return predict_main(args.smiles, method=args.method, qm9=args.qm9, optimize=not args.no_optimize,
                        polarizability=tri(args.polarizability), hessian=tri(args.hessian), threads=args.threads,
                        max_heavy_atoms=args.max_heavy_atoms, force=args.force, density_fit=args.density_fit,
                        network=NETWORKS[args.network], say=lambda m: print(m, file=sys.stderr, flush=True), out=print,
                        train_size=args.train_size)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m factorlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train an experiment's (or measure a benchmark's) grid into the run store")
    p_run.add_argument("experiment", choices=sorted(EXPERIMENTS))
    p_run.add_argument("--profile", choices=PROFILES, default="cpu")
    p_run.add_argument("--device", choices=VALID_DEVICES, default="auto")
    p_run.add_argument("--where", action="append", metavar="KEY=VALUE",
                       help="only the runs whose config has KEY equal to VALUE (repeatable), e.g. net=mlp")
    p_run.add_argument("--executor", choices=("local", "processes", "ray"), default="local",
                       help="local: one run after another here; processes: --jobs worker processes here; "
                            "ray: Ray tasks on a local Ray or the cluster at --address")
    p_run.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="runs at a time (processes: default the cores; ray: the cluster's CPUs); "
                            "each gets cores/N torch threads")
    p_run.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="with --executor ray: the cluster's head (`ray start --head` prints it), or auto")
    p_run.set_defaults(func=_cmd_run)
    p_list = sub.add_parser("list", help="list everything that writes a record: kind and runs per profile")
    p_list.add_argument("--kind", choices=KINDS, default=None, help="only experiments or only benchmarks")
    p_list.add_argument("--names", action="store_true", help="the names alone, one a line (for scripts)")
    p_list.set_defaults(func=_cmd_list)
    p_pred = sub.add_parser("predict", help="a molecule's QM9 properties by DFT (QM9's level of theory) and/or the trained network")
    p_pred.add_argument("smiles", help="the molecule (H, C, N, O, F; neutral; at most --max-heavy-atoms)")
    p_pred.add_argument("--method", choices=("dft", "net", "both"), default="dft")
    p_pred.add_argument("--network", choices=tuple(NETWORKS), default="single-task",
                        help="which saved network: 19 single-task GINEs (the more accurate), one hard-shared "
                             "multitask GINE, or the networks of the best task grouping (the 8 targets outside "
                             "the 11 it groups from single-task GINEs)")
    p_pred.add_argument("--train-size", choices=("budget", "full"), default="budget",
                        help="budget: the network trained on the QM9 chapters' training subset (qm9_demo_model); "
                             "full: the same network trained on the whole training split (qm9_demo_full; "
                             "single-task and hard-sharing only)")
    p_pred.add_argument("--qm9", metavar="PATH", default=None,
                        help="QM9 table to look the molecule up in (default: the full set if found; 'none': no lookup)")
    p_pred.add_argument("--no-optimize", action="store_true",
                        help="outside QM9: use the RDKit/MMFF geometry without the B3LYP/6-31G* optimisation")
    p_pred.add_argument("--polarizability", choices=("auto", "yes", "no"), default="auto")
    p_pred.add_argument("--hessian", choices=("auto", "yes", "no"), default="auto",
                        help="ZPVE, U0, U, H, G, Cv: 'auto' runs it only when its estimated cost is small")
    p_pred.add_argument("--threads", type=int, default=None, help="OpenMP threads for PySCF")
    p_pred.add_argument("--max-heavy-atoms", type=int, default=9)
    p_pred.add_argument("--density-fit", action="store_true", help="density-fitted SCF (faster, ~1e-5 Eh/atom)")
    p_pred.add_argument("--force", action="store_true", help="run the SCF even above its cost budget")
    p_pred.set_defaults(func=_cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 with a one-line message on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, LookupError) as err:  # clear one-line errors, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
