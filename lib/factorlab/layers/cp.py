"""CP (CANDECOMP/PARAFAC) factorizations: ``CPLinear`` and ``CPConv2d``.

CPLinear:  the weight viewed as a tensor (o_1..o_d, i_1..i_d) is a sum of R rank-one tensors,
           W[o, i] = sum_r prod_k A_k[o_k, r] prod_k B_k[i_k, r];
           params R (sum_k o_k + sum_k i_k) (+ out bias). With d = 1 this is a rank-R matrix.
CPConv2d:  W[s, c, y, x] = sum_r S[s, r] C[r, c] Y[r, y] X[r, x] (Lebedev et al. 2015): a 1x1
           convolution in -> R, a depthwise kh x 1 and a depthwise 1 x kw convolution on the R
           channels (carrying stride, padding, dilation), a 1x1 convolution R -> out;
           params R (in + kh + kw + out); FLOPs 2 B R (in H W + kh H1 W + kw H' W' + out H' W')
           with H1 the height after the vertical stage.

Conversions (functions first, the classes wrap them): :func:`cp_to_weight`,
:func:`weight_to_cp`, :func:`cp_to_conv_weight`, :func:`conv_weight_to_cp`. The
decompositions run TensorLy's ``parafac`` (ALS from an SVD start) in float64; CP has no finite
"full rank" that guarantees an exact fit, so check ``reconstruction_error``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from factorlab.layers.base import (check_modes, check_mode_pair, check_positive_int, contract, contraction_plan,
                                   to_tensorly)
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.linear import FactorizedLinear, Symbols, weight_equation

#: einsum of CPConv2d's factors (channel_in [R, C], vertical [R, kh], horizontal [R, kw],
#: channel_out [S, R]) into the weight [S, C, kh, kw].
CONV_EQUATION = "rc,ry,rx,sr->scyx"
#: einsum of CPConv2d's vertical [R, kh] and horizontal [R, kw] factors into one depthwise
#: kernel [R, kh, kw] (the ``depthwise`` path).
DEPTHWISE_EQUATION = "ry,rx->ryx"


# -- conversions ------------------------------------------------------------------------------

def cp_subscripts(d: int) -> tuple[str, list[str], str]:
    """einsum subscripts (x, factors, y) of a CP linear map over ``d`` mode pairs: x = batch +
    input modes; factors A_1..A_d [o_k, R] then B_1..B_d [i_k, R]; y = batch + output modes."""
    sym = Symbols()
    b, r = sym.take(), sym.take()
    o, i = sym.take(d), sym.take(d)
    return b + i, [ok + r for ok in o] + [ik + r for ik in i], b + o


def cp_to_weight(out_factors: Sequence[torch.Tensor], in_factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The weight [prod o_k, prod i_k] of CP factors ``out_factors[k]`` [o_k, R] and
    ``in_factors[k]`` [i_k, R]: W[(o_1..o_d), (i_1..i_d)] = sum_r prod_k A_k[o_k, r] B_k[i_k, r]."""
    out_factors, in_factors = list(out_factors), list(in_factors)
    if not out_factors or len(out_factors) != len(in_factors):
        raise ValueError(f"need as many out_factors as in_factors (at least one), got {len(out_factors)} and "
                         f"{len(in_factors)}")
    w = contract(weight_equation(cp_subscripts(len(out_factors))), *out_factors, *in_factors)
    return w.reshape(math.prod(f.shape[0] for f in out_factors), math.prod(f.shape[0] for f in in_factors))


def _parafac(tensor: torch.Tensor, rank: int, n_iter_max: int, seed: int) -> list[torch.Tensor]:
    """Factors [n_k, rank] of a CP decomposition of ``tensor`` (float64; the weights absorbed
    into the first factor)."""
    from tensorly.decomposition import parafac

    rank = check_positive_int("rank", rank)
    cp = parafac(to_tensorly(tensor), rank, n_iter_max=n_iter_max, init="svd", tol=1e-10, random_state=seed)
    factors = [f.clone() for f in cp.factors]
    factors[0] = factors[0] * cp.weights[None, :]
    return factors


