"""The GINE network for T QM9 targets with every linear map of its encoder task-factorized
(DMTRL, Yang & Hospedales, ICLR 2017, on the QM9 encoder).

Start from ``QM9GINE(num_tasks=1, groups=T)``: T single-task networks side by side, group t
predicting target t (:mod:`factorlab.models.grouped`). Each of its encoder's linear maps holds
T task weights: the atom embedding ``encoder.node_in`` and each convolution's bond embedding
``conv.lin`` (:class:`~factorlab.models.grouped.SharedInputLinear`, one input read by the T
maps) and the two layers of each convolution's MLP (:class:`~factorlab.models.grouped.
GroupedLinear`, task t reading its own channels). Here each becomes one
:class:`~factorlab.layers.task.TaskFactorizedLinear` (LAF, Tucker or TT over the stacked
weights [T, out, in]) wrapped in :class:`GroupedTaskFactorized`, which keeps the grouped
layers' channel layout ([N, T*in] or [N, in] -> [N, T*out], group-major), so the rest of the
network (message passing, BatchNorm, pooling, the per-task heads) is unchanged. The heads stay
per task (their weights are task-specific already).

- :func:`factorize_gine`: from a (trained) grouped network, decomposing each map's T weights at
  ``rank`` or ``rel_error`` (DMTRL's initialisation; full ranks compute the same outputs).
- :func:`build_task_factorized_gine`: freshly initialised at a given rank.

Shapes: input a QM9 graph batch of G molecules; output standardized predictions [G, T]
(column t: target t), as ``QM9GINE(num_tasks=1, groups=T)``.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from factorlab.layers.task import TaskFactorizedLinear
from factorlab.layers.task_tensor import check_method, full_ranks
from factorlab.models.grouped import GroupedLinear, SharedInputLinear
from factorlab.models.qm9 import QM9GINE


class GroupedTaskFactorized(nn.Module):
    """A :class:`~factorlab.layers.task.TaskFactorizedLinear` of T tasks in a grouped layer's
    layout: input [N, T*in] (``shared_input=False``: task t reads channels t*in..(t+1)*in) or
    [N, in] (``shared_input=True``: every task reads it), output [N, T*out] (group-major).
    ``in_features`` / ``out_features`` are the total widths, as on ``GroupedLinear``."""

    def __init__(self, layer: TaskFactorizedLinear, shared_input: bool):
        super().__init__()
        self.layer, self.shared_input = layer, bool(shared_input)
        t = layer.num_tasks
        self.groups = t
        self.in_channels, self.out_channels = layer.in_features, layer.out_features
        self.in_features = layer.in_features if shared_input else t * layer.in_features
        self.out_features = t * layer.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in] (shared) or [N, T*in] -> [N, T*out]."""
        n, t = x.shape[0], self.groups
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"expected input [N, {self.in_features}], got {tuple(x.shape)}")
        h = x if self.shared_input else x.view(n, t, self.in_channels).transpose(0, 1)
        return self.layer(h).transpose(0, 1).reshape(n, self.out_features)

    def reset_parameters(self) -> None:
        self.layer.reset_parameters()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.layer!r}, shared_input={self.shared_input})"


def task_weights_of(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """(weights [T, out, in], biases [T, out] or None, shared_input) of a grouped layer."""
    if isinstance(layer, GroupedLinear):
        bias = None if layer.bias is None else layer.bias.detach()
        return layer.weight.detach().transpose(1, 2), bias, False
    if isinstance(layer, SharedInputLinear):
        t, o = layer.groups, layer.out_channels
        return layer.weight.detach().view(t, o, layer.in_channels), layer.bias.detach().view(t, o), True
    raise ValueError(f"not a grouped linear layer: {type(layer).__name__}")


def encoder_maps(model: QM9GINE) -> list[str]:
    """Names (as in ``model.named_modules()``) of the encoder's grouped linear maps, in module
    order: ``encoder.node_in``, then per convolution its MLP layers and bond embedding."""
    return [name for name, m in model.named_modules()
            if name.startswith("encoder.") and isinstance(m, (GroupedLinear, SharedInputLinear))]


def _check_grouped(model: nn.Module) -> int:
    """T of a ``QM9GINE(num_tasks=1, groups=T)`` with T >= 2; ValueError otherwise."""
    if not isinstance(model, QM9GINE) or model.num_tasks != 1 or model.groups < 2:
        got = f"{type(model).__name__}" + (f"(num_tasks={model.num_tasks}, groups={model.groups})"
                                           if isinstance(model, QM9GINE) else "")
        raise ValueError(f"need T single-task networks as one QM9GINE(num_tasks=1, groups=T) with T >= 2, got {got}")
    return model.groups


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)


def _clamped(method: str, modes: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """``rank`` on every rank of ``method``, capped at each one's largest valid value."""
    return tuple(min(int(rank), f) for f in full_ranks(method, modes))


def factorize_gine(model: QM9GINE, method: str, *, rank: int | None = None, rel_error: float | None = None,
                   n_iter_max: int = 100) -> QM9GINE:
    """A copy of the grouped network ``model`` (``QM9GINE(num_tasks=1, groups=T)``) whose
    encoder maps are task-factorized by ``method``, each decomposing its T weights at
    ``rank`` (one int, capped per map at that map's largest ranks) or at the ranks
    ``rel_error`` picks (exactly one of the two; ``rel_error=0`` gives full ranks and the
    same outputs); biases copied. Decomposed in float64, cast back to the weights' dtype."""
    check_method(method)
    t = _check_grouped(model)
    if (rank is None) == (rel_error is None):
        raise ValueError("give exactly one of rank (an int) and rel_error (in [0, 1))")
    new = copy.deepcopy(model)
    for name in encoder_maps(new):
        w, b, shared = task_weights_of(new.get_submodule(name))
        r = None if rank is None else _clamped(method, (t, *w.shape[1:]), rank)
        layer = TaskFactorizedLinear.from_task_weights(w.double(), None if b is None else b.double(), method=method,
                                                       rank=r, rel_error=rel_error, n_iter_max=n_iter_max)
        _replace(new, name, GroupedTaskFactorized(layer.to(w.dtype), shared))
    return new


def build_task_factorized_gine(num_tasks: int, method: str, rank: int, **hparams) -> QM9GINE:
    """A freshly initialised ``QM9GINE(num_tasks=1, groups=num_tasks, **hparams)`` with every
    encoder map a ``TaskFactorizedLinear`` of ``method`` at ``rank`` (capped per map)."""
    check_method(method)
    model = QM9GINE(num_tasks=1, groups=num_tasks, **hparams)
    t = _check_grouped(model)
    for name in encoder_maps(model):
        w, b, shared = task_weights_of(model.get_submodule(name))
        _, o, i = w.shape
        layer = TaskFactorizedLinear(t, i, o, method, _clamped(method, (t, o, i), rank), bias=b is not None)
        _replace(model, name, GroupedTaskFactorized(layer, shared))
    return model


def task_factorized_maps(model: nn.Module) -> dict[str, TaskFactorizedLinear]:
    """Name -> the task-factorized layer of every :class:`GroupedTaskFactorized` in ``model``."""
    return {name: m.layer for name, m in model.named_modules() if isinstance(m, GroupedTaskFactorized)}


__all__ = ["GroupedTaskFactorized", "build_task_factorized_gine", "encoder_maps", "factorize_gine",
           "task_factorized_maps", "task_weights_of"]
