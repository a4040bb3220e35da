"""Tucker factorizations: ``TuckerLinear`` and ``TuckerConv2d``.

TuckerLinear:  the tensorized weight (o_1..o_d, i_1..i_d) is a core G [p_1..p_d, q_1..q_d]
               multiplied along every mode by a factor: U_k [o_k, p_k], V_k [i_k, q_k];
               params prod p prod q + sum o_k p_k + sum i_k q_k (+ out bias).
TuckerConv2d:  Tucker-2 (Kim et al. 2016) on the two channel modes only: a 1x1 convolution
               in -> q, a kh x kw core convolution q -> p (carrying stride, padding,
               dilation), a 1x1 convolution p -> out; params in q + q p kh kw + p out;
               FLOPs 2 B (in q H W + q p kh kw H' W' + p out H' W').

Ranks may not exceed their mode sizes (a Tucker rank above a mode's size only pads: see
NOTES). Conversions (functions first, the classes wrap them): :func:`tucker_to_weight`,
:func:`weight_to_tucker`, :func:`tucker2_to_conv_weight`, :func:`conv_weight_to_tucker2`; the
decompositions run TensorLy's ``tucker`` / ``partial_tucker`` (HOOI from a HOSVD start) in
float64 and are exact at full ranks.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from factorlab.layers.base import (Rank, check_mode_pair, check_modes, contract, contraction_plan, expand_rank,
                                   to_tensorly)
from factorlab.layers.conv import FactorizedConv2d, Stage
from factorlab.layers.linear import FactorizedLinear, Symbols, weight_equation

#: einsum of TuckerConv2d's factors (channel_in [q, C], core [p, q, kh, kw], channel_out
#: [S, p]) into the weight [S, C, kh, kw].
CONV_EQUATION = "qc,pqyx,sp->scyx"
#: channel_in [q, C] merged into the core [p, q, kh, kw]: a kernel [p, C, kh, kw].
MERGE_IN_EQUATION = "qc,pqyx->pcyx"
#: channel_out [S, p] merged into the core: a kernel [S, q, kh, kw].
MERGE_OUT_EQUATION = "sp,pqyx->sqyx"


# -- conversions ------------------------------------------------------------------------------

def tucker_subscripts(d: int) -> tuple[str, list[str], str]:
    """einsum subscripts (x, factors, y) of a Tucker linear map over ``d`` mode pairs: x =
    batch + input modes; factors: the core [p_1..p_d, q_1..q_d], U_1..U_d [o_k, p_k], V_1..V_d
    [i_k, q_k]; y = batch + output modes."""
    sym = Symbols()
    b = sym.take()
    o, i = sym.take(d), sym.take(d)
    p, q = sym.take(d), sym.take(d)
    return b + i, [p + q] + [ok + pk for ok, pk in zip(o, p)] + [ik + qk for ik, qk in zip(i, q)], b + o


def tucker_to_weight(core: torch.Tensor, out_factors: Sequence[torch.Tensor],
                     in_factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The weight [prod o_k, prod i_k] of a Tucker tensor: ``core`` [p_1..p_d, q_1..q_d]
    multiplied along each mode by ``out_factors[k]`` [o_k, p_k] and ``in_factors[k]``
    [i_k, q_k]."""
    out_factors, in_factors = list(out_factors), list(in_factors)
    d = len(out_factors)
    if d == 0 or len(in_factors) != d or core.dim() != 2 * d:
        raise ValueError(f"need d out_factors, d in_factors and a core with 2d modes, got {len(out_factors)}, "
                         f"{len(in_factors)} and a core of shape {tuple(core.shape)}")
    w = contract(weight_equation(tucker_subscripts(d)), core, *out_factors, *in_factors)
    return w.reshape(math.prod(f.shape[0] for f in out_factors), math.prod(f.shape[0] for f in in_factors))


def weight_to_tucker(weight: torch.Tensor, rank: Rank, *, out_modes: Sequence[int], in_modes: Sequence[int],
                     n_iter_max: int = 100) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """(core, out_factors, in_factors): the Tucker decomposition (HOOI from a HOSVD start,
    float64) of ``weight`` [out, in] viewed as a tensor (o_1..o_d, i_1..i_d) at ``rank`` (one
    int, or 2d ints, output modes first, each at most its mode's size). Exact at full ranks."""
    from tensorly.decomposition import tucker

    if weight.dim() != 2:
        raise ValueError(f"weight_to_tucker needs a matrix [out, in], got shape {tuple(weight.shape)}")
    outs = check_modes("out_modes", weight.shape[0], out_modes, None)
    ins = check_modes("in_modes", weight.shape[1], in_modes, None)
    if len(outs) != len(ins):
        raise ValueError(f"in_modes {ins} and out_modes {outs} must have the same length")
    modes = (*outs, *ins)
    ranks = expand_rank("rank", rank, len(modes), modes)
    core, factors = tucker(to_tensorly(weight.reshape(*modes)), rank=list(ranks), init="svd",
                           n_iter_max=n_iter_max, tol=1e-10)
    return core, list(factors[:len(outs)]), list(factors[len(outs):])


