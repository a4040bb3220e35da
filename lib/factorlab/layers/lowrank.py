"""Low-rank (matrix) factorizations: ``LowRankLinear`` and ``LowRankConv2d``.

LowRankLinear:  W = U V with U [out, r], V [r, in];  params r (in + out) (+ out bias);
                forward FLOPs 2 B r (in + out) (+ B out).
LowRankConv2d:  the weight reshaped to a matrix [out, in kh kw] is U V: a kh x kw convolution
                in -> r (carrying stride, padding, dilation) then a 1x1 convolution r -> out
                (Jaderberg et al. 2014's bottleneck; the journal's rank = in_channels // factor).
                params r (in kh kw + out); FLOPs 2 B H' W' r (in kh kw + out).

``from_dense`` uses the truncated SVD (optimal in Frobenius norm; exact at full rank).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from factorlab.layers.base import Rank, balanced_var, dense_init_var, expand_rank, normal_, resolve_budget, solve_rank
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.linear import FactorizedLinear


def svd_factors(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of ``matrix`` [m, n] in float64: (U sqrt(S) [m, r], sqrt(S) V^T [r, n])."""
    u, s, vh = torch.linalg.svd(matrix.detach().to("cpu", torch.float64), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


class LowRankLinear(FactorizedLinear):
    """y = x V^T U^T + b with U [out_features, rank] and V [rank, in_features].

    Give exactly one of ``rank`` (1..min(in, out)), ``target_params`` (largest rank within
    that many parameters) or ``compression`` (dense params / layer params).
    """

    def __init__(self, in_features: int, out_features: int, rank: int | None = None, *, target_params=None,
                 compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        n_bias = self.out_features if bias else 0
        max_rank = min(self.in_features, self.out_features)
        budget = resolve_budget(rank, target_params, compression, self.dense_params())
        if budget is not None:
            rank = solve_rank(lambda r: r * (self.in_features + self.out_features) + n_bias, budget, max_rank,
                              "LowRankLinear")
        (self.rank,) = expand_rank("rank", rank, 1, (max_rank,))
        self.U = nn.Parameter(torch.empty(self.out_features, self.rank))
        self.V = nn.Parameter(torch.empty(self.rank, self.in_features))
        var = balanced_var(dense_init_var(self.in_features), self.rank, 2)
        normal_(self.U, var)
        normal_(self.V, var)

    def factors(self) -> list[torch.Tensor]:
        return [self.U, self.V]

    def subscripts(self):
        return "bi", ["or", "ri"], "bo"

    @classmethod
    def from_dense(cls, layer: nn.Linear, rank: int) -> "LowRankLinear":
        """Truncated SVD of ``layer.weight`` at ``rank`` (exact when rank = min(in, out))."""
        cls._check_dense(layer)
        new = cls(layer.in_features, layer.out_features, rank, bias=layer.bias is not None)
        new._set_factors_(svd_factors(layer.weight, new.rank))
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)


class LowRankConv2d(FactorizedConv2d):
    """kh x kw convolution in_channels -> rank, then 1x1 convolution rank -> out_channels.

    Factors: ``first`` [rank, in, kh, kw], ``second`` [out, rank]. Rank range 1..min(out,
    in kh kw); or give ``target_params`` / ``compression``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank: int | None = None, *, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        n_bias = self.out_channels if bias else 0
        max_rank = min(self.out_channels, self.in_channels * kh * kw)
        budget = resolve_budget(rank, target_params, compression, self.dense_params())
        if budget is not None:
            rank = solve_rank(lambda r: r * (self.fan_in + self.out_channels) + n_bias, budget, max_rank,
                              "LowRankConv2d")
        (self.rank,) = expand_rank("rank", rank, 1, (max_rank,))
        self.first = nn.Parameter(torch.empty(self.rank, self.in_channels, kh, kw))
        self.second = nn.Parameter(torch.empty(self.out_channels, self.rank))
        var = balanced_var(dense_init_var(self.fan_in), self.rank, 2)
        normal_(self.first, var)
        normal_(self.second, var)

    def factors(self) -> list[torch.Tensor]:
        return [self.first, self.second]

    def weight_subscripts(self):
        return ["rchw", "or"], "ochw"

    def stages(self) -> list[Stage]:
        return [Stage(self.first, self.stride, self.padding, self.dilation),
                Stage(self.second[:, :, None, None])]

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, rank: int) -> "LowRankConv2d":
        """Truncated SVD of the weight reshaped to [out, in kh kw]."""
        cls._check_dense(layer)
        new = cls(**cls._geometry(layer), rank=rank)
        w = layer.weight
        u, v = svd_factors(w.reshape(w.shape[0], -1), new.rank)
        new._set_factors_([v.reshape(new.rank, *w.shape[1:]), u])
        new._copy_bias_from(layer)
        return new.to(w.device, w.dtype)


def bottleneck_rank(in_channels: int, factor: float) -> int:
    """The journal's bottleneck rank: ``in_channels // factor`` (at least 1)."""
    return max(1, math.floor(in_channels / factor))
