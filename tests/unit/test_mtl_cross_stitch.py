"""Cross-stitch units: shapes, the near-identity initialisation, exact equivalence with the
single-task stack at the identity, gradients into the units, and the errors."""
from __future__ import annotations

import math

import pytest
import torch

from factorlab.data.qm9 import load_qm9
from factorlab.models.qm9 import QM9GINE
from factorlab.models.stack import num_members, stack_models
from factorlab.mtl.cross_stitch import CrossStitch, CrossStitchGINE, stitch_init

HP = {"hidden": 8, "layers": 2, "head_hidden": 4}


@pytest.fixture(scope="module")
def batch():
    return load_qm9(fixture=True).batch(torch.arange(12))


def _stack(k=3, tasks=1):
    models = []
    for seed in range(k):  # different weights per member, so mixing changes the outputs
        torch.manual_seed(seed)
        models.append(QM9GINE(num_tasks=tasks, **HP))
    return stack_models(models)


def test_init_is_alpha_on_the_diagonal_and_rows_sum_to_one():
    a = stitch_init(3, 0.9)
    assert torch.allclose(a, torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]))
    assert torch.allclose(stitch_init(2, 0.9), torch.tensor([[0.9, 0.1], [0.1, 0.9]]))  # Misra et al.'s alpha_S, alpha_D
    assert torch.equal(stitch_init(4, 1.0), torch.eye(4))
    unit = CrossStitch(3, 5, alpha=0.8, per_channel=True)
    assert unit.weight.shape == (5, 3, 3) and torch.allclose(unit.weight[2], stitch_init(3, 0.8))
    assert CrossStitch(3, 5).weight.shape == (3, 3)


def test_unit_mixes_members_channelwise():
    torch.manual_seed(0)
    x = torch.randn(6, 3 * 4)
    unit = CrossStitch(3, 4)
    with torch.no_grad():
        unit.weight.copy_(torch.randn(3, 3))
    y = unit(x)
    assert y.shape == (6, 12)
    xk = x.view(6, 3, 4)
    assert torch.allclose(y.view(6, 3, 4)[:, 1], sum(unit.weight[1, j] * xk[:, j] for j in range(3)), atol=1e-6)
    per = CrossStitch(3, 4, per_channel=True)
    with torch.no_grad():
        per.weight.copy_(torch.randn(4, 3, 3))
    c = 2
    assert torch.allclose(per(x).view(6, 3, 4)[:, 0, c], xk[:, :, c] @ per.weight[c, 0], atol=1e-6)


@pytest.mark.parametrize("per_channel", [False, True])
def test_identity_units_are_exactly_the_single_task_stack(batch, per_channel):
    stack = _stack(3, tasks=2)
    net = CrossStitchGINE(stack, alpha=1.0, per_channel=per_channel)
    for mode in (True, False):  # training (batch statistics) and eval mode
        stack.train(mode)
        net.train(mode)
        out = net(batch)
        assert out.shape == (12, 6)
        assert torch.equal(out, stack(batch))
    assert not torch.equal(CrossStitchGINE(stack, alpha=0.9)(batch), stack(batch))  # near identity mixes


def test_gradients_flow_into_the_units_and_across_members(batch):
    net = CrossStitchGINE(_stack(3), alpha=0.9)
    assert num_members(net) == 1 and net.members == 3  # one multitask network
    loss = net(batch)[:, 0].pow(2).mean()  # member 0's output only
    loss.backward()
    for unit in net.stitches:
        assert unit.weight.grad is not None and unit.weight.grad.abs().sum() > 0
    # member 2's encoder weights get gradient from member 0's loss through the units
    w = net.stack.encoder.convs[0].nn[0].weight.grad
    assert w[2].abs().sum() > 0
    # ... which it would not without mixing
    ident = CrossStitchGINE(_stack(3), alpha=1.0)
    ident(batch)[:, 0].pow(2).mean().backward()
    assert ident.stack.encoder.convs[0].nn[0].weight.grad[2].abs().sum() == 0
    assert set(net.summary()) == {f"stitches.{l}.{k}" for l in range(2) for k in ("diag", "off")}
    assert net.summary()["stitches.0.diag"] == pytest.approx(0.9)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match=r"alpha .* must be in \[0, 1\]"):
        CrossStitchGINE(_stack(2), alpha=1.5)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        CrossStitch(2, 4, alpha=math.nan)
    with pytest.raises(ValueError, match="members >= 2"):
        stitch_init(1, 0.9)
    with pytest.raises(ValueError, match="at least 2 members, got groups=1"):
        CrossStitchGINE(QM9GINE(num_tasks=1, **HP))
    with pytest.raises(ValueError, match="need a grouped QM9GINE stack"):
        CrossStitchGINE(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="channels must be a positive int"):
        CrossStitch(2, 0)
