"""Experiment ``dft_validation``: how exactly PySCF reproduces QM9's level of theory.

Each run is one QM9 molecule: DFT at B3LYP/6-31G(2df,p) as Gaussian defines it (see
:mod:`factorlab.dft`) on QM9's own geometry, against the values QM9 stores. One record per
molecule, so the chapter replays from the run store instead of re-running hours of DFT.

Molecules (:data:`SAMPLE`): for each size of 1 to 9 heavy atoms, the first molecules of that
size in the order of the seeded test split of the full set
(``qm9_split(130831, seed=0)["test"]``), taken from the whole set in ``Index`` order where
the test split has too few (one heavy atom: only CH4, NH3, H2O exist); see
:func:`select_molecules`, which re-derives the list from the full table. The smoke profile
uses methane from the committed fixture.

Budgets: ``smoke`` methane's SCF alone (seconds); ``cpu`` two molecules per size up to 6 heavy
atoms and one of each larger size (15), with the CPKS polarizability, Hessians
(thermochemistry) up to 3 heavy atoms; ``full`` five per size,
Hessians up to 5 heavy atoms. Measured on one thread of a 2-core machine, a Hessian takes
~30 s for methane and ~200 s for ethane; SCF + polarizability ~7 s for methane, ~40 s for
CF4 (5 heavy atoms); see :mod:`factorlab.dft.cost` for the rest.
"""
from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass

import numpy as np

from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "dft_validation"

#: QM9 ``Index`` per heavy-atom count, ``select_molecules(full table, per_size=5, seed=0)``
#: (only three molecules of QM9 have one heavy atom). SMILES in the comments.
SAMPLE: dict[int, list[int]] = {
    1: [1, 2, 3],                             # C N O
    2: [4, 5, 6, 7, 8],                       # C#C C#N C=O CC CO
    3: [17, 11, 9, 10, 12],                   # C1CO1 CC=O CC#C CC#N NC=O
    4: [21, 42, 34, 18, 19],                  # CC(C)C OCCO OCC#N CC(C)=O CC(N)=O
    5: [65, 146, 96, 62, 132],                # CC(N)C#N O=CC1CN1 CC1CCO1 NC(=O)C=O OCCC=O
    6: [270, 334, 437, 696, 764],             # NC(=O)CCO OC(C#N)C#N N=C1CN=CN1 C1C2C3CN2C13 NC1=NC=NN1
    7: [1692, 1110, 1798, 832, 3354],         # CCC(C)C(C)O CC(=N)OC(C)=O CC(=O)C1(C)CC1 CC1=CC(C)=CN1 C1OC2CC=CC12
    8: [20351, 14508, 7145, 18093, 16353],    # C1C=CN2N=CN=C12 OC1(C=O)C2CC1C2 CCOC(=N)OCC
                                              # C1C=CC2CC=CC12 CC1NC(=O)C11CC1
    9: [65277, 131733, 44650, 113608, 58697], # CC1(CC1)N=C1CCO1 OCC1=NNC(=O)N=C1 N=C1CC2C=CC(=O)N12
                                              # OCC1NC1C#CC#C CC(C)C1(CCN1)C#N
}

BUDGETS = {
    "smoke": {"per_size": None, "hessian_max_heavy": 0, "source": "fixture", "polarizability": False},
    # two molecules per size up to 6 heavy atoms, one of 7, 8 and 9 (SCF + CPKS estimated at 11 to
    # 20 minutes each on one thread, :mod:`factorlab.dft.cost`)
    "cpu": {"per_size": {**{k: 2 for k in range(1, 7)}, 7: 1, 8: 1, 9: 1}, "hessian_max_heavy": 3, "source": "qm9",
            "polarizability": True},
    "full": {"per_size": 5, "hessian_max_heavy": 5, "source": "qm9", "polarizability": True},
}
#: Settings shared by every run (part of each config, so a change makes new runs).
SETTINGS = {"xc": "b3lypg", "basis": "6-31G(2df,p) Gaussian (d 1.6/0.4, 6D 7F)", "grid": [75, 302],
            "density_fit": False}


#: The step of the last printed digit of each target in the QM9 release (qm9pack's CSV), in
#: :data:`~factorlab.data.qm9.TARGETS` units: a stored label is the true B3LYP value rounded to
#: this step, so an exact reproduction differs from it by up to half a step. Orbital energies
#: are printed to 1e-4 Hartree (2.7 meV), energies and ZPVE to 1e-6 Hartree, the dipole to
#: 1e-4 D, alpha to 0.01 bohr^3, <R^2> to 1e-4 bohr^2, Cv to 0.001 cal/(mol K), rotational
#: constants to 1e-5 GHz (most rows; some carry more digits).
def _printed_step() -> dict[str, float]:
    from factorlab.data.qm9 import HARTREE_TO_EV

    ha = {"homo": 1e-4, "lumo": 1e-4, "gap": 1e-4, "zpve": 1e-6, "U0": 1e-6, "U": 1e-6, "H": 1e-6, "G": 1e-6,
          "U0_atom": 1e-6, "U_atom": 1e-6, "H_atom": 1e-6, "G_atom": 1e-6}
    step = {k: v * HARTREE_TO_EV for k, v in ha.items()}
    step.update({"mu": 1e-4, "alpha": 1e-2, "r2": 1e-4, "Cv": 1e-3, "A": 1e-5, "B": 1e-5, "C": 1e-5})
    return step


