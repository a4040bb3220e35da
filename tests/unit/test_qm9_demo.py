"""The network side of the demonstration: graphs for new molecules, saved networks (round
trip, checksums, errors), the ``qm9_demo_model`` experiment and ``predict --method net|both``.
Fixture only (the 300 committed molecules)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from factorlab.data.errors import DataError
from factorlab.data.qm9 import QM9_FIXTURE, graphs_for_prediction, load_qm9, read_qm9_table
from factorlab.experiments import qm9_demo_model as demo
from factorlab.models import build_qm9_model, stack_models
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.models.qm9_saved import load_qm9_predictor, save_qm9_model, sha256_file
from factorlab.results import RunStore, config_hash
from factorlab.train import seed_everything

SMALL = {"hidden": 16, "layers": 2, "head_hidden": 8, "readout": "sum", "batch_norm": True, "pool_norm": True}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def data():
    return load_qm9(fixture=True)


@pytest.fixture(scope="module")
def table():
    return read_qm9_table(QM9_FIXTURE, expect_rows=None)


def _atoms(table, row):
    from factorlab.data.qm9 import parse_atoms

    z, pos, _ = parse_atoms(table.iloc[[row]])
    return z, pos


def _edges(g, i=0):
    """Sorted (element of source, element of target, bond type) triples of molecule ``i``."""
    b = g.batch(torch.tensor([i]))
    el = b.x[:, 0]
    return sorted(zip(el[b.edge_index[0]].tolist(), el[b.edge_index[1]].tolist(), b.edge_attr.tolist()))


@pytest.mark.parametrize("row", [0, 13, 57, 123, 299])
def test_graph_with_geometry_is_the_training_graph(data, table, row):
    z, pos = _atoms(table, row)
    g = graphs_for_prediction([table["SMILES"].iloc[row]], [(z, pos)])
    ref = data.batch(torch.tensor([row]))
    got = g.batch(torch.tensor([0]))
    assert torch.equal(got.x, ref.x) and torch.equal(got.edge_index, ref.edge_index)
    assert torch.equal(got.edge_attr, ref.edge_attr) and torch.allclose(got.pos, ref.pos)
    assert torch.isnan(got.y).all() and int(g.index[0]) == -1


@pytest.mark.parametrize("row", [0, 13, 57, 123, 298])
def test_graph_from_smiles_alone_is_the_same_graph_renumbered(data, table, row):
    assert not bool(data.from_xyz[row])  # (row 299's SMILES is another molecule than its geometry)
    g = graphs_for_prediction([table["SMILES"].iloc[row]])
    ref, got = data.batch(torch.tensor([row])), g.batch(torch.tensor([0]))
    key = lambda x: sorted(map(tuple, x.tolist()))  # noqa: E731
    assert key(got.x) == key(ref.x)  # same nodes with the same features
    assert _edges(g) == _edges(data, row)
    assert torch.equal(got.pos, torch.zeros_like(got.pos))


def test_permutation_invariant_network_predicts_the_same_from_either_graph(data, table):
    seed_everything(0)
    model = build_qm9_model("gine", 3, **SMALL).eval()
    rows = [r for r in range(40) if not bool(data.from_xyz[r])]
    g = graphs_for_prediction([table["SMILES"].iloc[r] for r in rows])
    with torch.no_grad():
        a = model(data.batch(torch.tensor(rows)))
        b = model(g.batch(torch.arange(len(rows))))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_graphs_for_prediction_rejects_bad_input():
    with pytest.raises(DataError, match="cannot parse"):
        graphs_for_prediction(["C1CC"])
    with pytest.raises(DataError, match="Cl"):
        graphs_for_prediction(["CCl"])
    with pytest.raises(ValueError, match="no molecules"):
        graphs_for_prediction([])
    with pytest.raises(ValueError, match="2 SMILES but 1 geometries"):
        graphs_for_prediction(["C", "N"], [None])


def _trained_like(data, members):
    seed_everything(1)
    model = stack_models([build_qm9_model("gine", len(m), **SMALL) for m in members]) if len(members) > 1 \
        else build_qm9_model("gine", len(members[0]), **SMALL)
    with torch.no_grad():  # move away from the initial state so that a rebuild alone cannot pass
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    baseline = CompositionBaseline.fit(data, data.split["train"])
    cfg = {"experiment": demo.NAME, "model": "gine", "model_kwargs": SMALL, "profile": "smoke"}
    return model.eval(), baseline, cfg


@pytest.mark.parametrize("members", [[["mu"], ["U0"], ["gap"]], [["mu", "U0", "gap"]]])
def test_saved_network_round_trip_predicts_identically(tmp_path, data, members):
    model, baseline, cfg = _trained_like(data, members)
    info = save_qm9_model(tmp_path / "m.pt", model, members, baseline, cfg, "k")
    assert info["sha256"] == sha256_file(tmp_path / "m.pt") and info["bytes"] > 0
    pred = load_qm9_predictor(tmp_path / "m.pt", sha256=info["sha256"])
    assert pred.targets == ["mu", "U0", "gap"] and pred.key == "k"
    ids = torch.arange(20)
    b = data.batch(ids)
    cols = torch.tensor([0, 7, 4])
    with torch.no_grad():
        want = baseline.unstandardize(b, model(b), cols)
    torch.testing.assert_close(pred.predict(data, ids, batch_size=7), want, rtol=0, atol=0)
    one = pred.predict_dict(data, 3)
    assert one["U0"] == pytest.approx(float(want[3, 1]))


def test_saved_network_errors(tmp_path, data):
    model, baseline, cfg = _trained_like(data, [["mu"]])
    with pytest.raises(FileNotFoundError, match="qm9_demo_model"):
        load_qm9_predictor(tmp_path / "missing.pt")
    info = save_qm9_model(tmp_path / "m.pt", model, [["mu"]], baseline, cfg, "k")
    with pytest.raises(ValueError, match="SHA-256"):
        load_qm9_predictor(tmp_path / "m.pt", sha256="0" * 64)
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable saved network"):
        load_qm9_predictor(tmp_path / "bad.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    torch.save({**payload, "format": 99}, tmp_path / "v99.pt")
    with pytest.raises(ValueError, match="format 99"):
        load_qm9_predictor(tmp_path / "v99.pt")
    assert info["file"] == "m.pt"


def test_split_names_label_used_and_unused_rows():
    split = {"train": torch.tensor([5, 0, 2]), "valid": torch.tensor([1, 4]), "test": torch.tensor([3])}
    names = demo.split_names(split, {"train": 2, "valid": 1, "test": 1})
    assert names == {5: "train", 0: "train", 2: "train_unused", 1: "valid", 4: "valid_unused", 3: "test"}


def test_saved_file_holds_no_oversized_storage(tmp_path, data):
    model, baseline, cfg = _trained_like(data, [["mu"]])
    big = torch.zeros(1000, 19, dtype=torch.float64)
    baseline = CompositionBaseline(big[:6], baseline.res_mean, baseline.res_std)  # a view of a larger storage
    info = save_qm9_model(tmp_path / "m.pt", model, [["mu"]], baseline, cfg, "k")
    tensors = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    assert info["bytes"] < tensors + 6 * 19 * 8 + 20_000  # not the 152 kB of the whole storage


def test_demo_grid_and_members():
    cpu = demo.grid("cpu")
    assert [c["sharing"] for c in cpu] == ["none", "hard"]
    assert all(len(c["targets"]) == 19 and c["baseline"] == "composition" for c in cpu)
    assert demo.members_of(cpu[0]) == [[t] for t in cpu[0]["targets"]]
    assert demo.members_of(cpu[1]) == [cpu[1]["targets"]]
    with pytest.raises(ValueError, match="unknown sharing"):
        demo.members_of({**cpu[0], "sharing": "soft"})


def test_no_saved_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("FACTORLAB_MODELS_DIR", raising=False)
    with pytest.raises(LookupError, match="python -m factorlab run qm9_demo_model"):
        demo.find_demo_record("none")
    with pytest.raises(ValueError, match="unknown network"):
        demo.find_demo_record("soft")
    from factorlab.cli import main

    assert main(["predict", "C", "--method", "net", "--qm9", "none"]) == 2


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """Both smoke demo networks trained into a throw-away store (weights in its ``.models``)."""
    import os

    root = tmp_path_factory.mktemp("store")
    old = {k: os.environ.get(k) for k in ("FACTORLAB_RESULTS_DIR", "FACTORLAB_MODELS_DIR", "FACTORLAB_REQUIRE_CACHED")}
    os.environ["FACTORLAB_RESULTS_DIR"] = str(root)
    for k in ("FACTORLAB_MODELS_DIR", "FACTORLAB_REQUIRE_CACHED"):
        os.environ.pop(k, None)
    records = [RunStore().run(cfg, lambda c: demo.train(c, "cpu")) for cfg in demo.grid("smoke")]
    yield root, records
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_demo_experiment_saves_weights_its_record_vouches_for(smoke_store, data):
    root, records = smoke_store
    for rec in records:
        path = root / ".models" / demo.NAME / f"{rec['key']}.pt"
        assert rec["key"] == config_hash(rec["config"])
        assert rec["model"]["weights"]["sha256"] == sha256_file(path)
        pred, found = demo.load_demo_predictor(rec["config"]["sharing"])
        assert found["key"] == rec["key"] and pred.targets == rec["model"]["targets"]
        # the recorded sample predictions are what the saved network predicts
        sample = rec["metrics"]["sample"]
        assert "1" in sample and sample["1"]["smiles"] == "C" and sample["1"]["heavy_atoms"] == 1
        row = int(np.flatnonzero(data.index.numpy() == 1)[0])
        got = pred.predict_dict(data, row)
        assert got == pytest.approx(sample["1"]["network"], rel=1e-5)
        assert {s["split"] for s in sample.values()} <= {"train", "train_unused", "valid", "valid_unused", "test",
                                                         "test_unused"}
        inf = rec["timing"]["inference"]
        assert inf["single_s"] > 0 and inf["batched_s"] > 0 and inf["featurize_s"] > 0
        assert inf["batched_n"] == rec["model"]["n_test"]
    assert records[0]["model"]["members"] == 19 and records[1]["model"]["members"] == 1


def test_cli_predict_net_and_both(smoke_store, capsys):
    from factorlab.cli import main

    rc = main(["predict", "CCO", "--method", "net", "--qm9", str(QM9_FIXTURE)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "network error" in out and "Index 14 (as in training)" in out and "DFT" not in out.split("\n")[2]
    assert len([ln for ln in out.splitlines() if ln.split() and ln.split()[0] in ("mu", "U0", "A")]) == 3
    assert "note: 3 heavy atom(s)" in out  # the network extrapolates on small molecules
    # outside the table: graph from the SMILES, no reference column
    rc = main(["predict", "OCC(F)(F)F", "--method", "net", "--qm9", "none", "--network", "hard-sharing"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "graph from the SMILES" in out and "one hard-shared GINE" in out and "no reference" in out
    assert "note:" not in out  # 6 heavy atoms: no warning
    rc = main(["predict", "C", "--method", "both", "--qm9", str(QM9_FIXTURE), "--polarizability", "no",
               "--hessian", "no"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    header = next(ln for ln in out.splitlines() if ln.startswith("property"))
    assert header.split() == ["property", "unit", "DFT", "network", "QM9", "DFT", "error", "network", "error"]
    wall = next(ln for ln in out.splitlines() if ln.startswith("wall time")).split()
    assert len(wall) == 5  # "wall time s <dft> <net>"
    assert main(["predict", "CC[Cl]", "--method", "net", "--qm9", "none"]) == 2
    assert "Cl" in capsys.readouterr().err



def test_build_members_with_a_seed_starts_each_member_as_if_alone():
    from factorlab.models.qm9_saved import build_members

    cfg = {"model": "gine", "model_kwargs": SMALL}
    members = [["mu"], ["U0"], ["gap"]]
    stacked = build_members(cfg, members, seed=0)
    alone = []
    for _ in members:
        seed_everything(0)
        alone.append(build_qm9_model("gine", 1, **SMALL))
    want = stack_models(alone)
    assert all(torch.equal(a, b) for a, b in zip(stacked.state_dict().values(), want.state_dict().values()))
