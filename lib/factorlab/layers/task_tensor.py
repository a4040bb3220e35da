r"""The task-stacked weight tensor of a multitask layer and its three factorizations (DMTRL).

Yang & Hospedales (ICLR 2017, "Deep Multi-Task Representation Learning: A Tensor
Factorisation Approach") stack the weights of :math:`T` task-specific layers into one tensor
with a task mode and factorize it, so that how much a layer is shared is set by the ranks of
the factorization rather than by hand. Here the stacked tensor is
:math:`\mathcal{W} \in \mathbb{R}^{T \times n_1 \times \dots \times n_K}`, task mode first,
then the per-task weight's own modes: :math:`(T, O, I)` for a linear layer, :math:`(T, S, C,
k_h, k_w)` for a convolution. With :math:`D = \prod_k n_k`:

- **LAF** (last-axis flattening): the :math:`D \times T` matrix whose column :math:`t` is task
  :math:`t`'s flattened weight is :math:`\mathbf{L} \mathbf{S}`, :math:`\mathbf{L} \in
  \mathbb{R}^{D \times r}` (stored as :math:`(n_1, \dots, n_K, r)`: :math:`r` shared basis
  weights) and :math:`\mathbf{S} \in \mathbb{R}^{r \times T}` (each task's mixing
  coefficients); :math:`r (D + T)` parameters, :math:`1 \le r \le \min(D, T)`. Truncated SVD
  (:func:`factorlab.layers.lowrank.weight_to_lowrank`), optimal in Frobenius norm.
- **Tucker**: :math:`\mathcal{W} = \mathcal{G} \times_0 \mathbf{A}_0 \times_1 \mathbf{A}_1
  \cdots \times_K \mathbf{A}_K`, core :math:`\mathcal{G} \in \mathbb{R}^{R_0 \times \dots
  \times R_K}`, :math:`\mathbf{A}_k \in \mathbb{R}^{n_k \times R_k}` (:math:`n_0 = T`);
  :math:`\prod_k R_k + \sum_k n_k R_k` parameters, :math:`1 \le R_k \le n_k` (TensorLy pads
  a rank above its mode with random columns: refused). TensorLy's ``partial_tucker`` (HOOI
  from a HOSVD start, float64) over the modes whose rank is below their size; a mode at full
  rank keeps an identity factor.
- **TT** (tensor train): :math:`\mathcal{W}[t, j_1, \dots, j_K] = \mathbf{G}_0[t]
  \mathbf{G}_1[j_1] \cdots \mathbf{G}_K[j_K]`, :math:`\mathbf{G}_k[j]` an :math:`r_k \times
  r_{k+1}` matrix (:math:`r_0 = r_{K+1} = 1`); :math:`\sum_k r_k n_k r_{k+1}` parameters; the
  :math:`K` internal ranks satisfy :math:`r_{k+1} \le r_k n_k` and :math:`r_{k+1} \le
  \prod_{j > k} n_j`. TensorLy's ``tensor_train`` (TT-SVD, float64).

All three are exact at full ranks (``full_ranks``). In every family the *task rank* (LAF
:math:`r`, Tucker :math:`R_0`, TT :math:`r_1`) bounds the rank of the task-mode unfolding
:math:`\mathcal{W}_{(0)} \in \mathbb{R}^{T \times D}`: task rank 1 is hard sharing up to a
per-task scale, task rank :math:`T` leaves the tasks unconstrained.

Rank search from a relative error (``ranks_for_error``), each a guarantee that the
decomposition's relative Frobenius error :math:`\|\mathcal{W} - \hat{\mathcal{W}}\| /
\|\mathcal{W}\|` is at most :math:`\varepsilon`:

- LAF: the smallest :math:`r` whose discarded singular values have
  :math:`\sqrt{\sum_{j > r} \sigma_j^2} \le \varepsilon \|\mathcal{W}\|` (Eckart-Young: exactly
  the smallest rank meeting :math:`\varepsilon`).
- Tucker: per mode, the smallest :math:`R_k` whose discarded singular values of the mode-:math:`k`
  unfolding have energy at most :math:`\varepsilon^2 \|\mathcal{W}\|^2 / (K + 1)`; the truncated
  HOSVD's squared error is at most the sum of these (De Lathauwer et al. 2000), and HOOI only
  lowers it. Smallest per mode under that equal split of the error budget, not the global
  minimum over all rank tuples.
- TT: the TT-SVD with tolerance (Oseledets 2011, Alg. 1): each of the :math:`K` sequential
  truncations discards at most :math:`\varepsilon^2 \|\mathcal{W}\|^2 / K`, taking the
  smallest rank that does; the error is at most :math:`\varepsilon`.

Every search is followed by the decomposition at the chosen ranks and a check of its error.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from factorlab.layers.base import Rank, contract, expand_rank, to_tensorly
from factorlab.layers.linear import Symbols
from factorlab.layers.lowrank import weight_to_lowrank
from factorlab.layers.tt import tt_max_ranks

#: The factorizations of the task-stacked tensor.
METHODS = ("laf", "tucker", "tt")


def check_method(method: str) -> str:
    """``method`` when it is one of :data:`METHODS`, ValueError naming them otherwise."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def stack_task_weights(weights) -> torch.Tensor:
    """The task-stacked tensor [T, *shape] of ``weights`` (a tensor [T, ...] or a sequence of
    T tensors of one shape). ValueError when the tasks' shapes differ (naming them), when
    there are no tasks, or when a per-task weight is not 2-D (linear) or 4-D (conv)."""
    if isinstance(weights, torch.Tensor):
        stacked = weights
    else:
        weights = list(weights)
        if not weights:
            raise ValueError("need the weights of at least one task, got none")
        shapes = [tuple(w.shape) for w in weights]
        bad = [t for t, s in enumerate(shapes) if s != shapes[0]]
        if bad:
            raise ValueError(f"task weights must share one shape: task 0 has {shapes[0]}, task {bad[0]} has "
                             f"{shapes[bad[0]]} (all shapes: {shapes})")
        stacked = torch.stack([w.detach() for w in weights])
    if stacked.dim() not in (3, 5) or stacked.shape[0] < 1:
        raise ValueError(f"task weights must be [T, out, in] (linear) or [T, out, in, kh, kw] (conv), got shape "
                         f"{tuple(stacked.shape)}")
    return stacked


