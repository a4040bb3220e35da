"""Task-factorized layers (factorlab.layers.task, .task_tensor): exact at full rank against the
stacked single-task layers, the cheap path equal to the rebuild path, exact parameter counts,
gradients to every factor, rank searches within the error, and ValueErrors naming what is valid."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from factorlab.layers.task import (PATHS, TaskFactorizedConv2d, TaskFactorizedLinear, from_single_task_layers,
                                   from_task_weights)
from factorlab.layers.task_tensor import (METHODS, decompose_task_tensor, effective_rank, full_ranks,
                                          ranks_for_error, relative_error, task_mode_singular_values)

T, B = 4, 3


def _linears(dtype, t=T, i=12, o=6):
    torch.manual_seed(0)
    return [nn.Linear(i, o).to(dtype) for _ in range(t)]


def _convs(dtype, t=T):
    torch.manual_seed(1)
    return [nn.Conv2d(3, 4, 3, stride=2, padding=1).to(dtype) for _ in range(t)]


def _reference(layers, x):
    with torch.no_grad():
        if x.dim() in (2, 4):
            return torch.stack([m(x) for m in layers])
        return torch.stack([m(xi) for m, xi in zip(layers, x)])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_full_rank_equals_the_stacked_single_task_layers(method, kind, dtype, tol):
    layers = _linears(dtype) if kind == "linear" else _convs(dtype)
    modes = (T, *layers[0].weight.shape)
    layer = from_single_task_layers(layers, method=method, rank=full_ranks(method, modes))
    assert isinstance(layer, TaskFactorizedLinear if kind == "linear" else TaskFactorizedConv2d)
    assert layer.factors()[0].dtype == dtype
    torch.manual_seed(2)
    inputs = [torch.randn(B, 12, dtype=dtype), torch.randn(T, B, 12, dtype=dtype)] if kind == "linear" else \
        [torch.randn(B, 3, 9, 9, dtype=dtype), torch.randn(T, B, 3, 9, 9, dtype=dtype)]
    for x in inputs:
        want = _reference(layers, x)
        for path in PATHS:
            layer.force_path = path
            with torch.no_grad():
                got = layer(x)
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    stacked = torch.stack([m.weight.detach() for m in layers])
    assert relative_error(stacked, layer.task_weights()) < (1e-12 if dtype == torch.float64 else 1e-6)


@pytest.mark.parametrize("method,rank", [("laf", 2), ("tucker", (2, 3, 4)), ("tt", (2, 3))])
def test_cheap_path_equals_rebuild_path_and_is_chosen_on_a_shared_input(method, rank):
    torch.manual_seed(3)
    layer = TaskFactorizedLinear(10, 64, 32, method, rank).double()
    x = torch.randn(8, 64, dtype=torch.float64)
    assert layer.path_for(x.shape) == "factored"
    factored = layer(x)
    layer.force_path = "rebuild"
    rebuilt = layer(x)
    torch.testing.assert_close(factored, rebuilt, rtol=1e-12, atol=1e-12)
    layer.force_path = None
    plan = layer._factored_plan(tuple(x.shape))
    assert plan.cost < layer._rebuild_flops(tuple(x.shape))
    assert sum(f for _, f in layer.path_steps(x.shape)) == plan.cost
    assert layer.flops(x.shape) == plan.cost + 10 * 8 * 32  # + biases


def test_laf_shared_input_flops_match_the_hand_formula():
    t, i, o, r, b = 10, 64, 32, 2, 8
    layer = TaskFactorizedLinear(t, i, o, "laf", r)
    assert layer.path_for((b, i)) == "factored"
    assert layer.flops((b, i)) == 2 * b * o * r * (i + t) + t * b * o
    # a per-task input: rebuilding the T weights is cheaper than r contractions per task
    assert layer.path_for((t, b, i)) == "rebuild"
    assert layer.flops((t, b, i)) == 2 * t * r * o * i + 2 * t * b * o * i + t * b * o


@pytest.mark.parametrize("rank,task_first", [((3, 40, 60), False), ((8, 4, 6), True)])
def test_tucker_and_tt_shared_input_flops_match_the_documented_formulas(rank, task_first):
    t, i, o, b = 10, 1024, 512, 128
    rt, ro, ri = rank
    tucker = TaskFactorizedLinear(t, i, o, "tucker", rank)
    assert tucker.path_for((b, i)) == "factored"
    if task_first:  # per-task cores G x_0 A_T first
        want = 2 * t * rt * ro * ri + 2 * b * (i * ri + t * ri * ro + t * ro * o)
    else:
        want = 2 * b * (i * ri + ri * rt * ro + min(t * rt * ro + t * ro * o, rt * ro * o + t * rt * o))
    assert tucker.flops((b, i)) == want + t * b * o
    r1, r2 = rt, ro
    tt = TaskFactorizedLinear(t, i, o, "tt", (r1, r2))
    if task_first:  # G_T G_O first
        want = 2 * t * r1 * o * r2 + 2 * b * (i * r2 + t * r2 * o)
    else:
        want = 2 * b * (i * r2 + r2 * r1 * o + r1 * o * t)
    assert tt.flops((b, i)) == want + t * b * o


@pytest.mark.parametrize("method", METHODS)
def test_conv_cheap_path_equals_rebuild_path(method):
    torch.manual_seed(4)
    rank = {"laf": 2, "tucker": (2, 4, 3, 2, 2), "tt": (2, 3, 3, 2)}[method]
    layer = TaskFactorizedConv2d(6, 3, 8, 3, method, rank, padding=1).double()
    for x in (torch.randn(2, 3, 7, 7, dtype=torch.float64), torch.randn(6, 2, 3, 7, 7, dtype=torch.float64)):
        outs = []
        for path in PATHS:
            layer.force_path = path
            outs.append(layer(x))
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
        assert outs[0].shape == (6, 2, 8, 7, 7)
    layer.force_path = None
    assert layer.path_for((2, 3, 7, 7)) == "factored"


def _hand_params(method, modes, rank, out):
    t = modes[0]
    d = math.prod(modes[1:])
    if method == "laf":
        (r,) = rank
        return r * (d + t) + t * out
    if method == "tucker":
        return math.prod(rank) + sum(n * r for n, r in zip(modes, rank)) + t * out
    r = (1, *rank, 1)
    return sum(r[k] * n * r[k + 1] for k, n in enumerate(modes)) + t * out


@pytest.mark.parametrize("method,rank", [("laf", 3), ("tucker", (2, 3, 4)), ("tt", (3, 5))])
def test_linear_parameter_counts_match_hand_formulas(method, rank):
    layer = TaskFactorizedLinear(5, 20, 7, method, rank)
    ranks = layer.rank
    assert layer.num_params() == _hand_params(method, (5, 7, 20), ranks, 7)
    if method == "laf":
        assert layer.num_params() == 3 * (7 * 20 + 5) + 5 * 7
    if method == "tucker":
        assert layer.num_params() == 2 * 3 * 4 + 5 * 2 + 7 * 3 + 20 * 4 + 5 * 7
    if method == "tt":
        assert layer.num_params() == 5 * 3 + 3 * 7 * 5 + 5 * 20 + 5 * 7
    assert layer.dense_params() == 5 * (20 * 7 + 7)
    assert TaskFactorizedLinear(5, 20, 7, method, rank, bias=False).num_params() == layer.num_params() - 35


@pytest.mark.parametrize("method,rank", [("laf", 2), ("tucker", (2, 3, 2, 3, 1)), ("tt", (2, 4, 6, 3))])
def test_conv_parameter_counts_match_hand_formulas(method, rank):
    layer = TaskFactorizedConv2d(3, 2, 4, 3, method, rank)
    assert layer.num_params() == _hand_params(method, (3, 4, 2, 3, 3), layer.rank, 4)
    if method == "tt":
        assert layer.num_params() == 1 * 3 * 2 + 2 * 4 * 4 + 4 * 2 * 6 + 6 * 3 * 3 + 3 * 3 * 1 + 3 * 4
    assert layer.dense_params() == 3 * (4 * 2 * 9 + 4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", PATHS)
def test_gradient_reaches_every_factor_and_bias(method, path):
    torch.manual_seed(5)
    for layer, x in ((TaskFactorizedLinear(4, 6, 5, method, 2), torch.randn(T, B, 6)),
                     (TaskFactorizedConv2d(4, 2, 3, 3, method, 2), torch.randn(B, 2, 6, 6))):
        layer.force_path = path
        layer(x).square().sum().backward()
        for name, p in layer.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def _low_task_rank_weights(t=6, o=5, i=8, r=2, noise=0.0):
    """T weights that are mixtures of r shared weights (+ noise): task rank r."""
    g = torch.Generator().manual_seed(6)
    basis = torch.randn(r, o, i, generator=g, dtype=torch.float64)
    mix = torch.randn(t, r, generator=g, dtype=torch.float64)
    return torch.einsum("tr,roi->toi", mix, basis) + noise * torch.randn(t, o, i, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("method", METHODS)
def test_rel_error_initialisation_meets_the_error_and_finds_the_task_rank(method):
    w = _low_task_rank_weights()
    layer = from_task_weights(w, torch.zeros(6, 5, dtype=torch.float64), method=method, rel_error=0.1)
    assert relative_error(w, layer.task_weights()) <= 0.1
    assert layer.task_rank() == 2  # the task mode has rank 2 exactly
    for eps in (0.3, 0.1, 0.01):
        ranks, _, err = decompose_task_tensor(method, _low_task_rank_weights(noise=0.3), rel_error=eps)
        assert err <= eps


def test_laf_rank_search_is_the_smallest_rank_within_the_error():
    w = _low_task_rank_weights(noise=0.5)
    for eps in (0.5, 0.3, 0.1, 0.02):
        (r,) = ranks_for_error("laf", w, eps)
        assert decompose_task_tensor("laf", w, rank=r)[2] <= eps
        if r > 1:
            assert decompose_task_tensor("laf", w, rank=r - 1)[2] > eps


def test_task_mode_report_sees_shared_and_task_specific_layers():
    shared = torch.randn(1, 5, 8, dtype=torch.float64).expand(6, 5, 8) * torch.arange(1, 7.0).double()[:, None, None]
    s = task_mode_singular_values(shared)
    assert s.shape == (6,) and float(s[1:].abs().max()) < 1e-10 * float(s[0])
    assert effective_rank(s) == pytest.approx(1.0)
    layer = from_task_weights(shared, method="laf", rel_error=0.01)
    assert layer.task_rank() == 1 and layer.task_effective_rank() == pytest.approx(1.0)
    torch.manual_seed(7)
    independent = from_task_weights(torch.randn(6, 30, 40), method="laf", rank=6)  # unrelated tasks
    assert 5.5 < independent.task_effective_rank() <= 6.0


@pytest.mark.parametrize("rank,match", [
    (0, r"positive integer.*maxima \(4,\)"), (5, r"valid ranks are 1\.\.4"), ((2, 2), "needs 1 value"),
    (1.5, "positive integer")])
def test_bad_laf_ranks_raise_naming_the_valid_range(rank, match):
    with pytest.raises(ValueError, match=match):
        TaskFactorizedLinear(4, 6, 5, "laf", rank)


def test_bad_tucker_and_tt_ranks_raise():
    with pytest.raises(ValueError, match=r"exceeds its maximum 5: valid ranks are 1\.\.5"):
        TaskFactorizedConv2d(4, 3, 8, 5, "tucker", (4, 8, 3, 8, 5))  # a kernel mode of 5 cannot have rank 8
    with pytest.raises(ValueError, match="needs 5 value"):
        TaskFactorizedConv2d(4, 3, 8, 5, "tucker", (4, 8, 3))
    with pytest.raises(ValueError, match="needs 2 value"):
        TaskFactorizedLinear(4, 6, 5, "tt", (2, 2, 2))
    with pytest.raises(ValueError, match=r"r_\(k\+1\) <= r_k n_k"):
        TaskFactorizedLinear(4, 6, 5, "tt", (1, 6))  # r_2 <= r_1 * O = 5
    with pytest.raises(ValueError, match="method must be one of"):
        TaskFactorizedLinear(4, 6, 5, "cp", 2)


def test_mismatched_task_weights_and_biases_raise():
    with pytest.raises(ValueError, match=r"task 0 has \(5, 8\), task 2 has \(5, 9\)"):
        from_task_weights([torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 9)], method="laf", rank=1)
    with pytest.raises(ValueError, match=r"biases must have shape \(3, 5\)"):
        from_task_weights(torch.randn(3, 5, 8), torch.randn(3, 4), method="laf", rank=1)
    with pytest.raises(ValueError, match="exactly one of rank and rel_error"):
        from_task_weights(torch.randn(3, 5, 8), method="laf", rank=1, rel_error=0.1)
    with pytest.raises(ValueError, match=r"\[T, out, in\]"):
        from_task_weights(torch.randn(3, 5), method="laf", rank=1)
    with pytest.raises(ValueError, match="share stride"):
        from_single_task_layers([nn.Conv2d(2, 3, 3), nn.Conv2d(2, 3, 3, stride=2)], method="laf", rank=1)
    with pytest.raises(ValueError, match="all be nn.Linear or all nn.Conv2d"):
        from_single_task_layers([nn.Linear(2, 3), nn.Conv2d(2, 3, 3)], method="laf", rank=1)


def test_bad_inputs_raise_naming_the_expected_shapes():
    layer = TaskFactorizedLinear(4, 6, 5, "laf", 2)
    with pytest.raises(ValueError, match=r"\[B, 6\] \(shared\) or \[4, B, 6\]"):
        layer(torch.randn(3, 3, 6))
    conv = TaskFactorizedConv2d(4, 2, 3, 3, "tt", 2)
    with pytest.raises(ValueError, match=r"\[4, B, 2, H, W\]"):
        conv(torch.randn(3, 1, 2, 6, 6))
