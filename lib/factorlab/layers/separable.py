"""Depthwise-separable convolution: ``SeparableConv2d``.

A depthwise kh x kw convolution (``depth_multiplier`` m filters per input channel, carrying
stride, padding, dilation) then a pointwise 1x1 convolution in m -> out, optionally itself
low-rank (a bottleneck in m -> rank -> out, the journal's "separable + low-rank pointwise").
As a factorization of a dense weight: W[s, c, y, x] = sum_j P[s, c, j] D[c, j, y, x], i.e. a
rank-m approximation of each input channel's [out, kh kw] slice.

params  in m kh kw + out in m            (full pointwise)
        in m kh kw + rank (in m + out)   (low-rank pointwise)
FLOPs   2 B H' W' (in m kh kw + out in m), or with the bottleneck 2 B H' W' (in m kh kw +
        rank (in m + out)).

Conversions (functions first, the class wraps them): :func:`separable_to_conv_weight` and
:func:`conv_weight_to_separable`, which takes the top-m singular triplets of every input
channel's slice (exact when m = min(out, kh kw) and the pointwise is full), then, with
``rank``, the truncated SVD of the pointwise matrix [out, in m].
"""
from __future__ import annotations

import torch
from torch import nn

from factorlab.layers.base import check_positive_int, contract, contraction_plan
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.lowrank import weight_to_lowrank

#: einsum of (depthwise [C, m, kh, kw], pointwise [S, C, m]) into the weight [S, C, kh, kw].
FULL_EQUATION = "cjyx,scj->scyx"
#: einsum of (depthwise, pointwise_in [r, C, m], pointwise_out [S, r]) into the weight.
LOWRANK_EQUATION = "cjyx,rcj,sr->scyx"
#: einsum of (pointwise_in [r, C, m], pointwise_out [S, r]) into one pointwise [S, C, m].
POINTWISE_EQUATION = "rcj,sr->scj"


# -- conversions ------------------------------------------------------------------------------

def separable_to_conv_weight(depthwise: torch.Tensor, *pointwise: torch.Tensor) -> torch.Tensor:
    """The weight [S, C, kh, kw] of a depthwise convolution ``depthwise`` [C, m, kh, kw]
    followed by a pointwise one: either ``pointwise`` [S, C, m] (one factor) or
    ``pointwise_in`` [r, C, m] and ``pointwise_out`` [S, r] (a low-rank pointwise):
    W[s, c, y, x] = sum_j P[s, c, j] D[c, j, y, x]."""
    if depthwise.dim() != 4 or len(pointwise) not in (1, 2):
        raise ValueError(f"need depthwise [C, m, kh, kw] and one pointwise [S, C, m] or two ([r, C, m], [S, r]), "
                         f"got {tuple(depthwise.shape)} and {[tuple(p.shape) for p in pointwise]}")
    return contract(FULL_EQUATION if len(pointwise) == 1 else LOWRANK_EQUATION, depthwise, *pointwise)


def conv_weight_to_separable(weight: torch.Tensor, depth_multiplier: int = 1, rank: int | None = None
                             ) -> tuple[torch.Tensor, ...]:
    """(depthwise [C, m, kh, kw], pointwise [S, C, m]), or with ``rank`` (depthwise,
    pointwise_in [rank, C, m], pointwise_out [S, rank]), of ``weight`` [S, C, kh, kw] (float64):
    the top-m singular triplets of each input channel's [S, kh kw] slice (exact at
    m = min(S, kh kw) without ``rank``), then the truncated SVD of the pointwise matrix
    [S, C m]."""
    if weight.dim() != 4:
        raise ValueError(f"need a convolution weight [out, in, kh, kw], got shape {tuple(weight.shape)}")
    s, c, kh, kw = weight.shape
    m = check_positive_int("depth_multiplier", depth_multiplier)
    if m > min(s, kh * kw):
        raise ValueError(f"depth_multiplier={m} exceeds min(out_channels, kh*kw)={min(s, kh * kw)}, the most a "
                         "per-channel decomposition can use: valid values are 1..that")
    w = weight.detach().to("cpu", torch.float64).permute(1, 0, 2, 3).reshape(c, s, kh * kw)
    u, sv, vh = torch.linalg.svd(w, full_matrices=False)  # [c, s, k], [c, k], [c, k, kh kw]
    root = sv[:, :m].sqrt()
    depthwise = (root[:, :, None] * vh[:, :m]).reshape(c, m, kh, kw)
    pointwise = (u[:, :, :m] * root[:, None, :]).permute(1, 0, 2)  # [s, c, m]
    if rank is None:
        return depthwise, pointwise
    a, b = weight_to_lowrank(pointwise.reshape(s, c * m), rank)
    return depthwise, b.reshape(b.shape[0], c, m), a


# -- layer ------------------------------------------------------------------------------------