# -- factor shapes, maxima and counts -----------------------------------------------------------

def rank_count(method: str, ndim: int) -> int:
    """How many ranks ``method`` has on a tensor of ``ndim`` modes (task mode included): LAF
    1, Tucker ``ndim``, TT ``ndim - 1``."""
    return {"laf": 1, "tucker": ndim, "tt": ndim - 1}[check_method(method)]


def full_ranks(method: str, modes: Sequence[int]) -> tuple[int, ...]:
    """The smallest ranks at which ``method`` represents every tensor of shape ``modes``
    (task mode first) exactly: LAF min(D, T); Tucker the mode sizes; TT the TT-SVD maxima."""
    modes = tuple(int(n) for n in modes)
    if check_method(method) == "laf":
        return (min(math.prod(modes[1:]), modes[0]),)
    if method == "tucker":
        return modes
    return tt_max_ranks(modes)


def check_ranks(method: str, modes: Sequence[int], rank: Rank) -> tuple[int, ...]:
    """``rank`` as validated ints for ``method`` on a tensor of shape ``modes``: one int (used
    for every rank) or one per rank (LAF 1, Tucker one per mode, TT one per internal bond),
    each 1..its maximum (and, for TT, :math:`r_{k+1} \\le r_k n_k`). ValueError naming the
    valid values otherwise."""
    modes = tuple(int(n) for n in modes)
    maxima = full_ranks(method, modes)
    name = f"{method} rank (modes {modes})"
    try:
        ranks = expand_rank(name, rank, len(maxima), maxima)
    except ValueError as err:
        raise ValueError(f"{err}; valid: one int or {len(maxima)}, the k-th in 1..maxima[k], maxima {maxima}"
                         ) from None
    if method == "tt":
        for k, r in enumerate(ranks):
            prev = 1 if k == 0 else ranks[k - 1]
            if r > prev * modes[k]:
                raise ValueError(f"{name}: tt rank[{k}]={r} exceeds rank[{k - 1}] x mode {k} = {prev * modes[k]}: "
                                 f"TT ranks need r_(k+1) <= r_k n_k; valid maxima {maxima}")
    return ranks


def factor_shapes(method: str, modes: Sequence[int], ranks: Sequence[int]) -> list[tuple[int, ...]]:
    """Shapes of the factors, in storage order: LAF (L [n_1..n_K, r], S [r, T]); Tucker (core
    [R_0..R_K], A_0 [T, R_0], ..., A_K [n_K, R_K]); TT (G_k [r_k, n_k, r_(k+1)] for k = 0..K)."""
    modes, ranks = tuple(modes), tuple(ranks)
    if check_method(method) == "laf":
        return [(*modes[1:], ranks[0]), (ranks[0], modes[0])]
    if method == "tucker":
        return [ranks] + [(n, r) for n, r in zip(modes, ranks)]
    r = (1, *ranks, 1)
    return [(r[k], n, r[k + 1]) for k, n in enumerate(modes)]


