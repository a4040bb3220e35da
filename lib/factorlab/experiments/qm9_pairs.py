"""Experiment ``qm9_pairs``: the measured pairwise gains of the 11 benchmark targets, every
unordered pair trained as one two-task hard-shared network, beside the single-task networks of
the same targets; one record per (pair, seed) and one per (single-task stack, seed).

Pair gains are the ground truth that the relatedness measures of ``qm9_relatedness`` try to
predict and that grouping (``qm9_grouping``) searches over: for the pair {i, j},
``G[i, j] = 100 (MAE_j(single) - MAE_j({i, j})) / MAE_j(single)`` (%, positive: i helps j;
:func:`factorlab.mtl.grouping.pair_gain_matrix`, keyed as :func:`pair_key`).

Runs, on the budget, split and GINE of ``qm9_hard_sharing``/``qm9_single_task`` per profile
(``qm9_common.BUDGETS``), equal weighting (the sum of the standardized MSEs):

- ``sharing="hard"``, ``targets=[i, j]`` in :data:`~factorlab.experiments.qm9_common.NASH11`
  order: one shared encoder with a head per target; its best epoch is the one with the lowest
  mean standardized validation MAE of the two;
- ``sharing="none"``, ``targets`` = all the profile's tasks: the single-task reference, one
  independent GINE per target trained as one stack (the code path of ``qm9_soft_sharing``'s
  ``lam = 0`` and ``qm9_relatedness``'s stack), each member at its own best epoch. A stack is
  cheaper than separate runs; note the unexplained 2-4 % MAE differences between stack sizes
  of NOTES.md, which is why the reference is trained here under the same code, commit and
  seeds as the pairs rather than taken from another experiment.

Grids: ``smoke`` the first three NASH11 targets (mu, alpha, homo: 3 pairs and a stack of 3)
on the 300-molecule fixture, 2 epochs, seed 0 (4 runs); ``cpu`` and ``full`` the 55 pairs of
the 11 targets and the 11-target stack, seeds 0-2 (55 x 3 = 165 pair runs + 3 stacks = 168).

Cost on the CPU (``cpu``): in the committed ``qm9_hard_sharing`` records one hard-shared
GINE-64 run of this budget trains in 199-243 s on one thread (epochs of 20-24 s x 10, plus
~10 s of evaluation), ~4 minutes a run, so the 165 pairs take ~11 CPU-hours; the three
11-member single-task stacks add ~15 minutes each (the committed 5-member stacks of
``qm9_single_task`` trained in 353-467 s). It fills across sessions, two runs at a time, with
``python -m factorlab run qm9_pairs --profile cpu --executor processes --jobs 2`` (the store
resumes). ``full`` (GPU): 40 epochs of all 110,000 molecules at 128 channels; not yet timed.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Literal

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, NASH11, QM9Config, base_config, fit_members
from factorlab.experiments.registry import Experiment

NAME = "qm9_pairs"

#: Seeds per profile.
SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}
#: The tasks whose pairs each profile trains (smoke: the first three benchmark targets).
TASKS = {"smoke": NASH11[:3], "cpu": list(NASH11), "full": list(NASH11)}


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_pairs``: a two-task hard-shared network (``sharing="hard"``, two targets
    of NASH11 in its order) or the single-task stack of the profile's tasks (``sharing="none"``)."""

    sharing: Literal["none", "hard"]
    task_set: Literal["nash11"]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sharing == "hard":
            if (len(self.targets) != 2 or any(t not in NASH11 for t in self.targets)
                    or NASH11.index(self.targets[0]) >= NASH11.index(self.targets[1])):
                raise ValueError(f"a pair run needs two distinct NASH11 targets in NASH11 order, got {self.targets}")
        elif self.targets not in TASKS.values():
            raise ValueError(f"a single-task run has the targets of a profile's TASKS ({NASH11} or "
                             f"{TASKS['smoke']}), got {self.targets}")


def pairs(tasks: list[str]) -> list[list[str]]:
    """Every unordered pair of ``tasks``, each in ``tasks`` order (T (T - 1) / 2 of them)."""
    return [list(p) for p in itertools.combinations(tasks, 2)]


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed, the single-task stack, then every pair."""
    budget = BUDGETS[check_profile(profile)]
    tasks = TASKS[profile]
    out = []
    for seed in SEEDS[profile]:
        base = dict(**base_config(NAME, profile, "gine", budget["gine"]), task_set="nash11", seed=seed)
        out.append(Config(**base, sharing="none", targets=list(tasks)))
        out += [Config(**base, sharing="hard", targets=p) for p in pairs(tasks)]
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one config: the two-task shared network, or the independent single-task stack."""
    Config.from_dict(cfg)
    targets = list(cfg["targets"])
    members = [targets] if cfg["sharing"] == "hard" else [[t] for t in targets]
    return fit_members(cfg, members, device)


def smoke_variant(cfg: dict, *, n_train: int = 64, n_valid: int = 16, n_test: int = 16, batch_size: int = 32,
                  epochs: int = 1) -> dict:
    """A seconds-long stand-in of any ``qm9_pairs`` or ``qm9_grouping`` config (meant for the
    ``full`` grids): the same network (``model_kwargs``), sharing, targets and seed, on the
    300-molecule fixture's first ``n_train``/``n_valid``/``n_test`` molecules, ``epochs`` at
    ``batch_size``. Never a published run."""
    from factorlab.experiments.registry import get

    out = {**copy.deepcopy(cfg), "profile": "smoke", "data": "fixture", "n_train": n_train, "n_valid": n_valid,
           "n_test": n_test, "batch_size": batch_size, "epochs": epochs}
    return get(cfg["experiment"]).from_dict(out).to_dict()


def pair_errors(profile: str, store=None, split: str = "test") -> dict[int, tuple[dict, dict]]:
    """Per seed whose runs are all in the store (never trains): ``(pair_mae, single_mae)``, the
    arguments of :func:`factorlab.mtl.grouping.pair_gain_matrix` for :data:`TASKS` of the
    profile, from each record's ``{split}_mae`` (``test`` or ``valid``: the MAE at the best
    validation epoch). Seeds with a missing run are left out."""
    from factorlab.results import RunStore

    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    store = store if store is not None else RunStore()
    out = {}
    for seed in SEEDS[check_profile(profile)]:
        recs = [store.get(c.to_dict()) for c in configs(profile) if c.seed == seed]
        if any(r is None for r in recs):
            continue
        single, pair = {}, {}
        for r in recs:
            mae = r["metrics"][f"{split}_mae"]
            targets = r["config"]["targets"]
            if r["config"]["sharing"] == "none":
                single = {t: mae[t] for t in targets}
            else:
                pair[tuple(targets)] = {t: mae[t] for t in targets}
        out[seed] = (pair, single)
    return out


def pair_gains(profile: str, store=None, split: str = "test"):
    """``(seeds, G)``: the complete seeds of :func:`pair_errors` and their pair gains stacked,
    ``G`` of shape ``(S, T, T)`` over :data:`TASKS` of the profile (% of the single-task MAE)."""
    import numpy as np

    from factorlab.mtl.grouping import pair_gain_matrix

    errs = pair_errors(profile, store, split)
    tasks = TASKS[profile]
    seeds = sorted(errs)
    g = np.stack([pair_gain_matrix(*errs[s], tasks) for s in seeds]) if seeds else np.empty((0, len(tasks), len(tasks)))
    return seeds, g


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("sharing", "targets", "seed"))
