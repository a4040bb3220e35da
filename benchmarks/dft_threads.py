"""Benchmark: the DFT's SCF on one and on two CPU threads, same molecules, one process.

    python benchmarks/dft_threads.py                  # three QM9 molecules (3, 5, 6 heavy atoms), prints the table
    python benchmarks/dft_threads.py --record         # also stores it as a run record for the book
    python benchmarks/dft_threads.py --quick          # methane from the fixture, seconds (smoke)

The chapter "DFT or network?" times every DFT on one thread (the records of
``dft_validation``); the demo issue asks for times on the machine's two cores. This measures
the factor between the two on a few molecules: the SCF at QM9's level of theory on QM9's own
geometry (:func:`factorlab.dft.compute_properties` with ``threads`` 1 and 2, no polarizability
or Hessian), once per thread count, alternating which goes first from one molecule to the next,
and checks that both give the same energy. Run it on an otherwise idle machine: another job on
the second core makes the two-thread time meaningless.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

EXPERIMENT = "dft_threads_benchmark"
#: QM9 Index of the molecules per profile (``smoke``: methane from the committed fixture).
MOLECULES = {"smoke": [1], "cpu": [11, 146, 270]}
THREADS = (1, 2)


def config(profile: str) -> dict:
    """The run-store config of one benchmark run."""
    from factorlab.experiments.dft_validation import SETTINGS

    return {"experiment": EXPERIMENT, "profile": profile, "qm9_index": list(MOLECULES[profile]),
            "threads": list(THREADS), "source": "fixture" if profile == "smoke" else "qm9", **SETTINGS}


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


def report(metrics: dict) -> str:
    """The printed table: SCF seconds per thread count and their ratio, per molecule."""
    lines = [f"{'Index':>6s} {'SMILES':14s} {'heavy':>5s} {'basis':>5s} {'1 thread s':>10s} {'2 threads s':>11s} "
             f"{'1/2':>5s}"]
    for r in metrics["rows"]:
        lines.append(f"{r['qm9_index']:6d} {r['smiles']:14s} {r['heavy_atoms']:5d} {r['n_basis']:5d} "
                     f"{r['scf_1_s']:10.1f} {r['scf_2_s']:11.1f} {r['speedup']:5.2f}")
    lines.append(f"largest energy difference between thread counts: {metrics['max_energy_diff_hartree']:.1e} Eh")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="methane from the committed fixture (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help=f"store the result as a run record (experiment {EXPERIMENT}), replacing an old one")
    args = parser.parse_args(argv)
    profile = "smoke" if args.quick else "cpu"
    cfg = config(profile)
    print(f"SCF at QM9's level of theory on {', '.join(map(str, cfg['threads']))} threads, profile {profile}", flush=True)
    if args.record:
        from factorlab.results import RunStore

        store = RunStore()
        store.path(cfg).unlink(missing_ok=True)  # a new measurement replaces the old one
        metrics = store.run(cfg, run, device="cpu")["metrics"]
        print(f"recorded: {store.path(cfg)}")
    else:
        metrics = run(cfg)["metrics"]
    print(report(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
