"""The network side of the demonstration: graphs for new molecules, saved networks (round
trip, checksums, errors), the ``qm9_demo_model`` experiment and ``predict --method net|both``.
Fixture only (the 300 committed molecules)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from factorlab.data.errors import DataError
from factorlab.data.qm9 import QM9_FIXTURE, graphs_for_prediction, load_qm9, read_qm9_table, target_index
from factorlab.experiments import qm9_demo_model as demo
from factorlab.models import build_qm9_model, stack_models
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.models.qm9_saved import load_qm9_predictor, save_qm9_model, sha256_file
from factorlab.models.stack import ModelStack, RegroupedStack
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


def test_unequal_members_run_regrouped_with_the_stack_s_outputs(tmp_path, data):
    """A grouping's network (members of 1 and 2 targets, interleaved) predicts, regrouped into
    one grouped model per size, what its stack of members predicts, in the members' order."""
    members = [["mu"], ["U0", "gap"], ["alpha"], ["homo", "lumo"], ["r2"]]
    model, baseline, cfg = _trained_like(data, members)
    assert isinstance(model, ModelStack)
    info = save_qm9_model(tmp_path / "m.pt", model, members, baseline, cfg, "k")
    pred = load_qm9_predictor(tmp_path / "m.pt", sha256=info["sha256"])
    assert isinstance(pred.model, RegroupedStack) and len(pred.model.parts) == 2 and pred.model.groups == 5
    assert pred.targets == ["mu", "U0", "gap", "alpha", "homo", "lumo", "r2"]
    ids = torch.arange(20)
    b = data.batch(ids)
    cols = torch.as_tensor([target_index(t) for t in pred.targets])
    with torch.no_grad():
        want = baseline.unstandardize(b, model(b), cols)
    torch.testing.assert_close(pred.predict(data, ids, batch_size=7), want, rtol=1e-5, atol=1e-6)


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


def test_demo_grid_and_members(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))  # an empty store: no grouping records
    cpu = demo.grid("cpu")
    assert [(c["sharing"], c["seed"]) for c in cpu] == [("none", 0), ("hard", 0), ("none", 1), ("hard", 1),
                                                        ("none", 2), ("hard", 2)]  # grouped waits for its records
    assert [{**c, "seed": 0} for c in cpu[2:4]] == cpu[:2]  # the other seeds differ in the seed alone
    assert "groups" not in cpu[0] and "groups" not in cpu[1]  # the older networks keep their keys
    smoke = demo.grid("smoke")
    assert [c["sharing"] for c in smoke] == ["none", "hard", "grouped"] and smoke[2]["groups"] == demo.SMOKE_GROUPS
    assert all(len(c["targets"]) == 19 and c["baseline"] == "composition" for c in cpu)
    assert demo.members_of(cpu[0]) == [[t] for t in cpu[0]["targets"]]
    assert demo.members_of(cpu[1]) == [cpu[1]["targets"]]
    with pytest.raises(ValueError, match="unknown sharing"):
        demo.members_of({**cpu[0], "sharing": "soft"})


def test_grouped_members_cover_every_target_once_in_target_order():
    targets = ["mu", "alpha", "homo", "lumo", "gap", "r2"]
    assert demo.grouped_members([["alpha", "lumo"], ["mu", "r2"]], targets) == \
        [["mu", "r2"], ["alpha", "lumo"], ["homo"], ["gap"]]


@pytest.mark.parametrize("change, message", [
    ({"sharing": "grouped", "groups": None}, "needs groups"),
    ({"sharing": "grouped", "groups": [["mu", "alpha"], ["alpha"]]}, "disjoint"),
    ({"sharing": "grouped", "groups": [["mu", "nope"]]}, "disjoint and within"),
    ({"sharing": "hard", "groups": [["mu"]]}, "for sharing='grouped' only"),
])
def test_grouped_config_is_checked(tmp_path, monkeypatch, change, message):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    cfg = {**demo.grid("smoke")[0], **change}
    if cfg["groups"] is None:
        cfg.pop("groups")
    with pytest.raises(ValueError, match=message):
        demo.Config.from_dict(cfg)


def _grouping_store(tmp_path, group_mae: dict[str, float]) -> RunStore:
    """A store with hand-built smoke records of qm9_pairs and their qm9_single_task reference
    (the gains of tests/unit/test_qm9_pairs_grouping.py) and the qm9_grouping run of all three
    smoke tasks with test MAEs ``group_mae``."""
    from factorlab.experiments import qm9_grouping, qm9_pairs

    single = {"mu": 1.0, "alpha": 2.0, "homo": 4.0}
    gains = {("mu", "alpha"): (10.0, 20.0), ("mu", "homo"): (-5.0, 0.0), ("alpha", "homo"): (5.0, -10.0)}
    store = RunStore(tmp_path)

    def write(cfg, mae):
        store.run(cfg, lambda c: {"metrics": {"test_mae": mae, "valid_mae": mae}, "history": {}, "timing": {},
                                  "model": {}})

    for cfg in qm9_pairs.grid("smoke"):
        a, b = cfg["targets"]
        g_ab, g_ba = gains[(a, b)]
        write(cfg, {b: single[b] * (1 - g_ab / 100), a: single[a] * (1 - g_ba / 100)})
    for cfg in qm9_pairs.reference_configs("smoke"):
        write(cfg, {t: single.get(t, 1.0) for t in cfg["targets"]})
    for cfg in qm9_grouping.grid("smoke"):
        write(cfg, group_mae)
    return store


