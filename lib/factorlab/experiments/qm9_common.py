"""What the QM9 experiments share: the budgets of each profile, the task sets, and one
function that trains a config (single-task members or one multitask model) into the parts
of a run record. ``qm9_single_task`` and ``qm9_hard_sharing`` use the *same* budget and
hyper-parameters per profile, so that their errors compare (Δm)."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from factorlab.data.qm9 import TARGET_NAMES, load_qm9, target_index
from factorlab.experiments.config import Profile, RunConfig
from factorlab.models import count_params
from factorlab.models.qm9_baseline import CompositionBaseline, baseline_mae
from factorlab.models.qm9_saved import build_member_models, stack_or_single
from factorlab.train import resolve_device
from factorlab.train.qm9_regression import fit_regression

#: All 19 targets, in PyG's order.
ALL_TARGETS: list[str] = list(TARGET_NAMES)
#: The 12 targets most QM9 papers report (MoleculeNet's set; U0, U, H, G as total energies).
STANDARD_12: list[str] = ["mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv"]
TASK_SETS: dict[str, list[str]] = {"all19": ALL_TARGETS, "std12": STANDARD_12}
#: The 11 targets of the QM9 multitask benchmark of Navon et al. 2022 (Nash-MTL) and its
#: successors, in their order: PyG columns 0-3, 5, 6, 12-15, 11 (no gap; the four energies as
#: atomization energies).
NASH11: list[str] = ["mu", "alpha", "homo", "lumo", "r2", "zpve", "U0_atom", "U_atom", "H_atom", "G_atom", "Cv"]
#: Every named task set: :data:`TASK_SETS` (the hard-sharing grid's, which iterates it) and
#: ``nash11``.
NAMED_TASK_SETS: dict[str, list[str]] = {**TASK_SETS, "nash11": NASH11}


def task_set(name: str) -> list[str]:
    """The targets of the named task set ``name`` (a copy); ValueError naming the valid names."""
    if name not in NAMED_TASK_SETS:
        raise ValueError(f"unknown QM9 task set {name!r}: choose one of {', '.join(NAMED_TASK_SETS)}")
    return list(NAMED_TASK_SETS[name])

#: GINE settings every profile shares (written into each config, so a record names them).
_GINE_FIXED = {"readout": "sum", "batch_norm": True, "pool_norm": True}

#: Per profile: data (``fixture`` = the 300-molecule test fixture), training/validation/test
#: subset sizes (None = the whole split), epochs, optimiser, GINE size, seeds, and how many
#: single-task models train together as one stack (one run record per stack).
BUDGETS: dict[str, dict] = {
    "smoke": {"data": "fixture", "n_train": None, "n_valid": None, "n_test": None, "epochs": 2,
              "batch_size": 32, "lr": 1e-3, "weight_decay": 0.0, "schedule": "cosine",
              "gine": {"hidden": 16, "layers": 2, "head_hidden": 8, **_GINE_FIXED}, "seeds": [0], "stack": 19},
    # sized on one CPU thread (GINE-64, batch 64: ~3.2 s per 10,000 molecules): see the experiments
    "cpu": {"data": "full", "n_train": 20000, "n_valid": 2000, "n_test": None, "epochs": 10,
            "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0, "schedule": "cosine",
            "gine": {"hidden": 64, "layers": 4, "head_hidden": 32, **_GINE_FIXED}, "seeds": [0, 1, 2], "stack": 19},
    # paper-scale, for one GPU (estimated, not yet measured on one: see qm9_single_task)
    "full": {"data": "full", "n_train": None, "n_valid": None, "n_test": None, "epochs": 40,
             "batch_size": 256, "lr": 1e-3, "weight_decay": 0.0, "schedule": "cosine",
             "gine": {"hidden": 128, "layers": 4, "head_hidden": 64, **_GINE_FIXED}, "seeds": [0, 1, 2], "stack": 19},
}

#: The 3D reference (SchNet) per profile: targets, size and training; None = not run.
SCHNET_BUDGETS: dict[str, dict | None] = {
    "smoke": {"targets": ["mu", "U0_atom"], "epochs": 1, "batch_size": 32, "lr": 5e-4, "seeds": [0],
              "model_kwargs": {"hidden": 16, "filters": 16, "interactions": 1, "gaussians": 10, "cutoff": 5.0,
                               "head_hidden": 8, "pool_norm": True}},
    "cpu": None,
    "full": {"targets": ["mu", "gap", "U0_atom"], "epochs": 30, "batch_size": 256, "lr": 5e-4, "seeds": [0],
             "model_kwargs": {"hidden": 128, "filters": 128, "interactions": 6, "gaussians": 50, "cutoff": 10.0,
                              "head_hidden": 64, "pool_norm": True}},
}


@dataclass(kw_only=True)
class QM9Config(RunConfig):
    """A QM9 training run config: the model and its keyword arguments, the data (``fixture``
    or ``full``) and the subset sizes of each split (None = the whole split), the training
    settings, the target baseline, how the targets share a network (``none``: one model per
    target; ``hard``: one shared encoder), the targets and the seed. Shared by
    ``qm9_single_task`` and ``qm9_demo_model``; ``qm9_hard_sharing`` adds ``task_set``."""

    experiment: str
    profile: Profile
    model: Literal["gine", "schnet"]
    model_kwargs: dict[str, Any]
    data: Literal["fixture", "full"]
    n_train: int | None
    n_valid: int | None
    n_test: int | None
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    schedule: str
    baseline: Literal["none", "composition"]
    sharing: Literal["none", "hard"]
    targets: list[str]
    seed: int


def base_config(name: str, profile: str, model: str, model_kwargs: dict, **training) -> dict:
    """The fields every QM9 run config has, from the profile's budget (``training`` overrides)."""
    b = BUDGETS[profile]
    cfg = {"experiment": name, "profile": profile, "model": model, "model_kwargs": copy.deepcopy(model_kwargs),
           "data": b["data"], "n_train": b["n_train"], "n_valid": b["n_valid"], "n_test": b["n_test"],
           "epochs": b["epochs"], "batch_size": b["batch_size"], "lr": b["lr"], "weight_decay": b["weight_decay"],
           "schedule": b["schedule"], "baseline": "composition"}
    cfg.update(training)
    return cfg


