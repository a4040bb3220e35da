"""Experiment ``qm9_dataset``: the statistics of QM9 that the book reports, as a run record.

Nothing is trained: the "run" reads the processed dataset (``smoke``: the 300-molecule
fixture; ``cpu`` and ``full``: all 130,831 molecules) and records

- counts: molecules, atoms, heavy atoms per molecule, molecules whose graph came from the
  coordinates (``from_xyz``), and the split sizes;
- the data layer's checks: methane's U0 atomization energy (eV), the largest
  |gap - (LUMO - HOMO)| (eV);
- per target (training split, target units): mean, standard deviation, min, max;
- the Pearson correlation matrix of the 19 targets over the training split;
- H - U over the training split (eV), beside kT at 298.15 K: the two differ by exactly
  kT (pV = RT per mole of ideal gas), so predicting one from the other is trivial.

Recording them keeps the book's numbers replayable without the 50 MB processed file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from factorlab.data.qm9 import TARGET_NAMES, load_qm9, target_index
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "qm9_dataset"

#: Boltzmann constant in eV/K (CODATA 2018, exact) and QM9's temperature (K).
K_B_EV = 8.617333262e-5
T_QM9 = 298.15


@dataclass(kw_only=True)
class Config(RunConfig):
    """The statistics of one dataset (``fixture`` or ``full``) under the split of ``split_seed``."""

    experiment: str
    profile: Profile
    data: Literal["fixture", "full"]
    split_seed: int


def configs(profile: str) -> list[Config]:
    """One config: the fixture for ``smoke``, the full dataset otherwise."""
    return [Config(experiment=NAME, profile=check_profile(profile), data="fixture" if profile == "smoke" else "full",
                   split_seed=0)]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def _heavy_atoms(data) -> torch.Tensor:
    """Heavy (non-hydrogen) atoms per molecule, int64 [N]."""
    heavy = (data.x[:, 0] != 0).long()
    csum = torch.cat([torch.zeros(1, dtype=torch.long), heavy.cumsum(0)])
    return csum[data.atom_ptr[1:]] - csum[data.atom_ptr[:-1]]


def train(cfg: dict, device: str = "auto") -> dict:
    """Compute the statistics (on the CPU; ``device`` is ignored): the parts of a run record."""
    data = load_qm9("cpu", fixture=cfg["data"] == "fixture", seed=cfg["split_seed"])
    y = data.y.double()
    tr = data.split["train"]
    ytr = y[tr]
    heavy = _heavy_atoms(data)
    idx = data.index.tolist()
    methane = idx.index(1) if 1 in idx else None
    gap_err = (y[:, target_index("gap")] - (y[:, target_index("lumo")] - y[:, target_index("homo")])).abs().max()
    h_minus_u = ytr[:, target_index("H")] - ytr[:, target_index("U")]
    corr = torch.corrcoef(ytr.T)
    per_target = {name: {"mean": float(ytr[:, k].mean()), "std": float(ytr[:, k].std()),
                         "min": float(ytr[:, k].min()), "max": float(ytr[:, k].max())}
                  for k, name in enumerate(TARGET_NAMES)}
    counts = torch.bincount(heavy, minlength=10)
    metrics = {
        "n_molecules": data.num_molecules, "n_atoms": int(data.x.shape[0]),
        "split": {k: int(v.numel()) for k, v in data.split.items()},
        "n_from_xyz": int(data.from_xyz.sum()),
        "heavy_atom_counts": {str(k): int(c) for k, c in enumerate(counts.tolist())},
        "methane_U0_atom_eV": None if methane is None else float(y[methane, target_index("U0_atom")]),
        "max_abs_gap_minus_lumo_homo_eV": float(gap_err),
        "targets": per_target,
        "corr_train": [[float(v) for v in row] for row in corr.tolist()],
        "target_names": list(TARGET_NAMES),
        "H_minus_U_mean_eV": float(h_minus_u.mean()), "H_minus_U_std_eV": float(h_minus_u.std()),
        "kT_eV": K_B_EV * T_QM9,
    }
    return {"metrics": metrics, "history": {}, "timing": {}, "model": {}}


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("data",))
