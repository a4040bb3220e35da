"""Low-rank (matrix) factorizations: ``LowRankLinear`` and ``LowRankConv2d``.

LowRankLinear:  W = U V with U [out, r], V [r, in];  params r (in + out) (+ out bias);
                forward FLOPs 2 B r (in + out) (+ B out).
LowRankConv2d:  the weight reshaped to a matrix [out, in kh kw] is U V: a kh x kw convolution
                in -> r (carrying stride, padding, dilation) then a 1x1 convolution r -> out
                (Jaderberg et al. 2014's bottleneck; the journal's rank = in_channels // factor).
                params r (in kh kw + out); FLOPs 2 B H' W' r (in kh kw + out).

Conversions (functions first, the classes wrap them): :func:`lowrank_to_weight`,
:func:`weight_to_lowrank` (truncated SVD: optimal in Frobenius norm, exact at full rank),
:func:`lowrank_to_conv_weight`, :func:`conv_weight_to_lowrank`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from factorlab.layers.base import check_positive_int, contract
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.linear import FactorizedLinear

#: einsum of the two factors of LowRankLinear (U [o, r], V [r, i]) into the weight [o, i].
LINEAR_EQUATION = "or,ri->oi"
#: einsum of the two factors of LowRankConv2d (first [r, c, kh, kw], second [o, r]) into the weight.
CONV_EQUATION = "rchw,or->ochw"


# -- conversions ------------------------------------------------------------------------------

def lowrank_to_weight(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The weight ``u @ v`` [out, in] of the factors ``u`` [out, r] and ``v`` [r, in]."""
    if u.dim() != 2 or v.dim() != 2 or u.shape[1] != v.shape[0]:
        raise ValueError(f"need u [out, r] and v [r, in], got {tuple(u.shape)} and {tuple(v.shape)}")
    return contract(LINEAR_EQUATION, u, v)


