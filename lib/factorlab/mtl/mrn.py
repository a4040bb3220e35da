r"""Multilinear Relationship Networks (Long, Cao, Wang & Yu, NeurIPS 2017; first as "Deep
Relationship Networks", 2015): a tensor-normal prior on the task-stacked weights of the
task-specific layers, with Kronecker-factored covariances over input features, output
features and tasks that are learned alongside the network.

For one task-specific layer of T tasks, stack the task weights into
:math:`\mathcal{W} \in \mathbb{R}^{D_1 \times D_2 \times T}` (``[D1, D2, T]``: input
features, output features, tasks). The prior is
:math:`\mathrm{vec}(\mathcal{W}) \sim \mathcal{N}(0, \Sigma_T \otimes \Sigma_2 \otimes \Sigma_1)`
with ``vec`` stacking the first index fastest (column-major, Kolda & Bader's convention, the
paper's); with PyTorch's row-major ``W.flatten()`` the same covariance reads
:math:`\Sigma_1 \otimes \Sigma_2 \otimes \Sigma_T`. Its negative log-density, up to constants,
is

.. math::
    \tfrac12 \mathrm{vec}(\mathcal{W})^\top (\Sigma_T \otimes \Sigma_2 \otimes \Sigma_1)^{-1}
    \mathrm{vec}(\mathcal{W}) + \tfrac{D_2 T}{2} \ln|\Sigma_1| + \tfrac{D_1 T}{2} \ln|\Sigma_2|
    + \tfrac{D_1 D_2}{2} \ln|\Sigma_T|,

and the quadratic form is computed without the Kronecker product, by mode products:
:math:`\langle \mathcal{W}, \mathcal{W} \times_1 \Sigma_1^{-1} \times_2 \Sigma_2^{-1} \times_3
\Sigma_T^{-1} \rangle` (:func:`tensor_normal_penalty`; O(D1 D2 T (D1 + D2 + T)) time, no
(D1 D2 T)^2 matrix).

Covariance updates (the paper's alternating closed form, Eqs. 7-9 of Long et al. 2017, the
"flip-flop" maximum-likelihood updates of the matrix/tensor normal): with
:math:`\mathcal{W}_{(k)}` the mode-k unfolding and the other two factors held,

.. math::
    \Sigma_1 &\leftarrow \tfrac{1}{D_2 T} \mathcal{W}_{(1)} (\Sigma_T \otimes \Sigma_2)^{-1}
               \mathcal{W}_{(1)}^\top + \epsilon I_{D_1}, \\
    \Sigma_2 &\leftarrow \tfrac{1}{D_1 T} \mathcal{W}_{(2)} (\Sigma_T \otimes \Sigma_1)^{-1}
               \mathcal{W}_{(2)}^\top + \epsilon I_{D_2}, \\
    \Sigma_T &\leftarrow \tfrac{1}{D_1 D_2} \mathcal{W}_{(3)} (\Sigma_2 \otimes \Sigma_1)^{-1}
               \mathcal{W}_{(3)}^\top + \epsilon I_T,

applied in this order, each using the factors just updated (:func:`flip_flop_update`; the
Kronecker inverses are again mode products). ``ε`` (default 1e-3, in the units of the
covariance) keeps each factor positive definite when a unfolding is rank-deficient (D2 T < D1
and the like). The product is invariant to :math:`(c\Sigma_1, \Sigma_2 / c)`; to keep the
factors comparable between updates, ``normalise=True`` (default) then rescales
:math:`\Sigma_1` and :math:`\Sigma_2` to unit mean diagonal and moves their scales into
:math:`\Sigma_T` (the Kronecker product, hence the penalty, is unchanged by this rescaling).
Everything is computed in float64 and without gradients; the penalty's gradient reaches
:math:`\mathcal{W}` only (the covariances are the prior's state, as in the paper's
alternating optimisation).

The learned :math:`\Sigma_T` (or its correlation, :meth:`TensorNormalPrior.task_correlation`)
is a measure of which tasks are related.

For training, :class:`MRNPenalty` is a zero-argument callable returning ``λ`` times the
penalty of a task-stacked weight tensor, updating the covariances every ``update_every`` calls:
pass it as ``penalty=`` to :func:`factorlab.train.fit_regression` (as
:class:`factorlab.mtl.soft.SoftSharingPenalty` is passed). :func:`mrn_penalty` builds one on a
QM9 network's task-specific modules (the heads, the last grouped encoder layer), read as
[D1, D2, T] by :func:`task_stacked`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from factorlab.models.grouped import GroupedLinear, TaskHeads

#: Default ε added to each covariance factor after an update.
EPS = 1e-3


def check_task_tensor(w: torch.Tensor) -> tuple[int, int, int]:
    """``(D1, D2, T)`` of a task-stacked weight tensor ``w`` [D1, D2, T]; ValueError otherwise."""
    if not isinstance(w, torch.Tensor) or w.dim() != 3 or 0 in w.shape:
        shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"task-stacked weights must be a tensor [D1, D2, T] (input features, output features, "
                         f"tasks) with no empty mode, got {shape}")
    return tuple(w.shape)


def check_covariances(covs: Sequence[torch.Tensor], shape: tuple[int, int, int]) -> None:
    """ValueError unless ``covs`` are three square matrices of sizes ``shape`` (D1, D2, T)."""
    if len(covs) != 3:
        raise ValueError(f"need three covariance factors (Σ1 [D1, D1], Σ2 [D2, D2], ΣT [T, T]), got {len(covs)}")
    for k, (c, d) in enumerate(zip(covs, shape)):
        if c.dim() != 2 or tuple(c.shape) != (d, d):
            raise ValueError(f"covariance factor {k + 1} must be [{d}, {d}] to match weights {shape}, "
                             f"got {tuple(c.shape)}")


def mode_product(x: torch.Tensor, m: torch.Tensor, mode: int) -> torch.Tensor:
    r""":math:`x \times_{mode} m`: contracts axis ``mode`` of ``x`` with the columns of ``m``
    ([J, x.shape[mode]]), the result's axis ``mode`` of size J."""
    return torch.movedim(torch.tensordot(m, x, dims=([1], [mode])), 0, mode)


