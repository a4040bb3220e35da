"""A member of a grouped stack trains bit for bit as it would alone, whatever the stack's size
and its place in it: the same initialisation, the same batches and the same per-member
arithmetic (:func:`factorlab.models.grouped.grouped_affine`). Fixture only (300 molecules).

Before the per-member arithmetic, the bias gradient of a member's head was a column of a
reduction whose order depended on the stack's width, and a stack of one took other matrix
kernels than a stack of several: 1-ulp differences in one gradient, which Adam amplified into
different runs (QM9 test MAEs 2-4 % apart for a stack of 5 and of 19 on the ``cpu`` budget).
"""
from __future__ import annotations

import pytest
import torch

from factorlab.data.qm9 import load_qm9, target_index
from factorlab.experiments.qm9_common import ALL_TARGETS, BUDGETS
from factorlab.models.grouped import GroupedLinear, SharedInputLinear, TaskHeads, grouped_affine
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.models.qm9_saved import build_member_models, stack_or_single
from factorlab.models.stack import member_state
from factorlab.train import fit_regression

#: Stack sizes checked, and where the member under test sits in each.
STACKS = [(1, 0), (5, 3), (19, 11)]
TARGET = "G"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def data():
    return load_qm9(fixture=True)


def _stack_targets(k: int, pos: int) -> list[str]:
    """``k`` single-task targets with :data:`TARGET` at position ``pos``."""
    others = [t for t in ALL_TARGETS if t != TARGET][:k - 1]
    return others[:pos] + [TARGET] + others[pos:]


def _train_member(data, gine: dict, k: int, pos: int, epochs: int):
    """Train a stack of ``k`` single-task GINEs (seed 0, as ``train_members`` builds them) with
    the smoke budget's loop settings; return the fit and the member's final tensors."""
    targets = _stack_targets(k, pos)
    cfg = {"model": "gine", "model_kwargs": gine}
    model = stack_or_single(build_member_models(cfg, [[t] for t in targets], seed=0))
    b = BUDGETS["smoke"]
    baseline = CompositionBaseline.fit(data, data.split["train"])
    fit = fit_regression(model, data, [target_index(t) for t in targets], train_ids=data.split["train"],
                         valid_ids=data.split["valid"], test_ids=data.split["test"], epochs=epochs,
                         batch_size=b["batch_size"], lr=b["lr"], weight_decay=b["weight_decay"],
                         schedule=b["schedule"], seed=0, baseline=baseline)
    return fit, {n: t.clone() for n, t in member_state(model, pos).items()}


def _differences(fit, state, ref_fit, ref_state) -> list[str]:
    """What differs between a member's run and the reference run (empty: bit-identical)."""
    out = [f"weight {name}" for name, t in ref_state.items() if not torch.equal(state[name], t)]
    out += [f"history {part}" for part in ("train_mse", "valid_mae")
            if fit.history[part][TARGET] != ref_fit.history[part][TARGET]]
    out += [f"metric {key}" for key in ("test_mae", "valid_mae", "best_epoch")
            if fit.metrics[key][TARGET] != ref_fit.metrics[key][TARGET]]
    return out


@pytest.mark.parametrize("profile,epochs", [("smoke", 3), ("cpu", 1)])
def test_member_trains_bit_identically_in_stacks_of_1_5_19(data, profile, epochs):
    """The member's final weights (each at its best validation epoch), its per-epoch training
    loss and validation error, and its test error are *equal* (not close) for stacks of 1, 5
    and 19, at the smoke budget's GINE width and at the cpu budget's.

    Once in about ten full-suite runs on a loaded machine one comparison differed; not
    reproduced alone. So a mismatch re-trains the reference: if the *same* stack does not
    reproduce itself, the run is nondeterministic in this process (another defect, reported
    by name) and stack-size invariance cannot be judged; if it does, the mismatch is a real
    dependence on the stack's size and the test fails."""
    gine = BUDGETS[profile]["gine"]
    (k0, p0), *others = STACKS
    ref_fit, ref_state = _train_member(data, gine, k0, p0, epochs)
    for k, pos in others:
        fit, state = _train_member(data, gine, k, pos, epochs)
        assert fit.timing["members"] == k
        assert list(state) == list(ref_state)
        diff = _differences(fit, state, ref_fit, ref_state)
        if diff:
            again_fit, again_state = _train_member(data, gine, k0, p0, epochs)
            repeat = _differences(again_fit, again_state, ref_fit, ref_state)
            if repeat:
                pytest.skip(f"stack of {k0} not reproducible in this process ({', '.join(repeat[:3])}): "
                            f"run-to-run nondeterminism, stack-size invariance not judged")
            pytest.fail(f"stack of {k} differs from a stack of {k0}: {', '.join(diff[:5])}")