def weight_to_cp(weight: torch.Tensor, rank: int, *, out_modes: Sequence[int], in_modes: Sequence[int],
                 n_iter_max: int = 500, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(out_factors, in_factors): a rank-``rank`` CP decomposition (ALS, ``n_iter_max``
    sweeps, SVD start, TensorLy's ``random_state=seed``) of ``weight`` [out, in] viewed as a
    tensor (o_1..o_d, i_1..i_d), in float64."""
    if weight.dim() != 2:
        raise ValueError(f"weight_to_cp needs a matrix [out, in], got shape {tuple(weight.shape)}")
    outs = check_modes("out_modes", weight.shape[0], out_modes, None)
    ins = check_modes("in_modes", weight.shape[1], in_modes, None)
    if len(outs) != len(ins):
        raise ValueError(f"in_modes {ins} and out_modes {outs} must have the same length")
    factors = _parafac(weight.reshape(*outs, *ins), rank, n_iter_max, seed)
    return factors[:len(outs)], factors[len(outs):]


def cp_to_conv_weight(channel_in: torch.Tensor, vertical: torch.Tensor, horizontal: torch.Tensor,
                      channel_out: torch.Tensor) -> torch.Tensor:
    """The weight [S, C, kh, kw] = sum_r channel_out[s, r] channel_in[r, c] vertical[r, y]
    horizontal[r, x] of CP factors [R, C], [R, kh], [R, kw], [S, R]."""
    return contract(CONV_EQUATION, channel_in, vertical, horizontal, channel_out)


def conv_weight_to_cp(weight: torch.Tensor, rank: int, *, n_iter_max: int = 500, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(channel_in [R, C], vertical [R, kh], horizontal [R, kw], channel_out [S, R]): a
    rank-``rank`` CP decomposition of ``weight`` [S, C, kh, kw] (as :func:`weight_to_cp`)."""
    if weight.dim() != 4:
        raise ValueError(f"need a convolution weight [out, in, kh, kw], got shape {tuple(weight.shape)}")
    s, c, y, x = _parafac(weight, rank, n_iter_max, seed)
    return c.T, y.T, x.T, s


# -- layers -----------------------------------------------------------------------------------

class CPLinear(FactorizedLinear):
    r"""Linear layer whose weight, viewed as a tensor of shape
    :math:`(o_1, \dots, o_d, i_1, \dots, i_d)`, is a sum of :math:`R` rank-one tensors:

    .. math::
        \mathbf{W}_{(o_1 \dots o_d), (i_1 \dots i_d)} =
        \sum_{r=1}^{R} \prod_{k=1}^{d} \mathbf{A}^{(k)}_{o_k, r} \, \mathbf{B}^{(k)}_{i_k, r},
        \qquad \mathbf{y} = \mathbf{W} \mathbf{x} + \mathbf{b},

    with :math:`R \sum_k (o_k + i_k)` factor parameters. The forward pass contracts the input
    with the factors along a FLOP-optimal path. ``from_dense(layer, rank, n_iter_max=500,
    seed=0)`` runs ALS (``weight_to_cp``); ``cp_to_weight`` rebuilds the weight.

    Args:
        in_features (int): :math:`I = \prod_k i_k`.
        out_features (int): :math:`O = \prod_k o_k`.
        rank (int): :math:`R` (any positive integer). Give exactly one of ``rank``,
            ``target_params`` and ``compression``.
        in_modes (tuple of int): :math:`(i_1, \dots, i_d)`; default ``d`` balanced factors of
            ``in_features``.
        out_modes (tuple of int): :math:`(o_1, \dots, o_d)`, as many as ``in_modes``; default
            balanced factors of ``out_features``.
        d (int): number of mode pairs when the modes are not given (default 2).
        target_params (float): parameter budget, bias included: the largest rank within it.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(*, I)`, output :math:`(*, O)`; factors ``out_factors[k]``
        :math:`(o_k, R)` and ``in_factors[k]`` :math:`(i_k, R)`.
    """

    decompose_options = ("n_iter_max", "seed")

    def __init__(self, in_features: int, out_features: int, rank: int | None = None, *, in_modes=None,
                 out_modes=None, d: int = 2, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_features, self.out_features, in_modes, out_modes, d)
        (self.rank,) = self.resolve_rank(rank, target_params, compression)
        self.out_factors = nn.ParameterList([nn.Parameter(torch.empty(o, self.rank)) for o in self.out_modes])
        self.in_factors = nn.ParameterList([nn.Parameter(torch.empty(i, self.rank)) for i in self.in_modes])
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return [*self.out_factors, *self.in_factors]

    def rank_maxima(self) -> None:
        return None

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        return ranks[0] * (sum(self.in_modes) + sum(self.out_modes))

    def summed_terms(self) -> int:
        return self.rank

    def subscripts(self):
        return cp_subscripts(len(self.in_modes))

    def dense_weight(self) -> torch.Tensor:
        return cp_to_weight(self.out_factors, self.in_factors)

    def decompose(self, weight: torch.Tensor, *, n_iter_max: int = 500, seed: int = 0) -> list[torch.Tensor]:
        out_factors, in_factors = weight_to_cp(weight, self.rank, out_modes=self.out_modes, in_modes=self.in_modes,
                                               n_iter_max=n_iter_max, seed=seed)
        return [*out_factors, *in_factors]


class CPConv2d(FactorizedConv2d):
    r"""Rank-:math:`R` CP convolution (Lebedev et al. 2015):

    .. math::
        \mathbf{W}_{s, c, y, x} = \sum_{r=1}^{R} \mathbf{S}_{s, r} \, \mathbf{C}_{r, c} \,
        \mathbf{Y}_{r, y} \, \mathbf{X}_{r, x},

    run as a 1x1 convolution :math:`C \to R`, a depthwise :math:`k_h \times 1` and a depthwise
    :math:`1 \times k_w` convolution on the :math:`R` channels (carrying stride, padding and
    dilation), and a 1x1 convolution :math:`R \to S`; :math:`R (C + k_h + k_w + S)` factor
    parameters. ``from_dense(layer, rank, n_iter_max=500, seed=0)`` runs ALS
    (``conv_weight_to_cp``); ``cp_to_conv_weight`` rebuilds the weight.

    Args:
        in_channels (int): :math:`C`.
        out_channels (int): :math:`S`.
        kernel_size (int or tuple): :math:`(k_h, k_w)`.
        stride (int or tuple): as ``nn.Conv2d`` (default 1).
        padding (int or tuple): zero padding, as ``nn.Conv2d`` (default 0).
        dilation (int or tuple): as ``nn.Conv2d`` (default 1).
        rank (int): :math:`R` (any positive integer). Give exactly one of ``rank``,
            ``target_params`` and ``compression``.
        target_params (float): parameter budget, bias included: the largest rank within it.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(B, C, H, W)`, output :math:`(B, S, H', W')`; factors ``channel_in``
        :math:`(R, C)`, ``vertical`` :math:`(R, k_h)`, ``horizontal`` :math:`(R, k_w)`,
        ``channel_out`` :math:`(S, R)`.
    """

    decompose_options = ("n_iter_max", "seed")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank: int | None = None, *, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        (self.rank,) = self.resolve_rank(rank, target_params, compression)
        self.channel_in = nn.Parameter(torch.empty(self.rank, self.in_channels))
        self.vertical = nn.Parameter(torch.empty(self.rank, kh))
        self.horizontal = nn.Parameter(torch.empty(self.rank, kw))
        self.channel_out = nn.Parameter(torch.empty(self.out_channels, self.rank))
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return [self.channel_in, self.vertical, self.horizontal, self.channel_out]

    def rank_maxima(self) -> None:
        return None

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        return ranks[0] * (self.in_channels + sum(self.kernel_size) + self.out_channels)

    def summed_terms(self) -> int:
        return self.rank

    def weight_equation(self) -> str:
        return CONV_EQUATION

    def dense_weight(self) -> torch.Tensor:
        return cp_to_conv_weight(self.channel_in, self.vertical, self.horizontal, self.channel_out)

    def stages(self) -> list[Stage]:
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        r = self.rank
        return [
            Stage(self.channel_in[:, :, None, None]),
            Stage(self.vertical[:, None, :, None], (sh, 1), (ph, 0), (dh, 1), groups=r),
            Stage(self.horizontal[:, None, None, :], (1, sw), (0, pw), (1, dw), groups=r),
            Stage(self.channel_out[:, :, None, None]),
        ]

    def _depthwise_stages(self) -> list[Stage]:
        """The ``depthwise`` path: the vertical and horizontal factors merged into one
        depthwise kh x kw kernel K[r, y, x] = vertical[r, y] horizontal[r, x] (three
        convolutions instead of four)."""
        r = self.rank
        kernel = contract(DEPTHWISE_EQUATION, self.vertical, self.horizontal)[:, None]
        return [Stage(self.channel_in[:, :, None, None]),
                Stage(kernel, self.stride, self.padding, self.dilation, groups=r),
                Stage(self.channel_out[:, :, None, None])]

    def _stage_paths(self):
        merge = contraction_plan(DEPTHWISE_EQUATION, (tuple(self.vertical.shape), tuple(self.horizontal.shape)))
        return {**super()._stage_paths(), "depthwise": (self._depthwise_stages, merge.ops())}

    def decompose(self, weight: torch.Tensor, *, n_iter_max: int = 500, seed: int = 0) -> list[torch.Tensor]:
        return list(conv_weight_to_cp(weight, self.rank, n_iter_max=n_iter_max, seed=seed))
