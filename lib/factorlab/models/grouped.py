"""Grouped (block-diagonal) layers: ``K`` independent networks computed as one.

A network whose every cross-channel map is block-diagonal over ``K`` groups of channels, and
whose every other operation acts channel by channel (sums over neighbours, sum pooling,
BatchNorm), *is* ``K`` independent networks laid side by side: group ``k``'s outputs depend
only on group ``k``'s parameters, and a loss that is a sum over groups gives each group the
gradient it would get alone. This is how :mod:`factorlab.train.qm9_regression` trains many
single-task models at once with one set of kernels (few, large launches on a GPU).

Every layer here computes each group with arithmetic of the same shape whatever ``K``
(:func:`grouped_affine`), so on the CPU a member's numbers, forward and backward, are bit for
bit those it gets alone or in a stack of any size (``tests/unit/test_stack_invariance.py``;
BatchNorm, message passing and pooling act per channel). Otherwise a 1-ulp difference in one
gradient is enough: Adam amplifies it into a different run, with test errors a few per cent
apart, as seeds differ.

Layout convention (relied on by :func:`factorlab.models.stack.member_state`): every
parameter and buffer of a grouped module is *group-major along dim 0*, i.e. it reshapes to
``[K, *shape_of_one_member]``.

- :class:`GroupedLinear`: ``y[:, k] = x[:, k] W_k + b_k``; x [N, K*in] -> [N, K*out].
- :class:`SharedInputLinear`: ``y[:, k] = x W_k^T + b_k``; x [N, in] -> [N, K*out].
- :class:`TaskHeads`: one two-layer MLP per (group, task); z [G, K*in] -> [G, K*T].
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _uniform_(t: torch.Tensor, fan_in: int) -> None:
    """``nn.Linear``'s default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(t, -bound, bound)


