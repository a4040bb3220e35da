"""Grouping tasks into networks from measured pairwise gains or from a relatedness measure.

The ground truth of which tasks help each other is the *pair gain*: train every pair {i, j}
as one two-task network and compare task j's error there with its single-task error,

    G[i, j] = 100 * (MAE_j(single) - MAE_j({i, j})) / MAE_j(single)   (%, positive: i helps j).

:func:`pair_gain_matrix` builds G for one seed from the pair and single-task errors.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _check_tasks(tasks: Sequence[str]) -> list[str]:
    names = list(tasks)
    if len(names) < 2:
        raise ValueError(f"grouping needs at least two tasks, got {names}")
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
