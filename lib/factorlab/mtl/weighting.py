r"""Loss weighting for a hard-shared multitask model: how the ``K`` per-task losses
:math:`L_k` of one step become the scalar that is differentiated.

Three methods, one interface (``combine``, ``after_step``, ``parameters``, ``weights``), which
:func:`factorlab.train.qm9_regression.fit_regression` calls through its ``weighting``
argument:

- :class:`EqualWeighting`: :math:`\mathcal{L} = \sum_k L_k` (the trainer's default sum).
- :class:`UncertaintyWeighting` (Kendall, Gal and Cipolla 2018), regression form with a
  learnable log-variance :math:`s_k = \log \sigma_k^2` per task:

  .. math::
      \mathcal{L} = \sum_k \tfrac12 \big( e^{-s_k} L_k + s_k \big)
      = \sum_k \frac{1}{2\sigma_k^2} L_k + \log \sigma_k ,

  Kendall et al.'s Gaussian likelihood (their eq. 7 summed over tasks), as the Nash-MTL and
  FAMO benchmark code writes it. (:math:`\sum_k e^{-s_k} L_k + s_k` is twice this: the same
  minimiser :math:`s_k^* = \log L_k`, twice the gradient.) The :math:`s_k` start at 0 and
  train with the network's optimizer, in their own parameter group (``lr``, no weight decay).
- :class:`FAMO` (Liu, Liang, Chen and Liu 2023, "FAMO: Fast Adaptive Multitask
  Optimization", Algorithm 1): task weights :math:`z = \mathrm{softmax}(\xi)` from logits
  :math:`\xi \in \mathbb{R}^K` (start 0). The network descends

  .. math::
      \mathcal{L} = \sum_k \frac{z_k}{c} \log(L_k - L_k^* + \epsilon), \qquad
      c = \sum_k \frac{z_k}{L_k - L_k^* + \epsilon} \ \text{(no gradient)},

  whose gradient is :math:`\sum_k \frac{z_k / (L_k - L_k^* + \epsilon)}{c} \nabla L_k`: a
  convex combination of the task gradients. After the network's step, with the losses
  :math:`L_k^{+}` of the *same batch* at the new parameters, the logits take one step of
  their own optimizer on the gradient

  .. math::
      \delta = J_z(\xi)^\top \big( \log(L - L^* + \epsilon) - \log(L^{+} - L^* + \epsilon) \big),

  (:math:`J_z` the softmax's Jacobian): tasks whose log loss fell most lose weight. The
  paper's update is :math:`\xi \leftarrow \xi - \beta(\delta + \gamma \xi)`
  (``optimizer="sgd"``); the authors' code, and our default, use Adam on :math:`\xi` with
  learning rate :math:`\beta` and weight decay :math:`\gamma` (``optimizer="adam"``; their
  QM9 run: :math:`\beta = 0.025`, :math:`\gamma = 10^{-3}`, :math:`L^* = 0`,
  :math:`\epsilon = 10^{-8}`). Their loop also clips the shared gradient's norm to 1; ours
  does not clip, for any method.

Shapes: ``losses`` is a float tensor [K] (each task's mean loss over the batch, with
gradients); ``weights()`` is [K].
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

#: Weighting methods :func:`make_weighting` builds.
WEIGHTINGS = ("equal", "uncertainty", "famo")


def _check_tasks(num_tasks: int) -> int:
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}")
    return num_tasks


def _check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def _check_losses(losses: torch.Tensor, k: int) -> None:
    if losses.shape != (k,):
        raise ValueError(f"expected losses of shape [{k}], got {tuple(losses.shape)}")


class EqualWeighting(nn.Module):
    r""":math:`\mathcal{L} = \sum_k L_k` (no parameters, nothing learned)."""

    lr = None

    def __init__(self, num_tasks: int):
        super().__init__()
        self.num_tasks = _check_tasks(num_tasks)

    def combine(self, losses: torch.Tensor) -> torch.Tensor:
        """[K] -> scalar: ``losses.sum()`` (the trainer's own expression)."""
        _check_losses(losses, self.num_tasks)
        return losses.sum()

    def after_step(self, recompute: Callable[[], torch.Tensor]) -> None:
        """Nothing to update."""

    def weights(self) -> torch.Tensor:
        """All ones [K]."""
        return torch.ones(self.num_tasks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_tasks={self.num_tasks})"


class UncertaintyWeighting(nn.Module):
    r"""Kendall et al. 2018, regression: :math:`\sum_k \tfrac12(e^{-s_k} L_k + s_k)`.

    Args:
        num_tasks: ``K``.
        lr: learning rate of the log-variances :math:`s` (their own parameter group of the
            network's optimizer; the benchmark code's 0.025 by default).

    Attributes:
        log_var: :math:`s` [K], learnable, initialised to 0 (unit weights 1/2).
    """

    def __init__(self, num_tasks: int, lr: float = 0.025):
        super().__init__()
        self.num_tasks = _check_tasks(num_tasks)
        self.lr = _check_positive("lr", lr)
        self.log_var = nn.Parameter(torch.zeros(num_tasks))

    def combine(self, losses: torch.Tensor) -> torch.Tensor:
        """[K] -> scalar (gradients flow to the network and to ``log_var``)."""
        _check_losses(losses, self.num_tasks)
        s = self.log_var.to(losses.dtype)
        return 0.5 * (torch.exp(-s) * losses + s).sum()

    def after_step(self, recompute: Callable[[], torch.Tensor]) -> None:
        """Nothing beyond the optimizer's step on ``log_var``."""

    def weights(self) -> torch.Tensor:
        r"""The loss weights :math:`\tfrac12 e^{-s_k}` [K] (detached, on the CPU)."""
        return 0.5 * torch.exp(-self.log_var.detach()).cpu()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_tasks={self.num_tasks}, lr={self.lr})"


