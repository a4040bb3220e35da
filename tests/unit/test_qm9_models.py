"""QM9 graph networks, stacks of independent models, the regression loop, the QM9
experiments and the multitask metrics. Fixture only (the 300 committed molecules): fast."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch_geometric.data import Batch, Data

from factorlab.data.qm9 import QM9Batch, load_qm9, target_index
from factorlab.experiments import get_experiment
from factorlab.models import (GroupedLinear, ModelStack, QM9GINE, QM9SchNet, TaskHeads, build_qm9_model,
                              member_state, molecule_pairs, stack_models, unstack)
from factorlab.mtl import CHEMICAL_ACCURACY, accuracy_ratio, delta_m
from factorlab.results import RunStore, config_hash
from factorlab.train import fit_regression, seed_everything

SMALL_GINE = {"hidden": 16, "layers": 2, "head_hidden": 8}
SMALL_SCHNET = {"hidden": 16, "filters": 16, "interactions": 2, "gaussians": 12, "cutoff": 6.0, "head_hidden": 8}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def data():
    return load_qm9(fixture=True)


@pytest.fixture(scope="module")
def batch(data):
    return data.batch(torch.arange(10))


def _gine(num_tasks=3, seed=0, **kw):
    seed_everything(seed)
    return QM9GINE(num_tasks, **{**SMALL_GINE, **kw})


def _schnet(num_tasks=3, seed=0):
    seed_everything(seed)
    return QM9SchNet(num_tasks, **SMALL_SCHNET)


MODELS = {"gine": _gine, "schnet": _schnet}


# ----------------------------------------------------------------------------- shapes, split

@pytest.mark.parametrize("name", MODELS)
def test_output_and_embedding_shapes(name, batch):
    model = MODELS[name](num_tasks=3)
    assert model(batch).shape == (10, 3)
    z = model.encoder(batch)
    assert z.shape == (10, 16)
    assert model.heads(z).shape == (10, 3)
    assert repr(model).startswith(type(model).__name__ + "(num_tasks=3")


def test_build_by_name_and_clear_errors():
    assert isinstance(build_qm9_model("gine", 19, **SMALL_GINE), QM9GINE)
    assert isinstance(build_qm9_model("schnet", 1, **SMALL_SCHNET), QM9SchNet)
    with pytest.raises(ValueError, match="unknown QM9 model 'gcnn': choose one of"):
        build_qm9_model("gcnn", 3)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="num_tasks must be a positive int"):
            build_qm9_model("gine", bad)
    with pytest.raises(ValueError, match="bad arguments for QM9 model 'gine'"):
        build_qm9_model("gine", 3, channels=8)
    with pytest.raises(ValueError, match="unknown readout"):
        build_qm9_model("gine", 3, readout="max")


def test_encoders_swap_between_models(batch):
    a, b = _gine(num_tasks=2, seed=0).eval(), _gine(num_tasks=5, seed=1).eval()
    before = b(batch)
    b.encoder = a.encoder  # the relatedness chapter swaps encoders like this
    out = b(batch)
    assert out.shape == (10, 5) and not torch.allclose(out, before)
    assert torch.allclose(out, b.heads(a.encoder(batch)))
    assert sum(p.numel() for p in b.encoder.parameters()) == sum(p.numel() for p in a.encoder.parameters())


# ----------------------------------------------------------------------------- invariances

def _permute_atoms(b: QM9Batch) -> QM9Batch:
    """The same molecules with each molecule's atoms in reverse order (edges relabelled)."""
    order = torch.cat([torch.arange(int(b.ptr[g + 1]) - 1, int(b.ptr[g]) - 1, -1) for g in range(b.ptr.numel() - 1)])
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel())
    return QM9Batch(b.x[order], b.pos[order], inverse[b.edge_index], b.edge_attr, b.batch[order], b.y, b.ptr)


@pytest.mark.parametrize("name", MODELS)
def test_invariant_to_molecule_order_and_atom_order(name, data, batch):
    model = MODELS[name]().eval()
    with torch.no_grad():
        out = model(batch)
        perm = torch.tensor([3, 0, 9, 1, 7, 2, 8, 4, 6, 5])
        assert torch.allclose(model(data.batch(perm)), out[perm], atol=1e-5)
        shuffled = _permute_atoms(batch)
        assert not torch.equal(shuffled.x, batch.x)
        assert torch.allclose(model(shuffled), out, atol=1e-5)


