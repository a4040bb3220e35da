"""Experiment ``qm9_pairs``: the measured pairwise gains of the 11 benchmark targets, every
unordered pair trained as one two-task hard-shared network; one record per (pair, seed).

Pair gains are the ground truth that the relatedness measures of ``qm9_relatedness`` try to
predict and that grouping (``qm9_grouping``) searches over: for the pair {i, j},
``G[i, j] = 100 (MAE_j(single) - MAE_j({i, j})) / MAE_j(single)`` (%, positive: i helps j;
:func:`factorlab.mtl.grouping.pair_gain_matrix`, keyed as :func:`pairs`).

Runs, on the budget, split and GINE of ``qm9_hard_sharing``/``qm9_single_task`` per profile
(``qm9_common.BUDGETS``), equal weighting (the sum of the standardized MSEs): ``targets=[i, j]``
in :data:`~factorlab.experiments.qm9_common.NASH11` order, one shared encoder with a head per
target; its best epoch is the one with the lowest mean standardized validation MAE of the two.

The single-task reference ``MAE_j(single)`` is **not trained here**: it is the ``qm9_single_task``
record of the same profile and seed that holds target ``j`` (whatever stack it trained in; a
member of a grouped stack trains bit for bit as it would alone, ``tests/unit/test_stack_invariance.py``),
at its own best validation epoch (:func:`reference_errors`). Its config has the same data,
split, subset sizes, epochs, batch, learning rate, schedule, GINE and baseline as a pair's
(:func:`budget_mismatch`, tested field by field), so the chapters take every pair gain and Δm
against one set of single-task networks. A seed whose reference is missing is left out of
:func:`pair_errors`; :func:`missing_runs` names the command that makes it.

Grids: ``smoke`` the 3 pairs of the first three NASH11 targets (mu, alpha, homo) on the
300-molecule fixture, 2 epochs, seed 0 (3 runs); ``cpu`` and ``full`` the 55 pairs of the 11
targets, seeds 0-2 (55 x 3 = 165 runs).

Cost on the CPU (``cpu``): in the ``qm9_hard_sharing`` records re-trained from 5119afe one
hard-shared GINE-64 run of this budget trains in 62-71 s on one (loaded) thread (epochs of
6-7 s x 10; the older records' 199-243 s were taken under heavier load), ~1.5 minutes a run
with evaluation, so the 165 pairs take ~4 CPU-hours (the reference
costs nothing here: ``qm9_single_task``'s ``cpu`` grid trains it). It fills across sessions,
two runs at a time, with ``python -m factorlab run qm9_pairs --profile cpu --executor processes
--jobs 2`` (the store resumes). ``full`` (GPU): 40 epochs of all 110,000 molecules at 128
channels; not yet timed.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, NASH11, QM9Config, base_config, fit_members, smoke_variant
from factorlab.experiments.registry import Experiment

NAME = "qm9_pairs"

#: Seeds per profile.
SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}
#: The tasks whose pairs each profile trains (smoke: the first three benchmark targets).
TASKS = {"smoke": NASH11[:3], "cpu": list(NASH11), "full": list(NASH11)}


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_pairs``: a two-task hard-shared network over two NASH11 targets, in NASH11
    order."""

    sharing: Literal["hard"]
    task_set: Literal["nash11"]

    def __post_init__(self) -> None:
        super().__post_init__()
        if (len(self.targets) != 2 or any(t not in NASH11 for t in self.targets)
                or NASH11.index(self.targets[0]) >= NASH11.index(self.targets[1])):
            raise ValueError(f"a pair run needs two distinct NASH11 targets in NASH11 order, got {self.targets}")