def _subset(ids: torch.Tensor, n: int | None, what: str) -> torch.Tensor:
    """The first ``n`` rows of a (randomly ordered) split, all when ``n`` is None."""
    if n is None:
        return ids
    if n > ids.numel():
        raise ValueError(f"{what}={n} exceeds the {ids.numel()} molecules of that split")
    return ids[:n]


#: Target baselines a config may name (``cfg["baseline"]``): see :mod:`factorlab.models.qm9_baseline`.
BASELINES = ("none", "composition")


def _baseline(cfg: dict, data, train_ids: torch.Tensor) -> CompositionBaseline | None:
    """The composition baseline fit on ``train_ids`` when ``cfg["baseline"]`` asks for it."""
    name = cfg.get("baseline", "none")
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}")
    return CompositionBaseline.fit(data, train_ids) if name == "composition" else None


def member_split(cfg: dict, data) -> dict[str, torch.Tensor]:
    """The molecules a run uses, ``{"train", "valid", "test"}`` -> row ids (int64, ``(n,)``):
    the first ``cfg["n_<split>"]`` of each of ``data``'s splits (all when None)."""
    return {k: _subset(data.split[k], cfg[f"n_{k}"], f"n_{k}") for k in ("train", "valid", "test")}


def join_member_metrics(parts: list[dict], labels: list[str]) -> dict:
    """The ``metrics`` of one network from the record parts of its separately trained pieces:
    every per-target dict joined, ``mean_test_mae_std`` (unitless, standardized) recomputed
    over ``labels`` when the pieces report ``test_mae_std``."""
    metrics: dict = {}
    for p in parts:
        for key, value in p["metrics"].items():
            if isinstance(value, dict):
                metrics.setdefault(key, {}).update(value)
    if "test_mae_std" in metrics:
        metrics["mean_test_mae_std"] = sum(metrics["test_mae_std"][t] for t in labels) / len(labels)
    return metrics


