"""How much faster a grid slice trains with ``--executor processes --jobs N`` than one run after
another (the entry point is ``benchmarks/sweep_speedup.py``).

The slice is the first ``runs`` MLP configs of ``mnist_baselines`` under a profile, at
``epochs`` epochs. With the ``cpu`` profile's epochs changed, these configs are not the grid's:
both passes train them into temporary stores, so nothing reaches the run store. The sequential
pass runs here with torch's default threads (what ``--executor local`` gets); the parallel pass
includes starting the workers (``spawn``, importing torch), as a command does. Both wall times
come from one process on one machine; the ratio means something only on an otherwise idle one,
so the load average and the store's live trainings are printed beside it.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from factorlab.experiments import get_experiment, select
from factorlab.experiments.benchmark_cli import BenchmarkCommand
from factorlab.experiments.executors import run_configs

EXPERIMENT = "mnist_baselines"


def slice_configs(profile: str = "cpu", runs: int = 4, epochs: int | None = 1) -> list[dict]:
    """The first ``runs`` MLP configs of ``mnist_baselines``' ``profile`` grid, with ``epochs``
    epochs (None: the grid's). ValueError when the grid has fewer."""
    configs = select(get_experiment(EXPERIMENT).grid(profile), {"net": "mlp"})
    if not 1 <= runs <= len(configs):
        raise ValueError(f"runs must be between 1 and {len(configs)} (the {profile} grid's MLP runs), got {runs}")
    return [{**c, "epochs": c["epochs"] if epochs is None else int(epochs)} for c in configs[:runs]]


def measure(configs: list[dict], jobs: int = 2) -> dict:
    """Train ``configs`` on the CPU one after another, then with ``jobs`` worker processes, each
    into a fresh temporary store. Returns ``{"runs", "jobs", "cores", "sequential_s",
    "parallel_s", "ratio" (parallel / sequential), "speedup" (sequential / parallel),
    "same_metrics", "loadavg_1m"}`` (seconds of wall time)."""
    from factorlab.results import RunStore

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sweep-benchmark-") as tmp:
        t0 = time.perf_counter()
        seq = run_configs(configs, EXPERIMENT, executor="local", device="cpu", store=RunStore(Path(tmp) / "local"))
        sequential_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        par = run_configs(configs, EXPERIMENT, executor="processes", jobs=jobs, device="cpu",
                          store=RunStore(Path(tmp) / "processes"))
        parallel_s = time.perf_counter() - t0
    return {"runs": len(configs), "jobs": jobs, "cores": os.cpu_count(), "sequential_s": sequential_s,
            "parallel_s": parallel_s, "ratio": parallel_s / sequential_s, "speedup": sequential_s / parallel_s,
            "same_metrics": [r["metrics"] for r in seq] == [r["metrics"] for r in par],
            "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def report(result: dict, others: int) -> str:
    """``result`` of :func:`measure` as the printed lines; ``others``: live trainings seen."""
    return "\n".join([
        f"{result['runs']} runs, {result['cores']} cores",
        f"sequential (local):            {result['sequential_s']:8.1f} s",
        f"--executor processes --jobs {result['jobs']}: {result['parallel_s']:8.1f} s",
        f"ratio jobs {result['jobs']} / sequential: {result['ratio']:.3f}  (speed-up {result['speedup']:.3f}x)",
        f"metrics identical: {'yes' if result['same_metrics'] else 'no (torch threads differ between the passes)'}",
        f"load average (1 min) before/after: {result['loadavg_1m'][0]} / {result['loadavg_1m'][1]}; "
        f"other trainings live: {others}" + ("" if others == 0 else "  (not a quiet machine: the ratio is unreliable)"),
    ])


def _options(parser) -> None:
    parser.add_argument("--runs", type=int, default=4, help="MLP runs of the cpu grid (default 4)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")


def _slice(profile: str, device: str, args) -> dict:
    """The configs of ``--quick`` (the smoke profile's 2 MLP runs) or of the cpu grid's slice."""
    configs = slice_configs("smoke", 2, None) if profile == "smoke" else slice_configs("cpu", args.runs, args.epochs)
    return {"configs": configs, "jobs": args.jobs}


def _measure(cfg: dict, device: str) -> dict:
    from factorlab.results import RunStore, live_trainings

    others = len(live_trainings(RunStore().root))  # trainings live before the passes start (any store)
    return {"metrics": measure(cfg["configs"], cfg["jobs"]), "others": others}


#: ``benchmarks/sweep_speedup.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`): no record.
COMMAND = BenchmarkCommand(
    make_config=_slice, measure=_measure, table=lambda rec, cfg: report(rec["metrics"], rec["others"]),
    quick="the smoke profile's 2 MLP runs (seconds; smoke test)", record=False, options=_options,
    errors=(ValueError, RuntimeError),
)
