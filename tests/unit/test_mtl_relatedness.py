"""Task-relatedness measures (factorlab.mtl: label_dependence, task_affinity, encoder_swap) on
the 300-molecule fixture and on hand-computable toys: labels and shapes, symmetry, diagonals,
distance correlation against the brute-force formula, TAG's lookahead against a hand
computation on a linear model, probes that leave training untouched, and recorded costs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from factorlab.data.qm9 import load_qm9, target_index
from factorlab.experiments.qm9_common import BUDGETS, base_config, train_members
from factorlab.models import QM9GINE
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.mtl.encoder_swap import encoder_swap
from factorlab.mtl.label_dependence import (distance_correlation_matrix, label_dependence, pearson_matrix,
                                            spearman_matrix)
from factorlab.mtl.relatedness import Relatedness
from factorlab.mtl.task_affinity import GradientCosine, LookaheadAffinity
from factorlab.train import fit_regression, seed_everything

TARGETS = ["mu", "alpha", "homo", "U0_atom"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def data():
    return load_qm9(fixture=True)


# ----------------------------------------------------------------------------- label dependence

def _brute_dcor(x: np.ndarray, y: np.ndarray) -> float:
    """Székely's V-statistic by its definition, with explicit loops."""
    n = len(x)

    def centred(v):
        a = [[abs(v[k] - v[l]) for l in range(n)] for k in range(n)]
        row = [sum(a[k]) / n for k in range(n)]
        col = [sum(a[k][l] for k in range(n)) / n for l in range(n)]
        grand = sum(row) / n
        return [[a[k][l] - row[k] - col[l] + grand for l in range(n)] for k in range(n)]

    A, B = centred(x), centred(y)
    dcov = lambda P, Q: sum(P[k][l] * Q[k][l] for k in range(n) for l in range(n)) / n ** 2  # noqa: E731
    return math.sqrt(dcov(A, B) / math.sqrt(dcov(A, A) * dcov(B, B)))


def test_distance_correlation_matches_the_brute_force_formula():
    gen = np.random.default_rng(1)
    y = gen.normal(size=(9, 3))
    y[:, 2] = y[:, 0] ** 2 + 0.1 * y[:, 1]  # nonlinear dependence
    d = distance_correlation_matrix(y)
    for i in range(3):
        for j in range(3):
            assert d[i, j] == pytest.approx(_brute_dcor(y[:, i], y[:, j]), rel=1e-10)
    assert np.allclose(np.diag(d), 1.0)
    # invariant to affine maps; 1 for a linear relation; pearson misses y = x^2 on a symmetric x
    assert distance_correlation_matrix(np.c_[y[:, 0], 3 * y[:, 0] - 2])[0, 1] == pytest.approx(1.0)
    x = np.linspace(-1, 1, 41)
    assert abs(pearson_matrix(np.c_[x, x ** 2])[0, 1]) < 1e-12
    assert distance_correlation_matrix(np.c_[x, x ** 2])[0, 1] > 0.4
    with pytest.raises(ValueError):
        distance_correlation_matrix(np.zeros((1, 2)))


def test_pearson_and_spearman_match_numpy_and_pandas():
    gen = np.random.default_rng(2)
    y = gen.normal(size=(50, 4))
    y[:, 3] = np.exp(y[:, 0])  # monotone: Spearman 1
    assert np.allclose(pearson_matrix(y), np.corrcoef(y.T))
    s = spearman_matrix(y)
    assert s[0, 3] == pytest.approx(1.0) and np.allclose(s, s.T)


def test_label_dependence_on_the_fixture_raw_and_residual(data):
    train = data.split["train"]
    raw = label_dependence(data, train, TARGETS, subsample=100)
    res = label_dependence(data, train, TARGETS, baseline=CompositionBaseline.fit(data, train), subsample=100)
    assert set(raw) == {"pearson_raw", "spearman_raw", "dcor_raw"}
    assert set(res) == {"pearson_residual", "spearman_residual", "dcor_residual"}
    for r in [*raw.values(), *res.values()]:
        m = r.matrix.to_numpy()
        assert list(r.matrix.index) == list(r.matrix.columns) == TARGETS
        assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0) and (np.abs(m) <= 1 + 1e-12).all()
        assert r.seconds > 0 and Relatedness.from_record(r.to_record()).matrix.equals(r.matrix)
    assert raw["dcor_raw"].info["n"] == 100 and raw["pearson_raw"].info["n"] == train.numel()
    # alpha and U0_atom are both extensive: strongly related raw, much less after composition
    assert abs(raw["pearson_raw"].matrix.loc["alpha", "U0_atom"]) > 0.8
    assert abs(res["pearson_residual"].matrix.loc["alpha", "U0_atom"]) < abs(raw["pearson_raw"].matrix.loc["alpha", "U0_atom"])
    with pytest.raises(ValueError):
        label_dependence(data, train, TARGETS, measures=("kendall",))
    with pytest.raises(ValueError):
        label_dependence(data, train, TARGETS, subsample=1)