def factor_count(method: str, modes: Sequence[int], ranks: Sequence[int]) -> int:
    """Number of factor entries: LAF r (D + T); Tucker prod R_k + sum n_k R_k; TT
    sum r_k n_k r_(k+1)."""
    return sum(math.prod(s) for s in factor_shapes(method, modes, ranks))


def summed_terms(method: str, ranks: Sequence[int]) -> int:
    """Products of factor entries summed into each entry of the tensor: r, prod R_k, or the
    product of the internal TT ranks."""
    return math.prod(ranks)


def task_rank(method: str, ranks: Sequence[int]) -> int:
    """The rank that bounds the task-mode unfolding: LAF r, Tucker R_0, TT r_1."""
    check_method(method)
    return int(ranks[0])


# -- einsum subscripts ----------------------------------------------------------------------------

def task_subscripts(method: str, ndim: int, sym: Symbols | None = None) -> tuple[str, list[str]]:
    """(tensor letters, factor letters) of ``method`` on a tensor of ``ndim`` modes: the
    tensor's letters (task mode first) and one subscript per factor (storage order); ``sym``
    hands out the letters (so callers can add their own)."""
    sym = sym or Symbols()
    m = sym.take(ndim)
    if check_method(method) == "laf":
        j = sym.take()
        return m, [m[1:] + j, j + m[0]]
    if method == "tucker":
        r = sym.take(ndim)
        return m, [r] + [m[k] + r[k] for k in range(ndim)]
    r = sym.take(ndim + 1)
    return m, [r[k] + m[k] + r[k + 1] for k in range(ndim)]


