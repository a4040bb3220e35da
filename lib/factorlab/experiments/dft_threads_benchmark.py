"""Benchmark ``dft_threads_benchmark``: the DFT's SCF on one and on two CPU threads, same
molecules, one process. The entry point is ``benchmarks/dft_threads.py`` (prints the table);
the record comes from ``run_experiment("dft_threads_benchmark", profile)`` like any run.

The chapter "DFT or network?" times every DFT on one thread (the records of
``dft_validation``); the demo issue asks for times on the machine's two cores. This measures
the factor between the two on a few molecules: the SCF at QM9's level of theory on QM9's own
geometry (:func:`factorlab.dft.compute_properties` with ``threads`` 1 and 2, no polarizability
or Hessian), once per thread count, alternating which goes first from one molecule to the next,
and checks that both give the same energy. Run it on an otherwise idle machine: another job on
the second core makes the two-thread time meaningless.

Profiles (:data:`MOLECULES`): ``smoke`` methane from the committed fixture (seconds); ``cpu``
three QM9 molecules of 3, 5 and 6 heavy atoms (about 4 minutes on two cores); ``full`` those
and one each of 7, 8 and 9 heavy atoms (the first of each size in
:data:`~factorlab.experiments.dft_validation.SAMPLE`; tens of minutes). PySCF runs on the CPU
whatever the device.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np

from factorlab.experiments.benchmark_cli import BenchmarkCommand
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.dft_validation import SETTINGS
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "dft_threads_benchmark"
#: QM9 Index of the molecules per profile (``smoke``: methane from the committed fixture).
MOLECULES = {"smoke": [1], "cpu": [11, 146, 270], "full": [11, 146, 270, 1692, 20351, 65277]}
THREADS = (1, 2)


@dataclass(kw_only=True)
class Config(RunConfig):
    """One benchmark run: the SCF of each molecule (``qm9_index`` in the ``source`` table) at
    each of ``threads``, at the level of theory of
    :data:`~factorlab.experiments.dft_validation.SETTINGS`."""

    experiment: str
    profile: Profile
    qm9_index: list[int]
    threads: list[int]
    source: str
    xc: str
    basis: str
    grid: list[int]
    density_fit: bool


def make_config(profile: str) -> Config:
    """The config of ``profile``."""
    return Config(experiment=NAME, profile=check_profile(profile), qm9_index=list(MOLECULES[profile]),
                  threads=list(THREADS), source="fixture" if profile == "smoke" else "qm9", **copy.deepcopy(SETTINGS))


def config(profile: str) -> dict:
    """:func:`make_config` as the dict the run store hashes."""
    return make_config(profile).to_dict()


def configs(profile: str) -> list[Config]:
    """The grid: one run per profile."""
    return [make_config(profile)]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def run(cfg: dict, log=print) -> dict:
    """Time the SCF of each molecule at each thread count; the parts of a run record."""
    from factorlab.dft import compute_properties, qm9_atoms
    from factorlab.experiments.dft_validation import _table

    table = _table(cfg["source"])
    rows = []
    for k, idx in enumerate(cfg["qm9_index"]):
        row = int(np.flatnonzero(table["Index"].to_numpy() == idx)[0])
        z, pos = qm9_atoms(table, row)
        order = cfg["threads"] if k % 2 == 0 else cfg["threads"][::-1]
        out = {"qm9_index": idx, "smiles": str(table["SMILES"].iloc[row]), "heavy_atoms": int(np.count_nonzero(z > 1))}
        for t in order:
            t0 = time.perf_counter()
            res = compute_properties(z, pos, polarizability=False, hessian=False, threads=t,
                                     density_fit=cfg["density_fit"], grid=tuple(cfg["grid"]), xc=cfg["xc"],
                                     budgets={"scf": math.inf})
            out[f"scf_{t}_s"] = res.timings["scf"]
            out[f"wall_{t}_s"] = time.perf_counter() - t0
            out[f"energy_{t}"] = res.energy_hartree
            out["n_basis"] = res.n_basis
            log(f"  Index {idx}: {t} thread(s) {res.timings['scf']:.1f} s")
        t1, t2 = cfg["threads"]
        out["speedup"] = out[f"scf_{t1}_s"] / out[f"scf_{t2}_s"]
        out["energy_diff_hartree"] = abs(out[f"energy_{t1}"] - out[f"energy_{t2}"])
        rows.append(out)
    speedups = [r["speedup"] for r in rows]
    return {"metrics": {"rows": rows, "speedup_min": min(speedups), "speedup_max": max(speedups),
                        "max_energy_diff_hartree": max(r["energy_diff_hartree"] for r in rows)},
            "timing": {"threads": list(cfg["threads"])}}


def train(cfg: dict, device: str = "cpu") -> dict:
    """Measure ``cfg`` (on the CPU: ``device`` is not used)."""
    return run(cfg)


def report(metrics: dict) -> str:
    """The printed table: SCF seconds per thread count and their ratio, per molecule."""
    lines = [f"{'Index':>6s} {'SMILES':14s} {'heavy':>5s} {'basis':>5s} {'1 thread s':>10s} {'2 threads s':>11s} "
             f"{'1/2':>5s}"]
    for r in metrics["rows"]:
        lines.append(f"{r['qm9_index']:6d} {r['smiles']:14s} {r['heavy_atoms']:5d} {r['n_basis']:5d} "
                     f"{r['scf_1_s']:10.1f} {r['scf_2_s']:11.1f} {r['speedup']:5.2f}")
    lines.append(f"largest energy difference between thread counts: {metrics['max_energy_diff_hartree']:.1e} Eh")
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "benchmark", Config, configs, train, label_keys=("qm9_index", "threads"))

#: ``benchmarks/dft_threads.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`): on the CPU only.
COMMAND = BenchmarkCommand(
    make_config=lambda profile, device, args: make_config(profile),
    header=lambda cfg, device: (f"SCF at QM9's level of theory on {', '.join(map(str, cfg.threads))} threads, "
                                f"profile {cfg.profile}"),
    measure=lambda cfg, device: run(cfg.to_dict()),
    table=lambda rec, cfg: report(rec["metrics"]),
    quick="methane from the committed fixture (smoke test)",
)