# ----------------------------------------------------------------------------- probes during training

class _Linear(nn.Module):
    """x [n, 3] -> encoder W [2, 3] -> heads V [2 tasks, 2] + c."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(3, 2, bias=False)
        self.heads = nn.Linear(2, 2)

    def forward(self, x):
        return self.heads(self.encoder(x))


def test_lookahead_affinity_matches_a_hand_computation_on_a_linear_model():
    torch.manual_seed(0)
    model = _Linear().double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    W, V, c = (t.detach().numpy().copy() for t in (model.encoder.weight, model.heads.weight, model.heads.bias))
    X, Y, eta = x.numpy(), y.numpy(), 0.3

    def loss(Wm, j):
        r = X @ Wm.T @ V[j] + c[j] - Y[:, j]
        return np.mean(r ** 2)

    def grad(Wm, i):  # dL_i/dW = (2/n) sum_n r_n V_i x_n^T
        r = X @ Wm.T @ V[i] + c[i] - Y[:, i]
        return 2.0 / len(X) * np.outer(V[i], r @ X)

    expect = np.array([[1 - loss(W - eta * grad(W, i), j) / loss(W, j) for j in range(2)] for i in range(2)])
    probe = LookaheadAffinity(model, ["a", "b"], lr=eta)
    probe(0, x, y)
    got = probe.result()
    assert np.allclose(got.matrix.to_numpy(), expect, rtol=1e-10)
    assert np.allclose(model.encoder.weight.detach().numpy(), W)  # restored
    assert got.info["steps_probed"] == 1 and got.info["lookahead_lr"] == eta and got.seconds > 0
    # the diagonal is each task's own lookahead gain: positive for a small step
    assert (np.diag(expect) > 0).all()
    probe(1, x, y), probe(2, x, y)
    assert probe.result().info["steps_probed"] == 3  # every=1
    cos = GradientCosine(model, ["a", "b"], every=2)
    cos(0, x, y), cos(1, x, y)
    g0, g1 = grad(W, 0).ravel(), grad(W, 1).ravel()
    assert cos.result().matrix.loc["a", "b"] == pytest.approx(g0 @ g1 / np.linalg.norm(g0) / np.linalg.norm(g1))
    assert cos.result().info["steps_probed"] == 1


@pytest.mark.parametrize("call", [
    lambda m: LookaheadAffinity(m, ["a", "b"], lr=0.0), lambda m: LookaheadAffinity(m, ["a", "b"], lr=-1.0),
    lambda m: GradientCosine(m, ["a", "b"], every=0), lambda m: GradientCosine(nn.Linear(2, 2), ["a", "b"]),
    lambda m: GradientCosine(m, ["a", "b", "c"])(0, torch.zeros(4, 3), torch.zeros(4, 2)),
])
def test_probe_arguments_are_checked(call):
    with pytest.raises(ValueError):
        call(_Linear())


def _hard_shared_fit(data, hooks=()):
    seed_everything(0)
    model = QM9GINE(len(TARGETS), hidden=16, layers=2, head_hidden=8)
    s = data.split
    fit = fit_regression(model, data, [target_index(t) for t in TARGETS], train_ids=s["train"],
                         valid_ids=s["valid"], test_ids=s["test"], epochs=2, batch_size=32,
                         baseline=CompositionBaseline.fit(data, s["train"]), step_hooks=hooks)
    return model, fit


def test_probes_on_a_hard_shared_network_leave_its_training_bit_identical(data):
    m0, f0 = _hard_shared_fit(data)
    seed_everything(0)
    model = QM9GINE(len(TARGETS), hidden=16, layers=2, head_hidden=8)
    cos, tag = GradientCosine(model, TARGETS, every=2), LookaheadAffinity(model, TARGETS, lr=1e-3, every=2)
    s = data.split
    f1 = fit_regression(model, data, [target_index(t) for t in TARGETS], train_ids=s["train"], valid_ids=s["valid"],
                        test_ids=s["test"], epochs=2, batch_size=32, baseline=CompositionBaseline.fit(data, s["train"]),
                        step_hooks=[cos, tag])
    sa, sb = m0.state_dict(), model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and f0.metrics == f1.metrics
    steps = f1.timing["steps"]
    for r in (cos.result(), tag.result()):
        assert r.info["steps_probed"] == math.ceil(steps / 2) and r.seconds > 0
        assert list(r.matrix.index) == TARGETS and np.isfinite(r.matrix.to_numpy()).all()
    c = cos.result().matrix.to_numpy()
    assert np.allclose(c, c.T) and np.allclose(np.diag(c), 1.0) and (np.abs(c) <= 1).all()
    assert (np.diag(tag.result().matrix.to_numpy()) > 0).all()  # a task's own small step helps it


# ----------------------------------------------------------------------------- encoder swap

@pytest.fixture(scope="module")
def stack():
    cfg = {**base_config("qm9_single_task", "smoke", "gine", BUDGETS["smoke"]["gine"]), "sharing": "none",
           "targets": TARGETS, "seed": 0}
    return train_members(cfg, [[t] for t in TARGETS], device="cpu")


def test_encoder_swap_all_pairs_labels_and_own_mae(stack):
    s = stack
    swap = encoder_swap(s.model, s.data, s.split, TARGETS, baseline=s.baseline, epochs=2, batch_size=32)
    assert list(swap.mae.index) == list(swap.mae.columns) == TARGETS
    assert np.isfinite(swap.mae.to_numpy()).all() and (swap.mae.to_numpy() > 0).all()
    # the stack's own test MAE, as the trainer measured it
    for t in TARGETS:
        assert swap.own_mae[t] == pytest.approx(s.parts["metrics"]["test_mae"][t], rel=1e-4)
    assert np.allclose(swap.transfer.matrix.to_numpy(), swap.mae.to_numpy() / swap.own_mae.to_numpy()[None, :])
    assert np.allclose(np.diag(swap.relative_to_diagonal.to_numpy()), 1.0)
    assert swap.seconds > 0 and swap.transfer.seconds == swap.seconds and swap.info["pairs"] == 16


def test_encoder_swap_on_chosen_pairs_and_bad_arguments(stack):
    """Only the pairs asked for are measured (NaN elsewhere); bad pairs, targets or models raise."""
    s = stack
    some = encoder_swap(s.model, s.data, s.split, TARGETS, [(0, 3), (2, 1)], baseline=s.baseline, epochs=2,
                        batch_size=32)
    m = some.mae.to_numpy()
    assert np.isfinite(m[0, 3]) and np.isfinite(m[2, 1]) and np.isnan(m).sum() == 14
    with pytest.raises(ValueError):
        encoder_swap(s.model, s.data, s.split, TARGETS, [(0, 4)], baseline=s.baseline)
    with pytest.raises(ValueError):
        encoder_swap(s.model, s.data, s.split, TARGETS[:3], baseline=s.baseline)
    with pytest.raises(ValueError):
        encoder_swap(QM9GINE(2, hidden=8, layers=1, head_hidden=4), s.data, s.split, ["mu", "homo"])


def test_affinity_orients_every_measure_by_one_convention():
    """Larger is more related and 0 unrelated: |r| for correlations, encoder swap as 1 - ratio
    (0: the lent encoder serves as well as the task's own), the rest as recorded; arrays and
    labelled frames alike."""
    import pandas as pd

    from factorlab.mtl.relatedness import affinity, encoder_swap_affinity

    ratio = pd.DataFrame([[1.0, 0.8], [1.25, 1.0]], index=["mu", "Cv"], columns=["mu", "Cv"])
    got = affinity("encoder_swap", ratio)
    assert isinstance(got, pd.DataFrame) and list(got.index) == ["mu", "Cv"]
    np.testing.assert_allclose(got.to_numpy(), [[0.0, 0.2], [-0.25, 0.0]])
    np.testing.assert_array_equal(encoder_swap_affinity(ratio.to_numpy()), 1.0 - ratio.to_numpy())
    r = np.array([[1.0, -0.7], [-0.7, 1.0]])
    for name in ("pearson_raw", "spearman_residual"):
        np.testing.assert_array_equal(affinity(name, r), np.abs(r))
    for name in ("dcor_raw", "gradient_cosine", "tag_affinity"):
        out = affinity(name, r)
        np.testing.assert_array_equal(out, r)
        assert out is not r
    with pytest.raises(ValueError, match="no affinity mapping for measure 'cosine'"):
        affinity("cosine", r)