def pairs(tasks: list[str]) -> list[list[str]]:
    """Every unordered pair of ``tasks``, each in ``tasks`` order (T (T - 1) / 2 of them)."""
    return [list(p) for p in itertools.combinations(tasks, 2)]


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed, every pair of the profile's tasks."""
    budget = BUDGETS[check_profile(profile)]
    return [Config(**base_config(NAME, profile, "gine", budget["gine"]), task_set="nash11", seed=seed,
                   sharing="hard", targets=p) for seed in SEEDS[profile] for p in pairs(TASKS[profile])]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one config: the two-task shared network (a head per target, equal weighting)."""
    Config.from_dict(cfg)
    return fit_members(cfg, [list(cfg["targets"])], device)


#: Config keys that may differ between a pair and its single-task reference: the experiment,
#: the targets and how they share (``task_set`` is a pair's only).
NOT_BUDGET = ("experiment", "targets", "sharing", "task_set")


def budget_mismatch(pair_cfg: dict, single_cfg: dict) -> list[str]:
    """The config keys (beyond :data:`NOT_BUDGET`) on which a pair's config and its single-task
    reference's differ, sorted (empty: the same data, split, subset sizes, training, network,
    baseline, profile and seed)."""
    keys = (set(pair_cfg) | set(single_cfg)) - set(NOT_BUDGET)
    return sorted(k for k in keys if pair_cfg.get(k, "<absent>") != single_cfg.get(k, "<absent>"))


def reference_configs(profile: str, seed: int | None = None) -> list[dict]:
    """The ``qm9_single_task`` configs (GINE stacks) of ``profile`` holding the single-task
    reference of :data:`TASKS`, of every seed or of ``seed``; empty where its grid has no such
    seed."""
    from factorlab.experiments import qm9_single_task

    tasks = set(TASKS[check_profile(profile)])
    return [c for c in qm9_single_task.grid(profile) if c["model"] == "gine" and tasks & set(c["targets"])
            and (seed is None or c["seed"] == seed)]


def reference_errors(profile: str, store=None, split: str = "test") -> dict[int, dict[str, float]]:
    """Per seed of :data:`SEEDS` whose reference is complete: ``{target: MAE}`` on ``split``
    (``test`` or ``valid``, at each member's best validation epoch) of every task of
    :data:`TASKS`, from the ``qm9_single_task`` records that hold them (never trains).

    Raises:
        ValueError: a reference's config differs from the pairs' budget (names the keys).
    """
    from factorlab.results import RunStore

    _check_split(split)
    store = store if store is not None else RunStore()
    tasks = TASKS[check_profile(profile)]
    pair_cfg = configs(profile)[0].to_dict()
    out = {}
    for seed in SEEDS[profile]:
        mae: dict[str, float] = {}
        for cfg in reference_configs(profile, seed):
            bad = budget_mismatch({**pair_cfg, "seed": seed}, cfg)
            if bad:
                raise ValueError(f"qm9_single_task's {profile} config of {cfg['targets']} (seed {seed}) differs "
                                 f"from qm9_pairs' budget in {', '.join(bad)}: the pair gains need the same budget")
            rec = store.get(cfg)
            if rec is not None:
                mae.update({t: rec["metrics"][f"{split}_mae"][t] for t in cfg["targets"] if t in tasks})
        if all(t in mae for t in tasks):
            out[seed] = {t: mae[t] for t in tasks}
    return out


def reference_from_records(single_records: list[dict], tasks: list[str], runs: list[dict] = (),
                           split: str = "test") -> dict[int, dict[str, float]]:
    """Per seed: ``{target: MAE}`` on ``split`` of every one of ``tasks`` from the GINE
    ``qm9_single_task`` records among ``single_records`` (per target, whichever stack holds it;
    seeds missing a task are left out, seeds in ascending order): the one single-task reference
    of every pair gain and Δm the chapters' reports take from records already loaded.

    ``runs`` are the records compared with it (``qm9_pairs``, ``qm9_grouping``,
    ``qm9_hard_sharing``, ``qm9_weighting``, ``qm9_soft_sharing``, ``qm9_tensor_mtl``, ...): each
    reference record is checked against every run of its seed, on the budget keys both configs
    have (:func:`budget_mismatch`).

    Raises:
        ValueError: a reference record's config differs from a run's of the same seed (names
            the run's experiment and the keys), or ``split`` is not ``test``/``valid``.
    """
    _check_split(split)
    runs_of: dict[int, list[dict]] = {}
    for r in runs:
        runs_of.setdefault(r["config"]["seed"], []).append(r["config"])
    out: dict[int, dict[str, float]] = {}
    for r in single_records:
        cfg = r["config"]
        if cfg.get("model", "gine") != "gine":
            continue
        for other in runs_of.get(cfg["seed"], ()):
            bad = [k for k in budget_mismatch(other, cfg) if k in other and k in cfg]
            if bad:
                name = other.get("experiment", "the compared run")
                owner = f"{name}'" if name.endswith("s") else f"{name}'s"
                raise ValueError(f"the single-task record of {cfg.get('targets')} (seed {cfg['seed']}) differs from "
                                 f"{owner} budget in {', '.join(bad)}: Δm and pair gains need the same budget")
        out.setdefault(cfg["seed"], {}).update(r["metrics"][f"{split}_mae"])
    return {s: {t: m[t] for t in tasks} for s, m in sorted(out.items()) if all(t in m for t in tasks)}


def pair_maes_by_seed(pair_records: list[dict], tasks: Sequence[str]) -> dict[int, dict[tuple[str, str], dict]]:
    """``{seed: {(a, b): {a: MAE, b: MAE}}}`` from the two-target records of ``qm9_pairs``
    (``config["targets"]`` of length 2 within ``tasks``; ``metrics["test_mae"]``), each pair
    keyed by its two names in ``tasks`` order."""
    order = {t: k for k, t in enumerate(tasks)}
    out: dict[int, dict[tuple[str, str], dict]] = {}
    for r in pair_records:
        targets = list(r["config"]["targets"])
        if len(targets) != 2 or not set(targets) <= set(order):
            continue
        a, b = sorted(targets, key=order.__getitem__)
        out.setdefault(r["config"]["seed"], {})[(a, b)] = {t: r["metrics"]["test_mae"][t] for t in (a, b)}
    return out


def gains_from_records(pair_records: list[dict], reference: Mapping[int, Mapping[str, float]],
                       tasks: Sequence[str]) -> dict[int, np.ndarray]:
    """``{seed: G}``, the measured test pair gains: ``G[i, j]`` (float [T, T], %, NaN diagonal)
    is how much task j's MAE falls beside task i (:func:`factorlab.mtl.grouping.pair_gain_matrix`),
    for every seed (ascending) with all ``T (T - 1) / 2`` pairs of ``tasks`` among
    ``pair_records`` and a single-task ``reference`` (:func:`reference_from_records`) for every
    one of them. The pair gains every chapter computes from records it has loaded
    (:func:`pair_gains` reads the profile's own grid from the store)."""
    from factorlab.mtl.grouping import pair_gain_matrix

    tasks = list(tasks)
    n_pairs = len(tasks) * (len(tasks) - 1) // 2
    return {seed: pair_gain_matrix(pairs, reference[seed], tasks)
            for seed, pairs in sorted(pair_maes_by_seed(pair_records, tasks).items())
            if n_pairs and len(pairs) == n_pairs and seed in reference and all(t in reference[seed] for t in tasks)}


def missing_runs(profile: str, store=None) -> str:
    """What keeps a seed of :data:`SEEDS` out of :func:`pair_errors`, as one sentence naming the
    command(s) to run (missing pair runs; missing ``qm9_single_task`` references, and seeds its
    grid does not have); "" when every seed is complete. Never trains."""
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    seeds = SEEDS[check_profile(profile)]
    no_pairs = sorted({c.seed for c in configs(profile) if store.get(c.to_dict()) is None})
    ref = reference_errors(profile, store)
    no_ref = [s for s in seeds if s not in ref]
    parts = []
    if no_pairs:
        parts.append(f"qm9_pairs runs of seed(s) {_seeds(no_pairs)} are missing: run "
                     f"`python -m factorlab run qm9_pairs --profile {profile}`")
    if no_ref:
        off_grid = [s for s in no_ref if not reference_configs(profile, s)]
        note = (f" (its {profile} grid has no seed {_seeds(off_grid)} yet: its budget's seeds must include them)"
                if off_grid else "")
        parts.append(f"the single-task reference of seed(s) {_seeds(no_ref)} is missing: run "
                     f"`python -m factorlab run qm9_single_task --profile {profile}`{note}")
    return "; ".join(parts)


def _seeds(seeds: list[int]) -> str:
    return ", ".join(str(s) for s in seeds)


def _check_split(split: str) -> None:
    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")




def pair_errors(profile: str, store=None, split: str = "test") -> dict[int, tuple[dict, dict]]:
    """Per seed whose pair runs and single-task reference are all in the store (never trains):
    ``(pair_mae, single_mae)``, the arguments of :func:`factorlab.mtl.grouping.pair_gain_matrix`
    for :data:`TASKS` of the profile, from each record's ``{split}_mae`` (``test`` or ``valid``:
    the MAE at the best validation epoch); ``single_mae`` from ``qm9_single_task``
    (:func:`reference_errors`). Seeds with a missing run or reference are left out
    (:func:`missing_runs` says which and how to make them)."""
    from factorlab.results import RunStore

    _check_split(split)
    store = store if store is not None else RunStore()
    single = reference_errors(profile, store, split)
    out = {}
    for seed in SEEDS[check_profile(profile)]:
        recs = [store.get(c.to_dict()) for c in configs(profile) if c.seed == seed]
        if seed not in single or any(r is None for r in recs):
            continue
        pair = {tuple(r["config"]["targets"]): {t: r["metrics"][f"{split}_mae"][t] for t in r["config"]["targets"]}
                for r in recs}
        out[seed] = (pair, single[seed])
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


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("targets", "seed"))