@pytest.mark.parametrize("n,i,o", [(10, 8, 1), (32, 64, 1), (540, 16, 16), (540, 64, 64), (32, 16, 8)])
@pytest.mark.parametrize("strided", [False, True])
def test_grouped_affine_is_the_same_for_every_batch_size(n, i, o, strided):
    """Outputs and the gradients of input, weight and bias of ``b = 0`` are equal for
    ``B = 1, 5, 19`` (a strided input is what :class:`GroupedLinear` passes)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 19, i, generator=g)
    w, bias = torch.randn(19, i, o, generator=g), torch.randn(19, o, generator=g)
    grad = torch.randn(19, n, o, generator=g)

    def run(b: int):
        xb = (x[:, :b].clone().transpose(0, 1) if strided else x[:, :b].transpose(0, 1).contiguous()).requires_grad_()
        wb, bb = w[:b].clone().requires_grad_(), bias[:b].clone().requires_grad_()
        y = grouped_affine(xb, wb, bb)
        y.backward(grad[:b])
        assert torch.allclose(y, torch.bmm(xb, wb) + bb.unsqueeze(1), rtol=1e-5, atol=1e-5)
        return [t[0] for t in (y.detach(), xb.grad, wb.grad, bb.grad)]

    ref = run(1)
    for b in (5, 19):
        for name, got, want in zip(("y", "x.grad", "weight.grad", "bias.grad"), run(b), ref):
            assert torch.equal(got, want), (b, name)


def test_shared_input_linear_keeps_the_linear_layer_it_replaces():
    torch.manual_seed(0)
    lin = torch.nn.Linear(11, 3 * 4)
    layer = SharedInputLinear.from_linear(lin, groups=3)
    assert layer.weight is lin.weight and layer.bias is lin.bias
    x = torch.randn(7, 11)
    assert torch.allclose(layer(x), lin(x), atol=1e-6)
    assert layer.groups == 3 and layer.out_channels == 4
    assert SharedInputLinear(11, 4, groups=3)(x).shape == (7, 12)
    with pytest.raises(ValueError, match="into 5 groups"):
        SharedInputLinear.from_linear(lin, groups=5)
    with pytest.raises(ValueError, match="positive sizes"):
        SharedInputLinear(0, 4)


def test_grouped_layers_match_their_formulas_for_one_group():
    """With ``K = 1`` the grouped layers are the ordinary ones (the path a lone member takes)."""
    torch.manual_seed(0)
    layer = GroupedLinear(6, 5)
    x = torch.randn(9, 6)
    assert torch.allclose(layer(x), x @ layer.weight[0] + layer.bias[0], atol=1e-6)
    heads = TaskHeads(6, num_tasks=3, hidden=4)
    h = torch.relu(torch.einsum("gi,tih->gth", x, heads.weight1[0]) + heads.bias1[0])
    assert torch.allclose(heads(x), (h * heads.weight2[0]).sum(-1) + heads.bias2[0], atol=1e-6)


def test_regroup_keeps_outputs_order_and_refuses_wrong_widths(data):
    """Members of two kinds (1 and 3 outputs, interleaved) regroup into two grouped models whose
    outputs, permuted, are the stack's; a stack of all-different members stays as it is."""
    from factorlab.models import build_qm9_model
    from factorlab.models.stack import ModelStack, RegroupedStack, num_members, regroup

    kw = dict(hidden=16, layers=2, head_hidden=8, readout="sum", batch_norm=True, pool_norm=True)
    torch.manual_seed(0)
    widths = [1, 3, 1, 1, 3]
    stack = ModelStack([build_qm9_model("gine", w, **kw) for w in widths]).eval()
    fast = regroup(stack, widths)
    assert isinstance(fast, RegroupedStack) and len(fast.parts) == 2 and fast.groups == 5
    assert [num_members(p) for p in fast.parts] == [3, 2]
    batch = data.batch(torch.arange(12))
    with torch.no_grad():
        want, got = stack(batch), fast(batch)
    assert got.shape == want.shape == (12, 9)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one width per member: 4 widths for 5 members"):
        regroup(stack, widths[:4])
    distinct = ModelStack([build_qm9_model("gine", w, **kw) for w in (1, 2)])
    assert regroup(distinct, [1, 2]) is distinct
