"""Experiment ``qm9_single_task``: one model per target, for all 19 QM9 targets.

Models: the GCN-style :class:`~factorlab.models.qm9.QM9GINE` for every target, and (``full``
only) the 3D reference :class:`~factorlab.models.qm9.QM9SchNet` on a few targets. Each
single-task model predicts one standardized target with an MSE loss (Adam, cosine schedule)
and keeps its best-validation epoch; the record holds the test MAE in the target's units, in
training standard deviations, and the best validation MAE, per target.

Several single-task models of the same seed train together as one *stack*
(:func:`~factorlab.models.stack.stack_models`): independent members, one run record per stack
(``BUDGETS[profile]["stack"]`` targets each); every number is per target inside the record.

Budgets (``qm9_common.BUDGETS``):

- ``smoke``: the 300-molecule fixture, 2 epochs, a tiny GINE; one stack of all 19 targets,
  plus a tiny SchNet stack of 2 targets (seconds).
- ``cpu``: 20,000 training molecules (the first of the fixed split), 2,000 validation, the
  whole test split (10,831), 10 epochs, GINE with 64 channels and 4 layers, batch 64; 3 seeds,
  all 19 targets in one grouped stack per seed (3 runs; a grouped member gives bit-for-bit the
  run it would have alone, ``tests/unit/test_stack_invariance.py``). Measured on one CPU
  thread: a stack of 19 takes ~73 s per epoch, ~15 minutes per seed with evaluation. SchNet is left out: even a small one
  (64 channels, 3 interactions, 5 A cutoff) takes ~74 s per 10,000 molecules on one thread.
- ``full`` (GPU): all 110,000 training molecules, 10,000 validation, 10,831 test, 40
  epochs, batch 256, GINE with 128 channels and 4 layers; 3 seeds, all 19 targets in one grouped
  stack per seed; plus SchNet (PyG defaults: 128 channels, 6 interactions, 10 A cutoff) on
  mu, gap and U0_atom, 30 epochs, 1 seed. Designed from an estimate, not yet timed on a GPU
  (a grouped stack of 19 GINEs should cost a few ms per step, launch-bound, so the 3 stacks
  of 430 steps x 40 epochs take ~5 minutes and the 6 shared models of ``qm9_hard_sharing``
  about as long): run the GINE part first (``--where model=gine``), then the SchNet part if
  the lease has time left.
"""
from __future__ import annotations

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import ALL_TARGETS, BUDGETS, SCHNET_BUDGETS, QM9Config, base_config, fit_members
from factorlab.experiments.registry import Experiment

NAME = "qm9_single_task"


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def configs(profile: str) -> list[QM9Config]:
    """Every run config of this experiment under ``profile``: per seed, the GINE stacks of
    ``BUDGETS[profile]["stack"]`` targets, then the SchNet stacks (where the profile has them)."""
    budget = BUDGETS[check_profile(profile)]
    out = []
    for seed in budget["seeds"]:
        for targets in _chunks(ALL_TARGETS, budget["stack"]):
            out.append(QM9Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing="none",
                                 targets=targets, seed=seed))
    schnet = SCHNET_BUDGETS[profile]
    if schnet is not None:
        for seed in schnet["seeds"]:
            out.append(QM9Config(**base_config(NAME, profile, "schnet", schnet["model_kwargs"], epochs=schnet["epochs"],
                                               batch_size=schnet["batch_size"], lr=schnet["lr"]),
                                 sharing="none", targets=list(schnet["targets"]), seed=seed))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one config: an independent single-task model per target of ``cfg["targets"]``."""
    return fit_members(cfg, [[t] for t in cfg["targets"]], device)


EXPERIMENT = Experiment(NAME, "experiment", QM9Config, configs, train, label_keys=("model", "targets", "seed"))
