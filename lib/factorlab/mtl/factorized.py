r"""Tensor-factorized multitask learning (DMTRL, Yang & Hospedales, ICLR 2017): the learned
sharing of a network whose layers are task-factorized.

The layers themselves, ``TaskFactorizedLinear`` and ``TaskFactorizedConv2d`` (the T task
weights of a layer as one LAF, Tucker or TT tensor with a task mode), their initialisation
from trained single-task layers (``from_task_weights``, ``from_single_task_layers``) and the
decompositions live in :mod:`factorlab.layers.task` and :mod:`factorlab.layers.task_tensor`
(below ``models`` in the layer order, so that the multitask MNIST network can use them); they
are re-exported here.

This module reports how much of each layer's task mode is used: for the task-stacked weights
:math:`\mathcal{W} \in \mathbb{R}^{T \times D}` (task-mode unfolding) of every task-factorized
layer, the factorization's task rank (an upper bound on the rank of the unfolding), the
singular values :math:`\sigma_1 \ge \dots \ge \sigma_T` of the unfolding, their entropy
effective rank (1: the tasks share one weight up to scale; T: unrelated) and the energy share
:math:`\sigma_1^2 / \sum_j \sigma_j^2` of the leading direction.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from factorlab.layers.task import (TaskFactorizedConv2d, TaskFactorizedLayer, TaskFactorizedLinear,
                                   from_single_task_layers, from_task_weights)
from factorlab.layers.task_tensor import METHODS, decompose_task_tensor, effective_rank, ranks_for_error


@dataclass(frozen=True)
class LayerSharing:
    """The learned sharing of one task-factorized layer (see the module docstring).

    ``ranks`` are the factorization's ranks, ``task_rank`` the one on the task mode,
    ``singular_values`` those of the task-mode unfolding of the rebuilt weights (descending,
    weight units), ``effective_rank`` their entropy effective rank (1..T) and ``leading_share``
    the fraction of the squared Frobenius norm along the leading direction (1/T..1)."""

    name: str
    method: str
    num_tasks: int
    ranks: tuple[int, ...]
    task_rank: int
    singular_values: tuple[float, ...]
    effective_rank: float
    leading_share: float

    def as_dict(self) -> dict:
        """A plain dict (for a record or a frame row)."""
        return asdict(self)


def layer_sharing(layer: TaskFactorizedLayer, name: str = "") -> LayerSharing:
    """The :class:`LayerSharing` of one task-factorized ``layer``."""
    s = layer.task_singular_values()
    energy = s**2
    total = float(energy.sum())
    return LayerSharing(name=name, method=layer.method, num_tasks=layer.num_tasks, ranks=tuple(layer.rank),
                        task_rank=layer.task_rank(), singular_values=tuple(float(v) for v in s),
                        effective_rank=effective_rank(s), leading_share=float(energy[0]) / total if total else 0.0)


def task_sharing(model: nn.Module) -> list[LayerSharing]:
    """The :class:`LayerSharing` of every task-factorized layer of ``model``, in module order
    (named as in ``model.named_modules()``)."""
    return [layer_sharing(m, name) for name, m in model.named_modules() if isinstance(m, TaskFactorizedLayer)]


__all__ = ["LayerSharing", "METHODS", "TaskFactorizedConv2d", "TaskFactorizedLayer", "TaskFactorizedLinear",
           "decompose_task_tensor", "from_single_task_layers", "from_task_weights", "layer_sharing",
           "ranks_for_error", "task_sharing"]
