"""Loss weighting (factorlab.mtl.weighting): uncertainty weighting's gradients against the
analytic ones, FAMO's logit step against a hand computation on two tasks, weights on the
simplex, bad arguments, and the trainer's hook (equal weighting bit-identical to the default)."""
from __future__ import annotations

import math

import pytest
import torch

from factorlab.data.qm9 import load_qm9, target_index
from factorlab.models import QM9GINE
from factorlab.mtl.weighting import FAMO, EqualWeighting, UncertaintyWeighting, make_weighting
from factorlab.train import fit_regression, seed_everything


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ----------------------------------------------------------------------------- the methods

def test_equal_weighting_is_the_sum():
    losses = torch.tensor([0.5, 2.0, 3.25])
    assert EqualWeighting(3).combine(losses) == losses.sum()
    assert torch.equal(EqualWeighting(3).weights(), torch.ones(3))
    assert list(EqualWeighting(3).parameters()) == []


def test_uncertainty_weighting_value_and_gradients_match_the_analytic_ones():
    w = UncertaintyWeighting(3)
    with torch.no_grad():
        w.log_var.copy_(torch.tensor([0.3, -1.2, 2.0]))
    losses = torch.tensor([0.7, 1.5, 0.2], requires_grad=True)
    out = w.combine(losses)
    s = w.log_var.detach()
    assert out.item() == pytest.approx((0.5 * (torch.exp(-s) * losses.detach() + s)).sum().item())
    out.backward()
    # d/ds_k = (1 - exp(-s_k) L_k) / 2 ; d/dL_k = exp(-s_k) / 2
    assert torch.allclose(w.log_var.grad, 0.5 * (1 - torch.exp(-s) * losses.detach()))
    assert torch.allclose(losses.grad, 0.5 * torch.exp(-s))
    assert torch.allclose(w.weights(), 0.5 * torch.exp(-s))
    # the minimiser over s_k is log L_k (zero gradient there)
    with torch.no_grad():
        w.log_var.copy_(losses.detach().log())
    w.log_var.grad = None
    w.combine(losses.detach()).backward()
    assert torch.allclose(w.log_var.grad, torch.zeros(3), atol=1e-7)


def _famo_step(optimizer: str, before, after, lr=0.1, gamma=0.0):
    f = FAMO(2, lr=lr, gamma=gamma, optimizer=optimizer)
    f.combine(torch.tensor(before))
    f.after_step(lambda: torch.tensor(after))
    return f


def test_famo_logit_step_matches_a_hand_computation_on_two_tasks():
    before, after = [1.0, 4.0], [0.5, 3.0]
    # z = (1/2, 1/2); softmax Jacobian diag(z) - z z^T = [[1/4, -1/4], [-1/4, 1/4]]
    delta = [math.log(1.0 / 0.5), math.log(4.0 / 3.0)]  # log L - log L+ (eps negligible)
    d0 = 0.25 * (delta[0] - delta[1])
    f = _famo_step("sgd", before, after, lr=0.1)
    assert f.logits.tolist() == pytest.approx([-0.1 * d0, 0.1 * d0], rel=1e-5)
    # task 0's log loss fell more: it loses weight
    z = f.weights()
    assert z[0] < 0.5 < z[1]
    assert z.tolist() == pytest.approx([1 / (1 + math.exp(0.2 * d0)), 1 / (1 + math.exp(-0.2 * d0))], rel=1e-5)
    # Adam's first step is lr * g / (|g| + 1e-8): -lr * sign(g)
    assert _famo_step("adam", before, after, lr=0.1).logits.tolist() == pytest.approx([-0.1, 0.1], rel=1e-5)
    # the paper's decay: xi <- xi - lr (delta + gamma xi); from xi = 0 the decay acts at the second step
    f = FAMO(2, lr=0.1, gamma=0.5, optimizer="sgd")
    for _ in range(2):
        f.combine(torch.tensor(before))
        f.after_step(lambda: torch.tensor(after))
    xi1 = torch.tensor([-0.1 * d0, 0.1 * d0])
    z1 = torch.softmax(xi1, 0)
    jac = torch.diag(z1) - torch.outer(z1, z1)
    expect = xi1 - 0.1 * (jac.T @ torch.tensor(delta) + 0.5 * xi1)
    assert torch.allclose(f.logits, expect, rtol=1e-5)


