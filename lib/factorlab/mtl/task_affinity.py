r"""Task relatedness measured *during* the training of one hard-shared network: probes that
:func:`factorlab.train.qm9_regression.fit_regression` calls at the start of every step
(``step_hooks``), each acting every ``every``-th step and leaving the network as it found it
(parameters, BatchNorm statistics).

With shared (encoder) parameters :math:`\theta_s`, task losses :math:`L_k` (the standardized
MSE of output column ``k`` on the step's batch :math:`X^t`, the network in training mode as
the step itself computes it) and :math:`g_k = \nabla_{\theta_s} L_k(X^t, \theta^t)`:

- :class:`GradientCosine`: :math:`C_{ij} = \frac{1}{T}\sum_t \frac{g_i \cdot g_j}{\lVert
  g_i\rVert \lVert g_j \rVert}` over the ``T`` probed steps (symmetric, diagonal 1).
- :class:`LookaheadAffinity`: TAG's inter-task affinity (Fifty et al. 2021, "Efficiently
  Identifying Task Groupings for Multi-Task Learning", eq. 3): a lookahead SGD step on the
  shared parameters with task ``i``'s gradient only, :math:`\theta^{t+1}_{s|i} = \theta^t_s -
  \eta\, g_i`, task-specific parameters unchanged, then the relative change of task ``j``'s
  loss on the same batch,

  .. math::
      \mathcal{Z}^t_{i \to j} = 1 - \frac{L_j(X^t, \theta^{t+1}_{s|i}, \theta^t_j)}
      {L_j(X^t, \theta^t_s, \theta^t_j)}, \qquad
      \hat{\mathcal{Z}}_{i \to j} = \frac{1}{T} \sum_t \mathcal{Z}^t_{i \to j};

  positive when ``i``'s step lowers ``j``'s loss. Directed (row ``i`` acts on column ``j``);
  the diagonal is each task's own lookahead gain. The paper takes :math:`\eta` as the
  training's learning rate and notes other optimizers' updates may replace the SGD step; we
  use the plain SGD step with a fixed :math:`\eta` (``lr``), which the caller states.

``seconds`` of each result is the time spent inside the probe (its marginal cost on top of
the training it rides on).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from factorlab.mtl.relatedness import Relatedness, labelled


def _check_every(every: int) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive int (probe every that many steps), got {every!r}")
    return every


def shared_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters every task shares: those of ``model.encoder`` (ValueError if none)."""
    encoder = getattr(model, "encoder", None)
    params = [p for p in encoder.parameters() if p.requires_grad] if encoder is not None else []
    if not params:
        raise ValueError(f"{type(model).__name__} has no shared encoder parameters to probe")
    return params


class _Probe:
    """Every ``every`` steps: compute the per-task losses and hand them to :meth:`_measure`,
    then restore the model's buffers; accumulates a ``K x K`` sum."""

    name = "probe"

    def __init__(self, model: nn.Module, labels: list[str], every: int = 1):
        self.model, self.labels, self.every = model, list(labels), _check_every(every)
        self.shared = shared_parameters(model)
        k = len(self.labels)
        self.total = np.zeros((k, k))
        self.count = 0
        self.seconds = 0.0

    def __call__(self, step: int, batch, target: torch.Tensor) -> None:
        """``fit_regression``'s step hook: probe when ``step % every == 0``."""
        if step % self.every:
            return
        if target.shape[1] != len(self.labels):
            raise ValueError(f"the probe is for {len(self.labels)} tasks, the batch has {target.shape[1]} targets")
        t0 = time.perf_counter()
        buffers = [b.clone() for b in self.model.buffers()]
        try:
            self.total += self._measure(batch, target)
            self.count += 1
        finally:
            with torch.no_grad():
                for b, s in zip(self.model.buffers(), buffers):
                    b.copy_(s)
        self.seconds += time.perf_counter() - t0

    def _losses(self, batch, target: torch.Tensor) -> torch.Tensor:
        return (self.model(batch) - target).pow(2).mean(0)  # [K]

    def _task_gradients(self, losses: torch.Tensor) -> torch.Tensor:
        """[K, P]: each task's gradient on the shared parameters, flattened."""
        rows = []
        for k in range(losses.numel()):
            grads = torch.autograd.grad(losses[k], self.shared, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                   for g, p in zip(grads, self.shared)]))
        return torch.stack(rows)

    def _measure(self, batch, target: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def result(self) -> Relatedness:
        """The average over the probed steps (NaN before any probe)."""
        mean = self.total / self.count if self.count else np.full_like(self.total, np.nan)
        return Relatedness(self.name, labelled(mean, self.labels), self.seconds, self._info())

    def _info(self) -> dict:
        return {"steps_probed": self.count, "every": self.every,
                "shared_params": int(sum(p.numel() for p in self.shared))}


class GradientCosine(_Probe):
    """Pairwise cosine similarity of the task gradients on the shared encoder, averaged over
    the probed steps (see the module docstring).

    Args:
        model: the hard-shared network (``model.encoder`` shared, one output column per task).
        labels: the target names of the output columns.
        every: probe every ``every``-th training step.
    """

    name = "gradient_cosine"

    def _measure(self, batch, target: torch.Tensor) -> np.ndarray:
        g = self._task_gradients(self._losses(batch, target)).double()
        unit = g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)
        cos = (unit @ unit.T).clamp(-1, 1)
        cos.fill_diagonal_(1.0)
        return cos.cpu().numpy()


class LookaheadAffinity(_Probe):
    r"""TAG's lookahead inter-task affinity :math:`\hat{\mathcal{Z}}_{i \to j}` (see the module
    docstring).

    Args:
        model: the hard-shared network.
        labels: the target names of the output columns.
        lr: :math:`\eta`, the lookahead SGD step size.
        every: probe every ``every``-th training step.
    """

    name = "tag_affinity"

    def __init__(self, model: nn.Module, labels: list[str], lr: float, every: int = 1):
        super().__init__(model, labels, every)
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0 or not np.isfinite(lr):
            raise ValueError(f"the lookahead step lr must be a positive number, got {lr!r}")
        self.lr = float(lr)

    def _measure(self, batch, target: torch.Tensor) -> np.ndarray:
        losses = self._losses(batch, target)
        grads = self._task_gradients(losses)
        before = losses.detach().double()
        k = losses.numel()
        z = np.zeros((k, k))
        theta = [p.detach().clone() for p in self.shared]
        with torch.no_grad():
            for i in range(k):
                offset = 0
                for p, p0 in zip(self.shared, theta):
                    n = p.numel()
                    p.copy_(p0 - self.lr * grads[i, offset:offset + n].view_as(p))
                    offset += n
                after = self._losses(batch, target).double()
                z[i] = (1.0 - after / before).cpu().numpy()
            for p, p0 in zip(self.shared, theta):
                p.copy_(p0)
        return z

    def _info(self) -> dict:
        return {**super()._info(), "lookahead_lr": self.lr}
