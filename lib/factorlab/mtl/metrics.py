"""Comparing multitask with single-task models: Δm, and errors relative to chemical accuracy.

- :func:`delta_m`: the average relative change of a lower-is-better error over tasks,
  Δm = mean_k (MAE_k(MTL) - MAE_k(STL)) / MAE_k(STL) (Maninis et al. 2019; Vandenhende et al.
  2021 use the same measure with a sign per metric). Positive: multitask is worse.
- :data:`CHEMICAL_ACCURACY`: the per-property error targets of Gilmer et al. (2017), the
  MAE each QM9 property must reach to count as chemically accurate, in our units.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from factorlab.literature import GILMER2017_CHEMICAL_ACCURACY

#: Chemical-accuracy targets of Gilmer et al. 2017 ("Neural Message Passing for Quantum
#: Chemistry", ICML; the divisors of their error ratios, following Faber et al. 2017), in
#: the units of :data:`factorlab.data.qm9.TARGETS` -- CITED, not measured; the values and
#: their sources live in :mod:`factorlab.literature`. No target for the rotational constants.
CHEMICAL_ACCURACY: dict[str, float] = dict(GILMER2017_CHEMICAL_ACCURACY)


def delta_m(mtl_mae: Mapping[str, float], stl_mae: Mapping[str, float], tasks=None) -> float:
    """Δm = mean over tasks k of (MAE_k(MTL) - MAE_k(STL)) / MAE_k(STL), as a fraction
    (multiply by 100 for %); negative when multitask learning helps on average.

    Args:
        mtl_mae, stl_mae: MAE per task name (same units per task in both).
        tasks: the tasks to average over (default: those of ``mtl_mae``).

    Raises:
        ValueError: no tasks, a task missing from either mapping, or an STL MAE that is not
            a positive finite number.
    """
    names = list(mtl_mae if tasks is None else tasks)
    if not names:
        raise ValueError("delta_m needs at least one task")
    missing = [k for k in names if k not in mtl_mae or k not in stl_mae]
    if missing:
        raise ValueError(f"tasks {missing} are missing from the MTL or STL errors")
    bad = [k for k in names if not (isinstance(stl_mae[k], (int, float)) and math.isfinite(stl_mae[k])
                                    and stl_mae[k] > 0)]
    if bad:
        raise ValueError(f"the STL MAE of {bad} is not a positive finite number: {[stl_mae[k] for k in bad]}")
    return sum((mtl_mae[k] - stl_mae[k]) / stl_mae[k] for k in names) / len(names)


def accuracy_ratio(mae: Mapping[str, float]) -> dict[str, float]:
    """MAE / chemical accuracy for each task of ``mae`` that has a target in
    :data:`CHEMICAL_ACCURACY` (below 1: chemically accurate)."""
    return {k: v / CHEMICAL_ACCURACY[k] for k, v in mae.items() if k in CHEMICAL_ACCURACY}