def test_famo_network_gradient_is_a_convex_combination_of_task_gradients():
    f = FAMO(3)
    f.logits.copy_(torch.tensor([0.2, -0.5, 1.0]))
    losses = torch.tensor([0.3, 1.7, 0.9], requires_grad=True)
    f.combine(losses).backward()
    z = torch.softmax(f.logits, 0)
    gap = losses.detach() + f.eps
    expect = (z / gap) / (z / gap).sum()
    assert torch.allclose(losses.grad, expect) and losses.grad.sum().item() == pytest.approx(1.0)


def test_famo_weights_stay_on_the_simplex():
    gen = torch.Generator().manual_seed(0)
    for opt in ("adam", "sgd"):
        f = FAMO(5, lr=0.5, optimizer=opt)
        for _ in range(50):
            before = torch.rand(5, generator=gen) + 0.1
            f.combine(before)
            f.after_step(lambda: before * (torch.rand(5, generator=gen) + 0.5))
            z = f.weights()
            assert (z >= 0).all() and z.sum().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("call", [
    lambda: EqualWeighting(0), lambda: UncertaintyWeighting(2, lr=-1.0), lambda: UncertaintyWeighting(True),
    lambda: FAMO(2, optimizer="rmsprop"), lambda: FAMO(2, lr=0.0), lambda: FAMO(2, gamma=-1.0),
    lambda: FAMO(2, lr=float("nan")), lambda: FAMO(2, min_losses=[0.0, 0.0, 0.0]),
    lambda: make_weighting("gradnorm", 2), lambda: make_weighting("famo", 2, beta=0.1),
    lambda: EqualWeighting(2).combine(torch.ones(3)), lambda: FAMO(2).after_step(lambda: torch.ones(2)),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_make_weighting_builds_each_method():
    assert isinstance(make_weighting("equal", 3), EqualWeighting)
    assert isinstance(make_weighting("uncertainty", 3, lr=0.01), UncertaintyWeighting)
    assert make_weighting("famo", 3, gamma=0.0).gamma == 0.0


# ----------------------------------------------------------------------------- the trainer's hook

TARGETS = ["mu", "homo", "U0_atom"]


@pytest.fixture(scope="module")
def data():
    return load_qm9(fixture=True)


def _fit(data, weighting=None, epochs=2):
    seed_everything(0)
    model = QM9GINE(len(TARGETS), hidden=16, layers=2, head_hidden=8)
    ids = data.split
    fit = fit_regression(model, data, [target_index(t) for t in TARGETS], train_ids=ids["train"],
                         valid_ids=ids["valid"], test_ids=ids["test"], epochs=epochs, batch_size=32,
                         weighting=weighting)
    return model, fit


def test_equal_weighting_trains_bit_identically_to_the_default(data):
    m0, f0 = _fit(data)
    m1, f1 = _fit(data, EqualWeighting(len(TARGETS)))
    s0, s1 = m0.state_dict(), m1.state_dict()
    assert all(torch.equal(s0[k], s1[k]) for k in s0)
    assert f0.metrics == f1.metrics and f0.history["train_mse"] == f1.history["train_mse"]
    assert "task_weight" not in f0.history and f1.history["task_weight"]["mu"] == [1.0, 1.0]


def test_uncertainty_and_famo_train_their_weights_and_record_them(data):
    uw = UncertaintyWeighting(len(TARGETS), lr=0.05)
    _, fit = _fit(data, uw)
    assert (uw.log_var.detach() != 0).all()  # trained in the optimizer's extra group
    assert fit.history["task_weight"]["mu"][-1] == pytest.approx(uw.weights()[0].item())
    famo = FAMO(len(TARGETS))
    model, fit = _fit(data, famo)
    z = [fit.history["task_weight"][t][-1] for t in TARGETS]
    assert sum(z) == pytest.approx(1.0) and len(set(z)) == 3
    assert all(math.isfinite(v) for v in fit.metrics["test_mae"].values())
    with pytest.raises(ValueError, match="2 tasks"):
        _fit(data, FAMO(2), epochs=1)
