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

Conversions (functions first, the classes wrap them): :func:`tt_to_weight`,
:func:`weight_to_tt`, :func:`tt_to_conv_weight`, :func:`conv_weight_to_tt`; the
decompositions use TensorLy's ``tensor_train`` (TT-SVD), exact at full ranks.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.layers.base import (ContractionPlan, Rank, check_mode_pair, check_modes, contract, contraction_plan,
                                   expand_rank, to_tensorly)
from factorlab.layers.conv import FactorizedConv2d, Stage, conv_flops, conv_kind, conv_output_hw
from factorlab.layers.paths import Candidate, Op
from factorlab.layers.linear import FactorizedLinear, Symbols, weight_equation


def tt_max_ranks(mode_sizes) -> tuple[int, ...]:
    """Largest useful internal TT ranks for a tensor with these mode sizes (TT-SVD bound)."""
    sizes = list(mode_sizes)
    return tuple(min(math.prod(sizes[:k + 1]), math.prod(sizes[k + 1:])) for k in range(len(sizes) - 1))


# -- conversions ------------------------------------------------------------------------------

def tt_subscripts(d: int) -> tuple[str, list[str], str]:
    """einsum subscripts (x, cores, y) of a TT-matrix linear map over ``d`` mode pairs: x =
    batch + input modes; core k [r_{k-1}, o_k, i_k, r_k]; y = batch + output modes."""
    sym = Symbols()
    b = sym.take()
    o, i, r = sym.take(d), sym.take(d), sym.take(d + 1)
    return b + i, [r[k] + o[k] + i[k] + r[k + 1] for k in range(d)], b + o