def tucker2_to_conv_weight(channel_in: torch.Tensor, core: torch.Tensor, channel_out: torch.Tensor) -> torch.Tensor:
    """The weight [S, C, kh, kw] of a Tucker-2 convolution: ``core`` [p, q, kh, kw] multiplied
    by ``channel_out`` [S, p] on the output channels and ``channel_in`` [q, C] on the input
    channels."""
    return contract(CONV_EQUATION, channel_in, core, channel_out)


def conv_weight_to_tucker2(weight: torch.Tensor, rank: Rank, *, n_iter_max: int = 100
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(channel_in [q, C], core [p, q, kh, kw], channel_out [S, p]): the Tucker-2
    decomposition (partial HOOI over the two channel modes, float64) of ``weight``
    [S, C, kh, kw] at ``rank`` = one int or (p, q), p <= S, q <= C. Exact at full ranks."""
    from tensorly.decomposition import partial_tucker

    if weight.dim() != 4:
        raise ValueError(f"need a convolution weight [out, in, kh, kw], got shape {tuple(weight.shape)}")
    ranks = expand_rank("rank", rank, 2, tuple(weight.shape[:2]))
    (core, (u_out, u_in)), _ = partial_tucker(to_tensorly(weight), rank=list(ranks), modes=[0, 1], init="svd",
                                              n_iter_max=n_iter_max, tol=1e-10)
    return u_in.T, core, u_out


# -- layers -----------------------------------------------------------------------------------

class TuckerLinear(FactorizedLinear):
    r"""Linear layer whose weight, viewed as a tensor of shape
    :math:`(o_1, \dots, o_d, i_1, \dots, i_d)`, is a Tucker tensor:

    .. math::
        \mathbf{W}_{(o_1 \dots o_d), (i_1 \dots i_d)} = \sum_{p, q}
        \mathcal{G}_{p_1 \dots p_d, q_1 \dots q_d}
        \prod_{k=1}^{d} \mathbf{U}^{(k)}_{o_k, p_k} \, \mathbf{V}^{(k)}_{i_k, q_k},
        \qquad \mathbf{y} = \mathbf{W} \mathbf{x} + \mathbf{b},

    with :math:`\prod_k P_k Q_k + \sum_k (o_k P_k + i_k Q_k)` factor parameters for ranks
    :math:`(P_1..P_d, Q_1..Q_d)`. ``from_dense(layer, rank, n_iter_max=100)`` runs HOOI
    (``weight_to_tucker``, exact at full ranks); ``tucker_to_weight`` rebuilds the weight.

    Args:
        in_features (int): :math:`I = \prod_k i_k`.
        out_features (int): :math:`O = \prod_k o_k`.
        rank (int or tuple): one rank for every mode, or :math:`2d` ranks (output modes
            first), each at most its mode's size. Give exactly one of ``rank``,
            ``target_params`` and ``compression`` (the budgets solve for one rank, clamped to
            each mode's size).
        in_modes (tuple of int): :math:`(i_1, \dots, i_d)`; default ``d`` balanced factors of
            ``in_features``.
        out_modes (tuple of int): :math:`(o_1, \dots, o_d)`, as many as ``in_modes``; default
            balanced factors of ``out_features``.
        d (int): number of mode pairs when the modes are not given (default 2).
        target_params (float): parameter budget, bias included.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(*, I)`, output :math:`(*, O)`; factors ``core``
        :math:`(P_1, \dots, P_d, Q_1, \dots, Q_d)`, ``out_factors[k]`` :math:`(o_k, P_k)`,
        ``in_factors[k]`` :math:`(i_k, Q_k)`.
    """

    decompose_options = ("n_iter_max",)

    def __init__(self, in_features: int, out_features: int, rank=None, *, in_modes=None, out_modes=None,
                 d: int = 2, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_features, self.out_features, in_modes, out_modes, d)
        self.rank = self.resolve_rank(rank, target_params, compression)
        nd = len(self.out_modes)
        self.core = nn.Parameter(torch.empty(self.rank))
        self.out_factors = nn.ParameterList(
            [nn.Parameter(torch.empty(o, p)) for o, p in zip(self.out_modes, self.rank[:nd])])
        self.in_factors = nn.ParameterList(
            [nn.Parameter(torch.empty(i, q)) for i, q in zip(self.in_modes, self.rank[nd:])])
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return [self.core, *self.out_factors, *self.in_factors]

    def rank_maxima(self) -> tuple[int, ...]:
        return (*self.out_modes, *self.in_modes)

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        return math.prod(ranks) + sum(m * k for m, k in zip(self.rank_maxima(), ranks))

    def summed_terms(self) -> int:
        return math.prod(self.rank)

    def subscripts(self):
        return tucker_subscripts(len(self.out_modes))

    def _sequential_order(self) -> list[int]:
        """Input factors (last first), the core, then the output factors."""
        d = len(self.out_modes)
        return [*range(2 * d + 1, d + 1, -1), 1, *range(2, d + 2)]

    def dense_weight(self) -> torch.Tensor:
        return tucker_to_weight(self.core, self.out_factors, self.in_factors)

    def decompose(self, weight: torch.Tensor, *, n_iter_max: int = 100) -> list[torch.Tensor]:
        core, out_factors, in_factors = weight_to_tucker(weight, self.rank, out_modes=self.out_modes,
                                                         in_modes=self.in_modes, n_iter_max=n_iter_max)
        return [core, *out_factors, *in_factors]


class TuckerConv2d(FactorizedConv2d):
    r"""Tucker-2 convolution (Kim et al. 2016), Tucker over the two channel modes only:

    .. math::
        \mathbf{W}_{s, c, y, x} = \sum_{i=1}^{p} \sum_{j=1}^{q}
        \mathbf{U}_{s, i} \, \mathcal{G}_{i, j, y, x} \, \mathbf{V}_{j, c},

    run as a 1x1 convolution :math:`C \to q`, a :math:`k_h \times k_w` core convolution
    :math:`q \to p` (carrying stride, padding and dilation) and a 1x1 convolution
    :math:`p \to S`; :math:`C q + q p k_h k_w + p S` factor parameters.
    ``from_dense(layer, rank, n_iter_max=100)`` runs partial HOOI (``conv_weight_to_tucker2``,
    exact at full ranks); ``tucker2_to_conv_weight`` rebuilds the weight.

    Args:
        in_channels (int): :math:`C`.
        out_channels (int): :math:`S`.
        kernel_size (int or tuple): :math:`(k_h, k_w)`.
        stride (int or tuple): as ``nn.Conv2d`` (default 1).
        padding (int or tuple): zero padding, as ``nn.Conv2d`` (default 0).
        dilation (int or tuple): as ``nn.Conv2d`` (default 1).
        rank (int or tuple): one int for both channel modes, or :math:`(p, q)` (output rank,
            input rank) with :math:`p \le S`, :math:`q \le C`. Give exactly one of ``rank``,
            ``target_params`` and ``compression`` (the budgets solve for one rank, clamped).
        target_params (float): parameter budget, bias included.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(B, C, H, W)`, output :math:`(B, S, H', W')`; factors ``channel_in``
        :math:`(q, C)` (:math:`\mathbf{V}`), ``core`` :math:`(p, q, k_h, k_w)`,
        ``channel_out`` :math:`(S, p)` (:math:`\mathbf{U}`).
    """

    decompose_options = ("n_iter_max",)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank=None, *, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        kh, kw = self.kernel_size
        self.rank = self.resolve_rank(rank, target_params, compression)
        p, q = self.rank
        self.channel_in = nn.Parameter(torch.empty(q, self.in_channels))
        self.core = nn.Parameter(torch.empty(p, q, kh, kw))
        self.channel_out = nn.Parameter(torch.empty(self.out_channels, p))
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return [self.channel_in, self.core, self.channel_out]

    def rank_maxima(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels)

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        p, q = ranks
        kh, kw = self.kernel_size
        return q * self.in_channels + p * q * kh * kw + p * self.out_channels

    def summed_terms(self) -> int:
        return self.rank[0] * self.rank[1]

    def weight_equation(self) -> str:
        return CONV_EQUATION

    def dense_weight(self) -> torch.Tensor:
        return tucker2_to_conv_weight(self.channel_in, self.core, self.channel_out)

    def stages(self) -> list[Stage]:
        return [Stage(self.channel_in[:, :, None, None]),
                Stage(self.core, self.stride, self.padding, self.dilation),
                Stage(self.channel_out[:, :, None, None])]

    def _merged_in_stages(self) -> list[Stage]:
        """The ``merge_in`` path: channel_in merged into the core (a kh x kw convolution
        C -> p, then a 1x1 p -> S)."""
        core = contract(MERGE_IN_EQUATION, self.channel_in, self.core)
        return [Stage(core, self.stride, self.padding, self.dilation), Stage(self.channel_out[:, :, None, None])]

    def _merged_out_stages(self) -> list[Stage]:
        """The ``merge_out`` path: channel_out merged into the core (a 1x1 C -> q, then a
        kh x kw convolution q -> S)."""
        core = contract(MERGE_OUT_EQUATION, self.channel_out, self.core)
        return [Stage(self.channel_in[:, :, None, None]), Stage(core, self.stride, self.padding, self.dilation)]

    def _stage_paths(self):
        core = tuple(self.core.shape)
        merge_in = contraction_plan(MERGE_IN_EQUATION, (tuple(self.channel_in.shape), core))
        merge_out = contraction_plan(MERGE_OUT_EQUATION, (tuple(self.channel_out.shape), core))
        return {**super()._stage_paths(), "merge_in": (self._merged_in_stages, merge_in.ops()),
                "merge_out": (self._merged_out_stages, merge_out.ops())}

    def decompose(self, weight: torch.Tensor, *, n_iter_max: int = 100) -> list[torch.Tensor]:
        return list(conv_weight_to_tucker2(weight, self.rank, n_iter_max=n_iter_max))
