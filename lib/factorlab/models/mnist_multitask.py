"""DMTRL's MNIST network (Yang & Hospedales, ICLR 2017) for T one-vs-all binary tasks, in
three forms: single-task, hard sharing, and DMTRL (every layer task-factorized).

The network: conv 1->32 5x5 -> ReLU -> max-pool 2 -> conv 32->64 4x4 -> ReLU -> max-pool 2
-> flatten (64 x 4 x 4 = 1024) -> FC 512 -> ReLU -> FC 1 per task. Images [B, 1, 28, 28]
(normalised by the caller) give logits [B, T], column t the logit of "digit is t" (for the
default 10 tasks).

- ``"single"``: T independent networks, each layer's T weights held as one dense tensor
  [T, ...] and computed at once (:class:`TaskDenseConv2d`, :class:`TaskDenseLinear`: one
  convolution with T x out channels on the shared image, grouped by task afterwards).
- ``"hard"``: one trunk (conv, conv, FC 512) shared by all tasks and T heads (one
  ``nn.Linear(512, T)``).
- ``"dmtrl"``: every layer (the heads included) a :class:`~factorlab.layers.task.
  TaskFactorizedConv2d` / ``TaskFactorizedLinear`` with ``method`` LAF, Tucker or TT;
  :func:`dmtrl_from_single_task` initialises one by decomposing a trained single-task network
  at given ranks or a relative error (exact at full ranks).

Placement: the task-factorized layers live in :mod:`factorlab.layers.task` (tier 1), so this
module (``models``, tier 2) may use them; ``factorlab.mtl`` (tier 3) is above ``models`` and is
not imported here.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.layers.base import check_positive_int, init_bias_
from factorlab.layers.task import (TaskFactorizedConv2d, TaskFactorizedLayer, TaskFactorizedLinear, task_conv2d,
                                   task_linear)
from factorlab.layers.task_tensor import check_method

#: The three forms.
KINDS = ("single", "hard", "dmtrl")
#: (in, out, kernel) of the two convolutions, the hidden width, the flattened width.
CONV1, CONV2, HIDDEN, FLAT = (1, 32, 5), (32, 64, 4), 512, 64 * 4 * 4
#: Layer names, input to output.
LAYER_NAMES = ("conv1", "conv2", "fc1", "head")


class TaskDenseLinear(nn.Module):
    """T independent linear layers held as one weight [T, out, in] and bias [T, out]; input
    [B, in] (shared) or [T, B, in], output [T, B, out]. Each task initialised as
    ``nn.Linear``."""

    def __init__(self, num_tasks: int, in_features: int, out_features: int):
        super().__init__()
        t = check_positive_int("num_tasks", num_tasks)
        self.weight = nn.Parameter(torch.empty(t, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(t, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(in), 1/sqrt(in)) for weights and biases, as ``nn.Linear``."""
        bound = 1 / math.sqrt(self.weight.shape[-1])
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
        init_bias_(self.bias, self.weight.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in] or [T, B, in] -> [T, B, out]."""
        return task_linear(x, self.weight, self.bias)

    def flops(self, input_shape) -> int:
        """2 T B in out + T B out (bias) for an input [B, in] or [T, B, in]."""
        t, out, inp = self.weight.shape
        return t * input_shape[-2] * out * (2 * inp + 1)


class TaskDenseConv2d(nn.Module):
    """T independent convolutions (stride 1, no padding) held as one weight [T, out, in, k, k]
    and bias [T, out]; input [B, in, H, W] (shared) or [T, B, in, H, W], output
    [T, B, out, H', W']. Each task initialised as ``nn.Conv2d``."""

    def __init__(self, num_tasks: int, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        t = check_positive_int("num_tasks", num_tasks)
        self.weight = nn.Parameter(torch.empty(t, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(t, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, as ``nn.Conv2d``."""
        fan_in = math.prod(self.weight.shape[2:])
        with torch.no_grad():
            self.weight.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        init_bias_(self.bias, fan_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] or [T, B, C, H, W] -> [T, B, S, H', W']."""
        return task_conv2d(x, self.weight, self.bias)

    def flops(self, input_shape) -> int:
        """T B S H' W' (2 C k k + 1) for an input [B, C, H, W] or [T, B, C, H, W]."""
        t, s, c, kh, kw = self.weight.shape
        out_hw = (input_shape[-2] - kh + 1) * (input_shape[-1] - kw + 1)
        return t * input_shape[-4] * s * out_hw * (2 * c * kh * kw + 1)


def _relu_pool(h: torch.Tensor) -> torch.Tensor:
    """ReLU then 2x2 max-pool over the last two dims of [..., C, H, W] (any leading dims)."""
    lead = h.shape[:-3]
    h = F.max_pool2d(F.relu(h.reshape(-1, *h.shape[-3:])), 2)
    return h.reshape(*lead, *h.shape[-3:])


class MNISTMultitask(nn.Module):
    """The DMTRL MNIST network for ``num_tasks`` binary tasks (see the module docstring);
    build it with :func:`build_mnist_multitask`.

    ``conv1``, ``conv2``, ``fc1`` and ``head`` are the four layers: plain ``nn`` layers in the
    trunk and ``nn.Linear(512, T)`` as heads for ``"hard"``; task-stacked layers (inputs
    [B, ...] or [T, B, ...], outputs [T, B, ...]) for ``"single"`` and ``"dmtrl"``.

    Shapes:
        input :math:`(B, 1, 28, 28)`, output logits :math:`(B, T)`.
    """

    def __init__(self, kind: str, num_tasks: int, conv1: nn.Module, conv2: nn.Module, fc1: nn.Module,
                 head: nn.Module):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.num_tasks = kind, check_positive_int("num_tasks", num_tasks)
        self.conv1, self.conv2, self.fc1, self.head = conv1, conv2, fc1, head

    def layers(self) -> list[nn.Module]:
        """The four layers, input to output (``LAYER_NAMES``)."""
        return [self.conv1, self.conv2, self.fc1, self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 1, 28, 28] -> logits [B, T]."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"expected images [B, 1, 28, 28], got {tuple(x.shape)}")
        h = _relu_pool(self.conv2(_relu_pool(self.conv1(x))))  # [B or T, ..., 64, 4, 4]
        h = F.relu(self.fc1(h.flatten(-3)))
        y = self.head(h)  # hard: [B, T]; task-stacked: [T, B, 1]
        return y if self.kind == "hard" else y[..., 0].transpose(0, 1)

    def num_params(self) -> int:
        """Trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def flops(self, batch: int = 1) -> int:
        """Forward FLOPs of the four layers for ``batch`` images (2 per multiply-add, biases
        1 per output; ReLU and pooling not counted, as ``models.counting.count_flops``), each
        task-factorized layer along the path it takes (its ``flops``)."""
        total = 0

        def hook(mod, inp, out):
            nonlocal total
            shape = tuple(inp[0].shape)
            if hasattr(mod, "flops"):
                total += mod.flops(shape)
            elif isinstance(mod, nn.Linear):
                total += math.prod(shape[:-1]) * mod.out_features * (2 * mod.in_features + 1)
            else:
                total += out.numel() * (2 * mod.in_channels * math.prod(mod.kernel_size) + 1)

        handles = [m.register_forward_hook(hook) for m in self.layers()]
        try:
            p = next(self.parameters())
            with torch.no_grad():
                self(torch.zeros(batch, 1, 28, 28, device=p.device, dtype=p.dtype))
        finally:
            for h in handles:
                h.remove()
        return total