QM9_PRINTED_STEP: dict[str, float] = _printed_step()


def select_molecules(table, per_size: int = 5, seed: int = 0) -> dict[int, list[int]]:
    """``{heavy atoms: [QM9 Index, ...]}`` for 1..9 heavy atoms: the first ``per_size`` of
    each size in the test split's order, topped up from the whole table in Index order."""
    from factorlab.data.qm9 import qm9_split

    heavy = table["Elements"].astype(str).str.count("'[CNOF]'").to_numpy()
    index = table["Index"].to_numpy()
    order = qm9_split(len(table), seed)["test"].numpy()
    out = {}
    for k in range(1, 10):
        picked = [int(index[r]) for r in order if heavy[r] == k][:per_size]
        for r in np.flatnonzero(heavy == k):
            if len(picked) >= per_size:
                break
            if int(index[r]) not in picked:
                picked.append(int(index[r]))
        out[k] = picked
    return out


@dataclass(kw_only=True)
class Config(RunConfig):
    """The DFT of one QM9 molecule (``qm9_index`` in the ``source`` table: ``fixture`` or
    ``qm9``) at the level of theory of :data:`SETTINGS`, with the CPKS polarizability and the
    Hessian (thermochemistry) when asked."""

    experiment: str
    profile: Profile
    qm9_index: int
    heavy_atoms: int
    source: str
    xc: str
    basis: str
    grid: list[int]
    density_fit: bool
    polarizability: bool
    hessian: bool


def configs(profile: str) -> list[Config]:
    """Every run config of this experiment under ``profile``, in a fixed order."""
    budget = BUDGETS[check_profile(profile)]
    if budget["per_size"] is None:
        molecules = [(1, 1)]
    else:
        per = budget["per_size"]
        molecules = [(k, idx) for k in range(1, 10) for idx in SAMPLE[k][:per[k] if isinstance(per, dict) else per]]
    return [Config(experiment=NAME, profile=profile, qm9_index=idx, heavy_atoms=k, source=budget["source"],
                   **copy.deepcopy(SETTINGS), polarizability=budget["polarizability"],
                   hessian=k <= budget["hessian_max_heavy"])
            for k, idx in molecules]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


@functools.lru_cache(maxsize=2)
def _table(source: str):
    from factorlab.data.qm9 import QM9_FIXTURE, find_qm9_source, read_qm9_table

    if source == "fixture":
        return read_qm9_table(QM9_FIXTURE, expect_rows=None)
    return read_qm9_table(find_qm9_source())


def train(cfg: dict, device: str = "cpu") -> dict:
    """Run the DFT of one molecule (``device`` is ignored: PySCF runs on the CPU); returns the
    parts of a run record: ``metrics`` {"dft", "qm9", "error"} per target (TARGETS units),
    ``energy_hartree`` and ``energy_error_mEh`` (against QM9's U0 - ZPVE); ``timing`` seconds
    per step; ``model`` basis size and molecule."""
    from factorlab.dft import compare_to_qm9, compute_properties, qm9_atoms, qm9_reference

    table = _table(cfg["source"])
    rows = np.flatnonzero(table["Index"].to_numpy() == cfg["qm9_index"])
    if rows.size != 1:
        raise LookupError(f"QM9 Index {cfg['qm9_index']} is not in the {cfg['source']} table")
    row = int(rows[0])
    z, pos = qm9_atoms(table, row)
    t0 = time.perf_counter()
    res = compute_properties(z, pos, polarizability=cfg["polarizability"], hessian=cfg["hessian"],
                             density_fit=cfg["density_fit"], grid=tuple(cfg["grid"]), xc=cfg["xc"],
                             budgets={k: math.inf for k in ("scf", "polarizability", "hessian")})
    total = time.perf_counter() - t0
    ref = qm9_reference(table, row)
    e_ref = float(table["InternalEnergy_0K_au"].iloc[row] - table["ZPVE_au"].iloc[row])
    return {
        "metrics": {"dft": res.values, "qm9": ref, "error": compare_to_qm9(res.values, ref),
                    "energy_hartree": res.energy_hartree, "energy_qm9_hartree": e_ref,
                    "energy_error_mEh": (res.energy_hartree - e_ref) * 1e3,
                    "n_imaginary": res.details.get("n_imaginary")},
        "history": {},
        "timing": {**{f"{k}_s": v for k, v in res.timings.items()}, "total_s": total},
        "model": {"n_basis": res.n_basis, "n_orbitals": res.n_orbitals, "n_atoms": int(len(z)),
                  "n_heavy": int(np.count_nonzero(z > 1)), "smiles": str(table["SMILES"].iloc[row]),
                  "level": res.level},
    }


def validation_frame(records: list[dict]):
    """One row per record and target: Index, heavy atoms, target, DFT, QM9, error (pandas)."""
    import pandas as pd

    rows = []
    for rec in records:
        m = rec["metrics"]
        for name, err in m["error"].items():
            rows.append({"qm9_index": rec["config"]["qm9_index"], "heavy_atoms": rec["config"]["heavy_atoms"],
                         "target": name, "dft": m["dft"].get(name), "qm9": m["qm9"].get(name), "error": err})
    return pd.DataFrame(rows)


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("qm9_index", "heavy_atoms"))