class SeparableConv2d(FactorizedConv2d):
    r"""Depthwise-separable convolution: a depthwise :math:`k_h \times k_w` convolution with
    :math:`m` filters per input channel (carrying stride, padding and dilation), then a
    pointwise 1x1 convolution :math:`C m \to S`, optionally low-rank (a bottleneck
    :math:`C m \to r \to S`):

    .. math::
        \mathbf{W}_{s, c, y, x} = \sum_{j=1}^{m} \mathbf{P}_{s, c, j} \, \mathbf{D}_{c, j, y, x},
        \qquad \text{low-rank: } \mathbf{P}_{s, c, j} = \sum_{t=1}^{r}
        \mathbf{P}^{\text{out}}_{s, t} \, \mathbf{P}^{\text{in}}_{t, c, j},

    with :math:`C m k_h k_w + S C m` factor parameters, or :math:`C m k_h k_w + r (C m + S)`
    with the bottleneck. ``from_dense(layer, rank=None, depth_multiplier=1)`` takes each input
    channel's top-:math:`m` singular triplets (``conv_weight_to_separable``; exact at
    :math:`m = \min(S, k_h k_w)` without ``rank``); ``separable_to_conv_weight`` rebuilds
    the weight.

    Args:
        in_channels (int): :math:`C`.
        out_channels (int): :math:`S`.
        kernel_size (int or tuple): :math:`(k_h, k_w)`.
        stride (int or tuple): as ``nn.Conv2d`` (default 1).
        padding (int or tuple): zero padding, as ``nn.Conv2d`` (default 0).
        dilation (int or tuple): as ``nn.Conv2d`` (default 1).
        rank (int or None): :math:`r`, 1 to :math:`\min(S, C m)`, for a low-rank pointwise
            stage; or give ``target_params`` / ``compression``, which solve for it. None of
            the three gives the plain separable layer.
        depth_multiplier (int): :math:`m` (default 1).
        target_params (float): parameter budget, bias included.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(B, C, H, W)`, output :math:`(B, S, H', W')`; factors ``depthwise``
        :math:`(C, m, k_h, k_w)`, then ``pointwise`` :math:`(S, C, m)`, or ``pointwise_in``
        :math:`(r, C, m)` and ``pointwise_out`` :math:`(S, r)`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank: int | None = None, *, depth_multiplier: int = 1, target_params=None, compression=None,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        m = self.depth_multiplier = check_positive_int("depth_multiplier", depth_multiplier)
        c, s = self.in_channels, self.out_channels
        if rank is None and target_params is None and compression is None:
            self.rank = None
        else:
            (self.rank,) = self.resolve_rank(rank, target_params, compression)
        self.depthwise = nn.Parameter(torch.empty(c, m, kh, kw))
        if self.rank is None:
            self.pointwise = nn.Parameter(torch.empty(s, c, m))
        else:
            self.pointwise_in = nn.Parameter(torch.empty(self.rank, c, m))
            self.pointwise_out = nn.Parameter(torch.empty(s, self.rank))
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        if self.rank is None:
            return [self.depthwise, self.pointwise]
        return [self.depthwise, self.pointwise_in, self.pointwise_out]

    def rank_maxima(self) -> tuple[int, ...]:
        return (min(self.out_channels, self.in_channels * self.depth_multiplier),)

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        cm = self.in_channels * self.depth_multiplier
        return cm * self.kernel_size[0] * self.kernel_size[1] + ranks[0] * (cm + self.out_channels)

    def summed_terms(self) -> int:
        return self.depth_multiplier if self.rank is None else self.depth_multiplier * self.rank

    def weight_equation(self) -> str:
        return FULL_EQUATION if self.rank is None else LOWRANK_EQUATION

    def dense_weight(self) -> torch.Tensor:
        return separable_to_conv_weight(*self.factors())

    def stages(self) -> list[Stage]:
        c, m = self.in_channels, self.depth_multiplier
        kh, kw = self.kernel_size
        first = Stage(self.depthwise.reshape(c * m, 1, kh, kw), self.stride, self.padding, self.dilation, groups=c)
        if self.rank is None:
            return [first, Stage(self.pointwise.reshape(self.out_channels, c * m, 1, 1))]
        return [first, Stage(self.pointwise_in.reshape(self.rank, c * m, 1, 1)),
                Stage(self.pointwise_out[:, :, None, None])]

    def _merged_pointwise_stages(self) -> list[Stage]:
        """The ``merge_pointwise`` path (low-rank pointwise only): the two pointwise factors
        merged into one 1x1 kernel [S, C m]."""
        first = self.stages()[0]
        pw = contract(POINTWISE_EQUATION, self.pointwise_in, self.pointwise_out)
        return [first, Stage(pw.reshape(self.out_channels, -1, 1, 1))]

    def _stage_paths(self):
        paths = super()._stage_paths()
        if self.rank is not None:
            merge = contraction_plan(POINTWISE_EQUATION, (tuple(self.pointwise_in.shape),
                                                          tuple(self.pointwise_out.shape)))
            paths["merge_pointwise"] = (self._merged_pointwise_stages, merge.ops())
        return paths

    def decompose(self, weight: torch.Tensor) -> list[torch.Tensor]:
        return list(conv_weight_to_separable(weight, self.depth_multiplier, self.rank))
