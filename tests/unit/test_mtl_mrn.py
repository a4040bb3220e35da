"""factorlab.mtl.mrn: the tensor-normal penalty against its explicit Kronecker form, its
gradients, the flip-flop covariance updates against a direct computation, positive
definiteness, and the errors."""
from __future__ import annotations

import pytest
import torch

from factorlab.mtl import mrn


def _spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def _w(shape=(4, 3, 5), seed=0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _vec_f(w: torch.Tensor) -> torch.Tensor:
    """Column-major vec (first index fastest)."""
    return w.permute(2, 1, 0).reshape(-1)


def test_penalty_equals_the_explicit_kronecker_form():
    w = _w()
    s1, s2, st = _spd(4, 1), _spd(3, 2), _spd(5, 3)
    v = _vec_f(w)
    explicit = v @ torch.linalg.solve(torch.kron(st, torch.kron(s2, s1)), v)
    assert float(mrn.tensor_normal_penalty(w, [s1, s2, st])) == pytest.approx(float(explicit), rel=1e-10)
    row_major = w.reshape(-1)  # PyTorch's flatten: the same covariance as Σ1 ⊗ Σ2 ⊗ ΣT
    explicit_c = row_major @ torch.linalg.solve(torch.kron(s1, torch.kron(s2, st)), row_major)
    assert float(explicit_c) == pytest.approx(float(explicit), rel=1e-10)
    precisions = [torch.linalg.inv(c) for c in (s1, s2, st)]
    assert float(mrn.tensor_normal_penalty(w, precisions=precisions)) == pytest.approx(float(explicit), rel=1e-10)
    assert float(mrn.tensor_normal_penalty(w, [torch.eye(4, dtype=w.dtype), torch.eye(3, dtype=w.dtype),
                                               torch.eye(5, dtype=w.dtype)])) == pytest.approx(float((w**2).sum()))


def test_penalty_gradients_pass_gradcheck_in_float64():
    w = _w((3, 2, 4)).requires_grad_()
    covs = [_spd(3, 1).requires_grad_(), _spd(2, 2).requires_grad_(), _spd(4, 3).requires_grad_()]
    assert torch.autograd.gradcheck(lambda w, a, b, c: mrn.tensor_normal_penalty(w, [a, b, c]), (w, *covs))
    prior = mrn.TensorNormalPrior(3, 2, 4)
    prior.update(w)
    assert torch.autograd.gradcheck(prior.penalty, (w,))


def test_flip_flop_update_equals_the_direct_computation():
    w = _w((4, 3, 5), seed=4)
    covs = [_spd(4, 1), _spd(3, 2), _spd(5, 3)]
    eps = 1e-3
    s1, s2, st = covs
    d1, d2, t = w.shape
    w1 = w.permute(0, 2, 1).reshape(d1, -1)  # column j + D2 t
    s1 = w1 @ torch.linalg.inv(torch.kron(st, s2)) @ w1.T / (d2 * t) + eps * torch.eye(d1, dtype=w.dtype)
    w2 = w.permute(1, 2, 0).reshape(d2, -1)  # column i + D1 t
    s2 = w2 @ torch.linalg.inv(torch.kron(st, s1)) @ w2.T / (d1 * t) + eps * torch.eye(d2, dtype=w.dtype)
    w3 = w.permute(2, 1, 0).reshape(t, -1)  # column i + D1 j
    st = w3 @ torch.linalg.inv(torch.kron(s2, s1)) @ w3.T / (d1 * d2) + eps * torch.eye(t, dtype=w.dtype)
    got = mrn.flip_flop_update(w, covs, eps, normalise=False)
    for a, b in zip(got, (s1, s2, st)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    normed = mrn.flip_flop_update(w, covs, eps, normalise=True)
    assert float(normed[0].diagonal().mean()) == pytest.approx(1.0) == float(normed[1].diagonal().mean())
    kron = lambda c: torch.kron(c[2], torch.kron(c[1], c[0]))  # noqa: E731
    assert torch.allclose(kron(normed), kron(got), rtol=1e-10)


def test_an_exact_update_makes_the_penalty_the_number_of_weights():
    w = _w((4, 3, 5), seed=5)
    covs = mrn.flip_flop_update(w, [torch.eye(d, dtype=w.dtype) for d in w.shape], eps=0.0)
    assert float(mrn.tensor_normal_penalty(w, covs)) == pytest.approx(w.numel(), rel=1e-8)


def test_rank_deficient_weights_keep_positive_definite_factors():
    w = _w((12, 1, 2), seed=6)  # Σ1's unfolding has rank 2 < 12
    prior = mrn.TensorNormalPrior(12, 1, 2, eps=1e-3)
    for _ in range(5):
        prior.update(w)
        for c in prior.covs:
            assert torch.allclose(c, c.T) and float(torch.linalg.eigvalsh(c).min()) > 0
    corr = prior.task_correlation()
    assert torch.allclose(corr.diagonal(), torch.ones(2, dtype=corr.dtype))
    with pytest.raises(ValueError, match="not positive definite"):
        mrn.flip_flop_update(w, [torch.zeros(12, 12, dtype=w.dtype), torch.eye(1), torch.eye(2)], eps=0.0)


def test_mrn_penalty_updates_every_n_calls_and_scales_by_lambda():
    torch.manual_seed(0)
    heads = [torch.nn.Linear(4, 3) for _ in range(5)]
    get = lambda: mrn.stack_task_weights([h.weight for h in heads])  # noqa: E731
    assert get().shape == (4, 3, 5)
    pen = mrn.MRNPenalty([get], lam=0.5, update_every=2)
    first = pen()
    assert pen.priors[0].updates == 1
    assert float(first.detach()) == pytest.approx(0.5 * float(pen.priors[0].penalty(get()).detach()), rel=1e-6)
    pen()
    assert pen.priors[0].updates == 1
    pen().backward()
    assert pen.priors[0].updates == 2 and all(h.weight.grad is not None for h in heads)


def test_bad_shapes_and_settings_raise_value_errors():
    with pytest.raises(ValueError, match=r"\[D1, D2, T\]"):
        mrn.tensor_normal_penalty(torch.zeros(3, 4), [torch.eye(3)] * 3)
    with pytest.raises(ValueError, match=r"covariance factor 2 must be \[4, 4\]"):
        mrn.tensor_normal_penalty(torch.zeros(3, 4, 2), [torch.eye(3), torch.eye(3), torch.eye(2)])
    with pytest.raises(ValueError, match="three covariance factors"):
        mrn.flip_flop_update(torch.zeros(3, 4, 2), [torch.eye(3)])
    with pytest.raises(ValueError, match="either the covariance factors"):
        mrn.tensor_normal_penalty(torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match=r"weights must be \[3, 4, 2\]"):
        mrn.TensorNormalPrior(3, 4, 2).penalty(torch.zeros(3, 4, 3))
    with pytest.raises(ValueError, match="num_tasks must be a positive int"):
        mrn.TensorNormalPrior(3, 4, 0)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        mrn.TensorNormalPrior(3, 4, 2, eps=-1)
    with pytest.raises(ValueError, match="at least two task weights"):
        mrn.stack_task_weights([torch.zeros(3, 4), torch.zeros(4, 3)])
    with pytest.raises(ValueError, match="finite number >= 0"):
        mrn.MRNPenalty([lambda: torch.zeros(2, 2, 2)], lam=float("inf"))
    with pytest.raises(ValueError, match="update_every must be a positive int"):
        mrn.MRNPenalty([lambda: torch.zeros(2, 2, 2)], lam=1.0, update_every=0)


def test_task_stacked_reads_grouped_layers_and_heads_of_both_layouts():
    from factorlab.models.grouped import GroupedLinear, TaskHeads
    from factorlab.models.qm9 import QM9GINE

    g = GroupedLinear(4, 3, groups=5)
    assert torch.equal(mrn.task_stacked(g)[:, :, 2], g.weight[2])
    grouped, hard = TaskHeads(6, 1, hidden=2, groups=5), TaskHeads(6, 5, hidden=2, groups=1)
    assert torch.equal(mrn.task_stacked(grouped)[:, :, 3], grouped.weight1[3, 0])
    assert torch.equal(mrn.task_stacked(hard)[:, :, 3], hard.weight1[0, 3])
    with pytest.raises(ValueError, match="one of them must be 1"):
        mrn.task_stacked(TaskHeads(6, 2, hidden=2, groups=2))
    with pytest.raises(ValueError, match="GroupedLinear or TaskHeads"):
        mrn.task_stacked(torch.nn.Linear(2, 2))
    model = QM9GINE(num_tasks=1, hidden=8, layers=2, head_hidden=4, groups=3)
    pen = mrn.mrn_penalty(model, 0.1, layers=["heads", "encoder.convs.1.nn.2"], update_every=10)
    assert [p.shape for p in pen.priors] == [(8, 4, 3), (8, 8, 3)]
    pen().backward()
    assert model.heads.weight1.grad is not None and model.encoder.convs[1].nn[2].weight.grad is not None
    with pytest.raises(ValueError, match="unknown MRN layer"):
        mrn.mrn_penalty(model, 0.1, layers=["nope"])
