"""Tensor-train factorizations: ``TTLinear`` and ``TTConv2d``.

TTLinear (the TT-matrix layer of Novikov et al. 2015): with in = prod i_k and out = prod o_k,
    W[(o_1..o_d), (i_1..i_d)] = G_1[o_1, i_1] G_2[o_2, i_2] ... G_d[o_d, i_d],
    each G_k[o_k, i_k] an r_{k-1} x r_k matrix (r_0 = r_d = 1), stored as cores
    [r_{k-1}, o_k, i_k, r_k]; params sum_k r_{k-1} o_k i_k r_k (+ out bias). Internal rank
    r_k is at most min(prod_{j<=k} o_j i_j, prod_{j>k} o_j i_j).
TTConv2d (after Garipov et al. 2016): the spatial kernel is the first core,
    W[(s_1..s_d), (c_1..c_d), y, x] = K[y, x] G_1[c_1, s_1] ... G_d[c_d, s_d],
    K[y, x] a 1 x r_0 row, G_k[c_k, s_k] r_{k-1} x r_k (r_d = 1); params
    r_0 kh kw + sum_k r_{k-1} c_k s_k r_k. Forward: the channel cores act as a 1x1 TT-matrix
    map in -> (out x r_0) channels at every pixel (one einsum), then one convolution with the
    kh x kw x r_0 kernel per output channel (stride, padding, dilation here).

``from_dense`` uses TensorLy's ``tensor_train`` (TT-SVD), exact at full ranks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.layers.base import (ContractionPlan, balanced_var, check_mode_pair, dense_init_var, expand_rank, normal_,
                                   resolve_budget, solve_rank, to_tensorly)
from factorlab.layers.conv import FactorizedConv2d, conv_flops, conv_output_hw
from factorlab.layers.linear import FactorizedLinear, Symbols


def tt_max_ranks(mode_sizes) -> tuple[int, ...]:
    """Largest useful internal TT ranks for a tensor with these mode sizes (TT-SVD bound)."""
    sizes = list(mode_sizes)
    return tuple(min(math.prod(sizes[:k + 1]), math.prod(sizes[k + 1:])) for k in range(len(sizes) - 1))


def _tt_ranks(rank, target_params, compression, dense_params, maxima, params_of, what):
    """Validated internal ranks from a rank argument or a parameter budget (uniform, clamped)."""
    budget = resolve_budget(rank, target_params, compression, dense_params)
    if budget is not None:
        r = solve_rank(lambda r: params_of([min(r, m) for m in maxima]), budget, max(maxima, default=1), what)
        rank = [min(r, m) for m in maxima]
    if not maxima:  # d == 1: no internal rank
        return ()
    return expand_rank("rank", rank, len(maxima), maxima)


def _tt_decompose(tensor: torch.Tensor, ranks) -> list[torch.Tensor]:
    """TT-SVD cores [r_{k-1}, n_k, r_k] of ``tensor`` with internal ``ranks``."""
    from tensorly.decomposition import tensor_train

    return list(tensor_train(to_tensorly(tensor), rank=[1, *ranks, 1]).factors)


class TTLinear(FactorizedLinear):
    """TT-matrix linear layer. ``rank``: one int or d-1 internal ranks; or ``target_params``
    / ``compression``. ``in_modes``/``out_modes`` (same length d) default to ``d`` balanced
    factors of the feature sizes."""

    def __init__(self, in_features: int, out_features: int, rank=None, *, in_modes=None, out_modes=None,
                 d: int = 2, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_features, self.out_features, in_modes, out_modes, d)
        pairs = [o * i for o, i in zip(self.out_modes, self.in_modes)]
        n_bias = self.out_features if bias else 0

        def params_of(ranks) -> int:
            r = [1, *ranks, 1]
            return sum(r[k] * pairs[k] * r[k + 1] for k in range(len(pairs))) + n_bias

        self.rank = _tt_ranks(rank, target_params, compression, self.dense_params(), tt_max_ranks(pairs), params_of,
                              "TTLinear")
        r = [1, *self.rank, 1]
        var = balanced_var(dense_init_var(self.in_features), math.prod(self.rank), len(pairs))
        self.cores = nn.ParameterList([
            nn.Parameter(normal_(torch.empty(r[k], o, i, r[k + 1]), var))
            for k, (o, i) in enumerate(zip(self.out_modes, self.in_modes))])

    def factors(self) -> list[torch.Tensor]:
        return list(self.cores)

    def subscripts(self):
        sym = Symbols()
        nd = len(self.in_modes)
        b = sym.take()
        o, i, r = sym.take(nd), sym.take(nd), sym.take(nd + 1)
        return b + i, [r[k] + o[k] + i[k] + r[k + 1] for k in range(nd)], b + o

    @classmethod
    def from_dense(cls, layer: nn.Linear, rank, *, in_modes=None, out_modes=None, d: int = 2) -> "TTLinear":
        """TT-SVD of the weight tensorized as (o_1 i_1, ..., o_d i_d)."""
        cls._check_dense(layer)
        new = cls(layer.in_features, layer.out_features, rank, in_modes=in_modes, out_modes=out_modes, d=d,
                  bias=layer.bias is not None)
        nd = len(new.in_modes)
        w = layer.weight.reshape(*new.out_modes, *new.in_modes)
        w = w.permute(*[j for k in range(nd) for j in (k, nd + k)])
        w = w.reshape(*[o * i for o, i in zip(new.out_modes, new.in_modes)])
        cores = _tt_decompose(w, new.rank)
        new._set_factors_([c.reshape(c.shape[0], o, i, c.shape[-1])
                           for c, o, i in zip(cores, new.out_modes, new.in_modes)])
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)


class TTConv2d(FactorizedConv2d):
    """TT convolution. ``in_modes``/``out_modes``: channel factorizations of the same length
    d (default ``d`` balanced factors); ``rank``: one int or d ranks (r_0 = spatial rank, then
    r_1..r_{d-1}); or ``target_params`` / ``compression``. Factors: ``spatial`` [r_0, kh, kw],
    ``cores[k]`` [r_{k-1}, c_k, s_k, r_k]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank=None, *, in_modes=None, out_modes=None, d: int = 2, target_params=None, compression=None,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_channels, self.out_channels, in_modes, out_modes, d)
        kh, kw = self.kernel_size
        sizes = [kh * kw] + [c * s for c, s in zip(self.in_modes, self.out_modes)]
        n_bias = self.out_channels if bias else 0

        def params_of(ranks) -> int:
            r = [1, *ranks, 1]
            return sum(r[k] * sizes[k] * r[k + 1] for k in range(len(sizes))) + n_bias

        self.rank = _tt_ranks(rank, target_params, compression, self.dense_params(), tt_max_ranks(sizes), params_of,
                              "TTConv2d")
        r = [*self.rank, 1]
        var = balanced_var(dense_init_var(self.fan_in), math.prod(self.rank), len(sizes))
        self.spatial = nn.Parameter(normal_(torch.empty(r[0], kh, kw), var))
        self.cores = nn.ParameterList([
            nn.Parameter(normal_(torch.empty(r[k], c, s, r[k + 1]), var))
            for k, (c, s) in enumerate(zip(self.in_modes, self.out_modes))])

    def factors(self) -> list[torch.Tensor]:
        return [self.spatial, *self.cores]

    def _letters(self):
        sym = Symbols()
        nd = len(self.in_modes)
        return sym.take(), sym.take(nd), sym.take(nd), sym.take(nd + 1), sym.take(2), sym.take(2)

    def weight_subscripts(self):
        _, c, s, r, yx, _ = self._letters()
        nd = len(self.in_modes)
        return [r[0] + yx] + [r[k] + c[k] + s[k] + r[k + 1] for k in range(nd)], s + c + yx

    def _channel_plan(self, shape) -> ContractionPlan:
        """Einsum x [B, c_1..c_d, H, W] x cores -> [B, s_1..s_d, r_0, H, W]."""
        b, c, s, r, _, hw = self._letters()
        nd = len(self.in_modes)
        eq = ",".join([b + c + hw] + [r[k] + c[k] + s[k] + r[k + 1] for k in range(nd)]) + "->" + b + s + r[0] + hw
        shapes = [(shape[0], *self.in_modes, shape[2], shape[3])] + [tuple(g.shape) for g in self.cores]
        return self._plan(("channels", tuple(shape)), lambda: ContractionPlan(eq, shapes))

    def _factored(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, h, w = x.shape
        r0 = self.rank[0]
        z = self._channel_plan(x.shape)(x.reshape(batch, *self.in_modes, h, w), *self.cores)
        z = z.reshape(batch * self.out_channels, r0, h, w)
        y = F.conv2d(z, self.spatial[None], None, self.stride, self.padding, self.dilation)
        return y.reshape(batch, self.out_channels, *y.shape[2:])

    def _factored_flops(self, shape) -> int:
        hw = conv_output_hw(shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)
        spatial = conv_flops(shape[0] * self.out_channels, self.rank[0], 1, hw, self.kernel_size)
        return self._channel_plan(shape).cost + spatial

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, rank, *, in_modes=None, out_modes=None, d: int = 2) -> "TTConv2d":
        """TT-SVD of the weight arranged as (kh kw, c_1 s_1, ..., c_d s_d)."""
        cls._check_dense(layer)
        new = cls(**cls._geometry(layer), rank=rank, in_modes=in_modes, out_modes=out_modes, d=d)
        nd = len(new.in_modes)
        kh, kw = new.kernel_size
        w = layer.weight.reshape(*new.out_modes, *new.in_modes, kh * kw)
        w = w.permute(2 * nd, *[j for k in range(nd) for j in (nd + k, k)])
        w = w.reshape(kh * kw, *[c * s for c, s in zip(new.in_modes, new.out_modes)])
        first, *rest = _tt_decompose(w, new.rank)
        spatial = first[0].T.reshape(new.rank[0], kh, kw)
        cores = [g.reshape(g.shape[0], c, s, g.shape[-1]) for g, c, s in zip(rest, new.in_modes, new.out_modes)]
        new._set_factors_([spatial, *cores])
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)
