"""Tucker factorizations: ``TuckerLinear`` and ``TuckerConv2d``.

TuckerLinear:  the tensorized weight (o_1..o_d, i_1..i_d) is a core G [p_1..p_d, q_1..q_d]
               multiplied along every mode by a factor: U_k [o_k, p_k], V_k [i_k, q_k];
               params prod p prod q + sum o_k p_k + sum i_k q_k (+ out bias).
TuckerConv2d:  Tucker-2 (Kim et al. 2016) on the two channel modes only: a 1x1 convolution
               in -> q, a kh x kw core convolution q -> p (carrying stride, padding,
               dilation), a 1x1 convolution p -> out; params in q + q p kh kw + p out;
               FLOPs 2 B (in q H W + q p kh kw H' W' + p out H' W').

Ranks may not exceed their mode sizes (a Tucker rank above a mode's size only pads: see
NOTES). ``from_dense`` runs TensorLy's ``tucker`` / ``partial_tucker`` (HOOI from a HOSVD
start) in float64; it is exact at full ranks.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from factorlab.layers.base import (balanced_var, check_mode_pair, dense_init_var, expand_rank, normal_, resolve_budget, solve_rank,
                                   to_tensorly)
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.linear import FactorizedLinear, Symbols


class TuckerLinear(FactorizedLinear):
    """Linear layer whose tensorized weight is a Tucker tensor.

    ``rank``: one int for every mode, or 2d ints (output modes first, then input modes), each
    at most its mode's size; or ``target_params`` / ``compression`` (one rank for all modes,
    clamped to each mode's size).
    """

    def __init__(self, in_features: int, out_features: int, rank=None, *, in_modes=None, out_modes=None,
                 d: int = 2, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_features, self.out_features, in_modes, out_modes, d)
        modes = (*self.out_modes, *self.in_modes)
        n_bias = self.out_features if bias else 0

        def params_of(r: int) -> int:
            ranks = [min(r, m) for m in modes]
            return math.prod(ranks) + sum(m * k for m, k in zip(modes, ranks)) + n_bias

        budget = resolve_budget(rank, target_params, compression, self.dense_params())
        if budget is not None:
            rank = [min(solve_rank(params_of, budget, max(modes), "TuckerLinear"), m) for m in modes]
        self.rank = expand_rank("rank", rank, len(modes), modes)
        nd = len(self.out_modes)
        var = balanced_var(dense_init_var(self.in_features), math.prod(self.rank), 1 + len(modes))
        self.core = nn.Parameter(normal_(torch.empty(self.rank), var))
        self.out_factors = nn.ParameterList(
            [nn.Parameter(normal_(torch.empty(o, p), var)) for o, p in zip(self.out_modes, self.rank[:nd])])
        self.in_factors = nn.ParameterList(
            [nn.Parameter(normal_(torch.empty(i, q), var)) for i, q in zip(self.in_modes, self.rank[nd:])])

    def factors(self) -> list[torch.Tensor]:
        return [self.core, *self.out_factors, *self.in_factors]

    def subscripts(self):
        sym = Symbols()
        nd = len(self.out_modes)
        b = sym.take()
        o, i = sym.take(nd), sym.take(nd)
        p, q = sym.take(nd), sym.take(nd)
        return b + i, [p + q] + [ok + pk for ok, pk in zip(o, p)] + [ik + qk for ik, qk in zip(i, q)], b + o

    @classmethod
    def from_dense(cls, layer: nn.Linear, rank, *, in_modes=None, out_modes=None, d: int = 2,
                   n_iter_max: int = 100) -> "TuckerLinear":
        """Tucker-decompose the tensorized ``layer.weight`` (exact at full ranks)."""
        from tensorly.decomposition import tucker

        cls._check_dense(layer)
        new = cls(layer.in_features, layer.out_features, rank, in_modes=in_modes, out_modes=out_modes, d=d,
                  bias=layer.bias is not None)
        w = to_tensorly(layer.weight.reshape(*new.out_modes, *new.in_modes))
        core, factors = tucker(w, rank=list(new.rank), init="svd", n_iter_max=n_iter_max, tol=1e-10)
        new._set_factors_([core, *factors])
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)


class TuckerConv2d(FactorizedConv2d):
    """Tucker-2 convolution. ``rank``: one int for both channel modes or (p, q) = (output
    rank, input rank), p <= out_channels, q <= in_channels. Factors: ``channel_in`` [q, in],
    ``core`` [p, q, kh, kw], ``channel_out`` [out, p]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank=None, *, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        n_bias = self.out_channels if bias else 0
        maxima = (self.out_channels, self.in_channels)

        def params_of(r: int) -> int:
            p, q = min(r, maxima[0]), min(r, maxima[1])
            return q * self.in_channels + p * q * kh * kw + p * self.out_channels + n_bias

        budget = resolve_budget(rank, target_params, compression, self.dense_params())
        if budget is not None:
            r = solve_rank(params_of, budget, max(maxima), "TuckerConv2d")
            rank = (min(r, maxima[0]), min(r, maxima[1]))
        self.rank = expand_rank("rank", rank, 2, maxima)
        p, q = self.rank
        var = balanced_var(dense_init_var(self.fan_in), p * q, 3)
        self.channel_in = nn.Parameter(normal_(torch.empty(q, self.in_channels), var))
        self.core = nn.Parameter(normal_(torch.empty(p, q, kh, kw), var))
        self.channel_out = nn.Parameter(normal_(torch.empty(self.out_channels, p), var))

    def factors(self) -> list[torch.Tensor]:
        return [self.channel_in, self.core, self.channel_out]

    def weight_subscripts(self):
        return ["qc", "pqyx", "sp"], "scyx"

    def stages(self) -> list[Stage]:
        return [Stage(self.channel_in[:, :, None, None]),
                Stage(self.core, self.stride, self.padding, self.dilation),
                Stage(self.channel_out[:, :, None, None])]

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, rank, *, n_iter_max: int = 100) -> "TuckerConv2d":
        """Tucker-2 decomposition of ``layer.weight`` over its two channel modes."""
        from tensorly.decomposition import partial_tucker

        cls._check_dense(layer)
        new = cls(**cls._geometry(layer), rank=rank)
        (core, (u_out, u_in)), _ = partial_tucker(to_tensorly(layer.weight), rank=list(new.rank), modes=[0, 1],
                                                  init="svd", n_iter_max=n_iter_max, tol=1e-10)
        new._set_factors_([u_in.T, core, u_out])
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)
