"""Factorized layers: equivalence to their dense weight, from_dense, gradients, parameter and
FLOP counts, rank budgets, errors, torch.compile."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from factorlab.layers import (CPConv2d, CPLinear, LowRankConv2d, LowRankLinear, SeparableConv2d, TTConv2d, TTLinear,
                              TuckerConv2d, TuckerLinear, factorize_dim, reconstruction_error)
from factorlab.models import count_flops



@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons in double precision; restores the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)

LINEAR_CASES = [
    ("lowrank", lambda i, o: LowRankLinear(i, o, 5)),
    ("cp", lambda i, o: CPLinear(i, o, 7)),
    ("cp-d3", lambda i, o: CPLinear(i, o, 4, d=3)),
    ("tucker", lambda i, o: TuckerLinear(i, o, 3)),
    ("tucker-d3", lambda i, o: TuckerLinear(i, o, 2, d=3)),
    ("tt", lambda i, o: TTLinear(i, o, 4)),
    ("tt-d3", lambda i, o: TTLinear(i, o, [3, 5], d=3)),
]
LINEAR_SHAPES = [(64, 48), (24, 60), (36, 36)]

CONV_CASES = [
    ("separable", lambda c, s, k, g: SeparableConv2d(c, s, k, **g)),
    ("separable-m2-r3", lambda c, s, k, g: SeparableConv2d(c, s, k, **g, rank=3, depth_multiplier=2)),
    ("lowrank", lambda c, s, k, g: LowRankConv2d(c, s, k, **g, rank=4)),
    ("cp", lambda c, s, k, g: CPConv2d(c, s, k, **g, rank=5)),
    ("tucker", lambda c, s, k, g: TuckerConv2d(c, s, k, **g, rank=(4, 3))),
    ("tt", lambda c, s, k, g: TTConv2d(c, s, k, **g, rank=3)),
    ("tt-d3", lambda c, s, k, g: TTConv2d(c, s, k, **g, rank=[2, 3, 2], in_modes=(2, 2, 2), out_modes=(3, 2, 2))),
]
GEOMETRIES = [
    {"stride": 1, "padding": 1, "dilation": 1},
    {"stride": 2, "padding": 0, "dilation": 1},
    {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)},
]


#: One small instance of every family, with an input shape.
SMALL_CASES = [
    (lambda: LowRankLinear(12, 10, 3), (4, 12)), (lambda: CPLinear(12, 10, 3), (4, 12)),
    (lambda: TuckerLinear(12, 10, 2), (4, 12)), (lambda: TTLinear(12, 10, 2), (4, 12)),
    (lambda: SeparableConv2d(4, 6, 3, rank=2), (2, 4, 7, 7)), (lambda: LowRankConv2d(4, 6, 3, rank=2), (2, 4, 7, 7)),
    (lambda: CPConv2d(4, 6, 3, rank=2), (2, 4, 7, 7)), (lambda: TuckerConv2d(4, 6, 3, rank=2), (2, 4, 7, 7)),
    (lambda: TTConv2d(4, 6, 3, rank=2), (2, 4, 7, 7)),
]
SMALL_IDS = ["lowrank", "cp", "tucker", "tt", "separable-conv", "lowrank-conv", "cp-conv", "tucker-conv", "tt-conv"]


def dense_linear_out(layer, x):
    return F.linear(x, layer.dense_weight(), layer.bias)


def dense_conv_out(layer, x):
    return F.conv2d(x, layer.dense_weight(), layer.bias, layer.stride, layer.padding, layer.dilation)


# -- equivalence ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,make", LINEAR_CASES, ids=[c[0] for c in LINEAR_CASES])
@pytest.mark.parametrize("shape", LINEAR_SHAPES)
def test_linear_forward_equals_reconstructed_dense(name, make, shape):
    torch.manual_seed(0)
    layer = make(*shape)
    assert layer.dense_weight().shape == (shape[1], shape[0])
    for lead in [(1,), (5,), (2, 3)]:
        x = torch.randn(*lead, shape[0])
        torch.testing.assert_close(layer(x), dense_linear_out(layer, x))


@pytest.mark.parametrize("name,make", CONV_CASES, ids=[c[0] for c in CONV_CASES])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=["s1p1", "s2p0", "aniso-dil"])
@pytest.mark.parametrize("path", ["factored", "dense"])
def test_conv_forward_equals_reconstructed_dense(name, make, geometry, path):
    torch.manual_seed(0)
    layer = make(8, 12, 3, geometry)
    layer.force_path = path
    x = torch.randn(2, 8, 11, 10)
    assert layer.dense_weight().shape == (12, 8, 3, 3)
    torch.testing.assert_close(layer(x), dense_conv_out(layer, x))


def test_conv_rectangular_kernel_and_no_bias():
    torch.manual_seed(0)
    for layer in [CPConv2d(6, 10, (3, 5), padding=(1, 2), rank=4, bias=False),
                  TuckerConv2d(6, 10, (3, 5), padding=(1, 2), rank=3, bias=False),
                  TTConv2d(6, 10, (3, 5), padding=(1, 2), rank=2, bias=False),
                  SeparableConv2d(6, 10, (3, 5), padding=(1, 2), bias=False),
                  LowRankConv2d(6, 10, (3, 5), padding=(1, 2), rank=3, bias=False)]:
        x = torch.randn(3, 6, 9, 9)
        torch.testing.assert_close(layer(x), dense_conv_out(layer, x))
        assert layer.num_params() == sum(p.numel() for p in layer.factors())


def test_cheaper_path_is_chosen_by_flops():
    # A low-rank Tucker layer on a large input: the factored sequence is cheaper. At full
    # rank its three stages cost more per pixel than one dense kernel, and rebuilding the
    # weight once per batch is amortised over many pixels: the dense path is cheaper.
    layer = TuckerConv2d(64, 64, 3, padding=1, rank=8)
    big = (8, 64, 32, 32)
    assert layer.path_for(big) == "factored"
    layer.force_path = "dense"
    dense_cost = layer.flops(big)
    layer.force_path = None
    assert layer.flops(big) < dense_cost
    full = TuckerConv2d(16, 16, 3, padding=1, rank=16)
    assert full.path_for((8, 16, 32, 32)) == "dense"
    assert full.path_for((1, 16, 1, 1)) == "factored"  # one pixel: rebuilding is not worth it


# -- from_dense -----------------------------------------------------------------------------

def _linear(i, o):
    torch.manual_seed(1)
    return nn.Linear(i, o)


def _conv(c, s, k=3, **kw):
    torch.manual_seed(1)
    return nn.Conv2d(c, s, k, **kw)


@pytest.mark.parametrize("make", [
    lambda d: LowRankLinear.from_dense(d, min(d.in_features, d.out_features)),
    lambda d: CPLinear.from_dense(d, min(d.in_features, d.out_features), d=1),
    lambda d: TuckerLinear.from_dense(d, [6, 4, 4, 6], in_modes=(4, 6), out_modes=(6, 4)),
    lambda d: TTLinear.from_dense(d, 24, in_modes=(4, 6), out_modes=(6, 4)),
], ids=["lowrank", "cp-d1", "tucker", "tt"])
def test_linear_from_dense_at_full_rank_reproduces_the_layer(make):
    dense = _linear(24, 24)
    layer = make(dense)
    x = torch.randn(5, 24)
    torch.testing.assert_close(layer(x), dense(x))
    assert reconstruction_error(layer, dense) < 1e-10


@pytest.mark.parametrize("make", [
    lambda d: LowRankConv2d.from_dense(d, 12),
    lambda d: SeparableConv2d.from_dense(d, depth_multiplier=9),
    lambda d: TuckerConv2d.from_dense(d, (12, 8)),
    lambda d: TTConv2d.from_dense(d, [9, 16], in_modes=(2, 4), out_modes=(3, 4)),
], ids=["lowrank", "separable", "tucker", "tt"])
@pytest.mark.parametrize("geometry", [{"padding": 1}, {"stride": 2, "padding": (0, 1), "dilation": (2, 1)}],
                         ids=["same", "strided-dilated"])
def test_conv_from_dense_at_full_rank_reproduces_the_layer(make, geometry):
    dense = _conv(8, 12, **geometry)
    layer = make(dense)
    assert (layer.stride, layer.padding, layer.dilation) == (dense.stride, dense.padding, dense.dilation)
    x = torch.randn(2, 8, 10, 10)
    for path in ["factored", "dense"]:
        layer.force_path = path
        torch.testing.assert_close(layer(x), dense(x))
    assert reconstruction_error(layer, dense) < 1e-10


def test_cp_from_dense_recovers_an_exact_low_rank_weight():
    torch.manual_seed(2)
    r, (s, c, kh, kw) = 3, (10, 8, 3, 3)
    factors = [torch.randn(n, r) for n in (s, c, kh, kw)]
    dense = nn.Conv2d(c, s, 3, padding=1)
    with torch.no_grad():
        dense.weight.copy_(torch.einsum("sr,cr,yr,xr->scyx", *factors))
    layer = CPConv2d.from_dense(dense, r, n_iter_max=2000)
    assert reconstruction_error(layer, dense) < 1e-5
    lin_factors = [torch.randn(n, r) for n in (6, 4, 4, 6)]
    dense_lin = nn.Linear(24, 24)
    with torch.no_grad():
        dense_lin.weight.copy_(torch.einsum("ar,br,cr,dr->abcd", *lin_factors).reshape(24, 24))
    lin = CPLinear.from_dense(dense_lin, r, out_modes=(6, 4), in_modes=(4, 6), n_iter_max=2000)
    assert reconstruction_error(lin, dense_lin) < 1e-5


def test_truncated_from_dense_error_decreases_with_rank():
    dense = _conv(16, 16)
    errors = [reconstruction_error(TuckerConv2d.from_dense(dense, r), dense) for r in (2, 4, 8, 16)]
    assert all(a > b for a, b in zip(errors, errors[1:])) and errors[-1] < 1e-10
    errors = [reconstruction_error(LowRankConv2d.from_dense(dense, r), dense) for r in (2, 8, 16)]
    assert all(a > b for a, b in zip(errors, errors[1:]))


def test_from_dense_keeps_dtype_device_and_bias():
    dense = _conv(4, 6, padding=1).float()
    layer = TuckerConv2d.from_dense(dense, 3)
    assert layer.core.dtype == torch.float32 and torch.equal(layer.bias, dense.bias)
    nobias = nn.Linear(8, 8, bias=False)
    assert LowRankLinear.from_dense(nobias, 2).bias is None


@pytest.mark.parametrize("bad,match", [
    (nn.Conv2d(4, 8, 3, groups=2), "groups=1"),
    (nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect"), "padding_mode"),
    (nn.Conv2d(4, 8, 3, padding="same"), "integer padding"),
    (nn.Linear(4, 8), "nn.Conv2d"),
])
def test_from_dense_refuses_what_it_does_not_support(bad, match):
    with pytest.raises(ValueError, match=match):
        TuckerConv2d.from_dense(bad, 2)


# -- gradients ------------------------------------------------------------------------------

@pytest.mark.parametrize("make,shape", SMALL_CASES, ids=SMALL_IDS)
def test_gradients_reach_every_factor_and_match_the_dense_gradient(make, shape):
    torch.manual_seed(3)
    layer = make()
    x = torch.randn(shape, requires_grad=True)
    layer(x).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    gx = x.grad.clone()
    x.grad = None
    w = layer.dense_weight().detach().requires_grad_(True)
    out = F.linear(x, w, layer.bias) if x.dim() == 2 else F.conv2d(x, w, layer.bias, layer.stride, layer.padding,
                                                                    layer.dilation)
    out.square().sum().backward()
    torch.testing.assert_close(gx, x.grad)


def test_gradcheck_on_a_tt_linear():
    layer = TTLinear(6, 6, 2, in_modes=(2, 3), out_modes=(3, 2))
    x = torch.randn(3, 6, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *f: layer._forward_plan(3)(x.reshape(3, 2, 3), *f),
                                    (x, *[c.detach().requires_grad_(True) for c in layer.cores]))


# -- parameter and FLOP counts --------------------------------------------------------------

def test_parameter_formulas():
    assert LowRankLinear(784, 512, 20).num_params() == 20 * (784 + 512) + 512
    assert CPLinear(784, 512, 10, in_modes=(28, 28), out_modes=(32, 16)).num_params() == 10 * (28 + 28 + 32 + 16) + 512
    t = TuckerLinear(784, 512, [4, 5, 6, 7], in_modes=(28, 28), out_modes=(32, 16), bias=False)
    assert t.num_params() == 4 * 5 * 6 * 7 + 32 * 4 + 16 * 5 + 28 * 6 + 28 * 7
    tt = TTLinear(784, 512, [6, 7], in_modes=(4, 14, 14), out_modes=(8, 8, 8), d=3, bias=False)
    assert tt.num_params() == 1 * 8 * 4 * 6 + 6 * 8 * 14 * 7 + 7 * 8 * 14 * 1
    assert SeparableConv2d(32, 64, 3).num_params() == 32 * 9 + 64 * 32 + 64
    assert SeparableConv2d(32, 64, 3, rank=8, depth_multiplier=2, bias=False).num_params() == 64 * 9 + 8 * (64 + 64)
    assert LowRankConv2d(32, 64, 3, rank=8).num_params() == 8 * (32 * 9 + 64) + 64
    assert CPConv2d(32, 64, (3, 5), rank=8, bias=False).num_params() == 8 * (32 + 3 + 5 + 64)
    assert TuckerConv2d(32, 64, 3, rank=(16, 8), bias=False).num_params() == 8 * 32 + 16 * 8 * 9 + 64 * 16
    ttc = TTConv2d(32, 64, 3, rank=[5, 6], in_modes=(4, 8), out_modes=(8, 8), bias=False)
    assert ttc.num_params() == 5 * 9 + 5 * 4 * 8 * 6 + 6 * 8 * 8
    assert LowRankConv2d(32, 64, 3, rank=8).dense_params() == 64 * 32 * 9 + 64


def test_lowrank_linear_flops_closed_form():
    layer = LowRankLinear(300, 200, 10)
    assert layer.flops((32, 300)) == 2 * 32 * 10 * (300 + 200) + 32 * 200
    assert layer.flops((4, 8, 300)) == 2 * 32 * 10 * (300 + 200) + 32 * 200


def _elementwise_products(plan) -> int:
    """FLOPs of a plan's steps that sum over nothing (elementwise products, which torch runs
    as ``mul`` and FlopCounterMode does not count)."""
    total = 0
    for _, eq in plan.steps:
        ins, out = eq.split("->")
        idx = set(ins.replace(",", ""))
        if "," in ins and not idx - set(out):
            total += math.prod(plan.sizes[i] for i in idx)
    return total


@pytest.mark.parametrize("make,shape", [
    (lambda: LowRankLinear(64, 48, 5), (7, 64)), (lambda: TuckerLinear(64, 48, 3), (7, 64)),
    (lambda: SeparableConv2d(8, 12, 3, padding=1), (2, 8, 9, 9)),
    (lambda: SeparableConv2d(8, 12, 3, padding=1, rank=4), (2, 8, 9, 9)),
    (lambda: LowRankConv2d(8, 12, 3, padding=1, rank=4), (2, 8, 9, 9)),
    (lambda: CPConv2d(8, 12, 3, stride=2, padding=1, rank=4), (2, 8, 9, 9)),
    (lambda: TuckerConv2d(8, 12, 3, padding=1, rank=4), (2, 8, 9, 9)),
    (lambda: TTConv2d(8, 12, 3, padding=1, rank=3), (2, 8, 9, 9)),
    (lambda: TTConv2d(8, 12, 3, padding=1, rank=3), (1, 8, 1, 1)),
    (lambda: CPLinear(64, 48, 5), (7, 64)), (lambda: CPLinear(64, 48, 4, d=3), (3, 64)),
    (lambda: TTLinear(64, 48, 3, d=3), (7, 64)),
])
def test_flops_match_torch_flop_counter(make, shape):
    """flops() = matmul/conv FLOPs counted by torch's FlopCounterMode + one add per output for
    the bias + elementwise products (both of which the counter ignores)."""
    layer = make()
    x = torch.randn(shape)
    with FlopCounterMode(display=False) as counter:
        y = layer(x)
    bias = y.numel() if layer.bias is not None else 0
    products = 0
    if hasattr(layer, "_forward_plan"):
        products = _elementwise_products(layer._forward_plan(math.prod(shape[:-1])))
    assert layer.flops(shape) == counter.get_total_flops() + bias + products


def test_count_flops_uses_the_layers_own_count():
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), TuckerConv2d(8, 8, 3, padding=1, rank=4),
                          nn.Flatten(), TTLinear(8 * 28 * 28, 10, 3, in_modes=(56, 112), out_modes=(5, 2)))
    conv0 = 2 * 8 * 28 * 28 * 9 + 8 * 28 * 28
    assert count_flops(model, (1, 28, 28)) == conv0 + model[2].flops((1, 8, 28, 28)) + model[4].flops((1, 8 * 28 * 28))


# -- budgets and errors ---------------------------------------------------------------------

@pytest.mark.parametrize("cls,args", [
    (LowRankLinear, (512, 256)), (CPLinear, (512, 256)), (TuckerLinear, (512, 256)), (TTLinear, (512, 256)),
    (SeparableConv2d, (64, 64, 3)), (LowRankConv2d, (64, 64, 3)), (CPConv2d, (64, 64, 3)),
    (TuckerConv2d, (64, 64, 3)), (TTConv2d, (64, 64, 3)),
])
@pytest.mark.parametrize("ratio", [4, 20])
def test_compression_budget_is_met_by_the_largest_rank(cls, args, ratio):
    layer = cls(*args, compression=ratio)
    budget = layer.dense_params() / ratio
    assert layer.num_params() <= budget
    rank = layer.rank
    bigger = rank + 1 if isinstance(rank, int) else tuple(r + 1 for r in rank)
    try:
        assert cls(*args, rank=bigger).num_params() > budget
    except ValueError:  # rank + 1 is beyond the maximum: the budget was not binding
        pass
    same = cls(*args, target_params=layer.num_params())
    assert same.rank == layer.rank


@pytest.mark.parametrize("make,match", [
    (lambda: LowRankLinear(10, 6, 7), r"maximum 6: valid ranks are 1\.\.6"),
    (lambda: LowRankLinear(10, 6, 0), "positive integer"),
    (lambda: LowRankLinear(10, 6, 2.5), "positive integer"),
    (lambda: LowRankLinear(10, 6), "exactly one of rank"),
    (lambda: LowRankLinear(10, 6, 2, compression=3), "exactly one of rank"),
    (lambda: LowRankLinear(10, 6, compression=100), "even rank 1 needs 22 parameters"),
    (lambda: CPLinear(12, 10, 3, in_modes=(3, 5)), r"multiply to 15, not 12"),
    (lambda: CPLinear(12, 10, 3, in_modes=(3, 4), out_modes=(10,)), "same length"),
    (lambda: TuckerLinear(12, 10, [2, 6, 2, 2], in_modes=(3, 4), out_modes=(2, 5)), r"rank\[1\]=6 exceeds its maximum 5"),
    (lambda: TuckerLinear(12, 10, [2, 2], in_modes=(3, 4), out_modes=(2, 5)), "needs 4 value"),
    (lambda: TTLinear(12, 10, 11, in_modes=(3, 4), out_modes=(2, 5)), r"exceeds its maximum 6"),
    (lambda: TuckerConv2d(8, 4, 3, rank=(5, 2)), r"rank\[0\]=5 exceeds its maximum 4"),
    (lambda: TTConv2d(8, 4, 3, rank=[10, 2], in_modes=(2, 4), out_modes=(2, 2)), "exceeds its maximum 9"),
    (lambda: CPConv2d(8, 4, 3, stride=0, rank=2), "stride must be integer"),
    (lambda: CPConv2d(8, 4, 3, padding="same", rank=2), "string values are not supported"),
    (lambda: SeparableConv2d(8, 4, 3, rank=9), "maximum 4"),
    (lambda: SeparableConv2d.from_dense(nn.Conv2d(8, 4, 3), depth_multiplier=5), "valid values are 1..that"),
])
def test_invalid_arguments_raise_value_errors_saying_what_is_valid(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected input \[\.\.\., 12\]"):
        TTLinear(12, 10, 2)(torch.randn(3, 13))
    with pytest.raises(ValueError, match=r"expected input \[B, 8, H, W\]"):
        CPConv2d(8, 4, 3, rank=2)(torch.randn(1, 7, 5, 5))


def test_factorize_dim():
    assert factorize_dim(784, 2) == (28, 28)
    assert factorize_dim(512, 3) == (8, 8, 8)
    assert factorize_dim(10, 2) == (5, 2)
    assert factorize_dim(7, 2) == (7, 1)
    for n, d in [(784, 3), (1000, 4), (96, 2)]:
        assert math.prod(factorize_dim(n, d)) == n


# -- torch.compile --------------------------------------------------------------------------

@pytest.mark.parametrize("make,shape", SMALL_CASES, ids=SMALL_IDS)
def test_torch_compile_traces_every_layer(make, shape):
    """Dynamo + AOT autograd (the ``aot_eager`` backend) trace forward and backward with no
    error and the same result; the inductor code generator is exercised by one test below."""
    torch._dynamo.reset()
    layer = make()
    x = torch.randn(shape)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=False)
    torch.testing.assert_close(compiled(x), layer(x))
    compiled(x).sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_torch_compile_inductor_on_a_cp_conv():
    torch._dynamo.reset()
    layer = CPConv2d(4, 6, 3, padding=1, rank=3).float()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float32)
    torch.testing.assert_close(torch.compile(layer)(x), layer(x), rtol=1e-4, atol=1e-5)


# -- initialisation -------------------------------------------------------------------------

@pytest.mark.parametrize("make,fan_in", [
    (lambda: LowRankLinear(784, 512, 8), 784), (lambda: CPLinear(784, 512, 64), 784),
    (lambda: TuckerLinear(784, 512, 8), 784), (lambda: TTLinear(784, 512, 8, d=3), 784),
    (lambda: SeparableConv2d(64, 64, 3), 576), (lambda: SeparableConv2d(64, 64, 3, rank=8), 576),
    (lambda: LowRankConv2d(64, 64, 3, rank=8), 576), (lambda: CPConv2d(64, 64, 3, rank=32), 576),
    (lambda: TuckerConv2d(64, 64, 3, rank=8), 576), (lambda: TTConv2d(64, 64, 3, rank=4), 576),
])
def test_init_matches_the_dense_variance_with_balanced_factors(make, fan_in):
    torch.manual_seed(0)
    layer = make()
    var = layer.dense_weight().var().item()
    assert 0.6 < var * 3 * fan_in < 1.6  # PyTorch's default dense init has variance 1/(3 fan_in)
    scales = {round(f.var().item(), 12) for f in layer.factors()}
    assert max(scales) / min(scales) < 1.5  # every factor at the same scale
