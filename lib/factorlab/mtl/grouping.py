"""Grouping tasks into networks from measured pairwise gains or from a relatedness measure.

The ground truth of which tasks help each other is the *pair gain*: train every pair {i, j}
as one two-task network and compare task j's error there with its single-task error,

    G[i, j] = 100 * (MAE_j(single) - MAE_j({i, j})) / MAE_j(single)   (%, positive: i helps j).

:func:`pair_gain_matrix` builds G for one seed from the pair and single-task errors;
:func:`seed_agreement` is the noise ceiling (how well one seed's gains rank like another's).
A group's gains are predicted from pair gains by Standley et al. 2020's higher-order
approximation (:func:`predicted_gains`), and :func:`best_partitions` finds, for every number
of networks k, the partition with the highest predicted mean gain exactly (dynamic programming
over subsets). :func:`best_affinity_partitions` does the same from a relatedness measure and
:func:`hierarchical_partitions` clusters by it (average linkage). :func:`grouping_delta_m` is
the benchmark's Δm of a trained grouping.

Everything here is numpy/scipy on task indices ``0..T-1``; names enter only in
:func:`pair_gain_matrix`, :meth:`Partition.names` and :func:`grouping_delta_m`.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from factorlab.mtl.metrics import delta_m


def _check_tasks(tasks: Sequence[str], at_least: int = 2) -> list[str]:
    """``tasks`` as a list: at least ``at_least`` distinct names (ValueError otherwise)."""
    names = list(tasks)
    if len(names) < at_least:
        raise ValueError(f"need at least {at_least} tasks, got {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be distinct, got {names}")
    return names


def pair_key(a: str, b: str, tasks: Sequence[str]) -> tuple[str, str]:
    """The key of the unordered pair {a, b}: the two names in ``tasks`` order."""
    names = list(tasks)
    for t in (a, b):
        if t not in names:
            raise ValueError(f"task {t!r} is not one of {names}")
    return (a, b) if names.index(a) < names.index(b) else (b, a)


def pair_gain_matrix(pair_mae: Mapping[tuple[str, str], Mapping[str, float]], single_mae: Mapping[str, float],
                     tasks: Sequence[str]) -> np.ndarray:
    """The measured pair gains of one seed, ``G`` of shape ``(T, T)`` over ``tasks``.

    ``G[i, j] = 100 * (single_mae[j] - pair_mae[(i, j)][j]) / single_mae[j]``: the percent
    by which task ``j``'s MAE falls when it is trained together with task ``i`` in one
    two-task network (positive: ``i`` helps ``j``; row = the helper, column = the task
    measured). The diagonal is NaN. Not symmetric: ``G[i, j]`` and ``G[j, i]`` come from the
    same network but measure different tasks.

    Args:
        pair_mae: for each unordered pair, keyed by the two task names in ``tasks`` order
            (see :func:`pair_key`), the MAE of each of the two tasks in that network.
        single_mae: each task's single-task MAE (same units as ``pair_mae``), positive.
        tasks: the T task names, fixing the order of rows and columns.

    Raises:
        ValueError: fewer than two or repeated tasks, a missing pair, a pair that lacks one
            of its tasks' MAE, or a single-task MAE that is missing or not positive finite.
    """
    names = _check_tasks(tasks)
    single = np.empty(len(names))
    for j, t in enumerate(names):
        if t not in single_mae:
            raise ValueError(f"single-task MAE of task {t!r} is missing (have {sorted(single_mae)})")
        v = float(single_mae[t])
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"single-task MAE of task {t!r} must be positive and finite, got {v}")
        single[j] = v
    g = np.full((len(names), len(names)), np.nan)
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            if (a, b) not in pair_mae:
                raise ValueError(f"pair {(a, b)!r} is missing from the pair MAEs (keys are the two names in "
                                 f"tasks order)")
            errs = pair_mae[(a, b)]
            for t in (a, b):
                if t not in errs:
                    raise ValueError(f"pair {(a, b)!r} lacks the MAE of task {t!r}")
            g[i, j] = 100.0 * (single[j] - float(errs[b])) / single[j]
            g[j, i] = 100.0 * (single[i] - float(errs[a])) / single[i]
    return g


# --- how well one seed's gains predict another's -------------------------------------------

@dataclass
class SeedAgreement:
    """The noise ceiling of measured pair gains: Spearman's rank correlation of the
    off-diagonal gains of every pair of seeds.

    Attributes:
        mean: mean of :attr:`rhos` (NaN when there are fewer than two seeds).
        rhos: one correlation per pair of seeds, in the order of :attr:`pairs`.
        pairs: the seed indices ``(s, t)``, ``s < t``, of each correlation.
    """

    mean: float
    rhos: list[float]
    pairs: list[tuple[int, int]]


def off_diagonal(m: np.ndarray) -> np.ndarray:
    """The ``T * (T - 1)`` off-diagonal entries of a ``(T, T)`` matrix, row by row."""
    m = np.asarray(m, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a square (T, T) matrix, got shape {m.shape}")
    return m[~np.eye(m.shape[0], dtype=bool)]


def seed_agreement(gains_per_seed: np.ndarray) -> SeedAgreement:
    """How well one seed's pair gains rank like another's (the ceiling any measure's rank
    correlation with the gains can reach).

    Args:
        gains_per_seed: ``(S, T, T)``, one :func:`pair_gain_matrix` per seed.

    Returns:
        :class:`SeedAgreement`: Spearman's rho of the ``T (T - 1)`` off-diagonal gains for
        every pair of the ``S`` seeds (NaN where a seed's gains are all equal), and their mean.

    Raises:
        ValueError: not an ``(S, T, T)`` array, or a NaN off the diagonal.
    """
    g = np.asarray(gains_per_seed, dtype=float)
    if g.ndim != 3 or g.shape[1] != g.shape[2]:
        raise ValueError(f"gains_per_seed must have shape (S, T, T), got {g.shape}")
    flat = np.stack([off_diagonal(m) for m in g]) if len(g) else np.empty((0, 0))
    if np.isnan(flat).any():
        raise ValueError("gains_per_seed has NaN off the diagonal (a pair is missing)")
    pairs = list(itertools.combinations(range(len(g)), 2))
    rhos = [float(spearmanr(flat[s], flat[t]).statistic) if np.ptp(flat[s]) > 0 and np.ptp(flat[t]) > 0
            else math.nan for s, t in pairs]  # a constant seed has no ranks: NaN, without scipy's warning
    return SeedAgreement(float(np.mean(rhos)) if rhos else math.nan, rhos, pairs)


# --- from pair gains to a group's predicted gains (Standley et al. 2020) --------------------

#: The ways a task's gain in a group is predicted from its pair gains, ``mean`` (Standley et
#: al. 2020's higher-order approximation) or ``max`` (its best partner alone).
AGGREGATES = ("mean", "max")


def _check_aggregate(how: str) -> str:
    if how not in AGGREGATES:
        raise ValueError(f"unknown aggregate {how!r}: choose one of {', '.join(AGGREGATES)}")
    return how


def _check_square(g: np.ndarray, what: str = "gain matrix") -> np.ndarray:
    g = np.asarray(g, dtype=float)
    if g.ndim != 2 or g.shape[0] != g.shape[1] or g.shape[0] < 1:
        raise ValueError(f"the {what} must be square (T, T), got shape {g.shape}")
    if np.isnan(off_diagonal(g)).any():
        raise ValueError(f"the {what} has NaN off the diagonal")
    return g


def _indices(group: Sequence[int], t: int) -> list[int]:
    idx = [int(i) for i in group]
    if not idx or len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= t:
        raise ValueError(f"a group must be distinct task indices in 0..{t - 1}, got {list(group)}")
    return idx


def predicted_gains(gains: np.ndarray, group: Sequence[int], how: str = "mean") -> np.ndarray:
    """Each member's predicted gain (%) in the network of ``group``, from pair gains.

    Standley et al. 2020's higher-order approximation: task ``j``'s gain in group ``S`` is the
    mean over ``i`` in ``S \\ {j}`` of ``G[i, j]`` (``how="mean"``, the default; it assumes
    partners act independently and dilute each other); ``how="max"`` takes its best partner's
    gain (an optimistic reading: the others do not hurt). A task alone gains 0.

    Args:
        gains: ``(T, T)`` pair gains (:func:`pair_gain_matrix`, or a seed mean of them).
        group: the member task indices.

    Returns:
        ``(len(group),)`` predicted gains in percent, in ``group`` order.
    """
    g = _check_square(gains)
    idx = _indices(group, len(g))
    _check_aggregate(how)
    if len(idx) == 1:
        return np.zeros(1)
    out = []
    for j in idx:
        col = np.array([g[i, j] for i in idx if i != j])
        out.append(col.mean() if how == "mean" else col.max())
    return np.array(out)


def predicted_mae(gains: np.ndarray, group: Sequence[int], single_mae: Sequence[float],
                  how: str = "mean") -> np.ndarray:
    """The members' predicted MAE in the group's network: ``single_mae[j] * (1 - gain_j / 100)``
    with :func:`predicted_gains` (``single_mae`` over all T tasks, in their units)."""
    single = np.asarray(single_mae, dtype=float)
    idx = _indices(group, len(single))
    return single[idx] * (1.0 - predicted_gains(gains, idx, how) / 100.0)


def group_score(gains: np.ndarray, group: Sequence[int], how: str = "mean") -> float:
    """The summed predicted gain (%) of the group's members (:func:`predicted_gains`); a
    partition's score is the sum over its groups divided by T."""
    return float(predicted_gains(gains, group, how).sum())


# --- exact best partitions -------------------------------------------------------------------

#: The largest number of tasks :func:`best_partitions` searches (3^12 = 531,441 subset pairs).
MAX_TASKS = 12


@dataclass(frozen=True)
class Partition:
    """A partition of the tasks into networks.

    Attributes:
        groups: the groups as tuples of task indices, each sorted, ordered by first member.
        score: the partition's score (see the function that made it).
    """

    groups: tuple[tuple[int, ...], ...]
    score: float

    @property
    def k(self) -> int:
        """The number of groups (networks)."""
        return len(self.groups)

    def names(self, tasks: Sequence[str]) -> list[list[str]]:
        """The groups as lists of task names."""
        return [[tasks[i] for i in g] for g in self.groups]


def canonical(groups: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Groups as sorted tuples, ordered by their first member (one spelling per partition)."""
    return tuple(sorted(tuple(sorted(int(i) for i in g)) for g in groups))


def all_partitions(n: int):
    """Every set partition of ``range(n)`` (Bell(n) of them), as lists of lists; for tests and
    small ``n``."""
    if n == 0:
        yield []
        return
    for rest in all_partitions(n - 1):
        for i in range(len(rest)):
            yield rest[:i] + [rest[i] + [n - 1]] + rest[i + 1:]
        yield rest + [[n - 1]]


def partition_score(gains: np.ndarray, groups: Sequence[Sequence[int]], how: str = "mean") -> float:
    """Mean over all T tasks of the predicted gain (%) under ``groups`` (singletons gain 0);
    ValueError unless ``groups`` partition ``range(T)``."""
    g = _check_square(gains)
    flat = sorted(int(i) for grp in groups for i in grp)
    if flat != list(range(len(g))):
        raise ValueError(f"groups {list(map(list, groups))} do not partition the {len(g)} tasks")
    return sum(group_score(g, grp, how) for grp in groups) / len(g)


def _subset_scores(g: np.ndarray, how: str) -> np.ndarray:
    """Summed predicted gain of every subset (bitmask) of the T tasks, ``(2^T,)``."""
    t = len(g)
    n = 1 << t
    gz = np.where(np.eye(t, dtype=bool), 0.0, g)
    # acc[mask, j] = sum (or max) over i in mask, i != j, of G[i, j]; built by adding one member
    acc = np.zeros((n, t)) if how == "mean" else np.full((n, t), -np.inf)
    size = np.zeros(n, dtype=int)
    for mask in range(1, n):
        low = (mask & -mask).bit_length() - 1
        prev = mask & (mask - 1)
        size[mask] = size[prev] + 1
        row = gz[low].copy()
        if how == "mean":
            acc[mask] = acc[prev] + row
        else:
            row[low] = -np.inf
            acc[mask] = np.maximum(acc[prev], row)
    scores = np.zeros(n)
    members = ((np.arange(n)[:, None] >> np.arange(t)[None, :]) & 1).astype(bool)
    multi = size >= 2
    per = acc / np.maximum(size - 1, 1)[:, None] if how == "mean" else acc
    scores[multi] = np.where(members[multi], per[multi], 0.0).sum(axis=1)
    return scores


def _best_by_k(scores: np.ndarray, t: int) -> list[Partition | None]:
    """Exact DP over bitmasks: for every k, the partition of the T tasks into exactly k groups
    maximising the summed subset ``scores`` (the group holding the lowest remaining task is
    chosen first, so each partition is counted once: O(3^T) subset pairs)."""
    full = (1 << t) - 1
    n = 1 << t
    best = np.full((n, t + 1), -np.inf)
    choice = np.zeros((n, t + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for mask in range(1, n):
        low = mask & -mask
        rest_bits = mask ^ low
        sub = rest_bits
        while True:
            grp = sub | low
            rem = mask ^ grp
            cand = scores[grp] + best[rem, :-1]
            better = cand > best[mask, 1:]
            if better.any():
                best[mask, 1:] = np.where(better, cand, best[mask, 1:])
                choice[mask, 1:] = np.where(better, grp, choice[mask, 1:])
            if sub == 0:
                break
            sub = (sub - 1) & rest_bits
    out: list[Partition | None] = [None]
    for k in range(1, t + 1):
        groups, mask, kk = [], full, k
        while mask:
            grp = int(choice[mask, kk])
            groups.append([i for i in range(t) if grp >> i & 1])
            mask ^= grp
            kk -= 1
        out.append(Partition(canonical(groups), float(best[full, k]) / t))
    return out


def best_partitions(gains: np.ndarray, how: str = "mean") -> dict[int, Partition]:
    """For every k = 1..T, the partition of the T tasks into exactly k networks with the
    highest predicted mean gain (:func:`partition_score`: mean over tasks of the
    :func:`predicted_gains` in its group, singletons 0), found exactly by dynamic programming
    over subsets (O(3^T); T <= :data:`MAX_TASKS`). Ties keep the first partition found.

    Args:
        gains: ``(T, T)`` pair gains (%), row helps column (the diagonal is ignored).
        how: ``mean`` or ``max`` (:data:`AGGREGATES`).

    Returns:
        ``{k: Partition}`` with the score in percent.
    """
    g = _check_square(gains)
    _check_aggregate(how)
    if len(g) > MAX_TASKS:
        raise ValueError(f"exact search handles at most {MAX_TASKS} tasks, got {len(g)}")
    parts = _best_by_k(_subset_scores(g, how), len(g))
    return {k: parts[k] for k in range(1, len(g) + 1)}


def best_affinity_partitions(affinity: np.ndarray) -> dict[int, Partition]:
    """:func:`best_partitions` for a relatedness measure instead of a gain.

    The matrix is symmetrised, ``A = (M + M^T) / 2`` (a directed measure such as TAG's
    affinity counts both directions equally), and read as *how related* two tasks are, with 0
    meaning unrelated (the caller maps each measure to that scale: e.g. ``|r|`` for a
    correlation, ``1 - transfer`` for encoder swap). A group's score is its mean within-group
    affinity over ordered pairs; a partition's score is the mean over tasks of the mean
    affinity of each task to its group mates (the group score weighted by group size;
    singletons 0). This is :func:`best_partitions` with ``how="mean"`` on ``A``, so the two
    searches differ only in what the matrix holds.
    """
    a = _check_square(affinity, "affinity matrix")
    return best_partitions((a + a.T) / 2.0, "mean")


def hierarchical_partitions(similarity: np.ndarray) -> dict[int, Partition]:
    """The journal's "task clustering": average-linkage agglomerative clustering (scipy) of
    the tasks on the distance ``1 - s``, where ``s`` is the symmetrised similarity
    ``(M + M^T) / 2`` min-max normalised to [0, 1] over its off-diagonal entries (so the most
    similar pair is at distance 0 and the least similar at 1), cut into exactly k clusters for
    every k = 1..T. The partition's score is its mean within-group similarity per task on the
    normalised scale (as :func:`best_affinity_partitions`), for comparison only.

    Args:
        similarity: ``(T, T)``, larger = more related (mapped as for
            :func:`best_affinity_partitions`).

    Returns:
        ``{k: Partition}``.
    """
    m = _check_square(similarity, "similarity matrix")
    if len(m) == 1:
        return {1: Partition(((0,),), 0.0)}
    s = (m + m.T) / 2.0
    off = off_diagonal(s)
    span = off.max() - off.min()
    norm = (s - off.min()) / span if span > 0 else np.ones_like(s)
    np.fill_diagonal(norm, 1.0)
    t = len(s)
    z = linkage(squareform(1.0 - norm, checks=False), method="average")
    # replay the merges (scipy's cut_tree mislabels trees with tied or zero heights)
    clusters: dict[int, list[int]] = {i: [i] for i in range(t)}
    out = {t: Partition(canonical(clusters.values()), 0.0)}
    for step, (a, b, _, _) in enumerate(z):
        clusters[t + step] = clusters.pop(int(a)) + clusters.pop(int(b))
        groups = canonical(clusters.values())
        out[t - step - 1] = Partition(groups, partition_score(norm, groups, "mean"))
    return dict(sorted(out.items()))


# --- Δm of a grouping -------------------------------------------------------------------------

def grouping_delta_m(group_mae: Mapping[tuple[str, ...], Mapping[str, float]], single_mae: Mapping[str, float],
                     tasks: Sequence[str]) -> float:
    """Δm (%) of a grouping against single-task training (Maninis et al. 2019; Navon et al.
    2022's benchmark metric): ``100 * mean_j (MAE_j(grouping) - MAE_j(single)) / MAE_j(single)``
    over ``tasks``, where task ``j``'s MAE is that of the one group that holds it; lower is
    better, negative beats single-task training. Reuses :func:`factorlab.mtl.metrics.delta_m`.

    Args:
        group_mae: per group (tuple of task names), each member's MAE in that network; a
            singleton group's MAE is its single-task MAE.
        single_mae: each task's single-task MAE.

    Raises:
        ValueError: a task in no group or in two groups, or a group lacking a member's MAE.
    """
    names = _check_tasks(tasks, at_least=1)
    merged: dict[str, float] = {}
    for group, errs in group_mae.items():
        for t in group:
            if t in merged:
                raise ValueError(f"task {t!r} is in more than one group")
            if t not in errs:
                raise ValueError(f"group {tuple(group)!r} lacks the MAE of task {t!r}")
            merged[t] = float(errs[t])
    missing = [t for t in names if t not in merged]
    if missing:
        raise ValueError(f"tasks {missing} are in no group")
    return 100.0 * delta_m(merged, single_mae, names)
