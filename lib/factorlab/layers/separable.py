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

``from_dense`` takes the top-m singular triplets of every input channel's slice (exact when
m = min(out, kh kw) and the pointwise is full), then, with ``rank``, the truncated SVD of the
pointwise matrix [out, in m].
"""
from __future__ import annotations

import torch
from torch import nn

from factorlab.layers.base import balanced_var, check_positive_int, dense_init_var, expand_rank, normal_, resolve_budget, solve_rank
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.lowrank import svd_factors


class SeparableConv2d(FactorizedConv2d):
    """Depthwise then pointwise convolution. ``rank`` (or ``target_params`` /
    ``compression``, which solve for it) makes the pointwise stage low-rank; none of the three
    gives the plain separable layer. Factors: ``depthwise`` [in, m, kh, kw], then either
    ``pointwise`` [out, in, m] or ``pointwise_in`` [rank, in, m] and ``pointwise_out``
    [out, rank]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank: int | None = None, *, depth_multiplier: int = 1, target_params=None, compression=None,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        m = self.depth_multiplier = check_positive_int("depth_multiplier", depth_multiplier)
        c, s = self.in_channels, self.out_channels
        n_bias = s if bias else 0
        max_rank = min(s, c * m)
        if rank is not None or target_params is not None or compression is not None:
            budget = resolve_budget(rank, target_params, compression, self.dense_params())
            if budget is not None:
                rank = solve_rank(lambda r: c * m * kh * kw + r * (c * m + s) + n_bias, budget, max_rank,
                                  "SeparableConv2d")
            (rank,) = expand_rank("rank", rank, 1, (max_rank,))
        self.rank = rank
        v = dense_init_var(self.fan_in)
        var = balanced_var(v, m, 2) if rank is None else balanced_var(v, m * rank, 3)
        self.depthwise = nn.Parameter(normal_(torch.empty(c, m, kh, kw), var))
        if rank is None:
            self.pointwise = nn.Parameter(normal_(torch.empty(s, c, m), var))
        else:
            self.pointwise_in = nn.Parameter(normal_(torch.empty(rank, c, m), var))
            self.pointwise_out = nn.Parameter(normal_(torch.empty(s, rank), var))

    def factors(self) -> list[torch.Tensor]:
        if self.rank is None:
            return [self.depthwise, self.pointwise]
        return [self.depthwise, self.pointwise_in, self.pointwise_out]

    def weight_subscripts(self):
        if self.rank is None:
            return ["cjyx", "scj"], "scyx"
        return ["cjyx", "rcj", "sr"], "scyx"

    def stages(self) -> list[Stage]:
        c, m = self.in_channels, self.depth_multiplier
        kh, kw = self.kernel_size
        first = Stage(self.depthwise.reshape(c * m, 1, kh, kw), self.stride, self.padding, self.dilation, groups=c)
        if self.rank is None:
            return [first, Stage(self.pointwise.reshape(self.out_channels, c * m, 1, 1))]
        return [first, Stage(self.pointwise_in.reshape(self.rank, c * m, 1, 1)),
                Stage(self.pointwise_out[:, :, None, None])]

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, rank: int | None = None, *, depth_multiplier: int = 1) -> "SeparableConv2d":
        """Per-channel rank-m SVD of the dense weight (exact at m = min(out, kh kw) without
        ``rank``), then an optional low-rank pointwise."""
        cls._check_dense(layer)
        new = cls(**cls._geometry(layer), rank=rank, depth_multiplier=depth_multiplier)
        s, c, kh, kw = layer.weight.shape
        m = new.depth_multiplier
        if m > min(s, kh * kw):
            raise ValueError(f"depth_multiplier={m} exceeds min(out_channels, kh*kw)={min(s, kh * kw)}, the most a "
                             "per-channel decomposition can use: valid values are 1..that")
        w = layer.weight.detach().to("cpu", torch.float64).permute(1, 0, 2, 3).reshape(c, s, kh * kw)
        u, sv, vh = torch.linalg.svd(w, full_matrices=False)  # [c, s, k], [c, k], [c, k, kh kw]
        root = sv[:, :m].sqrt()
        depthwise = (root[:, :, None] * vh[:, :m]).reshape(c, m, kh, kw)
        pointwise = (u[:, :, :m] * root[:, None, :]).permute(1, 0, 2)  # [s, c, m]
        if new.rank is None:
            new._set_factors_([depthwise, pointwise])
        else:
            a, b = svd_factors(pointwise.reshape(s, c * m), new.rank)
            new._set_factors_([depthwise, b.reshape(new.rank, c, m), a])
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)
