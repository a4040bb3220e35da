r"""The task correlation a deep relationship network (MRN, Long et al. 2017) learned in
the runs of ``qm9_tensor_mtl``, read from their records for two chapters: the tensor chapter
(:mod:`factorlab.report.qm9_tensor_mtl`, which draws it) and the relatedness chapter
(:mod:`factorlab.report.qm9_relatedness`, which ranks it against the measured pair gains). Both
take the same λ (:func:`best_mrn_lambda`) and layer (:data:`CORRELATION_LAYER`); this module
imports neither, so neither imports the other to get them.

MRN puts a tensor-normal prior on the task-stacked weights ``W`` [D1, D2, T] of a layer,
``vec W ~ N(0, Σ_T ⊗ Σ_2 ⊗ Σ_1)``, and learns the covariances with the network; a record's
``metrics["task_correlation"][layer]`` is ``C = D^{-1/2} Σ_T D^{-1/2}`` (``D = diag Σ_T``), the
correlation of the tasks' weights under that prior, rows and columns in the run's ``targets``
order.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from factorlab.experiments.qm9_common import NASH11

#: The layer whose learned task correlation the chapters use: the task heads.
CORRELATION_LAYER = "heads"


def best_mrn_lambda(tensor_records: Sequence[dict]) -> float | None:
    """MRN's λ with the lowest seed-mean ``mean_valid_mae_std`` over the ``qm9_tensor_mtl``
    records (smallest on a tie); None without MRN runs."""
    rows = [(float(r["config"]["lam"]), r["metrics"]["mean_valid_mae_std"]) for r in tensor_records
            if r["config"]["method"] == "mrn"]
    if not rows:
        return None
    curve = pd.DataFrame(rows, columns=["lam", "valid"]).groupby("lam").valid.mean().sort_index()
    return float(curve.idxmin())


def mrn_runs(tensor_records: Sequence[dict]) -> list[dict]:
    """The MRN runs on the NASH11 targets at :func:`best_mrn_lambda`, by seed; [] without MRN
    runs."""
    lam = best_mrn_lambda(tensor_records)
    if lam is None:
        return []
    return sorted((r for r in tensor_records if r["config"]["method"] == "mrn" and r["config"]["lam"] == lam
                   and sorted(r["config"]["targets"]) == sorted(NASH11)), key=lambda r: r["config"]["seed"])


def mrn_matrices(tensor_records: Sequence[dict], layer: str = CORRELATION_LAYER) -> dict[int, pd.DataFrame]:
    """``{seed: NASH11 x NASH11 matrix}``: the learned task correlation ``C`` of ``layer`` in each
    run of :func:`mrn_runs`, rows and columns reordered from the run's ``targets`` to NASH11's and
    symmetrized (``(C + C^T) / 2``: exact on a symmetric record); {} without MRN runs.

    Raises:
        ValueError: a run's correlation is not T x T over its T targets.
    """
    out: dict[int, pd.DataFrame] = {}
    for r in mrn_runs(tensor_records):
        targets = list(r["config"]["targets"])
        c = np.asarray(r["metrics"]["task_correlation"][layer], float)
        if c.shape != (len(targets), len(targets)):
            raise ValueError(f"MRN task correlation of seed {r['config']['seed']} has shape {c.shape}, "
                             f"expected {len(targets)} x {len(targets)} over its targets")
        sym = pd.DataFrame((c + c.T) / 2, index=targets, columns=targets)
        out[r["config"]["seed"]] = sym.loc[NASH11, NASH11]
    return out


def correlation_gap(tensor_records: Sequence[dict], layer: str = CORRELATION_LAYER) -> str:
    """How far the learned task correlations of ``layer`` stay from one: the largest
    ``1 - C_ij`` over the off-diagonal entries of every run of :func:`mrn_matrices`, as text
    (``1.5e-06``), or "not measured" without MRN runs. A value near zero means the prior sees
    every pair of tasks as (almost) perfectly correlated: the tasks' weights are one shared
    weight plus small deviations, as when every task's network starts from one initialisation."""
    mats = mrn_matrices(tensor_records, layer)
    if not mats:
        return "not measured"
    off = [1.0 - m.to_numpy()[~np.eye(len(m), dtype=bool)] for m in mats.values()]
    return f"{float(np.max(np.concatenate(off))):.1e}"


__all__ = ["CORRELATION_LAYER", "best_mrn_lambda", "correlation_gap", "mrn_matrices", "mrn_runs"]