def test_schnet_invariant_to_rotation_and_translation(batch):
    model = _schnet().eval()
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))
    moved = batch._replace(pos=batch.pos @ q.T + torch.tensor([3.0, -1.0, 7.5]))
    with torch.no_grad():
        assert torch.allclose(model(moved), model(batch), atol=1e-4)


def test_gine_uses_bonds_schnet_uses_geometry(batch):
    gine, schnet = _gine().eval(), _schnet().eval()
    with torch.no_grad():
        bent = batch._replace(pos=batch.pos * 1.1)
        assert torch.allclose(gine(bent), gine(batch)) and not torch.allclose(schnet(bent), schnet(batch))
        rebonded = batch._replace(edge_attr=(batch.edge_attr + 1) % 4)
        assert not torch.allclose(gine(rebonded), gine(batch))


def test_molecule_pairs_stay_within_molecules(batch):
    edge_index, dist = molecule_pairs(batch.pos, batch.ptr, cutoff=100.0)
    counts = batch.ptr[1:] - batch.ptr[:-1]
    assert edge_index.shape[1] == int((counts * (counts - 1)).sum())
    assert torch.equal(batch.batch[edge_index[0]], batch.batch[edge_index[1]])
    assert (edge_index[0] != edge_index[1]).all()
    assert torch.allclose(dist, (batch.pos[edge_index[0]] - batch.pos[edge_index[1]]).norm(dim=-1))
    short, d = molecule_pairs(batch.pos, batch.ptr, cutoff=1.2)
    assert 0 < short.shape[1] < edge_index.shape[1] and (d <= 1.2).all()


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name, batch):
    model = MODELS[name]().train()
    model(batch).pow(2).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", MODELS)
def test_qm9_batch_and_pyg_batch_agree(name, data):
    ids = [0, 5, 17, 42, 99]
    pyg = Batch.from_data_list([Data(**data.molecule(i)) for i in ids])
    ours = data.batch(torch.tensor(ids))
    model = MODELS[name]().eval()
    with torch.no_grad():
        assert torch.allclose(model(pyg), model(ours), atol=1e-5)
    model.train()  # BatchNorm on batch statistics: the same nodes give the same statistics
    assert torch.allclose(model(pyg), model(ours), atol=1e-5)


# ----------------------------------------------------------------------------- grouped layers, stacks

def test_grouped_linear_is_block_diagonal():
    layer = GroupedLinear(4, 3, groups=2)
    x = torch.randn(5, 8)
    y = layer(x)
    for k in range(2):
        ref = x[:, 4 * k:4 * k + 4] @ layer.weight[k] + layer.bias[k]
        assert torch.allclose(y[:, 3 * k:3 * k + 3], ref, atol=1e-6)
    assert layer.in_features == 8 and layer.out_features == 6
    with pytest.raises(ValueError, match="positive sizes"):
        GroupedLinear(0, 3)


def test_task_heads_are_independent_mlps():
    heads = TaskHeads(6, num_tasks=3, hidden=5, groups=2)
    z = torch.randn(4, 12)
    out = heads(z)
    assert out.shape == (4, 6)
    k, t = 1, 2
    h = torch.relu(z[:, 6:] @ heads.weight1[k, t] + heads.bias1[k, t])
    assert torch.allclose(out[:, k * 3 + t], h @ heads.weight2[k, t] + heads.bias2[k, t], atol=1e-6)


def _members(name, k=3):
    return [MODELS[name](num_tasks=1, seed=10 + i) for i in range(k)]