class FAMO(nn.Module):
    r"""FAMO (Liu et al. 2023): loss-rate balancing with one logit update per step.

    Args:
        num_tasks: ``K``.
        lr: :math:`\beta`, the logits' learning rate.
        gamma: :math:`\gamma`, the logits' weight decay (regularisation towards equal weights).
        optimizer: ``"adam"`` (the authors' code) or ``"sgd"`` (the paper's Algorithm 1).
        min_losses: :math:`L^*` [K], lower bounds of the losses (default 0).
        eps: :math:`\epsilon`.

    The logits are *not* network parameters (``parameters()`` is empty): they change only in
    :meth:`after_step`, from the losses before and after the network's step.
    """

    lr = None  # nothing for the network's optimizer

    def __init__(self, num_tasks: int, lr: float = 0.025, gamma: float = 1e-3, optimizer: str = "adam",
                 min_losses: torch.Tensor | None = None, eps: float = 1e-8):
        super().__init__()
        self.num_tasks = _check_tasks(num_tasks)
        self.beta = _check_positive("lr", lr)
        self.gamma = _check_positive("gamma", gamma, allow_zero=True)
        self.eps = _check_positive("eps", eps)
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"FAMO optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        self.optimizer_name = optimizer
        mins = torch.zeros(num_tasks) if min_losses is None else torch.as_tensor(min_losses, dtype=torch.float32)
        if mins.shape != (num_tasks,):
            raise ValueError(f"min_losses must have shape [{num_tasks}], got {tuple(mins.shape)}")
        self.register_buffer("min_losses", mins.clone())
        self.register_buffer("logits", torch.zeros(num_tasks))
        self._opt: torch.optim.Optimizer | None = None
        self._prev: torch.Tensor | None = None

    def _optimizer(self) -> torch.optim.Optimizer:
        if self._opt is None:
            self._xi = self.logits.clone().requires_grad_(True)
            cls = torch.optim.Adam if self.optimizer_name == "adam" else torch.optim.SGD
            self._opt = cls([self._xi], lr=self.beta, weight_decay=self.gamma)
        return self._opt

    def _log_gap(self, losses: torch.Tensor) -> torch.Tensor:
        return (losses - self.min_losses.to(losses) + self.eps).log()

    def combine(self, losses: torch.Tensor) -> torch.Tensor:
        r"""[K] -> :math:`\sum_k (z_k/c) \log(L_k - L^*_k + \epsilon)`; remembers the losses."""
        _check_losses(losses, self.num_tasks)
        self._prev = losses.detach()
        z = torch.softmax(self.logits.to(losses), 0)
        gap = losses - self.min_losses.to(losses) + self.eps
        c = (z / gap).sum().detach()
        return (gap.log() * z / c).sum()

    def logit_gradient(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        r""":math:`\delta = J_z(\xi)^\top(\log(L - L^*+\epsilon) - \log(L^+ - L^*+\epsilon))` [K]."""
        delta = (self._log_gap(before.detach()) - self._log_gap(after.detach())).float().cpu()
        xi = self.logits.detach().cpu().requires_grad_(True)
        with torch.enable_grad():
            (d,) = torch.autograd.grad(torch.softmax(xi, 0), xi, grad_outputs=delta)
        return d

    def after_step(self, recompute: Callable[[], torch.Tensor]) -> None:
        """One logit step from the losses of :meth:`combine` and ``recompute()`` (the same
        batch's losses [K] at the updated network)."""
        if self._prev is None:
            raise ValueError("FAMO.after_step needs the losses of a combine() call first")
        after = recompute()
        _check_losses(after, self.num_tasks)
        opt = self._optimizer()
        d = self.logit_gradient(self._prev, after)
        opt.zero_grad(set_to_none=True)
        self._xi.grad = d.to(self._xi)
        opt.step()
        with torch.no_grad():
            self.logits.copy_(self._xi.detach().to(self.logits))
        self._prev = None

    def weights(self) -> torch.Tensor:
        """The task weights :math:`z = \\mathrm{softmax}(\\xi)` [K] (on the simplex)."""
        return torch.softmax(self.logits.detach().float(), 0).cpu()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_tasks={self.num_tasks}, lr={self.beta}, gamma={self.gamma}, "
                f"optimizer={self.optimizer_name!r})")


def make_weighting(name: str, num_tasks: int, **kwargs) -> nn.Module:
    """The weighting ``name`` (one of :data:`WEIGHTINGS`) for ``num_tasks`` tasks.

    Raises:
        ValueError: an unknown name or a bad argument.
    """
    classes = {"equal": EqualWeighting, "uncertainty": UncertaintyWeighting, "famo": FAMO}
    if name not in classes:
        raise ValueError(f"unknown loss weighting {name!r}: choose one of {', '.join(WEIGHTINGS)}")
    try:
        return classes[name](num_tasks, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for loss weighting {name!r}: {err}") from None
