"""Grouped (block-diagonal) layers: ``K`` independent networks computed as one.

A network whose every cross-channel map is block-diagonal over ``K`` groups of channels, and
whose every other operation acts channel by channel (sums over neighbours, sum pooling,
BatchNorm), *is* ``K`` independent networks laid side by side: group ``k``'s outputs depend
only on group ``k``'s parameters, and a loss that is a sum over groups gives each group the
gradient it would get alone. This is how :mod:`factorlab.train.qm9_regression` trains many
single-task models at once with one set of kernels (few, large launches on a GPU).

Layout convention (relied on by :func:`factorlab.models.stack.member_state`): every
parameter and buffer of a grouped module is *group-major along dim 0*, i.e. it reshapes to
``[K, *shape_of_one_member]``.

- :class:`GroupedLinear`: ``y[:, k] = x[:, k] W_k + b_k``; x [N, K*in] -> [N, K*out].
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
        if self.groups == 1:
            y = x @ self.weight[0]
        else:  # [K, N, in] @ [K, in, out] -> [K, N, out]: one batched matmul for all groups
            y = torch.bmm(x.view(n, self.groups, self.in_channels).transpose(0, 1), self.weight)
            y = y.transpose(0, 1).reshape(n, self.out_features)
        if self.bias is not None:
            y = y + self.bias.view(-1)
        return y

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, groups={self.groups}, "
                f"bias={self.bias is not None})")


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
        g = z.shape[0]
        zk = z.reshape(g, self.groups, self.in_channels)
        h = torch.einsum("gki,ktih->gkth", zk, self.weight1) + self.bias1
        out = torch.einsum("gkth,kth->gkt", torch.relu(h), self.weight2) + self.bias2
        return out.reshape(g, self.groups * self.num_tasks)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, num_tasks={self.num_tasks}, hidden={self.hidden}, "
                f"groups={self.groups})")