@dataclass
class TrainedMembers:
    """What :func:`train_members` leaves: the trained ``model`` (each member at its best
    validation epoch), the data it saw, the split used, the baseline, the output ``columns``
    (target index per output) and ``parts`` (the run record's parts)."""

    model: torch.nn.Module
    members: list[list[str]]
    data: object
    split: dict[str, torch.Tensor]
    baseline: CompositionBaseline | None
    columns: list[int]
    parts: dict


def train_members(cfg: dict, members: list[list[str]], device: str = "auto",
                  prepare: Callable[[torch.nn.Module], tuple[torch.nn.Module, dict]] | None = None) -> TrainedMembers:
    """Train independent models, member ``k`` predicting targets ``members[k]``, as one stack
    (a grouped network when possible); see :class:`TrainedMembers`.

    Each member is built right after ``seed_everything(cfg["seed"])``, so a member starts from
    the same weights whether it trains alone or in a stack.

    ``prepare(stack)``, when given, receives the untrained stack (on the device) and returns
    the network to train (the stack itself, or a module wrapping it, e.g. with cross-stitch
    units) and extra keyword arguments of :func:`fit_regression` (``penalty``, ``probes``):
    how soft sharing couples the members. Without it, nothing differs.
    """
    dev = resolve_device(device)
    data = load_qm9(dev, fixture=cfg["data"] == "fixture")
    split = member_split(cfg, data)
    sizes = {len(m) for m in members}
    if len(sizes) != 1:
        raise ValueError(f"every member must predict the same number of targets, got {members}")
    models = build_member_models(cfg, members, seed=cfg["seed"])
    model = stack_or_single(models)
    extra: dict = {}
    if prepare is not None:
        model, extra = prepare(model.to(dev))
    columns = [target_index(t) for m in members for t in m]
    baseline = _baseline(cfg, data, split["train"])
    fit = fit_regression(model, data, columns, train_ids=split["train"], valid_ids=split["valid"],
                         test_ids=split["test"], epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                         weight_decay=cfg["weight_decay"], schedule=cfg["schedule"], seed=cfg["seed"],
                         baseline=baseline, **extra)
    if baseline is not None:  # what the network adds over the linear composition model
        labels = [t for m in members for t in m]
        fit.metrics["composition_test_mae"] = dict(zip(labels, baseline_mae(baseline, data, split["test"], columns)))
    timing = {**fit.timing, "threads": torch.get_num_threads()}
    info = {"name": cfg["model"], "repr": repr(models[0]), "members": len(models),
            "params_per_member": count_params(models[0]), "params": count_params(model),
            "n_train": int(split["train"].numel()), "n_valid": int(split["valid"].numel()),
            "n_test": int(split["test"].numel())}
    parts = {"metrics": fit.metrics, "history": fit.history, "timing": timing, "model": info}
    return TrainedMembers(model, members, data, split, baseline, columns, parts)


def fit_members(cfg: dict, members: list[list[str]], device: str = "auto") -> dict:
    """:func:`train_members`, keeping only the parts of a run record."""
    return train_members(cfg, members, device).parts


def smoke_variant(cfg: dict, *, n_train: int = 64, n_valid: int = 16, n_test: int = 16, batch_size: int = 32,
                  epochs: int = 1) -> dict:
    """A seconds-long stand-in of any QM9 config (meant for the ``full`` grids, to check they
    run at full width): the same network (``model_kwargs``), method, targets and seed, on the
    300-molecule fixture's first ``n_train``/``n_valid``/``n_test`` molecules, ``epochs`` at
    ``batch_size`` (``n_train // batch_size`` steps an epoch), validated by the config class of
    ``cfg["experiment"]``. Never a published run."""
    from factorlab.experiments.registry import get

    out = {**copy.deepcopy(cfg), "profile": "smoke", "data": "fixture", "n_train": n_train, "n_valid": n_valid,
           "n_test": n_test, "batch_size": batch_size, "epochs": epochs}
    return get(cfg["experiment"]).from_dict(out).to_dict()
