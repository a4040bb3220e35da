r"""Label dependence between QM9 targets on the training split: Pearson, Spearman and
distance correlation, on the raw targets and on their residuals after the composition
baseline (:mod:`factorlab.models.qm9_baseline`).

For targets :math:`y_i, y_j` over ``n`` molecules:

- Pearson: :math:`r_{ij} = \frac{\sum (y_i - \bar y_i)(y_j - \bar y_j)}{\sqrt{\sum (y_i -
  \bar y_i)^2 \sum (y_j - \bar y_j)^2}}` (float64, every training molecule);
- Spearman: Pearson of the ranks (ties get their mean rank), every training molecule;
- distance correlation (Székely, Rizzo and Bakirov 2007): with :math:`a_{kl} = |y_{ik} -
  y_{il}|` double centred, :math:`A_{kl} = a_{kl} - \bar a_{k\cdot} - \bar a_{\cdot l} + \bar
  a_{\cdot\cdot}` (and :math:`B` likewise for :math:`y_j`),

  .. math::
      \mathrm{dCov}^2_n(y_i, y_j) = \frac{1}{n^2} \sum_{k,l} A_{kl} B_{kl}, \qquad
      \mathrm{dCor}_n(y_i, y_j) = \sqrt{\frac{\mathrm{dCov}^2_n(y_i, y_j)}
      {\sqrt{\mathrm{dCov}^2_n(y_i, y_i)\, \mathrm{dCov}^2_n(y_j, y_j)}}},

  the V-statistic, in [0, 1], 0 exactly for independent variables in the limit, and 1 on
  the diagonal. It costs :math:`O(n^2)` memory per target, so it runs on a random subsample
  of the training split (``subsample``, default :data:`DCOR_SUBSAMPLE` molecules, drawn with
  ``seed``; the same molecules for every pair).

Residuals are the standardized residuals the networks learn (``CompositionBaseline.standardize``);
correlations are invariant to that affine map, so they are those of the residuals in units.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from factorlab.data.qm9 import QM9Loader, target_index
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.mtl.relatedness import Relatedness, labelled

#: Molecules of the training split the distance correlation uses (its memory is O(n^2) per target).
DCOR_SUBSAMPLE = 1000
#: The measures of :func:`label_dependence`.
LABEL_MEASURES = ("pearson", "spearman", "dcor")


def pearson_matrix(y: np.ndarray) -> np.ndarray:
    """Pearson correlation [K, K] of the columns of ``y`` [n, K] (float64)."""
    y = np.asarray(y, dtype=np.float64)
    c = y - y.mean(0)
    norm = np.sqrt((c * c).sum(0))
    r = (c.T @ c) / np.outer(norm, norm)
    np.fill_diagonal(r, 1.0)
    return np.clip(r, -1.0, 1.0)


def spearman_matrix(y: np.ndarray) -> np.ndarray:
    """Spearman rank correlation [K, K] of the columns of ``y`` [n, K] (ties: mean rank)."""
    ranks = pd.DataFrame(np.asarray(y, dtype=np.float64)).rank(method="average").to_numpy()
    return pearson_matrix(ranks)


def _centred_distances(y: torch.Tensor) -> torch.Tensor:
    """Double-centred distance matrices [K, n, n] of the columns of ``y`` [n, K]."""
    a = (y.T.unsqueeze(2) - y.T.unsqueeze(1)).abs()  # [K, n, n]
    return a - a.mean(2, keepdim=True) - a.mean(1, keepdim=True) + a.mean((1, 2), keepdim=True)


def distance_correlation_matrix(y: np.ndarray | torch.Tensor) -> np.ndarray:
    """Distance correlation [K, K] of the columns of ``y`` [n, K] (all ``n`` rows: subsample
    first; memory ``K n^2`` float64)."""
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    n, k = y.shape
    if n < 2:
        raise ValueError(f"distance correlation needs at least 2 samples, got {n}")
    flat = _centred_distances(y).reshape(k, n * n)
    dcov2 = (flat @ flat.T) / (n * n)  # [K, K]
    var = dcov2.diagonal().clamp_min(0)
    denom = torch.sqrt(torch.outer(var, var))
    dcor2 = torch.where(denom > 0, dcov2 / denom, torch.zeros_like(dcov2)).clamp(0, 1)
    return dcor2.sqrt().numpy()


def training_labels(data, train_ids: torch.Tensor, targets: list[str],
                    baseline: CompositionBaseline | None = None, batch_size: int = 4096) -> np.ndarray:
    """The training split's targets [n, K] (float64): in units, or, with ``baseline``, its
    standardized residuals."""
    cols = torch.as_tensor([target_index(t) for t in targets], device=data.device)
    if baseline is None:
        return data.y.index_select(0, train_ids).index_select(1, cols).double().cpu().numpy()
    parts = [baseline.standardize(b, b.y).index_select(1, cols).double().cpu()
             for b in QM9Loader(data, train_ids, batch_size=batch_size)]
    return torch.cat(parts).numpy()


def label_dependence(data, train_ids: torch.Tensor, targets: list[str], baseline: CompositionBaseline | None = None,
                     measures: tuple[str, ...] = LABEL_MEASURES, subsample: int = DCOR_SUBSAMPLE,
                     seed: int = 0) -> dict[str, Relatedness]:
    """Each measure of ``measures`` on the training molecules ``train_ids`` for ``targets``.

    Args:
        data: a :class:`~factorlab.data.qm9.QM9Data`.
        baseline: residuals after this composition baseline instead of the raw targets (the
            measure's name gets the suffix ``_residual``, else ``_raw``).
        subsample: molecules for the distance correlation (all when the split is smaller).
        seed: draws that subsample.

    Returns:
        ``{name: Relatedness}``; ``seconds`` counts reading the labels plus that measure.
    """
    bad = [m for m in measures if m not in LABEL_MEASURES]
    if bad or not measures:
        raise ValueError(f"unknown label measures {bad or measures}: choose from {', '.join(LABEL_MEASURES)}")
    if not isinstance(subsample, int) or subsample < 2:
        raise ValueError(f"subsample must be an int >= 2, got {subsample!r}")
    t0 = time.perf_counter()
    y = training_labels(data, train_ids, targets, baseline)
    read_s = time.perf_counter() - t0
    suffix = "_residual" if baseline is not None else "_raw"
    out = {}
    for m in measures:
        t1 = time.perf_counter()
        info = {"n": int(y.shape[0]), "labels": "residual" if baseline is not None else "raw"}
        if m == "pearson":
            values = pearson_matrix(y)
        elif m == "spearman":
            values = spearman_matrix(y)
        else:
            gen = np.random.default_rng(seed)
            rows = gen.choice(y.shape[0], size=min(subsample, y.shape[0]), replace=False)
            values = distance_correlation_matrix(y[np.sort(rows)])
            info.update(n=int(rows.size), subsample=subsample, seed=seed)
        out[m + suffix] = Relatedness(m + suffix, labelled(values, targets), read_s + time.perf_counter() - t1, info)
    return out
