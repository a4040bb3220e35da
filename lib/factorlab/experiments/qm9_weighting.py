r"""Experiment ``qm9_weighting``: the QM9 multitask benchmark's frame on our model and budget,
one hard-shared GINE on the 11 targets of Navon et al. 2022 (:data:`~factorlab.experiments.qm9_common.NASH11`)
trained with a loss weighting of :mod:`factorlab.mtl.weighting`.

Same network, data, split, budget and seeds per profile as ``qm9_hard_sharing`` and
``qm9_soft_sharing`` (``qm9_common.BUDGETS``: one GINE encoder, a head per target, composition
baseline, standardized targets, the first ``n_train`` molecules of the fixed split by molecule
index, standardisation on the training split); only how the 11 per-target standardized MSEs
:math:`L_k` of a step become the loss differs (``weighting``, passed to
:func:`~factorlab.train.qm9_regression.fit_regression`'s ``weighting`` hook):

- ``uncertainty``: Kendall et al. 2018, :math:`\sum_k \tfrac12(e^{-s_k} L_k + s_k)`, the
  log-variances :math:`s_k` trained with the network (their own learning rate ``lr`` in
  ``weighting_kwargs``, same cosine schedule, no weight decay);
- ``famo``: FAMO (Liu et al. 2023), task logits updated once per step by Adam (``lr`` 0.025,
  weight decay ``gamma`` 1e-3: the authors' QM9 settings), no gradient clipping.

**Equal weighting is not in this grid**: the ``lam = "inf"`` runs of ``qm9_soft_sharing`` on
``nash11`` are exactly equal-weight hard sharing on this configuration (same budget, model,
split and seeds; the plain sum of the :math:`L_k`, which :class:`~factorlab.mtl.weighting.EqualWeighting`
reproduces bit for bit, tested in ``test_mtl_weighting``), so the benchmark frame takes its
equal-weight row from there (:func:`equal_weight_configs` names those configs). A config with
``weighting = "equal"`` is still valid and trains by the same hook (the tests use it).

The best epoch is the one with the lowest mean standardized validation MAE over the 11 targets,
as in ``qm9_hard_sharing``. Record: ``qm9_hard_sharing``'s metrics (per target ``test_mae`` in
the target's units, ``test_mae_std``, ``valid_mae``, ``best_epoch``, ``composition_test_mae``)
plus ``mean_valid_mae_std``, ``weighting`` and ``task_weight`` (each target's weight after the
last epoch: :math:`\tfrac12 e^{-s_k}` for uncertainty, the softmax weights :math:`z_k` for FAMO);
``history`` adds ``task_weight`` per epoch.

Grid: :data:`WEIGHTINGS` x :data:`SEEDS` = 2 weightings x 3 seeds = **6 runs** (``cpu`` and
``full``), 2 x 1 = 2 (``smoke``, the 300-molecule fixture, seconds). CPU estimate for ``cpu``:
one hard-shared GINE-64 run of this budget trains in ~65 s on one thread (the
``qm9_hard_sharing`` records of 5119afe); uncertainty weighting costs the same, FAMO one extra
forward pass per step (~1.3x). Measured: the 6 ``cpu`` runs trained in 41-85 s each on one
loaded thread, ~10 minutes in all. ``full`` (one GPU): 6 runs of the ``full`` budget of ``qm9_hard_sharing``; :func:`smoke_variant` runs each of them in
seconds on the fixture at full width (tested).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, NASH11, QM9Config, base_config, train_members, smoke_variant
from factorlab.experiments.registry import Experiment
from factorlab.mtl.weighting import make_weighting
from factorlab.train.qm9_regression import column_labels

NAME = "qm9_weighting"

#: The weightings the grid trains (equal weighting: ``qm9_soft_sharing``'s λ = ∞ runs).
WEIGHTINGS: tuple[str, ...] = ("uncertainty", "famo")
#: Every weighting a config may name.
ALL_WEIGHTINGS: tuple[str, ...] = ("equal", "uncertainty", "famo")
#: The keyword arguments of each weighting (written into the config, so a record names them).
WEIGHTING_KWARGS: dict[str, dict[str, Any]] = {
    "equal": {},
    "uncertainty": {"lr": 0.025},
    "famo": {"lr": 0.025, "gamma": 1e-3, "optimizer": "adam"},
}
#: Seeds per profile (those of ``qm9_hard_sharing`` and ``qm9_soft_sharing``).
SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}
#: The task set (the benchmark's 11 targets).
TASK_SET = "nash11"


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_weighting``: one hard-shared model for :data:`NASH11`, trained with the
    loss weighting ``weighting`` (keyword arguments ``weighting_kwargs``)."""

    sharing: Literal["hard"]
    task_set: Literal["nash11"]
    weighting: Literal["equal", "uncertainty", "famo"]
    weighting_kwargs: dict[str, Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.targets != NASH11:
            raise ValueError(f"task_set 'nash11' is the targets {NASH11}, got {self.targets}")
        make_weighting(self.weighting, len(self.targets), **self.weighting_kwargs)  # ValueError on bad kwargs


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed, one run per weighting of :data:`WEIGHTINGS`."""
    budget = BUDGETS[check_profile(profile)]
    return [Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing="hard", task_set=TASK_SET,
                   targets=list(NASH11), seed=seed, weighting=w, weighting_kwargs=copy.deepcopy(WEIGHTING_KWARGS[w]))
            for seed in SEEDS[profile] for w in WEIGHTINGS]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]




def equal_weight_configs(profile: str) -> list[dict]:
    """The equal-weight reference of this grid: the ``qm9_soft_sharing`` configs with
    ``lam = "inf"`` on ``nash11`` under ``profile`` (one per seed of :data:`SEEDS`)."""
    from factorlab.experiments import qm9_soft_sharing

    out = [c for c in qm9_soft_sharing.grid(check_profile(profile))
           if c["task_set"] == TASK_SET and c["method"] == "l2" and c["lam"] == "inf"]
    return sorted(out, key=lambda c: c["seed"])


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one hard-shared model on ``cfg["targets"]`` with the config's loss weighting; the
    parts of its run record (see the module docstring)."""
    Config.from_dict(cfg)
    targets = list(cfg["targets"])
    holder: dict = {}

    def weighted(net):
        holder["w"] = make_weighting(cfg["weighting"], len(targets), **cfg["weighting_kwargs"])
        return net, {"weighting": holder["w"]}

    tm = train_members(cfg, [targets], device, prepare=weighted)
    parts = tm.parts
    metrics = parts["metrics"]
    labels = column_labels(tm.columns)
    std = tm.data.y_std.index_select(0, torch.as_tensor(tm.columns, device=tm.data.device)).tolist()
    metrics["mean_valid_mae_std"] = sum(metrics["valid_mae"][l] / s for l, s in zip(labels, std)) / len(labels)
    metrics["weighting"] = cfg["weighting"]
    metrics["task_weight"] = dict(zip(labels, (float(w) for w in holder["w"].weights().tolist())))
    parts["model"].update(weighting=repr(holder["w"]))
    return parts


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("weighting", "seed"))
