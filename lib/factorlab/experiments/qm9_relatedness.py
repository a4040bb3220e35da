"""Experiment ``qm9_relatedness``: the four task-relatedness measures of :mod:`factorlab.mtl`
on one task set, one record per (task set, seed).

A run computes, on the split and budget of ``qm9_single_task``/``qm9_hard_sharing`` for its
profile (``qm9_common.BUDGETS``):

1. label dependence on the training split (:func:`factorlab.mtl.label_dependence`): Pearson,
   Spearman and distance correlation (on ``dcor_subsample`` molecules), on the raw targets
   and on the residuals after the composition baseline;
2. one all-task hard-shared network trained with two step probes
   (:mod:`factorlab.mtl.task_affinity`), every ``probe_every``-th step: the cosine similarity
   of the task gradients on the shared encoder, and TAG's lookahead affinity with an SGD
   lookahead of step ``lookahead_lr`` (the training's learning rate: the paper's choice);
3. the single-task stack of the same targets, then encoder swap on every ordered pair
   (:func:`factorlab.mtl.encoder_swap`) with fresh heads trained for the budget ``swap``.

The single-task stack is trained here because encoder swap needs its weights; its networks are
``qm9_single_task``'s (same config fields but the experiment's own; a member of a grouped stack
trains bit for bit as alone), so its per-target test MAE (``single_test_mae``) must equal the
``qm9_single_task`` record of the same seed exactly: tested on the fixture, and stated in the
chapter from the records (:func:`factorlab.report.qm9_relatedness.stack_consistency`). Every
pair gain and Δm of the chapters is taken against ``qm9_single_task``, never against this stack.

The record's ``metrics["measures"]`` holds each measure as
:meth:`~factorlab.mtl.relatedness.Relatedness.to_record` (labels, matrix, seconds, info);
``timing`` the seconds of each part (the networks' training included), so a measure's cost
is its own seconds plus the training it needs (none for label dependence; one hard-shared
network for the probes; the single-task stack for encoder swap).

Grids: task sets ``nash11`` and ``all19``; seeds 0 (smoke) or 0-2 (cpu, full).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, QM9Config, base_config, task_set, train_members
from factorlab.experiments.registry import Experiment
from factorlab.mtl.encoder_swap import encoder_swap
from factorlab.mtl.label_dependence import label_dependence
from factorlab.mtl.task_affinity import GradientCosine, LookaheadAffinity

NAME = "qm9_relatedness"

SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}
TASK_SETS = ("nash11", "all19")
#: Probe every this many training steps, per profile.
PROBE_EVERY = {"smoke": 1, "cpu": 10, "full": 50}
#: The fresh heads' budget of encoder swap, per profile.
SWAP = {"smoke": {"epochs": 2, "batch_size": 32, "lr": 1e-3},
        "cpu": {"epochs": 10, "batch_size": 64, "lr": 1e-3},
        "full": {"epochs": 40, "batch_size": 256, "lr": 1e-3}}
#: Molecules of the distance correlation's subsample.
DCOR_SUBSAMPLE = {"smoke": 100, "cpu": 1000, "full": 2000}


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_relatedness``: every measure on the targets of ``task_set``."""

    sharing: Literal["hard"]
    task_set: Literal["nash11", "all19"]
    probe_every: int
    lookahead_lr: float
    dcor_subsample: int
    swap: dict[str, Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.targets != task_set(self.task_set):
            raise ValueError(f"task_set {self.task_set!r} is the targets {task_set(self.task_set)}, got {self.targets}")
        if self.probe_every < 1 or self.dcor_subsample < 2 or not self.lookahead_lr > 0:
            raise ValueError("probe_every must be >= 1, dcor_subsample >= 2 and lookahead_lr > 0")
        if set(self.swap) != {"epochs", "batch_size", "lr"}:
            raise ValueError(f"swap needs the keys epochs, batch_size, lr, got {sorted(self.swap)}")


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed, one per task set."""
    budget = BUDGETS[check_profile(profile)]
    return [Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing="hard", task_set=name,
                   targets=task_set(name), seed=seed, probe_every=PROBE_EVERY[profile], lookahead_lr=budget["lr"],
                   dcor_subsample=DCOR_SUBSAMPLE[profile], swap=dict(SWAP[profile]))
            for seed in SEEDS[profile] for name in TASK_SETS]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Compute every measure for one config (see the module docstring); the record's parts."""
    Config.from_dict(cfg)
    targets = list(cfg["targets"])
    probes: dict = {}

    def with_probes(net):
        probes["cos"] = GradientCosine(net, targets, every=cfg["probe_every"])
        probes["tag"] = LookaheadAffinity(net, targets, lr=cfg["lookahead_lr"], every=cfg["probe_every"])
        return net, {"step_hooks": [probes["cos"], probes["tag"]]}

    t0 = time.perf_counter()
    hard = train_members(cfg, [targets], device, prepare=with_probes)
    hard_s = time.perf_counter() - t0
    measures = {}
    for baseline in (None, hard.baseline):
        measures.update(label_dependence(hard.data, hard.split["train"], targets, baseline=baseline,
                                         subsample=cfg["dcor_subsample"], seed=cfg["seed"]))
    measures["gradient_cosine"] = probes["cos"].result()
    measures["tag_affinity"] = probes["tag"].result()

    t1 = time.perf_counter()
    single = train_members(cfg, [[t] for t in targets], device)
    single_s = time.perf_counter() - t1
    swap = encoder_swap(single.model, single.data, single.split, targets, baseline=single.baseline,
                        seed=cfg["seed"], **cfg["swap"])
    measures["encoder_swap"] = swap.transfer

    metrics = {"measures": {name: m.to_record() for name, m in measures.items()},
               "encoder_swap_mae": {i: swap.mae.loc[i].tolist() for i in targets},
               "single_task_test_mae": swap.own_mae.to_dict(),
               "hard_test_mae": hard.parts["metrics"]["test_mae"],
               "single_test_mae": single.parts["metrics"]["test_mae"]}
    timing = {"measure_s": {name: m.seconds for name, m in measures.items()},
              "hard_network_s": hard_s, "single_stack_s": single_s,
              "hard_train_s": hard.parts["timing"]["train_s"], "single_train_s": single.parts["timing"]["train_s"],
              "threads": hard.parts["timing"]["threads"]}
    history = {"hard": hard.parts["history"], "single": single.parts["history"]}
    return {"metrics": metrics, "history": history, "timing": timing,
            "model": {"hard": hard.parts["model"], "single": single.parts["model"]}}


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("task_set", "seed"))