class _GroupedDot(torch.autograd.Function):
    """``y[b, n] = sum_i x[b, n, i] w[b, i] (+ c[b])``, every sum over a contiguous last
    dimension in both passes (whatever strides the incoming gradient has), so each ``b``'s sums
    are the same whatever ``B``: the single-output case of :func:`grouped_affine` (a batched
    matrix-vector product takes another kernel for ``B = 1`` than for ``B > 1``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        x = x.contiguous()
        ctx.save_for_backward(x, w)
        y = (x * w.unsqueeze(1)).sum(2)
        return y if c is None else y + c.unsqueeze(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        grad = grad.contiguous()  # [B, N]
        gx = grad.unsqueeze(2) * w.unsqueeze(1) if ctx.needs_input_grad[0] else None
        gw = (x.transpose(1, 2).contiguous() * grad.unsqueeze(1)).sum(2) if ctx.needs_input_grad[1] else None
        gc = grad.sum(1) if ctx.needs_input_grad[2] else None
        return gx, gw, gc


class _GroupedBias(torch.autograd.Function):
    """``y[b] + c[b]`` broadcast over rows (``y`` [B, N, out], ``c`` [B, out]), whose gradient
    for ``c``, the sum over the ``N`` rows, is one product ``ones[1, N] @ grad[b]`` per ``b``
    (see :func:`grouped_affine`)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return y + c.unsqueeze(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        gc = None
        if ctx.needs_input_grad[1]:
            ones = torch.ones((), dtype=grad.dtype, device=grad.device).expand(grad.shape[0], 1, grad.shape[1])
            gc = torch.bmm(ones, grad).squeeze(1)
        return grad, gc


def grouped_affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    r"""``B`` independent affine maps, ``y_b = x_b W_b + b_b``, computed so that each ``b``'s
    arithmetic (forward and backward) is the same whatever ``B`` and whichever ``b`` it is.

    A member of a stack of ``K`` therefore gets bit for bit the numbers it gets alone (checked
    on the CPU by ``tests/unit/test_stack_invariance.py``; a GPU library may still choose its
    kernels by the batch count). The
    weights go through one batched matrix product (``torch.bmm``: a product of the same shape
    per ``b``); the bias is added as usual, but its gradient, a sum over the ``N`` rows, is a
    product ``ones[1, N] @ grad_b`` per ``b`` too (:class:`_GroupedBias`). (Autograd's
    sum of a broadcast bias reduces the columns of an ``[N, B * out]`` gradient in an order
    that depends on the total width, vectorised lanes or a scalar tail; and a batched
    matrix-vector product takes another kernel for ``B = 1``: either made a stack member's
    gradients depend on the stack's size in the last bit, which Adam then amplified.) A single
    output (``out = 1``) is a product summed over ``in`` (:class:`_GroupedDot`).

    Args:
        x: ``[B, N, in]`` (any strides).
        weight: ``[B, in, out]`` (any strides).
        bias: ``[B, out]`` or None.

    Returns:
        ``[B, N, out]``.
    """
    if weight.shape[2] == 1:
        return _GroupedDot.apply(x, weight[:, :, 0], None if bias is None else bias[:, 0]).unsqueeze(2)
    y = torch.bmm(x, weight)
    return y if bias is None else _GroupedBias.apply(y, bias)


class GroupedLinear(nn.Module):
    r"""``groups`` independent linear maps applied to consecutive channel blocks.

    .. math::
        \mathbf{y}_{n,k} = \mathbf{x}_{n,k} \mathbf{W}_k + \mathbf{b}_k, \qquad
        k = 1, \dots, K

    Args:
        in_channels: input channels per group.
        out_channels: output channels per group.
        groups: number of groups ``K`` (1 gives an ordinary linear layer).
        bias: learn a bias per group.

    Shapes:
        - input: ``[N, K * in_channels]`` (group-major channels)
        - output: ``[N, K * out_channels]``

    ``in_features``/``out_features`` are the *total* widths (as on ``nn.Linear``), so that
    PyG layers that infer their width from ``nn[0].in_features`` (e.g. ``GINEConv``) work.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True):
        super().__init__()
        if min(in_channels, out_channels, groups) < 1:
            raise ValueError(f"GroupedLinear needs positive sizes, got in_channels={in_channels}, "
                             f"out_channels={out_channels}, groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.in_features, self.out_features = groups * in_channels, groups * out_channels
        self.weight = nn.Parameter(torch.empty(groups, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(groups, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each group as ``nn.Linear`` initialises itself (uniform, bound 1/sqrt(in))."""
        _uniform_(self.weight, self.in_channels)
        if self.bias is not None:
            _uniform_(self.bias, self.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, K*in] -> [N, K*out]."""
        n = x.shape[0]
        y = grouped_affine(x.view(n, self.groups, self.in_channels).transpose(0, 1), self.weight, self.bias)
        return y.transpose(0, 1).reshape(n, self.out_features)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, groups={self.groups}, "
                f"bias={self.bias is not None})")


class SharedInputLinear(nn.Module):
    r"""One input read by ``groups`` independent linear maps (a grouped network's first layer).

    .. math::
        \mathbf{y}_{n,k} = \mathbf{x}_n \mathbf{W}_k^\top + \mathbf{b}_k, \qquad k = 1, \dots, K

    Parameters are laid out as ``nn.Linear(in_channels, K * out_channels)``'s (``weight``
    ``[K * out, in]``, ``bias`` ``[K * out]``: group-major), so :meth:`from_linear` can take
    the place of such a layer, keeping its tensors (and so its initialisation); but each
    group is computed on its own (:func:`grouped_affine`), so its numbers do not depend on
    ``K``.

    Args:
        in_channels: input channels (shared by every group).
        out_channels: output channels per group.
        groups: number of groups ``K``.

    Shapes:
        - input: ``[N, in_channels]``
        - output: ``[N, K * out_channels]`` (group-major channels)
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1):
        super().__init__()
        if min(in_channels, out_channels, groups) < 1:
            raise ValueError(f"SharedInputLinear needs positive sizes, got in_channels={in_channels}, "
                             f"out_channels={out_channels}, groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.weight = nn.Parameter(torch.empty(groups * out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(groups * out_channels))
        self.reset_parameters()

    @classmethod
    def from_linear(cls, linear: nn.Module, groups: int) -> "SharedInputLinear":
        """The layer computing ``linear`` (an ``nn.Linear`` or PyG ``Linear`` with a bias and
        ``K * out`` outputs) group by group; it holds ``linear``'s own parameters."""
        out_total, in_channels = linear.weight.shape
        if out_total % groups or linear.bias is None:
            raise ValueError(f"cannot split a linear layer of {out_total} outputs (bias: {linear.bias is not None}) "
                             f"into {groups} groups")
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer.in_channels, layer.out_channels, layer.groups = in_channels, out_total // groups, groups
        layer.weight, layer.bias = linear.weight, linear.bias
        return layer

    def reset_parameters(self) -> None:
        """As ``nn.Linear`` initialises itself (uniform, bound 1/sqrt(in))."""
        _uniform_(self.weight, self.in_channels)
        _uniform_(self.bias, self.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in] -> [N, K*out]."""
        n, k = x.shape[0], self.groups
        w = self.weight.view(k, self.out_channels, self.in_channels).transpose(1, 2)  # [K, in, out]
        y = grouped_affine(x.unsqueeze(0).expand(k, n, self.in_channels), w, self.bias.view(k, self.out_channels))
        return y.transpose(0, 1).reshape(n, k * self.out_channels)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, groups={self.groups})"


class TaskHeads(nn.Module):
    r"""One small MLP head per task (and per group): ``in -> hidden -> 1`` with ReLU.

    .. math::
        \hat{y}_{g,k,t} = \mathbf{w}^{(2)}_{k,t} \cdot
        \mathrm{ReLU}\big(\mathbf{z}_{g,k} \mathbf{W}^{(1)}_{k,t} + \mathbf{b}^{(1)}_{k,t}\big)
        + b^{(2)}_{k,t}

    All heads are evaluated at once (batched matmuls); head ``(k, t)`` reads only group
    ``k``'s embedding and owns its own weights, so heads never share parameters.

    Args:
        in_channels: embedding width per group.
        num_tasks: tasks ``T`` per group (one output column each).
        hidden: hidden width of each head.
        groups: number of groups ``K``.

    Shapes:
        - input: graph embeddings ``[G, K * in_channels]``
        - output: predictions ``[G, K * T]``, column ``k * T + t`` for task ``t`` of group ``k``
    """

    def __init__(self, in_channels: int, num_tasks: int, hidden: int = 64, groups: int = 1):
        super().__init__()
        if min(in_channels, num_tasks, hidden, groups) < 1:
            raise ValueError(f"TaskHeads needs positive sizes, got in_channels={in_channels}, "
                             f"num_tasks={num_tasks}, hidden={hidden}, groups={groups}")
        self.in_channels, self.num_tasks, self.hidden, self.groups = in_channels, num_tasks, hidden, groups
        self.weight1 = nn.Parameter(torch.empty(groups, num_tasks, in_channels, hidden))
        self.bias1 = nn.Parameter(torch.empty(groups, num_tasks, hidden))
        self.weight2 = nn.Parameter(torch.empty(groups, num_tasks, hidden))
        self.bias2 = nn.Parameter(torch.empty(groups, num_tasks))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each head's layers as ``nn.Linear`` initialises them."""
        _uniform_(self.weight1, self.in_channels)
        _uniform_(self.bias1, self.in_channels)
        _uniform_(self.weight2, self.hidden)
        _uniform_(self.bias2, self.hidden)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [G, K*in] -> [G, K*T]."""
        g, k, t = z.shape[0], self.groups, self.num_tasks
        # head (k, t) reads group k's embedding: [K, G, in] -> [K*T, G, in] (a copy only when T > 1)
        zkt = z.reshape(g, k, self.in_channels).transpose(0, 1).unsqueeze(1).expand(k, t, g, self.in_channels)
        zkt = zkt.reshape(k * t, g, self.in_channels)
        h = torch.relu(grouped_affine(zkt, self.weight1.view(k * t, self.in_channels, self.hidden),
                                      self.bias1.view(k * t, self.hidden)))
        out = grouped_affine(h, self.weight2.view(k * t, self.hidden, 1), self.bias2.view(k * t, 1))  # [K*T, G, 1]
        return out.view(k * t, g).t()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, num_tasks={self.num_tasks}, hidden={self.hidden}, "
                f"groups={self.groups})")