def _layer_ranks(rank) -> list:
    """One rank spec per layer: a *list* of four specs (conv1, conv2, fc1, head) as given;
    anything else (an int or a tuple, which is one spec) repeated for the four layers."""
    if isinstance(rank, list):
        if len(rank) != len(LAYER_NAMES):
            raise ValueError(f"a list of ranks needs one spec per layer {LAYER_NAMES}, got {len(rank)}: {rank!r}")
        return rank
    return [rank] * len(LAYER_NAMES)


def build_mnist_multitask(kind: str, method: str | None = None, rank=None, *, num_tasks: int = 10) -> MNISTMultitask:
    """The DMTRL MNIST network of ``kind`` (``"single"``, ``"hard"``, ``"dmtrl"``) for
    ``num_tasks`` tasks, freshly initialised.

    ``"dmtrl"`` needs ``method`` (``"laf"``, ``"tucker"``, ``"tt"``) and ``rank``: one rank
    spec for every layer (an int, or a tuple valid for each), or a *list* of four specs (each
    an int or tuple) for ``conv1, conv2, fc1, head``; valid values per layer in
    :func:`factorlab.layers.task_tensor.check_ranks`. To start from trained single-task
    networks with ranks chosen by a relative error, use :func:`dmtrl_from_single_task`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    t = check_positive_int("num_tasks", num_tasks)
    if kind != "dmtrl":
        if method is not None or rank is not None:
            raise ValueError(f"method and rank apply to kind='dmtrl' only, got kind={kind!r}")
        if kind == "hard":
            return MNISTMultitask(kind, t, nn.Conv2d(*CONV1), nn.Conv2d(*CONV2), nn.Linear(FLAT, HIDDEN),
                                  nn.Linear(HIDDEN, t))
        return MNISTMultitask(kind, t, TaskDenseConv2d(t, *CONV1), TaskDenseConv2d(t, *CONV2),
                              TaskDenseLinear(t, FLAT, HIDDEN), TaskDenseLinear(t, HIDDEN, 1))
    if method is None or rank is None:
        raise ValueError("kind='dmtrl' needs method (one of 'laf', 'tucker', 'tt') and rank (one spec, or four: "
                         "conv1, conv2, fc1, head); or use dmtrl_from_single_task(...)")
    check_method(method)
    r1, r2, r3, r4 = _layer_ranks(rank)
    layers = (TaskFactorizedConv2d(t, *CONV1, method, r1), TaskFactorizedConv2d(t, *CONV2, method, r2),
              TaskFactorizedLinear(t, FLAT, HIDDEN, method, r3), TaskFactorizedLinear(t, HIDDEN, 1, method, r4))
    return MNISTMultitask(kind, t, *layers)


def dmtrl_from_single_task(single: MNISTMultitask, method: str, *, rank=None, rel_error: float | None = None,
                           n_iter_max: int = 100) -> MNISTMultitask:
    """A ``"dmtrl"`` network whose layers decompose the task-stacked weights of a (trained)
    ``"single"`` network by ``method``, at ``rank`` (one spec or four, as in
    :func:`build_mnist_multitask`) or at the ranks each layer's ``rel_error`` search picks
    (DMTRL: 0.1); biases copied. At full ranks it computes the single-task networks' outputs."""
    if not isinstance(single, MNISTMultitask) or single.kind != "single":
        raise ValueError(f"need a kind='single' MNISTMultitask, got {getattr(single, 'kind', type(single).__name__)!r}")
    ranks = _layer_ranks(rank) if rank is not None else [None] * 4
    new = []
    for layer, r in zip(single.layers(), ranks):
        cls = TaskFactorizedConv2d if isinstance(layer, TaskDenseConv2d) else TaskFactorizedLinear
        new.append(cls.from_task_weights(layer.weight, layer.bias, method=method, rank=r, rel_error=rel_error,
                                         n_iter_max=n_iter_max))
    return MNISTMultitask("dmtrl", single.num_tasks, *new)


def task_factorized_layers(model: MNISTMultitask) -> dict[str, TaskFactorizedLayer]:
    """Name -> layer of a ``"dmtrl"`` network's task-factorized layers (``LAYER_NAMES``)."""
    return {n: m for n, m in zip(LAYER_NAMES, model.layers()) if isinstance(m, TaskFactorizedLayer)}


__all__ = ["CONV1", "CONV2", "FLAT", "HIDDEN", "KINDS", "LAYER_NAMES", "MNISTMultitask", "TaskDenseConv2d",
           "TaskDenseLinear", "build_mnist_multitask", "dmtrl_from_single_task", "task_factorized_layers"]
