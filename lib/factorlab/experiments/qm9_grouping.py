"""Experiment ``qm9_grouping``: train the task groups of the best partitions of the 11
benchmark targets into k networks, as chosen by the measured pair gains (the oracle) and by
each task-relatedness measure; one record per (group, seed), each a hard-shared GINE over the
group's targets (equal weighting; the budget, split and encoder of ``qm9_pairs`` and
``qm9_single_task``).

Where the partitions come from (:func:`chosen_partitions`, for each k in :data:`KS`):

- ``oracle``: the pair gains of ``qm9_pairs`` (:func:`factorlab.mtl.grouping.pair_gain_matrix`)
  averaged over its seeds, computed from the **validation** MAEs (so the groups are chosen
  without looking at the test split on which they are judged);
  :func:`~factorlab.mtl.grouping.best_partitions` (Standley et al.'s mean approximation) and
  average-linkage :func:`~factorlab.mtl.grouping.hierarchical_partitions` of the symmetrised
  gains;
- each measure of :data:`MEASURES` in the ``qm9_relatedness`` records of the profile (task set
  ``nash11``, once every seed is recorded), its matrix averaged over seeds and mapped to an affinity
  (0 = unrelated, larger = more related: :func:`affinity`): the exact
  :func:`~factorlab.mtl.grouping.best_affinity_partitions` and the hierarchical clustering.

The grid is every *distinct* group of three to ten targets over these partitions, for every
seed of :data:`SEEDS`. Other networks are not retrained: a singleton's errors are its
``qm9_single_task`` record of the same seed (the reference of every pair gain and Δm,
:func:`~factorlab.experiments.qm9_pairs.reference_errors`), a pair's the ``qm9_pairs`` pair run
of the same seed, and the group of all 11 targets (every k = 1 partition) is
``qm9_soft_sharing``'s ``lam = "inf"`` ``nash11`` run of the same seed
(:func:`whole_set_configs`: the same hard-shared network, budget, code path and seed, as
``qm9_weighting`` takes its equal-weight row). The grid therefore depends on the store: for
``cpu``/``full`` it raises :class:`~factorlab.experiments.registry.GridNeedsRecordsError`
(naming the commands to run) until every ``qm9_pairs`` run of the profile and its
``qm9_single_task`` reference are recorded, and it grows once, when the last
``qm9_relatedness`` ``nash11`` record of the profile arrives (records already trained stay
valid: a run is keyed by its group and seed). ``smoke`` (the three tasks of ``qm9_pairs``'
smoke grid) falls back to :data:`SMOKE_PARTITIONS` while those records are missing; with three
tasks the only group of three or more is all of them, so the grid is the same either way (one
run: three tasks are not the 11 of ``qm9_soft_sharing``, so they train here).

Size: every k from 1 to 10 (fewer networks than the 11 targets: the aim's candidates; k = 11 is
single-task training, k = 1 the reused all-target network). Each partition into k networks
holds at most ``floor(11 / 3) = 3`` groups of three or more, and only ``floor((11 - k) / 2)``
when k > 4 (a partition into many networks is mostly singletons and pairs, which are not
retrained), so the grid is dominated by k <= 6: 12 partitions per k (oracle + 5 measures,
exact and clustered). With the ``qm9_pairs`` records alone (the oracle; 165 runs) the ``cpu``
grid is 9 distinct groups per seed, 27 runs at ~1-1.5 minutes on one thread; it grows once,
when every ``qm9_relatedness`` ``nash11`` record exists (``python -m factorlab list`` prints
the real size). ``cpu`` first took k in 1-4 only; the oracle's own partitions then predicted
(from validation pair gains) Δm > 0 for every k <= 8, so the candidates the aim asks about lie
at larger k and ``cpu`` takes them all, as ``full`` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from factorlab.experiments import qm9_pairs
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, NASH11, QM9Config, base_config, fit_members
from factorlab.experiments.registry import Experiment, GridNeedsRecordsError
from factorlab.mtl.grouping import (Partition, best_affinity_partitions, best_partitions, canonical,
                                    hierarchical_partitions)
from factorlab.mtl.relatedness import affinity as relatedness_affinity

NAME = "qm9_grouping"

#: Seeds per profile (those of ``qm9_pairs``).
SEEDS = qm9_pairs.SEEDS
#: The numbers of networks k whose partitions are trained, per profile.
KS = {"smoke": [1, 2], "cpu": list(range(1, 11)), "full": list(range(1, 11))}
#: The ``qm9_relatedness`` measures that choose partitions, per profile (each used when recorded).
MEASURES = {"smoke": ["spearman_residual", "dcor_residual", "gradient_cosine", "tag_affinity", "encoder_swap"],
            "cpu": ["spearman_residual", "dcor_residual", "gradient_cosine", "tag_affinity", "encoder_swap"],
            "full": ["pearson_raw", "pearson_residual", "spearman_raw", "spearman_residual", "dcor_raw",
                     "dcor_residual", "gradient_cosine", "tag_affinity", "encoder_swap"]}
#: The searches each source's partitions come from.
SEARCHES = ("exact", "cluster")
#: The smoke grid's partitions while ``qm9_pairs``' smoke records are missing (task indices).
SMOKE_PARTITIONS = [((0, 1, 2),)]


def tasks(profile: str) -> list[str]:
    """The targets the profile groups (those of ``qm9_pairs``)."""
    return list(qm9_pairs.TASKS[check_profile(profile)])


def affinity(measure: str, matrix: np.ndarray) -> np.ndarray:
    """A ``qm9_relatedness`` measure's matrix as an affinity with a zero diagonal, by the one
    convention of :func:`factorlab.mtl.relatedness.affinity` (0 = unrelated, larger = more
    related; encoder swap as ``1 - transfer``, :func:`~factorlab.mtl.relatedness.encoder_swap_affinity`)."""
    m = relatedness_affinity(measure, np.array(matrix, dtype=float))
    np.fill_diagonal(m, 0.0)
    return m


def measure_matrices(profile: str, store=None) -> dict[str, np.ndarray]:
    """Per measure of :data:`MEASURES`, its ``qm9_relatedness`` matrix (task set ``nash11``,
    this profile) over :func:`tasks`, averaged over seeds (never trains). Empty until *every*
    seed of that grid is recorded, so the grid changes once, not with each seed; a measure
    missing from a record, or NaN over these tasks, is left out."""
    from factorlab.experiments import qm9_relatedness
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    names = tasks(profile)
    recs = [store.get(c.to_dict()) for c in qm9_relatedness.configs(profile) if c.task_set == "nash11"]
    if not recs or any(r is None for r in recs):
        return {}
    found: dict[str, list[np.ndarray]] = {}
    for rec in recs:
        for name in MEASURES[profile]:
            m = rec["metrics"]["measures"].get(name)
            if m is None:
                continue
            idx = [m["labels"].index(t) for t in names]
            mat = np.array([[np.nan if m["matrix"][i][j] is None else m["matrix"][i][j] for j in idx] for i in idx])
            found.setdefault(name, []).append(mat)
    out = {}
    for name, mats in found.items():
        mean = np.mean(mats, axis=0)
        if not np.isnan(mean[~np.eye(len(names), dtype=bool)]).any():
            out[name] = mean
    return out


def chosen_partitions(profile: str, store=None) -> dict[tuple[str, str, int], Partition]:
    """``{(source, search, k): Partition}`` for every k of :data:`KS`: ``source`` is
    ``oracle`` or a measure, ``search`` is ``exact`` or ``cluster`` (see the module docstring).

    Raises:
        GridNeedsRecordsError: a ``qm9_pairs`` run of the profile or its ``qm9_single_task``
            reference is missing (the message names the command to run first,
            :func:`~factorlab.experiments.qm9_pairs.missing_runs`).
    """
    seeds, gains = qm9_pairs.pair_gains(profile, store, split="valid")
    if seeds != SEEDS[profile]:
        raise GridNeedsRecordsError(f"qm9_grouping ({profile}) chooses its groups from every qm9_pairs run and "
                                    f"its qm9_single_task reference: {qm9_pairs.missing_runs(profile, store)}")
    g = gains.mean(axis=0)
    sources = {"oracle": (best_partitions(g, "mean"), hierarchical_partitions(g))}
    for name, m in measure_matrices(profile, store).items():
        a = affinity(name, m)
        sources[name] = (best_affinity_partitions(a), hierarchical_partitions(a))
    return {(src, search, k): parts[k] for src, both in sources.items() for search, parts in zip(SEARCHES, both)
            for k in KS[profile] if k in parts}


def groups_to_train(profile: str, store=None) -> list[list[str]]:
    """The distinct groups of three or more targets over :func:`chosen_partitions` (largest
    first, then in NASH11 order), as target names; smoke falls back to :data:`SMOKE_PARTITIONS`."""
    names = tasks(profile)
    try:
        partitions = [p.groups for p in chosen_partitions(profile, store).values()]
    except GridNeedsRecordsError:
        if profile != "smoke":
            raise
        partitions = [canonical(p) for p in SMOKE_PARTITIONS]
    groups = {grp for part in partitions for grp in part if len(grp) >= 3}
    return [[names[i] for i in grp] for grp in sorted(groups, key=lambda grp: (-len(grp), grp))]


def whole_set_configs(profile: str) -> list[dict]:
    """The records that stand for the group of *all* the profile's tasks when they are the 11
    of NASH11 (``cpu``, ``full``): ``qm9_soft_sharing``'s ``lam = "inf"`` runs on ``nash11``, one
    per seed (:func:`factorlab.experiments.qm9_weighting.equal_weight_configs`), the same
    hard-shared GINE over the same targets, budget, split, seed and equal weighting, trained by
    the same call (``train_members(cfg, [targets])``); empty for ``smoke``, whose three tasks
    are a group of its own grid."""
    from factorlab.experiments.qm9_weighting import equal_weight_configs

    return equal_weight_configs(profile) if tasks(profile) == NASH11 else []


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_grouping``: one hard-shared network over a group of three to ten NASH11
    targets (in NASH11 order); all eleven is ``qm9_soft_sharing``'s ``lam = "inf"`` run
    (:func:`whole_set_configs`), never retrained here."""

    sharing: Literal["hard"]
    task_set: Literal["nash11"]

    def __post_init__(self) -> None:
        super().__post_init__()
        if (len(self.targets) < 3 or any(t not in NASH11 for t in self.targets)
                or [NASH11.index(t) for t in self.targets] != sorted({NASH11.index(t) for t in self.targets})):
            raise ValueError(f"a group needs three or more distinct NASH11 targets in NASH11 order, got {self.targets}")
        if self.targets == NASH11:
            raise ValueError("the group of all 11 NASH11 targets is not trained here: it is qm9_soft_sharing's "
                             "lam='inf' nash11 run of the same seed (qm9_grouping.whole_set_configs)")


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed, one hard-shared network per group of
    :func:`groups_to_train` except all eleven NASH11 targets (:func:`whole_set_configs`; reads
    the store, see the module docstring)."""
    budget = BUDGETS[check_profile(profile)]
    groups = [g for g in groups_to_train(profile) if g != NASH11]
    return [Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing="hard", task_set="nash11",
                   targets=grp, seed=seed) for seed in SEEDS[profile] for grp in groups]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one group's shared network (a head per target, equal weighting)."""
    Config.from_dict(cfg)
    return fit_members(cfg, [list(cfg["targets"])], device)


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("targets", "seed"))
