"""CP (CANDECOMP/PARAFAC) factorizations: ``CPLinear`` and ``CPConv2d``.

CPLinear:  the weight viewed as a tensor (o_1..o_d, i_1..i_d) is a sum of R rank-one tensors,
           W[o, i] = sum_r prod_k A_k[o_k, r] prod_k B_k[i_k, r];
           params R (sum_k o_k + sum_k i_k) (+ out bias). With d = 1 this is a rank-R matrix.
CPConv2d:  W[s, c, y, x] = sum_r S[s, r] C[r, c] Y[r, y] X[r, x] (Lebedev et al. 2015): a 1x1
           convolution in -> R, a depthwise kh x 1 and a depthwise 1 x kw convolution on the R
           channels (carrying stride, padding, dilation), a 1x1 convolution R -> out;
           params R (in + kh + kw + out); FLOPs 2 B R (in H W + kh H1 W + kw H' W' + out H' W')
           with H1 the height after the vertical stage.

``from_dense`` runs TensorLy's ``parafac`` (ALS, SVD initialisation) in float64; CP has no
finite "full rank" that guarantees an exact fit, so check ``reconstruction_error``.
"""
from __future__ import annotations

import torch
from torch import nn

from factorlab.layers.base import (balanced_var, check_mode_pair, dense_init_var, expand_rank, normal_, resolve_budget, solve_rank,
                                   to_tensorly)
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.linear import FactorizedLinear, Symbols


def _parafac(tensor: torch.Tensor, rank: int, n_iter_max: int, seed: int):
    """(weights-absorbed factors) of a CP decomposition of ``tensor``."""
    from tensorly.decomposition import parafac

    cp = parafac(to_tensorly(tensor), rank, n_iter_max=n_iter_max, init="svd", tol=1e-10, random_state=seed)
    factors = [f.clone() for f in cp.factors]
    factors[0] = factors[0] * cp.weights[None, :]
    return factors


class CPLinear(FactorizedLinear):
    """Linear layer whose tensorized weight is a rank-``rank`` CP tensor.

    ``in_modes``/``out_modes`` (products equal to the features) default to ``d`` balanced
    factors. Factors: ``out_factors[k]`` [o_k, R], ``in_factors[k]`` [i_k, R].
    """

    def __init__(self, in_features: int, out_features: int, rank: int | None = None, *, in_modes=None,
                 out_modes=None, d: int = 2, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_features, self.out_features, in_modes, out_modes, d)
        per_rank = sum(self.in_modes) + sum(self.out_modes)
        n_bias = self.out_features if bias else 0
        budget = resolve_budget(rank, target_params, compression, self.dense_params())
        if budget is not None:
            rank = solve_rank(lambda r: r * per_rank + n_bias, budget, self.dense_params(), "CPLinear")
        (self.rank,) = expand_rank("rank", rank, 1)
        var = balanced_var(dense_init_var(self.in_features), self.rank, 2 * len(self.in_modes))
        self.out_factors = nn.ParameterList([nn.Parameter(normal_(torch.empty(o, self.rank), var)) for o in self.out_modes])
        self.in_factors = nn.ParameterList([nn.Parameter(normal_(torch.empty(i, self.rank), var)) for i in self.in_modes])

    def factors(self) -> list[torch.Tensor]:
        return [*self.out_factors, *self.in_factors]

    def subscripts(self):
        sym = Symbols()
        b, r = sym.take(), sym.take()
        o, i = sym.take(len(self.out_modes)), sym.take(len(self.in_modes))
        return b + i, [ok + r for ok in o] + [ik + r for ik in i], b + o

    @classmethod
    def from_dense(cls, layer: nn.Linear, rank: int, *, in_modes=None, out_modes=None, d: int = 2,
                   n_iter_max: int = 500, seed: int = 0) -> "CPLinear":
        """CP-decompose the tensorized ``layer.weight`` (ALS, ``n_iter_max`` sweeps)."""
        cls._check_dense(layer)
        new = cls(layer.in_features, layer.out_features, rank, in_modes=in_modes, out_modes=out_modes, d=d,
                  bias=layer.bias is not None)
        w = layer.weight.reshape(*new.out_modes, *new.in_modes)
        new._set_factors_(_parafac(w, new.rank, n_iter_max, seed))
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)


class CPConv2d(FactorizedConv2d):
    """Rank-``rank`` CP convolution: 1x1 (in -> R), kh x 1 depthwise, 1 x kw depthwise, 1x1
    (R -> out). Factors: ``channel_in`` [R, in], ``vertical`` [R, kh], ``horizontal`` [R, kw],
    ``channel_out`` [out, R]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank: int | None = None, *, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        per_rank = self.in_channels + kh + kw + self.out_channels
        n_bias = self.out_channels if bias else 0
        budget = resolve_budget(rank, target_params, compression, self.dense_params())
        if budget is not None:
            rank = solve_rank(lambda r: r * per_rank + n_bias, budget, self.dense_params(), "CPConv2d")
        (self.rank,) = expand_rank("rank", rank, 1)
        var = balanced_var(dense_init_var(self.fan_in), self.rank, 4)
        self.channel_in = nn.Parameter(normal_(torch.empty(self.rank, self.in_channels), var))
        self.vertical = nn.Parameter(normal_(torch.empty(self.rank, kh), var))
        self.horizontal = nn.Parameter(normal_(torch.empty(self.rank, kw), var))
        self.channel_out = nn.Parameter(normal_(torch.empty(self.out_channels, self.rank), var))

    def factors(self) -> list[torch.Tensor]:
        return [self.channel_in, self.vertical, self.horizontal, self.channel_out]

    def weight_subscripts(self):
        return ["rc", "ry", "rx", "sr"], "scyx"

    def stages(self) -> list[Stage]:
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        r = self.rank
        return [
            Stage(self.channel_in[:, :, None, None]),
            Stage(self.vertical[:, None, :, None], (sh, 1), (ph, 0), (dh, 1), groups=r),
            Stage(self.horizontal[:, None, None, :], (1, sw), (0, pw), (1, dw), groups=r),
            Stage(self.channel_out[:, :, None, None]),
        ]

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, rank: int, *, n_iter_max: int = 500, seed: int = 0) -> "CPConv2d":
        """CP-decompose ``layer.weight`` [out, in, kh, kw] (ALS, ``n_iter_max`` sweeps)."""
        cls._check_dense(layer)
        new = cls(**cls._geometry(layer), rank=rank)
        s, c, y, x = _parafac(layer.weight, new.rank, n_iter_max, seed)
        new._set_factors_([c.T, y.T, x.T, s])
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)

