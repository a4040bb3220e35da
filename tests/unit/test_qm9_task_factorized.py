"""factorlab.models.qm9_task_factorized: the GINE encoder's maps task-factorized — equal to the
grouped single-task networks at full rank, exact parameter counts, gradients to every factor,
errors."""
from __future__ import annotations

import pytest
import torch

from factorlab.data.qm9 import load_qm9
from factorlab.layers.task_tensor import factor_count
from factorlab.models.qm9 import QM9GINE
from factorlab.models.qm9_task_factorized import (GroupedTaskFactorized, build_task_factorized_gine, encoder_maps,
                                                  factorize_gine, task_factorized_maps)

HP = {"hidden": 8, "layers": 2, "head_hidden": 4}
T = 3


@pytest.fixture(scope="module")
def batch():
    return load_qm9(fixture=True).batch(torch.arange(12))


def _grouped(dtype=torch.float32):
    torch.manual_seed(0)
    return QM9GINE(num_tasks=1, groups=T, **HP).to(dtype).eval()


def test_encoder_maps_are_the_atom_bond_and_mlp_maps():
    assert encoder_maps(_grouped()) == ["encoder.node_in", "encoder.convs.0.nn.0", "encoder.convs.0.nn.2",
                                        "encoder.convs.0.lin", "encoder.convs.1.nn.0", "encoder.convs.1.nn.2",
                                        "encoder.convs.1.lin"]


@pytest.mark.parametrize("method", ["laf", "tucker", "tt"])
def test_full_rank_factorization_computes_the_grouped_networks(batch, method):
    model = _grouped()
    fact = factorize_gine(model, method, rel_error=0.0).eval()
    assert set(task_factorized_maps(fact)) == set(encoder_maps(model))
    with torch.no_grad():
        assert torch.allclose(fact(batch), model(batch), rtol=1e-4, atol=1e-5)  # float32 after a float64 decomposition
    low = factorize_gine(model, method, rank=1)
    assert sum(p.numel() for p in low.parameters()) < sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("method", ["laf", "tucker", "tt"])
def test_fresh_build_counts_parameters_exactly_and_trains_every_factor(batch, method):
    model = build_task_factorized_gine(T, method, 2, **HP)
    maps = task_factorized_maps(model)
    plain = QM9GINE(num_tasks=1, groups=T, **HP)
    removed = sum(p.numel() for name in encoder_maps(plain) for p in plain.get_submodule(name).parameters())
    added = sum(factor_count(method, m.modes, m.rank) + (m.bias.numel() if m.bias is not None else 0)
                for m in maps.values())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters()) - removed + added
    out = model(batch)
    assert out.shape == (12, T)
    out.pow(2).mean().backward()
    for m in maps.values():
        assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in m.factor_list)


def test_bad_inputs_raise_value_errors(batch):
    with pytest.raises(ValueError, match=r"QM9GINE\(num_tasks=1, groups=T\) with T >= 2"):
        factorize_gine(QM9GINE(num_tasks=3, **HP), "tucker", rank=2)
    with pytest.raises(ValueError, match="exactly one of rank"):
        factorize_gine(_grouped(), "tucker")
    with pytest.raises(ValueError, match="method"):
        build_task_factorized_gine(T, "cp", 2, **HP)
    layer = next(m for m in build_task_factorized_gine(T, "laf", 2, **HP).modules()
                 if isinstance(m, GroupedTaskFactorized) and not m.shared_input)
    with pytest.raises(ValueError, match=r"expected input \[N, 24\]"):
        layer(torch.zeros(5, 8))