def weight_to_lowrank(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of ``weight`` [m, n] in float64: (U sqrt(S) [m, rank], sqrt(S) V^T
    [rank, n]), the best rank-``rank`` approximation in Frobenius norm, split with both
    factors at the same scale. ``rank`` is 1..min(m, n)."""
    if weight.dim() != 2:
        raise ValueError(f"weight_to_lowrank needs a matrix [m, n], got shape {tuple(weight.shape)}")
    rank = check_positive_int("rank", rank, f"an integer in 1..{min(weight.shape)}")
    if rank > min(weight.shape):
        raise ValueError(f"rank={rank} exceeds min{tuple(weight.shape)}: valid ranks are 1..{min(weight.shape)}")
    u, s, vh = torch.linalg.svd(weight.detach().to("cpu", torch.float64), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def lowrank_to_conv_weight(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The convolution weight [out, in, kh, kw] of a kh x kw convolution ``first`` [r, in, kh,
    kw] followed by a 1x1 convolution ``second`` [out, r]."""
    if first.dim() != 4 or second.dim() != 2 or second.shape[1] != first.shape[0]:
        raise ValueError(f"need first [r, in, kh, kw] and second [out, r], got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}")
    return contract(CONV_EQUATION, first, second)


def conv_weight_to_lowrank(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(first [rank, in, kh, kw], second [out, rank]): the truncated SVD of ``weight``
    [out, in, kh, kw] reshaped to [out, in kh kw] (float64)."""
    if weight.dim() != 4:
        raise ValueError(f"need a convolution weight [out, in, kh, kw], got shape {tuple(weight.shape)}")
    u, v = weight_to_lowrank(weight.reshape(weight.shape[0], -1), rank)
    return v.reshape(v.shape[0], *weight.shape[1:]), u


# -- layers -----------------------------------------------------------------------------------

class LowRankLinear(FactorizedLinear):
    r"""Linear layer whose weight has rank :math:`r` (a linear bottleneck):

    .. math::
        \mathbf{y} = \mathbf{U} \mathbf{V} \mathbf{x} + \mathbf{b}, \qquad
        \mathbf{U} \in \mathbb{R}^{O \times r}, \quad \mathbf{V} \in \mathbb{R}^{r \times I},

    with :math:`r (I + O)` factor parameters and :math:`2 B r (I + O)` forward FLOPs for
    :math:`B` rows. ``from_dense(layer, rank)`` takes the truncated SVD of the weight (exact at
    :math:`r = \min(I, O)`); ``lowrank_to_weight`` and ``weight_to_lowrank`` are the
    conversions.

    Args:
        in_features (int): size :math:`I` of each input row.
        out_features (int): size :math:`O` of each output row.
        rank (int): :math:`r`, 1 to :math:`\min(I, O)`. Give exactly one of ``rank``,
            ``target_params`` and ``compression``.
        target_params (float): parameter budget, bias included: the largest rank within it.
        compression (float): dense parameters / layer parameters, i.e. a budget of
            ``dense_params() / compression``.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(*, I)`, output :math:`(*, O)`; factors ``U`` :math:`(O, r)` and ``V``
        :math:`(r, I)`.
    """

    def __init__(self, in_features: int, out_features: int, rank: int | None = None, *, target_params=None,
                 compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        (self.rank,) = self.resolve_rank(rank, target_params, compression)
        self.U = nn.Parameter(torch.empty(self.out_features, self.rank))
        self.V = nn.Parameter(torch.empty(self.rank, self.in_features))
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return [self.U, self.V]

    def rank_maxima(self) -> tuple[int, ...]:
        return (min(self.in_features, self.out_features),)

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        return ranks[0] * (self.in_features + self.out_features)

    def summed_terms(self) -> int:
        return self.rank

    def subscripts(self):
        return "bi", ["or", "ri"], "bo"

    def dense_weight(self) -> torch.Tensor:
        return lowrank_to_weight(self.U, self.V)

    def decompose(self, weight: torch.Tensor) -> list[torch.Tensor]:
        return list(weight_to_lowrank(weight, self.rank))


class LowRankConv2d(FactorizedConv2d):
    r"""A :math:`k_h \times k_w` convolution :math:`C \to r` then a 1x1 convolution
    :math:`r \to S` (Jaderberg et al. 2014): the weight reshaped to a matrix
    :math:`S \times C k_h k_w` has rank :math:`r`,

    .. math::
        \mathbf{W}_{s, c, y, x} = \sum_{j=1}^{r} \mathbf{P}_{s, j} \, \mathbf{K}_{j, c, y, x},

    with :math:`r (C k_h k_w + S)` factor parameters. Stride, padding and dilation apply to
    the first convolution. ``from_dense(layer, rank)`` takes the truncated SVD of the reshaped
    weight (``conv_weight_to_lowrank``; ``lowrank_to_conv_weight`` rebuilds it).

    Args:
        in_channels (int): :math:`C`.
        out_channels (int): :math:`S`.
        kernel_size (int or tuple): :math:`(k_h, k_w)`.
        stride (int or tuple): as ``nn.Conv2d`` (default 1).
        padding (int or tuple): zero padding, as ``nn.Conv2d`` (default 0).
        dilation (int or tuple): as ``nn.Conv2d`` (default 1).
        rank (int): :math:`r`, 1 to :math:`\min(S, C k_h k_w)`. Give exactly one of ``rank``,
            ``target_params`` and ``compression``.
        target_params (float): parameter budget, bias included: the largest rank within it.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(B, C, H, W)`, output :math:`(B, S, H', W')`; factors ``first``
        :math:`(r, C, k_h, k_w)` (:math:`\mathbf{K}`) and ``second`` :math:`(S, r)`
        (:math:`\mathbf{P}`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank: int | None = None, *, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        (self.rank,) = self.resolve_rank(rank, target_params, compression)
        self.first = nn.Parameter(torch.empty(self.rank, self.in_channels, kh, kw))
        self.second = nn.Parameter(torch.empty(self.out_channels, self.rank))
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return [self.first, self.second]

    def rank_maxima(self) -> tuple[int, ...]:
        return (min(self.out_channels, self.fan_in),)

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        return ranks[0] * (self.fan_in + self.out_channels)

    def summed_terms(self) -> int:
        return self.rank

    def weight_equation(self) -> str:
        return CONV_EQUATION

    def dense_weight(self) -> torch.Tensor:
        return lowrank_to_conv_weight(self.first, self.second)

    def stages(self) -> list[Stage]:
        return [Stage(self.first, self.stride, self.padding, self.dilation),
                Stage(self.second[:, :, None, None])]

    def decompose(self, weight: torch.Tensor) -> list[torch.Tensor]:
        return list(conv_weight_to_lowrank(weight, self.rank))


def bottleneck_rank(in_channels: int, factor: float) -> int:
    """The journal's bottleneck rank: ``in_channels // factor`` (at least 1)."""
    return max(1, math.floor(in_channels / factor))