@pytest.mark.parametrize("group_mae, best", [
    ({"mu": 0.5, "alpha": 1.0, "homo": 2.0}, [["mu", "alpha", "homo"]]),  # all three in one network: Δm −50 %
    ({"mu": 2.0, "alpha": 4.0, "homo": 8.0}, [["mu", "alpha"], ["homo"]]),  # the oracle's pair wins
])
def test_best_grouping_is_the_grouping_chapters_choice(tmp_path, monkeypatch, group_mae, best):
    from factorlab.experiments import qm9_grouping, qm9_pairs
    from factorlab.report.qm9_grouping import aim_verdict, curve_frame

    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = _grouping_store(tmp_path, group_mae)
    got = demo.best_grouping("smoke", store)
    assert got["groups"] == best and got["k"] == len(best) and got["seeds"] == [0]
    # the same choice as the chapter's aim verdict, from the same records
    pair_recs = [store.get(c) for c in qm9_pairs.grid("smoke")]
    single_recs = [store.get(c) for c in qm9_pairs.reference_configs("smoke")]
    group_recs = [store.get(c) for c in qm9_grouping.grid("smoke")]
    curve = curve_frame(qm9_grouping.chosen_partitions("smoke", store), pair_recs, group_recs,
                        single_records=single_recs)
    aim = aim_verdict(curve, 1)
    assert aim["best"] == " | ".join(",".join(g) for g in best) and aim["best_dm"] == pytest.approx(got["delta_m"])
    cfg = demo.grouped_config("smoke", store)
    assert cfg.groups == best and cfg.sharing == "grouped" and len(cfg.targets) == 19


def test_grouped_network_without_grouping_records_names_the_commands(tmp_path, monkeypatch):
    from factorlab.experiments.registry import GridNeedsRecordsError

    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    with pytest.raises(GridNeedsRecordsError, match=r"grouped network \(cpu\).*python -m factorlab run qm9_pairs "
                                                    r"--profile cpu.*python -m factorlab run qm9_grouping --profile cpu"):
        demo.grouped_config("cpu")
    assert demo.grouped_config("smoke").groups == demo.SMOKE_GROUPS  # smoke falls back
    with pytest.raises(LookupError, match=r"qm9_grouping --profile cpu.*--where sharing=grouped"):
        demo.find_demo_record("grouped")
    from factorlab.cli import main

    assert main(["predict", "C", "--method", "net", "--qm9", "none", "--network", "grouped"]) == 2


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
    """The three smoke demo networks trained into a throw-away store (weights in its ``.models``)."""
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
    grouped = records[2]
    assert grouped["config"]["groups"] == demo.SMOKE_GROUPS
    assert grouped["model"]["members"] == 17 and grouped["model"]["targets"][:3] == ["mu", "alpha", "homo"]
    assert sorted(grouped["metrics"]["test_mae"]) == sorted(records[0]["metrics"]["test_mae"])
    # its parameters: one 3-target network and 16 single-task ones, each as alone
    per = grouped["model"]["params_per_member"]
    assert grouped["model"]["params"] == sum(per.values())
    assert per["lumo"] == records[0]["model"]["params_per_member"]


def test_grouped_singletons_train_as_in_the_single_task_network(smoke_store):
    """The grouped network's single-task members (a stack of 16) reach the single-task network's
    (a stack of 19) test MAEs: a member of a stack trains as it would alone."""
    _, records = smoke_store
    none, grouped = records[0], records[2]
    outside = [t for t in none["metrics"]["test_mae"] if t not in {"mu", "alpha", "homo"}]
    got = {t: grouped["metrics"]["test_mae"][t] for t in outside}
    want = {t: none["metrics"]["test_mae"][t] for t in outside}
    assert got == pytest.approx(want, rel=1e-4)


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
    rc = main(["predict", "CCO", "--method", "net", "--qm9", "none", "--network", "grouped"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "the best grouping's GINEs (mu, alpha, homo) and 16 single-task GINEs" in out
    assert len([ln for ln in out.splitlines() if ln.split() and ln.split()[0] in ("mu", "U0", "A")]) == 3



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


def test_another_seed_keeps_no_weights_and_the_demo_loads_seed_0(smoke_store):
    """A seed other than 0 trains and records its errors but saves no weights; the lookup takes
    seed 0's network even when the other seed's record is there."""
    root, records = smoke_store
    hard = next(r for r in records if r["config"]["sharing"] == "hard")
    cfg = {**hard["config"], "seed": 1}
    other = RunStore().run(cfg, lambda c: demo.train(c, "cpu"))
    assert other["model"]["weights"] is None and not demo.weights_path(cfg).exists()
    assert other["metrics"]["test_mae"] != hard["metrics"]["test_mae"]  # another initialisation
    assert demo.find_demo_record("hard")["key"] == hard["key"]
