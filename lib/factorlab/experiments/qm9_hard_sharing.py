"""Experiment ``qm9_hard_sharing``: one shared encoder with a head per target.

The GINE encoder of ``qm9_single_task`` (same size, data, epochs, optimiser and seeds per
profile, so the two compare) feeds one MLP head per target (:class:`~factorlab.models.grouped.TaskHeads`);
the loss is the sum over targets of the MSE on standardized targets. Two task sets
(``qm9_common.TASK_SETS``): all 19 targets (``all19``) and the 12 most papers report
(``std12``: mu, alpha, homo, lumo, gap, r2, zpve, U0, U, H, G, Cv; total energies). The best
epoch is the one with the lowest mean standardized validation MAE over the set.

Compare with single-task models through Δm (:func:`factorlab.mtl.delta_m`) on the test MAE.

Budgets (``qm9_common.BUDGETS``): ``smoke`` the fixture, 2 epochs; ``cpu`` 20,000 training
molecules, 10 epochs, 64 channels, seeds 0-2 (a shared model costs about as much as one
single-task model, ~75 s on one CPU thread with loading and evaluation: ~8 minutes for the 6
runs); ``full`` all 110,000 molecules, 40 epochs, batch 256, 128 channels, seeds 0-2 (GPU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, TASK_SETS, QM9Config, base_config, fit_members
from factorlab.experiments.registry import Experiment

NAME = "qm9_hard_sharing"

#: Seeds per profile (the shared model is cheap: more seeds than single-task on the CPU).
SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_hard_sharing``: one shared model for the targets of ``task_set``."""

    sharing: Literal["hard"]
    task_set: Literal["all19", "std12"]


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed, one shared model per task set."""
    budget = BUDGETS[check_profile(profile)]
    return [Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing="hard", task_set=task_set,
                   targets=list(targets), seed=seed)
            for seed in SEEDS[profile] for task_set, targets in TASK_SETS.items()]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one shared model predicting every target of ``cfg["targets"]``."""
    return fit_members(cfg, [list(cfg["targets"])], device)


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("task_set", "seed"))
