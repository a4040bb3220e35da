"""Soft parameter sharing: the penalty, its gradient, its distances and its errors."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from factorlab.models.qm9 import QM9GINE
from factorlab.models.stack import member_state
from factorlab.mtl.soft import (SoftSharingPenalty, check_lambda, encoder_layers, is_hard,
                                pairwise_sq_distance)

HP = {"hidden": 8, "layers": 2, "head_hidden": 4}


def _stack(k=3, seed=0):
    torch.manual_seed(seed)
    return QM9GINE(num_tasks=1, groups=k, **HP)


def test_pairwise_sum_equals_the_sum_over_pairs_and_its_gradient_is_right():
    torch.manual_seed(0)
    a = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    brute = sum((a[i] - a[j]).pow(2).sum() for i, j in itertools.combinations(range(4), 2))
    assert torch.allclose(pairwise_sq_distance(a), brute)
    assert torch.autograd.gradcheck(pairwise_sq_distance, (a,))  # against finite differences


def test_penalty_is_lambda_over_n_times_the_pairwise_sum_over_encoder_members():
    model = _stack(3)
    pen = SoftSharingPenalty(model, 0.5)
    members = [member_state(model, k) for k in range(3)]
    names = [n for n, _ in model.named_parameters() if n.startswith("encoder.")]
    brute = sum((members[i][n] - members[j][n]).pow(2).sum() for n in names for i, j in itertools.combinations(range(3), 2))
    n_one = sum(p.numel() for n, p in QM9GINE(num_tasks=1, groups=1, **HP).named_parameters() if n.startswith("encoder."))
    assert pen.constrained_params == n_one
    assert torch.allclose(pen.raw(), brute, rtol=1e-5)
    assert torch.allclose(pen(), brute * 0.5, rtol=1e-5)  # the journal's unnormalised form
    assert "encoder.node_in" in pen.layers and not any(l.startswith("heads") for l in pen.layers)


def test_penalty_gradient_matches_finite_differences_on_a_model_parameter():
    model = _stack(2).double()
    pen = SoftSharingPenalty(model, 2.0, layers=["encoder.node_in"])
    w = model.encoder.node_in.weight
    pen().backward()
    i, j = 3, 5
    eps = 1e-6
    with torch.no_grad():
        w[i, j] += eps
        up = pen().item()
        w[i, j] -= 2 * eps
        down = pen().item()
        w[i, j] += eps
    assert w.grad[i, j].item() == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_distances_are_zero_when_tied_and_near_sqrt2_when_independent():
    model = _stack(4)
    pen = SoftSharingPenalty(model, 1.0)
    d = pen.distances()
    assert set(d) == set(pen.layers)
    random_init = [l for l in pen.layers if "norm" not in l]  # BatchNorm starts at (1, 0) in every member
    assert len(random_init) >= 5 and all(1.2 < d[l] < 1.6 for l in random_init)  # independent draws: ~sqrt(2)
    assert all(d[l] == 0.0 for l in pen.layers if "norm" in l)
    with torch.no_grad():
        for p in pen.groups["encoder.node_in"]:
            rows = p.view(4, -1)
            rows.copy_(rows[0].expand_as(rows))
    assert pen.distances()["encoder.node_in"] == 0.0


def test_lambda_and_layers_are_checked():
    model = _stack(2)
    for bad in (-1e-3, float("nan"), "x", None):
        with pytest.raises(ValueError, match=">= 0 or inf"):
            SoftSharingPenalty(model, bad)
    with pytest.raises(ValueError, match="hard sharing"):
        SoftSharingPenalty(model, math.inf)
    with pytest.raises(ValueError, match=r"unknown soft-sharing layer\(s\) \['encoder.nope'\]: choose from encoder.node_in"):
        SoftSharingPenalty(model, 1.0, layers=["encoder.nope"])
    with pytest.raises(ValueError, match="at least 2 members"):
        SoftSharingPenalty(_stack(1), 1.0)
    assert is_hard(math.inf) and not is_hard(0.0) and check_lambda(0) == 0.0
    assert encoder_layers(model)[0] == "encoder.node_in"


def test_penalty_gradient_passes_gradcheck_on_every_constrained_parameter():
    model = QM9GINE(num_tasks=1, groups=3, hidden=4, layers=1, head_hidden=2).double()
    pen = SoftSharingPenalty(model, 0.7)
    layers = {l: len(ps) for l, ps in pen.groups.items()}
    inputs = [p.detach().clone().requires_grad_() for l in pen.layers for p in pen.groups[l]]

    def penalty_of(*tensors):  # the penalty as a function of its parameters (float64)
        it, saved = iter(tensors), pen.groups
        pen.groups = {l: [next(it) for _ in range(n)] for l, n in layers.items()}
        try:
            return pen()
        finally:
            pen.groups = saved

    assert sum(t.numel() for t in inputs) == 3 * pen.constrained_params
    assert torch.autograd.gradcheck(penalty_of, tuple(inputs))  # against central finite differences


# ----------------------------------------------------------------------------- in the training loop

@pytest.fixture(scope="module")
def data():
    from factorlab.data.qm9 import load_qm9

    return load_qm9(fixture=True)


def _fit(data, **kw):
    from factorlab.train.qm9_regression import fit_regression

    torch.manual_seed(0)
    model = QM9GINE(num_tasks=1, groups=2, **HP)
    ids = data.split
    extra = kw.pop("extra", lambda m: {})(model)
    fit = fit_regression(model, data, [11, 8], train_ids=ids["train"][:96], valid_ids=ids["valid"],
                         test_ids=ids["test"], epochs=2, batch_size=32, **extra, **kw)
    return model, fit


def test_fit_regression_adds_the_penalty_and_records_it_per_epoch(data):
    model, fit = _fit(data, extra=lambda m: {"penalty": SoftSharingPenalty(m, 10.0),
                                             "probes": {"distance": SoftSharingPenalty(m, 0.0).distances}})
    h = fit.history
    assert len(h["penalty"]) == len(h["data_loss"]) == 2 and all(v > 0 for v in h["penalty"])
    assert h["data_loss"] == [pytest.approx(h["train_mse"]["Cv"][e] + h["train_mse"]["U"][e]) for e in range(2)]
    assert set(h["distance"]) == set(encoder_layers(model)) and all(len(v) == 2 for v in h["distance"].values())
    plain_model, plain = _fit(data)
    assert "penalty" not in plain.history and "data_loss" not in plain.history
    assert not torch.equal(model.encoder.node_in.weight, plain_model.encoder.node_in.weight)  # the term trained


def test_a_probe_reads_without_changing_the_training(data):
    probed_model, probed = _fit(data, extra=lambda m: {"probes": {"distance": SoftSharingPenalty(m, 0.0).distances}})
    plain_model, plain = _fit(data)
    assert probed.metrics == plain.metrics
    assert all(torch.equal(a, b) for a, b in zip(probed_model.state_dict().values(), plain_model.state_dict().values()))
