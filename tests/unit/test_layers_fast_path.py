"""The inference fast path of factorized layers (FactorizedLayer._run_path): after a call without
autograd the layer reuses that call's path and prepared tensors, and must fall back to the full
choice whenever anything the choice depends on changes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.layers import CPConv2d, CPLinear, TuckerLinear


def _reference(layer, x):
    """The layer's output computed from scratch: its rebuilt dense weight."""
    w = layer.dense_weight()
    if isinstance(layer, CPConv2d):
        return F.conv2d(x, w, layer.bias, layer.stride, layer.padding)
    return F.linear(x, w, layer.bias)


def _eval_call(layer, x):
    with torch.no_grad():
        return layer(x)


def test_the_fast_path_is_taken_and_gives_the_same_output():
    torch.manual_seed(0)
    layer = CPLinear(12, 8, rank=3).eval()
    x = torch.randn(5, 12)
    first = _eval_call(layer, x)
    assert layer._fast is not None
    calls = []
    original = layer._select
    layer._select = lambda *a: calls.append(1) or original(*a)
    second = _eval_call(layer, x)
    assert calls == []  # no path lookup on the fast path
    torch.testing.assert_close(second, first)
    torch.testing.assert_close(second, _reference(layer, x).detach(), rtol=1e-5, atol=1e-6)


def test_an_optimizer_step_invalidates_the_prepared_weight():
    torch.manual_seed(0)
    layer = TuckerLinear(12, 8, rank=2).eval()
    x = torch.randn(4, 12)
    before = _eval_call(layer, x)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(x).sum().backward()  # autograd on: the normal path
    opt.step()
    after = _eval_call(layer, x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, _reference(layer, x).detach(), rtol=1e-5, atol=1e-6)


def test_shape_mode_dtype_force_path_bias_and_memory_format_each_leave_the_fast_path():
    torch.manual_seed(0)
    layer = CPLinear(12, 8, rank=3).eval()
    x = torch.randn(5, 12)
    _eval_call(layer, x)
    y = torch.randn(7, 12)  # another batch
    torch.testing.assert_close(_eval_call(layer, y), _reference(layer, y).detach(), rtol=1e-5, atol=1e-6)
    layer.train()  # training mode is another key
    torch.testing.assert_close(_eval_call(layer, x), _reference(layer, x).detach(), rtol=1e-5, atol=1e-6)
    layer.eval()
    names = list(layer.candidates((5, 12)))
    layer.force_path = names[-1]
    chosen = []
    original = layer._select
    layer._select = lambda *a: chosen.append(1) or original(*a)
    _eval_call(layer, x)
    assert chosen  # force_path set: the full choice runs
    del layer._select
    layer.force_path = None
    layer.bias = nn.Parameter(torch.full((8,), 3.0))  # a new bias
    torch.testing.assert_close(_eval_call(layer, x), _reference(layer, x).detach(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        layer.bias.add_(1.0)  # in place: the same Parameter, read live
    torch.testing.assert_close(_eval_call(layer, x), _reference(layer, x).detach(), rtol=1e-5, atol=1e-6)
    layer.double()
    xd = x.double()
    torch.testing.assert_close(_eval_call(layer, xd), _reference(layer, xd).detach())
    xt = torch.randn(12, 5, dtype=torch.float64).t()  # not contiguous
    torch.testing.assert_close(_eval_call(layer, xt), _reference(layer, xt).detach())


def test_a_channels_last_input_after_a_contiguous_one_takes_the_full_choice():
    torch.manual_seed(0)
    layer = CPConv2d(4, 6, 3, padding=1, rank=2).eval()
    x = torch.randn(2, 4, 6, 6)
    _eval_call(layer, x)
    xc = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_eval_call(layer, xc), _reference(layer, x).detach(), rtol=1e-4, atol=1e-5)
    assert any("2x4x6x6" in k for k in layer.path_choices())


def test_turning_autotune_on_retunes_a_cost_model_choice(monkeypatch):
    from factorlab.layers import paths

    layer = CPLinear(12, 8, rank=3).eval()
    x = torch.randn(5, 12)
    _eval_call(layer, x)
    (choice,) = layer.path_choices().values()
    assert choice["how"] == "model"
    monkeypatch.setattr(paths, "time_candidate", lambda cand, *a, **k: 1.0 if cand.name == "dense" else 2.0)
    layer.autotune = True
    _eval_call(layer, x)
    (choice,) = layer.path_choices().values()
    assert choice["how"] == "measured" and choice["path"] == "dense"


def test_torch_compile_in_inference_after_the_fast_path_was_installed():
    """Under torch.compile the fast path is skipped (the choice is made outside the graph)."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = CPLinear(12, 8, rank=3).eval()
    x = torch.randn(5, 12)
    want = _eval_call(layer, x)
    assert layer._fast is not None
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=False)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), want)


def test_an_input_the_layer_reshapes_never_takes_the_fast_path():
    """The fast path compares the raw input's shape with the one the path ran on: a [*, in]
    input with two leading dimensions is reshaped, so it must go the full way every call."""
    torch.manual_seed(0)
    layer = TuckerLinear(12, 8, rank=2).eval()
    x3 = torch.randn(2, 3, 12)
    first = _eval_call(layer, x3)
    second = _eval_call(layer, x3)
    assert first.shape == second.shape == (2, 3, 8)
    torch.testing.assert_close(second, _reference(layer, x3).detach(), rtol=1e-5, atol=1e-6)
    x1 = torch.randn(12)  # one vector: [in] -> [out]
    assert _eval_call(layer, x1).shape == _eval_call(layer, x1).shape == (8,)


def test_assigning_a_factors_data_invalidates_the_prepared_weight():
    """``p.data = t`` (as torch.nn.utils.vector_to_parameters does) bumps no version: the
    storage address in the stamp catches it."""
    torch.manual_seed(0)
    layer = CPLinear(12, 8, rank=3).eval()
    x = torch.randn(5, 12)
    before = _eval_call(layer, x)
    vec = torch.nn.utils.parameters_to_vector(layer.parameters())
    torch.nn.utils.vector_to_parameters(2 * vec, layer.parameters())
    after = _eval_call(layer, x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, _reference(layer, x).detach(), rtol=1e-5, atol=1e-6)