def tt_to_weight(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """The weight [prod o_k, prod i_k] of TT-matrix ``cores`` [r_{k-1}, o_k, i_k, r_k]
    (r_0 = r_d = 1): W[(o_1..o_d), (i_1..i_d)] = G_1[o_1, i_1] ... G_d[o_d, i_d]."""
    cores = list(cores)
    if not cores or any(c.dim() != 4 for c in cores):
        raise ValueError(f"need TT-matrix cores [r, o, i, r'], got shapes {[tuple(c.shape) for c in cores]}")
    w = contract(weight_equation(tt_subscripts(len(cores))), *cores)
    return w.reshape(math.prod(c.shape[1] for c in cores), math.prod(c.shape[2] for c in cores))


def _tt_svd(tensor: torch.Tensor, ranks: Sequence[int]) -> list[torch.Tensor]:
    """TT-SVD cores [r_{k-1}, n_k, r_k] of ``tensor`` with internal ``ranks`` (float64)."""
    from tensorly.decomposition import tensor_train

    return list(tensor_train(to_tensorly(tensor), rank=[1, *ranks, 1]).factors)


def weight_to_tt(weight: torch.Tensor, rank: Rank, *, out_modes: Sequence[int], in_modes: Sequence[int]
                 ) -> list[torch.Tensor]:
    """TT-matrix cores [r_{k-1}, o_k, i_k, r_k] of ``weight`` [out, in]: the TT-SVD (float64)
    of the weight arranged as (o_1 i_1, ..., o_d i_d), at internal ranks ``rank`` (one int or
    d - 1 ints, each at most its TT-SVD maximum). Exact at full ranks."""
    if weight.dim() != 2:
        raise ValueError(f"weight_to_tt needs a matrix [out, in], got shape {tuple(weight.shape)}")
    outs = check_modes("out_modes", weight.shape[0], out_modes, None)
    ins = check_modes("in_modes", weight.shape[1], in_modes, None)
    if len(outs) != len(ins):
        raise ValueError(f"in_modes {ins} and out_modes {outs} must have the same length")
    nd = len(ins)
    pairs = [o * i for o, i in zip(outs, ins)]
    maxima = tt_max_ranks(pairs)
    ranks = expand_rank("rank", rank, len(maxima), maxima)
    w = weight.reshape(*outs, *ins)
    w = w.permute(*[j for k in range(nd) for j in (k, nd + k)]).reshape(*pairs)
    return [c.reshape(c.shape[0], o, i, c.shape[-1]) for c, o, i in zip(_tt_svd(w, ranks), outs, ins)]


def tt_conv_letters(d: int) -> tuple[str, str, str, str, str, str]:
    """einsum letters of a TT convolution over ``d`` channel-mode pairs: (batch, c_1..c_d,
    s_1..s_d, r_0..r_d, kernel y x, image h w)."""
    sym = Symbols()
    return sym.take(), sym.take(d), sym.take(d), sym.take(d + 1), sym.take(2), sym.take(2)


def tt_conv_equation(d: int) -> str:
    """einsum from a TT convolution's factors (spatial [r_0, kh, kw], cores [r_{k-1}, c_k,
    s_k, r_k]) to its weight tensor (s_1..s_d, c_1..c_d, kh, kw)."""
    _, c, s, r, yx, _ = tt_conv_letters(d)
    return ",".join([r[0] + yx] + [r[k] + c[k] + s[k] + r[k + 1] for k in range(d)]) + "->" + s + c + yx


def tt_to_conv_weight(spatial: torch.Tensor, cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """The weight [prod s_k, prod c_k, kh, kw] of a TT convolution: the ``spatial`` core
    [r_0, kh, kw] times the channel ``cores`` [r_{k-1}, c_k, s_k, r_k] (r_d = 1),
    W[(s_1..s_d), (c_1..c_d), y, x] = K[y, x] G_1[c_1, s_1] ... G_d[c_d, s_d]."""
    cores = list(cores)
    if spatial.dim() != 3 or not cores or any(c.dim() != 4 for c in cores):
        raise ValueError(f"need spatial [r_0, kh, kw] and cores [r, c, s, r'], got {tuple(spatial.shape)} and "
                         f"{[tuple(c.shape) for c in cores]}")
    w = contract(tt_conv_equation(len(cores)), spatial, *cores)
    return w.reshape(math.prod(g.shape[2] for g in cores), math.prod(g.shape[1] for g in cores), *spatial.shape[1:])


def conv_weight_to_tt(weight: torch.Tensor, rank: Rank, *, out_modes: Sequence[int], in_modes: Sequence[int]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(spatial [r_0, kh, kw], cores [r_{k-1}, c_k, s_k, r_k]): the TT-SVD (float64) of
    ``weight`` [S, C, kh, kw] arranged as (kh kw, c_1 s_1, ..., c_d s_d), at ranks ``rank``
    (one int or d ints r_0..r_{d-1}, each at most its TT-SVD maximum). Exact at full ranks."""
    if weight.dim() != 4:
        raise ValueError(f"need a convolution weight [out, in, kh, kw], got shape {tuple(weight.shape)}")
    outs = check_modes("out_modes", weight.shape[0], out_modes, None)
    ins = check_modes("in_modes", weight.shape[1], in_modes, None)
    if len(outs) != len(ins):
        raise ValueError(f"in_modes {ins} and out_modes {outs} must have the same length")
    nd = len(ins)
    kh, kw = weight.shape[2:]
    sizes = [kh * kw] + [c * s for c, s in zip(ins, outs)]
    maxima = tt_max_ranks(sizes)
    ranks = expand_rank("rank", rank, len(maxima), maxima)
    w = weight.reshape(*outs, *ins, kh * kw)
    w = w.permute(2 * nd, *[j for k in range(nd) for j in (nd + k, k)]).reshape(*sizes)
    first, *rest = _tt_svd(w, ranks)
    spatial = first[0].T.reshape(ranks[0], kh, kw)
    return spatial, [g.reshape(g.shape[0], c, s, g.shape[-1]) for g, c, s in zip(rest, ins, outs)]


# -- layers -----------------------------------------------------------------------------------

class TTLinear(FactorizedLinear):
    r"""Tensor-train (TT-matrix) linear layer (Novikov et al. 2015):

    .. math::
        \mathbf{W}_{(o_1 \dots o_d), (i_1 \dots i_d)} =
        \mathbf{G}_1[o_1, i_1] \, \mathbf{G}_2[o_2, i_2] \cdots \mathbf{G}_d[o_d, i_d],
        \qquad \mathbf{y} = \mathbf{W} \mathbf{x} + \mathbf{b},

    each :math:`\mathbf{G}_k[o_k, i_k]` an :math:`r_{k-1} \times r_k` matrix
    (:math:`r_0 = r_d = 1`), with :math:`\sum_k r_{k-1} o_k i_k r_k` factor parameters.
    ``from_dense(layer, rank)`` runs TT-SVD (``weight_to_tt``, exact at full ranks);
    ``tt_to_weight`` rebuilds the weight.

    Args:
        in_features (int): :math:`I = \prod_k i_k`.
        out_features (int): :math:`O = \prod_k o_k`.
        rank (int or tuple): one int or the :math:`d - 1` internal ranks
            :math:`r_1..r_{d-1}`, each at most
            :math:`\min(\prod_{j \le k} o_j i_j, \prod_{j > k} o_j i_j)`. Give exactly one of
            ``rank``, ``target_params`` and ``compression`` (the budgets solve for one rank,
            clamped to each maximum).
        in_modes (tuple of int): :math:`(i_1, \dots, i_d)`; default ``d`` balanced factors of
            ``in_features``.
        out_modes (tuple of int): :math:`(o_1, \dots, o_d)`, as many as ``in_modes``; default
            balanced factors of ``out_features``.
        d (int): number of mode pairs when the modes are not given (default 2).
        target_params (float): parameter budget, bias included.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(*, I)`, output :math:`(*, O)`; factors ``cores[k]``
        :math:`(r_{k-1}, o_k, i_k, r_k)`.
    """

    def __init__(self, in_features: int, out_features: int, rank=None, *, in_modes=None, out_modes=None,
                 d: int = 2, target_params=None, compression=None, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_features, self.out_features, in_modes, out_modes, d)
        self.rank = self.resolve_rank(rank, target_params, compression)
        r = [1, *self.rank, 1]
        self.cores = nn.ParameterList([
            nn.Parameter(torch.empty(r[k], o, i, r[k + 1]))
            for k, (o, i) in enumerate(zip(self.out_modes, self.in_modes))])
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return list(self.cores)

    def _pairs(self) -> list[int]:
        return [o * i for o, i in zip(self.out_modes, self.in_modes)]

    def rank_maxima(self) -> tuple[int, ...]:
        return tt_max_ranks(self._pairs())

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        pairs, r = self._pairs(), [1, *ranks, 1]
        return sum(r[k] * pairs[k] * r[k + 1] for k in range(len(pairs)))

    def summed_terms(self) -> int:
        return math.prod(self.rank)

    def subscripts(self):
        return tt_subscripts(len(self.in_modes))

    def dense_weight(self) -> torch.Tensor:
        return tt_to_weight(self.cores)

    def decompose(self, weight: torch.Tensor) -> list[torch.Tensor]:
        return weight_to_tt(weight, self.rank, out_modes=self.out_modes, in_modes=self.in_modes)


class TTConv2d(FactorizedConv2d):
    r"""Tensor-train convolution (after Garipov et al. 2016), the spatial kernel as first core:

    .. math::
        \mathbf{W}_{(s_1 \dots s_d), (c_1 \dots c_d), y, x} =
        \mathbf{K}[y, x] \, \mathbf{G}_1[c_1, s_1] \cdots \mathbf{G}_d[c_d, s_d],

    :math:`\mathbf{K}[y, x]` a :math:`1 \times r_0` row, :math:`\mathbf{G}_k[c_k, s_k]` an
    :math:`r_{k-1} \times r_k` matrix (:math:`r_d = 1`); :math:`r_0 k_h k_w + \sum_k r_{k-1}
    c_k s_k r_k` factor parameters. The forward pass maps the channels with the cores at
    every pixel (one einsum, :math:`C \to S r_0`), then runs one :math:`k_h \times k_w`
    convolution per output channel (carrying stride, padding and dilation).
    ``from_dense(layer, rank)`` runs TT-SVD (``conv_weight_to_tt``, exact at full ranks);
    ``tt_to_conv_weight`` rebuilds the weight.

    Args:
        in_channels (int): :math:`C = \prod_k c_k`.
        out_channels (int): :math:`S = \prod_k s_k`.
        kernel_size (int or tuple): :math:`(k_h, k_w)`.
        stride (int or tuple): as ``nn.Conv2d`` (default 1).
        padding (int or tuple): zero padding, as ``nn.Conv2d`` (default 0).
        dilation (int or tuple): as ``nn.Conv2d`` (default 1).
        rank (int or tuple): one int or :math:`d` ranks (:math:`r_0`, the spatial rank, then
            :math:`r_1..r_{d-1}`), each at most its TT-SVD maximum. Give exactly one of
            ``rank``, ``target_params`` and ``compression``.
        in_modes (tuple of int): :math:`(c_1, \dots, c_d)`; default ``d`` balanced factors.
        out_modes (tuple of int): :math:`(s_1, \dots, s_d)`, as many as ``in_modes``.
        d (int): number of channel-mode pairs when the modes are not given (default 2).
        target_params (float): parameter budget, bias included.
        compression (float): dense parameters / layer parameters.
        bias (bool): learn an additive bias (default True).

    Shapes:
        input :math:`(B, C, H, W)`, output :math:`(B, S, H', W')`; factors ``spatial``
        :math:`(r_0, k_h, k_w)` and ``cores[k]`` :math:`(r_{k-1}, c_k, s_k, r_k)`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 rank=None, *, in_modes=None, out_modes=None, d: int = 2, target_params=None, compression=None,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias)
        self.in_modes, self.out_modes = check_mode_pair(self.in_channels, self.out_channels, in_modes, out_modes, d)
        kh, kw = self.kernel_size
        self.rank = self.resolve_rank(rank, target_params, compression)
        r = [*self.rank, 1]
        self.spatial = nn.Parameter(torch.empty(r[0], kh, kw))
        self.cores = nn.ParameterList([
            nn.Parameter(torch.empty(r[k], c, s, r[k + 1]))
            for k, (c, s) in enumerate(zip(self.in_modes, self.out_modes))])
        self.reset_parameters()

    def factors(self) -> list[torch.Tensor]:
        return [self.spatial, *self.cores]

    def _sizes(self) -> list[int]:
        return [self.kernel_size[0] * self.kernel_size[1]] + [c * s for c, s in zip(self.in_modes, self.out_modes)]

    def rank_maxima(self) -> tuple[int, ...]:
        return tt_max_ranks(self._sizes())

    def factor_params(self, ranks: tuple[int, ...]) -> int:
        sizes, r = self._sizes(), [1, *ranks, 1]
        return sum(r[k] * sizes[k] * r[k + 1] for k in range(len(sizes)))

    def summed_terms(self) -> int:
        return math.prod(self.rank)

    def weight_equation(self) -> str:
        return tt_conv_equation(len(self.in_modes))

    def dense_weight(self) -> torch.Tensor:
        return tt_to_conv_weight(self.spatial, self.cores)

    def decompose(self, weight: torch.Tensor) -> list[torch.Tensor]:
        spatial, cores = conv_weight_to_tt(weight, self.rank, out_modes=self.out_modes, in_modes=self.in_modes)
        return [spatial, *cores]

    # -- candidate paths -------------------------------------------------------------------
    def _channel_plan(self, shape) -> ContractionPlan:
        """``factored``: x [B, c_1..c_d, H, W] x cores -> [B, s_1..s_d, r_0, H, W] (the channel
        map at the input resolution, before the spatial convolution), FLOP-optimal order."""
        b, c, s, r, _, hw = tt_conv_letters(len(self.in_modes))
        nd = len(self.in_modes)
        eq = ",".join([b + c + hw] + [r[k] + c[k] + s[k] + r[k + 1] for k in range(nd)]) + "->" + b + s + r[0] + hw
        shapes = [(shape[0], *self.in_modes, shape[2], shape[3])] + [tuple(g.shape) for g in self.cores]
        return self._plan(("channels", tuple(shape)), lambda: ContractionPlan(eq, shapes))

    def _chain_steps(self, shape) -> list[tuple[int, int, int, int]]:
        """``factored``'s channel map, last mode first: (lead, m, n, rest) of each step
        ``y[l] = M_k @ t[l]``, t [lead, n = c_k r_k, rest] -> y [lead, m = r_{k-1} s_k, rest],
        lead = B c_1..c_{k-1}, rest = s_{k+1}..s_d H W. Every step reads its input as a
        contiguous view of the previous output (no permutation)."""
        batch, _, h, w = shape
        r = [*self.rank, 1]
        steps = []
        for k in reversed(range(len(self.in_modes))):
            lead = batch * math.prod(self.in_modes[:k])
            rest = math.prod(self.out_modes[k + 1:]) * h * w
            steps.append((lead, r[k] * self.out_modes[k], self.in_modes[k] * r[k + 1], rest))
        return steps

    def _chain_matrices(self) -> list[torch.Tensor]:
        """The channel cores as matrices M_k [r_{k-1} s_k, c_k r_k], last mode first."""
        return [g.permute(0, 2, 1, 3).reshape(g.shape[0] * g.shape[2], g.shape[1] * g.shape[3])
                for g in reversed(self.cores)]

    def _garipov_plan(self, shape) -> ContractionPlan:
        """``garipov``: z [B, c_1..c_d, r_0, H', W'] (the input convolved with the spatial core
        first, at the output resolution) x cores -> [B, s_1..s_d, H', W'] (Garipov et al.
        2016's order)."""
        b, c, s, r, _, hw = tt_conv_letters(len(self.in_modes))
        nd = len(self.in_modes)
        eq = ",".join([b + c + r[0] + hw] + [r[k] + c[k] + s[k] + r[k + 1] for k in range(nd)]) + "->" + b + s + hw
        oh, ow = conv_output_hw(shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)
        shapes = [(shape[0], *self.in_modes, self.rank[0], oh, ow)] + [tuple(g.shape) for g in self.cores]
        return self._plan(("garipov", tuple(shape)), lambda: ContractionPlan(eq, shapes))

    def _matrix_equation(self, out: str) -> str:
        """einsum from the cores to the channel matrix with output subscripts ``out``, a
        word over "s" (output modes), "r" (r_0) and "c" (input modes)."""
        _, c, s, r, _, _ = tt_conv_letters(len(self.in_modes))
        nd = len(self.in_modes)
        parts = {"s": s, "r": r[0], "c": c}
        return ",".join(r[k] + c[k] + s[k] + r[k + 1] for k in range(nd)) + "->" + "".join(parts[p] for p in out)

    def _spatial_grouped(self, groups: int) -> torch.Tensor:
        """The spatial core repeated for a grouped convolution with ``groups`` groups:
        [groups r_0, 1, kh, kw] (input-side, Garipov's order) ."""
        return self.spatial[None].expand(groups, *self.spatial.shape).reshape(-1, 1, *self.kernel_size)

    def _spatial_per_output(self) -> torch.Tensor:
        """The spatial core repeated for a grouped convolution over the output channels
        (groups = S): [S, r_0, kh, kw]."""
        return self.spatial[None].expand(self.out_channels, *self.spatial.shape).contiguous()

    def _grouped_stages(self) -> list[Stage]:
        """``grouped``: the cores rebuilt into one 1x1 convolution C -> S r_0, then one
        kh x kw convolution per output channel over its r_0 channels (groups = S)."""
        m = contract(self._matrix_equation("src"), *self.cores).reshape(self.out_channels * self.rank[0],
                                                                         self.in_channels, 1, 1)
        k = self._spatial_per_output()
        return [Stage(m), Stage(k, self.stride, self.padding, self.dilation, groups=self.out_channels)]

    def _garipov_1x1_stages(self) -> list[Stage]:
        """``garipov_1x1``: the spatial core on every input channel first (groups = C, C ->
        C r_0), then the cores rebuilt into one 1x1 convolution C r_0 -> S."""
        m = contract(self._matrix_equation("scr"), *self.cores).reshape(self.out_channels, -1, 1, 1)
        return [Stage(self._spatial_grouped(self.in_channels).contiguous(), self.stride, self.padding, self.dilation,
                      groups=self.in_channels), Stage(m)]

    def stages(self) -> list[Stage]:
        """The partially rebuilt ``grouped`` sequence (the ``factored`` path is a chain of
        matrix products or an einsum, then a grouped convolution: see :meth:`_extra_candidates`)."""
        return self._grouped_stages()

    def _stage_paths(self):
        cores = tuple(tuple(g.shape) for g in self.cores)
        shapes = tuple(tuple(f.shape) for f in self.factors())
        spatial = self.spatial.numel()
        grouped = contraction_plan(self._matrix_equation("src"), cores).ops() + \
            (Op("copy", 0, spatial + self.out_channels * spatial),)
        garipov = contraction_plan(self._matrix_equation("scr"), cores).ops() + \
            (Op("copy", 0, spatial + self.in_channels * spatial),)
        return {"grouped": (self._grouped_stages, grouped), "garipov_1x1": (self._garipov_1x1_stages, garipov),
                "dense": (lambda: [Stage(self.dense_weight(), self.stride, self.padding, self.dilation)],
                          contraction_plan(self.weight_equation(), shapes).ops())}

    def _extra_candidates(self, shape) -> dict[str, Candidate]:
        batch, _, h, w = shape
        r0, s_out, c_in = self.rank[0], self.out_channels, self.in_channels
        oh, ow = conv_output_hw((h, w), self.kernel_size, self.stride, self.padding, self.dilation)
        channel, garipov, chain = self._channel_plan(shape), self._garipov_plan(shape), self._chain_steps(shape)
        geometry = (self.stride, self.padding, self.dilation)

        # The channel map: when the chain of batched matrix products over contiguous views
        # (last mode first) costs the FLOP-optimal einsum's FLOPs, the chain (the einsum over
        # [B, c_1..c_d, H, W] permutes and copies its operands forward and backward: several
        # times slower); else the einsum. Then the spatial core on each output channel's r_0
        # maps: one grouped convolution (groups = S) over [B, S r_0, H, W], not a one-channel
        # convolution over B S images (CPU backends run that as B S tiny convolutions: ~100x
        # slower, forward + backward).
        chain_ops = tuple(Op("bmm", 2 * lead * m * n * rest, lead * (m + n) * rest + m * n)
                          for lead, m, n, rest in chain)
        if r0 > 1:  # [B, r_0, S, H, W] -> [B, S, r_0, H, W]
            chain_ops += (Op("copy", 0, 2 * batch * s_out * r0 * h * w),)
        use_chain = sum(o.flops for o in chain_ops) <= channel.cost

        def channel_map(x, prep):
            if not use_chain:
                return channel.apply(x.reshape(batch, *self.in_modes, h, w), *prep)
            t = x
            for m, (lead, _, n, rest) in zip(prep, chain):
                t = torch.bmm(m.expand(lead, *m.shape), t.reshape(lead, n, rest))
            z = t.reshape(batch, r0, s_out, h, w)
            return z if r0 == 1 else z.transpose(1, 2)

        def factored(x, prep, bias):
            z = channel_map(x, prep[:-1]).reshape(batch, s_out * r0, h, w)
            return F.conv2d(z, prep[-1], bias, *geometry, groups=s_out)

        def garipov_first(x, prep, bias):
            z = F.conv2d(x, prep[0], None, *geometry, groups=c_in)
            y = garipov.apply(z.reshape(batch, *self.in_modes, r0, oh, ow), *prep[1:]).reshape(batch, s_out, oh, ow)
            return y if bias is None else y + bias.view(1, -1, 1, 1)

        spatial_copy = (Op("copy", 0, (1 + s_out) * self.spatial.numel()),)
        if use_chain:
            channel_prep, channel_ops = tuple(Op("copy", 0, 2 * g.numel()) for g in self.cores), chain_ops
        else:
            channel_prep, channel_ops = channel.ops(True), channel.ops(False, (batch, s_out * r0, h, w))
        spatial_conv = Op(conv_kind(s_out, s_out * r0, s_out),
                          conv_flops(batch, s_out * r0, s_out, (oh, ow), self.kernel_size, groups=s_out),
                          batch * s_out * r0 * h * w + batch * s_out * oh * ow + s_out * self.spatial.numel())
        grouped_conv = Op(conv_kind(c_in, c_in, c_in * r0),
                          conv_flops(batch, c_in, c_in * r0, (oh, ow), self.kernel_size, groups=c_in),
                          batch * c_in * h * w + batch * c_in * r0 * oh * ow + c_in * self.spatial.numel())
        return {
            "factored": Candidate("factored", lambda: (*(self._chain_matrices() if use_chain else
                                                         channel.prepare(*self.cores)), self._spatial_per_output()),
                                  factored, channel_prep + spatial_copy, channel_ops + (spatial_conv,)),
            "garipov": Candidate("garipov", lambda: (self._spatial_grouped(c_in), *garipov.prepare(*self.cores)),
                                 garipov_first, garipov.ops(True) + (Op("copy", 0, 2 * c_in * self.spatial.numel()),),
                                 (grouped_conv,) + garipov.ops(False, (batch, s_out, oh, ow))),
        }