def multi_mode_product(x: torch.Tensor, mats: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """``x`` times ``mats[k]`` along every mode ``k`` whose matrix is not None."""
    for k, m in enumerate(mats):
        if m is not None:
            x = mode_product(x, m, k)
    return x


def _spd_inverse(c: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive definite matrix by its Cholesky factor (ValueError when
    it is not positive definite)."""
    chol, info = torch.linalg.cholesky_ex(c)
    if int(info) != 0:
        raise ValueError(f"covariance factor of size {c.shape[0]} is not positive definite")
    return torch.cholesky_inverse(chol)


def tensor_normal_penalty(w: torch.Tensor, covs: Sequence[torch.Tensor] | None = None, *,
                          precisions: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    r""":math:`\mathrm{vec}(\mathcal{W})^\top (\Sigma_T \otimes \Sigma_2 \otimes \Sigma_1)^{-1}
    \mathrm{vec}(\mathcal{W})` for ``w`` [D1, D2, T] (a scalar with gradients to ``w`` and to
    ``covs``), by mode products. Give the covariances ``covs`` (Σ1, Σ2, ΣT) or their inverses
    ``precisions`` (exactly one)."""
    shape = check_task_tensor(w)
    if (covs is None) == (precisions is None):
        raise ValueError("give either the covariance factors covs or their inverses precisions, not both/neither")
    mats = list(precisions) if precisions is not None else list(covs)
    check_covariances(mats, shape)
    if precisions is None:
        mats = [torch.linalg.inv(c) for c in mats]
    return (w * multi_mode_product(w, mats)).sum()


@torch.no_grad()
def flip_flop_update(w: torch.Tensor, covs: Sequence[torch.Tensor], eps: float = EPS,
                     normalise: bool = True) -> list[torch.Tensor]:
    """One sweep of the closed-form covariance updates of the module docstring (Σ1, then Σ2,
    then ΣT, each with the latest others), each plus ``eps`` I, then (``normalise``) Σ1 and Σ2
    rescaled to unit mean diagonal with ΣT absorbing the scales. ``w`` [D1, D2, T]; returns
    three new float64 matrices."""
    shape = check_task_tensor(w)
    check_covariances(covs, shape)
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    w = w.detach().double()
    covs = [c.detach().double().clone() for c in covs]
    n = w.numel()
    for k in range(3):
        precisions = [None if j == k else _spd_inverse(covs[j]) for j in range(3)]
        whitened = multi_mode_product(w, precisions)  # W ×_j Σj^{-1} for j != k
        unf_w = torch.movedim(w, k, 0).reshape(shape[k], -1)
        unf_v = torch.movedim(whitened, k, 0).reshape(shape[k], -1)
        c = unf_w @ unf_v.T / (n // shape[k])
        covs[k] = (c + c.T) / 2 + eps * torch.eye(shape[k], dtype=c.dtype, device=c.device)
    if normalise:
        for k in (0, 1):
            scale = covs[k].diagonal().mean()
            covs[k] = covs[k] / scale
            covs[2] = covs[2] * scale
    return covs


class TensorNormalPrior:
    """The state of one tensor-normal prior: three covariance factors (float64, identity at the
    start) for weights [D1, D2, T], their cached inverses, ``eps`` and ``normalise`` of
    :func:`flip_flop_update`."""

    def __init__(self, d1: int, d2: int, num_tasks: int, *, eps: float = EPS, normalise: bool = True,
                 device: torch.device | str = "cpu"):
        for name, d in (("D1", d1), ("D2", d2), ("num_tasks", num_tasks)):
            if not isinstance(d, int) or d < 1:
                raise ValueError(f"{name} must be a positive int, got {d!r}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        self.shape = (d1, d2, num_tasks)
        self.eps, self.normalise = float(eps), bool(normalise)
        self.covs = [torch.eye(d, dtype=torch.float64, device=device) for d in self.shape]
        self._precisions = [c.clone() for c in self.covs]
        self.updates = 0

    def penalty(self, w: torch.Tensor) -> torch.Tensor:
        """:func:`tensor_normal_penalty` of ``w`` [D1, D2, T] under the current factors, in
        ``w``'s dtype (gradients to ``w``)."""
        if check_task_tensor(w) != self.shape:
            raise ValueError(f"weights must be {list(self.shape)} for this prior, got {list(w.shape)}")
        return tensor_normal_penalty(w, precisions=[p.to(w.dtype) for p in self._precisions])

    def update(self, w: torch.Tensor) -> None:
        """One :func:`flip_flop_update` sweep from the current weights ``w``."""
        if check_task_tensor(w) != self.shape:
            raise ValueError(f"weights must be {list(self.shape)} for this prior, got {list(w.shape)}")
        self.covs = flip_flop_update(w, self.covs, self.eps, self.normalise)
        self._precisions = [_spd_inverse(c) for c in self.covs]
        self.updates += 1

    def task_correlation(self) -> torch.Tensor:
        """ΣT scaled to unit diagonal [T, T]: the learned relatedness of the tasks."""
        d = self.covs[2].diagonal().sqrt()
        return self.covs[2] / d[:, None] / d[None, :]


def stack_task_weights(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """T task weights, each [D2, D1] as ``nn.Linear`` holds them (out, in), -> the prior's
    [D1, D2, T] (gradients kept). ValueError when they are not T >= 2 same-shaped matrices."""
    weights = list(weights)
    if len(weights) < 2 or any(w.dim() != 2 or w.shape != weights[0].shape for w in weights):
        raise ValueError(f"need at least two task weights of one shape [out, in], got "
                         f"{[tuple(w.shape) for w in weights]}")
    return torch.stack([w.T for w in weights], dim=-1)


def task_stacked(module: nn.Module) -> torch.Tensor:
    """The task-stacked weights [D1, D2, T] (with gradients) of a task-specific layer of the
    QM9 networks: a :class:`~factorlab.models.grouped.GroupedLinear` of T groups (weight
    [T, in, out] -> [in, out, T]) or the first layers of :class:`~factorlab.models.grouped.
    TaskHeads` with T heads in all (weight1 [K, T', in, hidden] with K T' = T and K or T' one:
    the heads of T grouped single-task networks or of one hard-shared network ->
    [in, hidden, T]). ValueError for anything else."""
    if isinstance(module, GroupedLinear):
        return module.weight.permute(1, 2, 0)
    if isinstance(module, TaskHeads):
        k, t = module.weight1.shape[:2]
        if k != 1 and t != 1:
            raise ValueError(f"TaskHeads of {k} groups x {t} tasks: MRN stacks one head per task, so one of them "
                             "must be 1")
        return module.weight1.reshape(k * t, module.in_channels, module.hidden).permute(1, 2, 0)
    raise ValueError(f"MRN stacks the weights of a GroupedLinear or TaskHeads, got {type(module).__name__}")


def mrn_penalty(model: nn.Module, lam: float, layers: Sequence[str] = ("heads",), **kwargs) -> "MRNPenalty":
    """:class:`MRNPenalty` on the named task-specific modules of ``model`` (default its
    ``heads``; e.g. also ``"encoder.convs.3.nn.2"``, the last encoder layer of a grouped GINE),
    each read by :func:`task_stacked`; ``kwargs`` as :class:`MRNPenalty`'s. Pass the result as
    ``penalty=`` to :func:`factorlab.train.fit_regression`."""
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown or not layers:
        raise ValueError(f"unknown MRN layer(s) {unknown or list(layers)}: name modules of the model, e.g. 'heads'")
    return MRNPenalty([(lambda m=modules[name]: task_stacked(m)) for name in layers], lam, **kwargs)


class MRNPenalty:
    """``λ ·`` :meth:`TensorNormalPrior.penalty` summed over task-specific layers, as a
    zero-argument callable for :func:`factorlab.train.fit_regression`'s ``penalty``.

    Args:
        layers: one callable per constrained layer, returning its task-stacked weights
            [D1, D2, T] with gradients (e.g. ``lambda: stack_task_weights(heads)``).
        lam: ``λ >= 0``.
        update_every: update every prior's covariances (one flip-flop sweep) before the
            penalty of every ``update_every``-th call, the first call included.
        eps, normalise: as in :func:`flip_flop_update`.
    """

    def __init__(self, layers: Sequence[Callable[[], torch.Tensor]], lam: float, *, update_every: int = 100,
                 eps: float = EPS, normalise: bool = True):
        if not layers:
            raise ValueError("need at least one layer (a callable returning its [D1, D2, T] task weights)")
        if not (isinstance(lam, (int, float)) and lam >= 0 and lam != float("inf")):
            raise ValueError(f"MRN lambda must be a finite number >= 0, got {lam!r}")
        if not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"update_every must be a positive int, got {update_every!r}")
        self.layers, self.lam, self.update_every = list(layers), float(lam), update_every
        self.priors = []
        for get in self.layers:
            w = get()
            d1, d2, t = check_task_tensor(w)
            self.priors.append(TensorNormalPrior(d1, d2, t, eps=eps, normalise=normalise, device=w.device))
        self.calls = 0

    def raw(self) -> torch.Tensor:
        """The summed penalties (no ``λ``), updating the covariances first when due."""
        update = self.calls % self.update_every == 0
        self.calls += 1
        total = None
        for get, prior in zip(self.layers, self.priors):
            w = get()
            if update:
                prior.update(w)
            term = prior.penalty(w)
            total = term if total is None else total + term
        return total

    def __call__(self) -> torch.Tensor:
        return self.lam * self.raw()


__all__ = ["EPS", "MRNPenalty", "TensorNormalPrior", "check_task_tensor", "flip_flop_update", "mode_product",
           "mrn_penalty", "multi_mode_product", "stack_task_weights", "task_stacked", "tensor_normal_penalty"]