def factors_to_task_tensor(method: str, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The task-stacked tensor [T, n_1..n_K] of ``method``'s ``factors`` (storage order)."""
    factors = list(factors)
    ndim = {"laf": factors[0].dim(), "tucker": len(factors) - 1, "tt": len(factors)}[check_method(method)]
    m, fs = task_subscripts(method, ndim)
    return contract(",".join(fs) + "->" + m, *factors)


# -- decompositions -------------------------------------------------------------------------------

def task_tensor_to_factors(method: str, tensor: torch.Tensor, rank: Rank, *, n_iter_max: int = 100
                           ) -> list[torch.Tensor]:
    """The factors (float64, CPU, storage order) of ``tensor`` [T, n_1..n_K] by ``method`` at
    ``rank`` (see :func:`check_ranks`); exact at :func:`full_ranks`."""
    modes = tuple(tensor.shape)
    ranks = check_ranks(method, modes, rank)
    t = to_tensorly(tensor)
    if method == "laf":
        u, v = weight_to_lowrank(t.reshape(modes[0], -1).T, ranks[0])  # [D, r], [r, T]
        return [u.reshape(*modes[1:], ranks[0]), v]
    if method == "tucker":
        return _tucker(t, ranks, n_iter_max)
    from tensorly.decomposition import tensor_train

    cores = list(tensor_train(t, rank=[1, *ranks, 1]).factors)
    got = tuple(c.shape[-1] for c in cores[:-1])
    if got != ranks:  # cannot happen after check_ranks; guards TensorLy's silent rank clamping
        raise ValueError(f"TT-SVD returned ranks {got}, asked for {ranks}")
    return cores


def _tucker(t: torch.Tensor, ranks: tuple[int, ...], n_iter_max: int) -> list[torch.Tensor]:
    """Tucker factors [core, A_0..A_K] of ``t`` (float64) at ``ranks``: TensorLy's
    ``partial_tucker`` (HOOI from a HOSVD start) over the truncated modes only; a mode kept at
    full rank gets the identity factor (any orthogonal factor is exact there, and leaving it out
    of HOOI saves its large SVDs: HOOI's stopping test, a difference of errors near rounding,
    never fires on an exact decomposition)."""
    from tensorly.decomposition import partial_tucker

    cut = [k for k, (n, r) in enumerate(zip(t.shape, ranks)) if r < n]
    factors = [torch.eye(n, dtype=t.dtype) for n in t.shape]
    if not cut:
        return [t.clone(), *factors]
    (core, cut_factors), _ = partial_tucker(t, rank=[ranks[k] for k in cut], modes=cut, init="svd",
                                            n_iter_max=n_iter_max, tol=1e-10)
    for k, f in zip(cut, cut_factors):
        factors[k] = f
    return [core, *factors]


def relative_error(tensor: torch.Tensor, approx: torch.Tensor) -> float:
    """||tensor - approx||_F / ||tensor||_F in float64 (0 for two zero tensors)."""
    a, b = tensor.detach().double().cpu(), approx.detach().double().cpu()
    norm = torch.linalg.norm(a)
    return float(torch.linalg.norm(a - b) / norm) if norm > 0 else float(torch.linalg.norm(b))


def _smallest_rank(s: torch.Tensor, budget_sq: float) -> int:
    """Smallest r >= 1 with sum(s[r:]**2) <= budget_sq (s sorted descending)."""
    tail = torch.cat([torch.flip(torch.cumsum(torch.flip(s**2, [0]), 0), [0]), s.new_zeros(1)])
    ok = (tail <= budget_sq * (1 + 1e-12)).nonzero()
    return max(1, int(ok[0]))


def ranks_for_error(method: str, tensor: torch.Tensor, rel_error: float) -> tuple[int, ...]:
    """Ranks of ``method`` guaranteeing a relative Frobenius error at most ``rel_error`` on
    ``tensor`` [T, ...], by the searches in the module docstring (LAF: the smallest such
    rank; Tucker: per mode under an equal split of the error budget; TT: TT-SVD with
    tolerance). ``rel_error`` 0 gives :func:`full_ranks` (up to exact rank deficiency)."""
    check_method(method)
    if not (isinstance(rel_error, (int, float)) and 0 <= rel_error < 1):
        raise ValueError(f"rel_error must be a number in [0, 1), got {rel_error!r}")
    t = to_tensorly(tensor)
    modes = tuple(t.shape)
    total_sq = float((t**2).sum())
    budget = rel_error**2 * total_sq
    if method == "laf":
        return (_smallest_rank(torch.linalg.svdvals(t.reshape(modes[0], -1)), budget),)
    if method == "tucker":
        ranks = []
        for k in range(len(modes)):
            unfolding = t.movedim(k, 0).reshape(modes[k], -1)
            ranks.append(_smallest_rank(torch.linalg.svdvals(unfolding), budget / len(modes)))
        return tuple(ranks)
    ranks, prev, rest = [], 1, t
    for k in range(len(modes) - 1):
        unfolding = rest.reshape(prev * modes[k], -1)
        u, s, vh = torch.linalg.svd(unfolding, full_matrices=False)
        r = _smallest_rank(s, budget / (len(modes) - 1))
        ranks.append(r)
        rest, prev = s[:r, None] * vh[:r], r
    return tuple(ranks)


def decompose_task_tensor(method: str, tensor: torch.Tensor, *, rank: Rank | None = None,
                          rel_error: float | None = None, n_iter_max: int = 100
                          ) -> tuple[tuple[int, ...], list[torch.Tensor], float]:
    """(ranks, factors, relative error) of ``tensor`` [T, ...] by ``method``, at ``rank`` or at
    the ranks :func:`ranks_for_error` picks for ``rel_error`` (give exactly one). The error is
    measured on the rebuilt tensor; with ``rel_error`` it is checked to be within it."""
    check_rel_error_or_rank(rank, rel_error)
    ranks = check_ranks(method, tuple(tensor.shape), rank) if rank is not None else \
        ranks_for_error(method, tensor, rel_error)
    factors = task_tensor_to_factors(method, tensor, ranks, n_iter_max=n_iter_max)
    err = relative_error(tensor, factors_to_task_tensor(method, factors))
    if rel_error is not None and err > rel_error + 1e-9:
        raise RuntimeError(f"{method} at ranks {ranks} reached relative error {err:.3g} > {rel_error}")
    return ranks, factors, err


# -- the learned sharing --------------------------------------------------------------------------

def task_mode_singular_values(tensor: torch.Tensor) -> torch.Tensor:
    """Singular values (float64, descending, length min(T, D)) of the task-mode unfolding
    [T, D] of ``tensor`` [T, ...]: how many independent directions the T task weights span.
    One dominant value means the layer is effectively shared (up to a per-task scale); T
    comparable values mean it is task-specific."""
    t = tensor.detach().to("cpu", torch.float64)
    return torch.linalg.svdvals(t.reshape(t.shape[0], -1))


def effective_rank(singular_values: torch.Tensor) -> float:
    """exp of the entropy of the normalised squared singular values (Roy & Vetterli 2007),
    between 1 (one direction) and their number (all equal); 0 for a zero tensor."""
    e = singular_values.double() ** 2
    if float(e.sum()) == 0:
        return 0.0
    p = e / e.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def check_rel_error_or_rank(rank, rel_error) -> None:
    """ValueError unless exactly one of ``rank`` and ``rel_error`` is given."""
    if (rank is None) == (rel_error is None):
        raise ValueError(f"give exactly one of rank and rel_error (got rank={rank!r}, rel_error={rel_error!r})")


__all__ = ["METHODS", "check_method", "check_ranks", "check_rel_error_or_rank",
           "decompose_task_tensor", "effective_rank", "factor_count", "factor_shapes", "factors_to_task_tensor",
           "full_ranks", "rank_count", "ranks_for_error", "relative_error", "stack_task_weights", "summed_terms",
           "task_mode_singular_values", "task_rank", "task_subscripts", "task_tensor_to_factors"]
