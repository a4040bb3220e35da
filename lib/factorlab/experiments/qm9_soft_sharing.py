r"""Experiment ``qm9_soft_sharing``: soft parameter sharing on QM9, the whole path from
single-task models to hard sharing, and cross-stitch units beside it.

One GINE task network per target (the single-task stack of ``qm9_single_task``: same model,
budget, data and optimiser per profile, ``qm9_common.BUDGETS``), trained together as one grouped
stack and coupled in one of two ways (``method``):

- ``l2``: the loss adds :math:`\lambda \sum_l \sum_{i<j} \lVert \theta^{(l)}_i -
  \theta^{(l)}_j \rVert^2` over every encoder layer (the heads stay free) to the sum over
  targets of the MSE on standardized targets (:class:`factorlab.mtl.soft.SoftSharingPenalty`:
  the journal's unnormalised form, so ``lam`` compares with its values; ``N`` = the constrained
  parameters of one member is recorded as ``constrained_params`` for the per-parameter reading
  ``lam · N``). The endpoints are exact:
  ``lam = 0`` trains the single-task stack by its own code path (no penalty term at all) and
  ``lam = "inf"`` trains the hard-sharing model of ``qm9_hard_sharing`` (one encoder, a head
  per target). ``lam`` is a float or the string ``"inf"`` (JSON has no infinity).
- ``cross_stitch``: the same stack with a cross-stitch unit after each GINE convolution
  (:class:`factorlab.mtl.cross_stitch.CrossStitchGINE`; ``stitch``: its initial diagonal
  ``alpha`` and whether units are per channel), trained at the same learning rate.

Every member is built right after seeding with the config's seed (as in the single-task
stack), so the task networks *start from the same weights*: their distance is 0 at the start
and measures how far training on different targets pulls them apart, which the penalty resists.
Each member of an ``l2`` stack keeps its own best-validation epoch (a member's predictions
depend on its own weights only; the penalty couples the training, not the predictions); the
hard-shared and cross-stitch networks are one model each and keep the epoch with the lowest
mean standardized validation MAE.

Task sets (``task_set``): ``cv_u``, the journal's pair, heat capacity ``Cv`` and internal energy
at 298.15 K ``U`` (QM9's column ``U``, the quantity the journal names; not ``U_atom``. With the
composition baseline every profile uses, the network learns the same residual for ``U`` and
``U_atom``, since the free-atom references are linear in the atom counts, so the MAE in eV is
the same either way; only the standardized loss depends on the choice, ``U``'s training
standard deviation being that of total energies); and ``nash11``
(:data:`~factorlab.experiments.qm9_common.NASH11`, Navon et al. 2022).

Record: ``metrics`` as ``qm9_single_task``'s (per target ``test_mae`` and ``valid_mae`` in the
target's units, ``test_mae_std``, ``best_epoch``, ``composition_test_mae``) plus the journal's
quantities, the MSE in units of each target's training variance (the loss on z-scored targets)
at the kept weights, per target and summed, on the validation and the test split
(``valid_loss_std``, ``valid_loss_std_total``, ``test_loss_std``, ``test_loss_std_total``),
``mean_valid_mae_std`` (the mean standardized validation MAE, for choosing ``lam``), ``lam``
and ``constrained_params`` (``N``). ``history`` as ``fit_regression``'s plus, per epoch,
``penalty`` (the term added to the loss, mean over the epoch's batches; 0 at ``lam`` 0, at
``inf`` and for cross-stitch), ``data_loss`` (the summed standardized training MSE, mean over
the same batches), ``distance`` (per encoder layer, ``sqrt(mean_{i<j} ‖θ_i − θ_j‖²) /
sqrt(mean_i ‖θ_i‖²)`` after the epoch: :meth:`SoftSharingPenalty.distances`; 0 by
construction at ``inf``) and, for cross-stitch, ``stitch`` (each unit's mean diagonal and
off-diagonal entry).

Grid per profile: ``l2`` at ``lam`` in :data:`LAMBDAS` and one ``cross_stitch`` run, for each
task set and seed (seeds 0-2 for ``cpu`` and ``full``, 0 for ``smoke``; ``smoke`` takes the
lambdas of :data:`SMOKE_LAMBDAS` on the 300-molecule fixture). :func:`smoke_variant` turns any
config into a seconds-long run of the same network (for the ``full`` grid's smoke test).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, NASH11, QM9Config, base_config, train_members, smoke_variant
from factorlab.experiments.registry import Experiment
from factorlab.models.qm9 import build_qm9_model
from factorlab.mtl.cross_stitch import CrossStitchGINE
from factorlab.mtl.soft import SoftSharingPenalty, check_lambda, encoder_layers
from factorlab.train.qm9_regression import column_labels, evaluate_mse_std

NAME = "qm9_soft_sharing"

#: The journal's pair (heat capacity, internal energy at 298.15 K) and the Nash-MTL set.
TASK_SETS: dict[str, list[str]] = {"cv_u": ["Cv", "U"], "nash11": NASH11}
#: The L2 path: both endpoints (0: single-task; "inf": hard sharing) and seven powers of ten.
LAMBDAS: list[float | str] = [0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, "inf"]
#: The smoke grid's lambdas: both endpoints and three penalties (a path to draw in seconds).
SMOKE_LAMBDAS: list[float | str] = [0.0, 1e-2, 1.0, 100.0, "inf"]
#: Seeds per profile.
SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}
#: Cross-stitch units: Misra et al.'s initialisation, one K x K matrix per layer.
STITCH: dict[str, Any] = {"alpha": 0.9, "per_channel": False}


def lam_value(lam: float | str) -> float:
    """A config's ``lam`` as a float (``"inf"`` -> ``math.inf``); ValueError naming the valid
    values otherwise."""
    if lam == "inf":
        return math.inf
    if isinstance(lam, str) or isinstance(lam, bool):
        raise ValueError(f"lam must be a number >= 0 or the string 'inf' (hard sharing), got {lam!r}")
    value = check_lambda(lam)
    if math.isinf(value):
        raise ValueError("write lam = inf as the string 'inf' (JSON has no infinity)")
    return value


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_soft_sharing``: one task network per target of ``task_set``, coupled by
    ``method`` (``l2`` with ``lam``; ``cross_stitch`` with ``stitch``; the other None)."""

    sharing: Literal["soft"]
    method: Literal["l2", "cross_stitch"]
    lam: float | Literal["inf"] | None
    stitch: dict[str, Any] | None
    task_set: Literal["cv_u", "nash11"]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method == "l2":
            if self.lam is None or self.stitch is not None:
                raise ValueError("an l2 config needs lam (a number >= 0 or 'inf') and stitch=None")
            lam_value(self.lam)
        elif self.lam is not None or not isinstance(self.stitch, dict) or set(self.stitch) != set(STITCH):
            raise ValueError(f"a cross_stitch config needs lam=None and stitch with the keys {sorted(STITCH)}")
        if self.targets != TASK_SETS[self.task_set]:
            raise ValueError(f"task_set {self.task_set!r} is the targets {TASK_SETS[self.task_set]}, "
                             f"got {self.targets}")


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed and task set, the ``l2`` path then one
    ``cross_stitch`` run."""
    budget = BUDGETS[check_profile(profile)]
    lams = SMOKE_LAMBDAS if profile == "smoke" else LAMBDAS
    out = []
    for seed in SEEDS[profile]:
        for task_set, targets in TASK_SETS.items():
            base = dict(**base_config(NAME, profile, "gine", budget["gine"]), sharing="soft", task_set=task_set,
                        targets=list(targets), seed=seed)
            out += [Config(**base, method="l2", lam=lam, stitch=None) for lam in lams]
            out.append(Config(**base, method="cross_stitch", lam=None, stitch=copy.deepcopy(STITCH)))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]




def constrained_params(cfg: dict) -> int:
    """``N``: the parameters of one member's encoder that the penalty constrains (the
    normalisation of ``lam``), from a fresh two-member stack (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        pair = build_qm9_model(cfg["model"], 1, **{**cfg["model_kwargs"], "groups": 2})
    return SoftSharingPenalty(pair, 0.0).constrained_params


def _l2(lam: float):
    """``prepare`` of an ``l2`` stack: the penalty (none at ``lam`` 0) and the distance probe."""
    def prepare(stack):
        pen = SoftSharingPenalty(stack, lam)
        extra = {"probes": {"distance": pen.distances}}
        if lam > 0:
            extra["penalty"] = pen
        return stack, extra
    return prepare


def _cross_stitch(stitch: dict):
    """``prepare`` of a cross-stitch network: the units around the stack, the distance probe
    (on the stack's encoder weights) and the units' summary."""
    def prepare(stack):
        net = CrossStitchGINE(stack, **stitch)
        return net, {"probes": {"distance": SoftSharingPenalty(stack, 0.0).distances, "stitch": net.summary}}
    return prepare


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one config (see the module docstring); the parts of its run record."""
    Config.from_dict(cfg)  # checks method, lam, task set
    targets = list(cfg["targets"])
    singles = [[t] for t in targets]
    if cfg["method"] == "cross_stitch":
        tm = train_members(cfg, singles, device, prepare=_cross_stitch(cfg["stitch"]))
    elif math.isinf(lam_value(cfg["lam"])):
        tm = train_members(cfg, [targets], device)  # hard sharing: qm9_hard_sharing's own path
    else:
        tm = train_members(cfg, singles, device, prepare=_l2(lam_value(cfg["lam"])))
    parts = tm.parts
    hist, metrics = parts["history"], parts["metrics"]
    epochs = len(hist["epoch"])
    labels = column_labels(tm.columns)
    if "penalty" not in hist:  # no penalty term was trained
        hist["penalty"] = [0.0] * epochs
        hist["data_loss"] = [sum(hist["train_mse"][l][e] for l in labels) for e in range(epochs)]
    if "distance" not in hist:  # hard sharing: one tied encoder
        hist["distance"] = {l: [0.0] * epochs for l in encoder_layers(tm.model)}
    for split in ("valid", "test"):
        mse = evaluate_mse_std(tm.model, tm.data, tm.split[split], tm.columns, baseline=tm.baseline).tolist()
        metrics[f"{split}_loss_std"] = dict(zip(labels, mse))
        metrics[f"{split}_loss_std_total"] = sum(mse)
    std = tm.data.y_std.index_select(0, torch.as_tensor(tm.columns, device=tm.data.device)).tolist()
    metrics["mean_valid_mae_std"] = sum(metrics["valid_mae"][l] / s for l, s in zip(labels, std)) / len(labels)
    metrics["lam"] = cfg["lam"]
    metrics["constrained_params"] = constrained_params(cfg)
    stitch_params = sum(p.numel() for p in tm.model.stitches.parameters()) if cfg["method"] == "cross_stitch" else 0
    parts["model"].update(method=cfg["method"], penalty_layers=list(hist["distance"]), stitch_params=stitch_params)
    return parts


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("method", "task_set", "lam", "seed"))