@pytest.mark.parametrize("name", MODELS)
def test_stack_forward_equals_members(name, batch):
    members = _members(name)
    stack = stack_models(members)
    assert isinstance(stack, QM9GINE if name == "gine" else ModelStack)
    assert stack.groups == 3
    for mode in ("train", "eval"):
        for m in (*members, stack):
            m.train(mode == "train")
        with torch.no_grad():
            assert torch.allclose(stack(batch), torch.cat([m(batch) for m in members], 1), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_stack_gradients_equal_each_model_trained_alone(name, data, batch):
    """One SGD step on the stack's summed loss moves every member exactly as one step on its own loss."""
    members = _members(name)
    stack = stack_models(_members(name))  # equal copies (a ModelStack holds the models themselves)
    target = data.standardize(batch.y)[:, [0, 2, 12]]
    opt = torch.optim.SGD(stack.parameters(), lr=0.1)
    (stack(batch) - target).pow(2).mean(0).sum().backward()
    opt.step()
    for k, m in enumerate(members):
        opt_k = torch.optim.SGD(m.parameters(), lr=0.1)
        (m(batch)[:, 0] - target[:, k]).pow(2).mean().backward()
        opt_k.step()
    for k, (alone, stacked) in enumerate(zip(members, unstack(stack))):
        ref = alone.state_dict()
        for pname, t in stacked.state_dict().items():
            assert torch.allclose(t.float(), ref[pname].float(), atol=1e-5), (k, pname)


def test_member_state_views_write_through_and_roundtrip():
    members = _members("gine", 2)
    stack = stack_models(members)
    back = unstack(stack)
    for m, b in zip(members, back):
        assert all(torch.equal(t, b.state_dict()[n]) for n, t in m.state_dict().items())
    view = member_state(stack, 1)["heads.weight2"]
    with torch.no_grad():
        view.fill_(7.0)
    assert (stack.heads.weight2[1] == 7).all() and not (stack.heads.weight2[0] == 7).any()
    with pytest.raises(ValueError, match="member 2 out of range"):
        member_state(stack, 2)


# ----------------------------------------------------------------------------- training loop

def _ids(data):
    return data.split["train"], data.split["valid"], data.split["test"]


def test_training_decreases_the_loss(data):
    tr, va, te = _ids(data)
    model = _gine(num_tasks=2)
    fit = fit_regression(model, data, [target_index("U0_atom"), target_index("alpha")], train_ids=tr, valid_ids=va,
                         test_ids=te, epochs=4, batch_size=32, lr=3e-3, schedule="constant")
    for name in ("U0_atom", "alpha"):
        curve = fit.history["train_mse"][name]
        assert len(curve) == 4 and curve[-1] < curve[0]
        assert fit.metrics["test_mae"][name] > 0
        assert math.isclose(fit.metrics["test_mae_std"][name] * float(data.y_std[target_index(name)]),
                            fit.metrics["test_mae"][name], rel_tol=1e-4)
    assert fit.timing["steps"] == 4 * (tr.numel() // 32)
    json.dumps(fit.history), json.dumps(fit.metrics), json.dumps(fit.timing)


def test_stacked_training_matches_training_alone(data):
    """The loop's per-member logic (columns, schedule, best epoch, restoring the best weights):
    a ModelStack runs the same kernels as each model alone, so the results are identical.
    (A grouped stack computes each member with arithmetic of a fixed shape, so it is exact too:
    the next test, and tests/unit/test_stack_invariance.py for stacks of 1, 5 and 19.)"""
    tr, va, te = _ids(data)
    cols = [target_index("homo"), target_index("Cv")]
    kw = dict(train_ids=tr, valid_ids=va, test_ids=te, epochs=3, batch_size=32, lr=2e-3, seed=4)
    stacked = fit_regression(ModelStack([_gine(1, seed=7), _gine(1, seed=7)]), data, cols, **kw)
    assert stacked.timing["members"] == 2
    for c in cols:
        alone = fit_regression(_gine(1, seed=7), data, [c], **kw)
        name = next(iter(alone.metrics["test_mae"]))
        for key in ("test_mae", "valid_mae", "best_epoch"):
            assert stacked.metrics[key][name] == pytest.approx(alone.metrics[key][name], rel=1e-6)
        assert stacked.history["valid_mae"][name] == pytest.approx(alone.history["valid_mae"][name], rel=1e-6)


def test_grouped_stack_trains_exactly_as_models_alone(data):
    tr, va, te = _ids(data)
    cols = [target_index("homo"), target_index("Cv")]
    kw = dict(train_ids=tr, valid_ids=va, test_ids=te, epochs=1, batch_size=32, lr=2e-3, seed=4)
    grouped = fit_regression(stack_models([_gine(1, seed=7), _gine(1, seed=7)]), data, cols, **kw)
    for c in cols:
        alone = fit_regression(_gine(1, seed=7), data, [c], **kw)
        name = next(iter(alone.metrics["test_mae"]))
        for key in ("test_mae", "valid_mae", "best_epoch"):
            assert grouped.metrics[key][name] == alone.metrics[key][name]  # bit-identical on the CPU


def test_fit_regression_rejects_bad_arguments(data):
    tr, va, te = _ids(data)
    kw = dict(train_ids=tr, valid_ids=va, test_ids=te, epochs=1)
    with pytest.raises(ValueError, match="distinct targets"):
        fit_regression(_gine(2), data, [0, 0], **kw)
    with pytest.raises(ValueError, match="not in 0..18"):
        fit_regression(_gine(1), data, [19], **kw)
    with pytest.raises(ValueError, match="cannot be split evenly over 2 members"):
        fit_regression(stack_models([_gine(1), _gine(1)]), data, [0, 1, 2], **kw)
    with pytest.raises(ValueError, match="unknown schedule"):
        fit_regression(_gine(1), data, [0], **{**kw, "schedule": "plateau"})


# ----------------------------------------------------------------------------- experiments

@pytest.mark.parametrize("name", ["qm9_single_task", "qm9_hard_sharing"])
@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_qm9_grids_are_valid_and_unique(name, profile):
    configs = get_experiment(name).grid(profile)
    assert configs and len({config_hash(c) for c in configs}) == len(configs)
    assert all(c["experiment"] == name and c["profile"] == profile for c in configs)
    json.dumps(configs)


def test_single_task_grid_covers_every_target_per_seed():
    from factorlab.data.qm9 import TARGET_NAMES

    for profile, seeds in (("cpu", 3), ("full", 3)):
        gine = [c for c in get_experiment("qm9_single_task").grid(profile) if c["model"] == "gine"]
        assert sorted(t for c in gine for t in c["targets"]) == sorted(list(TARGET_NAMES) * seeds)
    hard = get_experiment("qm9_hard_sharing").grid("cpu")
    single = get_experiment("qm9_single_task").grid("cpu")[0]
    same = ("model_kwargs", "n_train", "n_valid", "n_test", "epochs", "batch_size", "lr", "schedule")
    assert all(h[k] == single[k] for h in hard for k in same)  # MTL and STL compare
    assert {len(h["targets"]) for h in hard} == {12, 19}


@pytest.mark.parametrize("name", ["qm9_single_task", "qm9_hard_sharing"])
def test_smoke_profile_trains_records(name, tmp_path):
    from factorlab.experiments import run_experiment

    records = run_experiment(name, "smoke", "cpu", store=RunStore(tmp_path))
    for r in records:
        targets = r["config"]["targets"]
        assert set(r["metrics"]["test_mae"]) == set(targets)
        assert all(v is not None and v > 0 for v in r["metrics"]["test_mae"].values())
        assert r["model"]["members"] == (1 if name == "qm9_hard_sharing" else len(targets))


# ----------------------------------------------------------------------------- metrics

def test_delta_m():
    assert delta_m({"a": 2.0, "b": 1.0}, {"a": 1.0, "b": 1.0}) == pytest.approx(0.5)
    assert delta_m({"a": 1.1, "b": 0.9}, {"a": 1.0, "b": 1.0}) == pytest.approx(0.0)
    assert delta_m({"a": 0.5, "b": 3.0}, {"a": 1.0, "b": 2.0, "c": 9.0}) == pytest.approx(0.0)
    assert delta_m({"a": 0.5, "b": 3.0}, {"a": 1.0, "b": 2.0}, tasks=["a"]) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match=r"tasks \['b'\] are missing"):
        delta_m({"a": 1.0, "b": 1.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="not a positive finite number"):
        delta_m({"a": 1.0}, {"a": 0.0})
    with pytest.raises(ValueError, match="at least one task"):
        delta_m({}, {})


def test_chemical_accuracy_targets_and_ratios():
    from factorlab.data.qm9 import TARGET_NAMES

    assert set(CHEMICAL_ACCURACY) <= set(TARGET_NAMES) and not {"A", "B", "C"} & set(CHEMICAL_ACCURACY)
    assert CHEMICAL_ACCURACY["U0"] == CHEMICAL_ACCURACY["U0_atom"] == 0.043  # 1 kcal/mol in eV
    assert CHEMICAL_ACCURACY["zpve"] == 0.0012 and CHEMICAL_ACCURACY["mu"] == 0.1
    assert accuracy_ratio({"gap": 0.086, "A": 1.0}) == {"gap": pytest.approx(2.0)}
