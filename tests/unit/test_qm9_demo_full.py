"""The ``qm9_demo_full`` experiment (the demo's networks on the whole training split): its grid
against ``qm9_demo_model``'s, its config checks, a smoke run through its ``train`` into a
throw-away store (weights in its own folder, vouched for by the record), and ``predict
--train-size full`` with and without saved weights. Fixture only."""
from __future__ import annotations

import numpy as np
import pytest

from factorlab.cli import main
from factorlab.data.qm9 import QM9_FIXTURE, load_qm9
from factorlab.experiments import qm9_demo_full as full
from factorlab.experiments import qm9_demo_model as demo
from factorlab.experiments import run_experiment
from factorlab.experiments.qm9_common import BUDGETS
from factorlab.models.qm9_saved import sha256_file
from factorlab.results import config_hash

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_cpu_grid_is_the_demo_networks_on_the_whole_training_split(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))  # no grouping records: demo's grid is none, hard
    cpu = full.grid("cpu")
    assert [c["sharing"] for c in cpu] == ["none", "hard"]
    assert all(c["n_train"] is None and c["epochs"] == 20 and c["experiment"] == "qm9_demo_full" for c in cpu)
    assert all(c["n_valid"] == BUDGETS["cpu"]["n_valid"] == 2000 and c["n_test"] is None for c in cpu)
    # everything else is the 20,000-molecule demo network's config
    for mine, theirs in zip(cpu, demo.grid("cpu")):
        assert theirs["n_train"] == 20000 and theirs["epochs"] == 10
        assert {**mine, "experiment": demo.NAME, "n_train": 20000, "epochs": 10} == theirs
        assert config_hash(mine) != config_hash(theirs)
    smoke = full.grid("smoke")
    assert [{**c, "experiment": demo.NAME} for c in smoke] == demo.grid("smoke")[:2]  # the fixture's split is whole
    assert full.grid("full") == []  # qm9_demo_model's full profile trains on the whole split already


@pytest.mark.parametrize("change, message", [
    ({"n_train": 20000}, "whole training split: n_train must be None, got 20000"),
    ({"sharing": "grouped", "groups": [["mu"]]}, "trains sharing 'none' or 'hard', got 'grouped'"),
])
def test_config_refuses_a_subset_and_the_grouped_network(change, message):
    with pytest.raises(ValueError, match=message):
        full.Config.from_dict({**full.grid("cpu")[0], **change})


def test_no_saved_full_network_is_a_one_line_error_naming_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("FACTORLAB_MODELS_DIR", str(tmp_path / "models"))
    with pytest.raises(LookupError, match=r"`python -m factorlab run qm9_demo_full --profile cpu --where "
                                          r"sharing=hard`$"):
        full.find_full_record("hard")
    with pytest.raises(ValueError, match="sharing='none' .* and sharing='hard'"):
        full.find_full_record("grouped")
    assert main(["predict", "C", "--method", "net", "--qm9", "none", "--train-size", "full"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: no trained qm9_demo_full network with sharing='none'")
    assert "`python -m factorlab run qm9_demo_full --profile cpu --where sharing=none`" in err
    assert main(["predict", "C", "--method", "net", "--qm9", "none", "--train-size", "full",
                 "--network", "grouped"]) == 2
    assert "sharing='none' (19 single-task GINEs) and sharing='hard'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse rejects an unknown size
        main(["predict", "C", "--method", "net", "--train-size", "half"])
    from factorlab.predict import find_network_record

    with pytest.raises(ValueError, match="unknown train size 'half': choose one of budget, full"):
        find_network_record("none", "half")


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """The two smoke networks of qm9_demo_full trained into a throw-away store and models folder."""
    root = tmp_path_factory.mktemp("h34")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACTORLAB_RESULTS_DIR", str(root / "store"))
        mp.setenv("FACTORLAB_MODELS_DIR", str(root / "models"))
        mp.delenv("FACTORLAB_REQUIRE_CACHED", raising=False)
        records = run_experiment("qm9_demo_full", "smoke", "cpu")
        yield root, records, mp


def test_smoke_run_saves_weights_in_its_own_folder_that_its_record_vouches_for(smoke_store):
    root, records, _ = smoke_store
    data = load_qm9(fixture=True)
    assert [r["config"]["sharing"] for r in records] == ["none", "hard"]
    for rec in records:
        path = root / "models" / "qm9_demo_full" / f"{rec['key']}.pt"
        assert path.is_file() and not (root / "models" / "qm9_demo_model" / path.name).exists()
        assert rec["model"]["weights"]["sha256"] == sha256_file(path)
        assert rec["model"]["n_train"] == data.split["train"].numel()  # the whole (fixture) training split
        assert rec["config"]["epochs"] == full.EPOCHS["smoke"] and len(rec["history"]["epoch"]) == full.EPOCHS["smoke"]
        pred, found = full.load_full_predictor(rec["config"]["sharing"])
        assert found["key"] == rec["key"]
        row = int(np.flatnonzero(data.index.numpy() == 1)[0])  # methane: recorded as the saved network predicts it
        assert pred.predict_dict(data, row) == pytest.approx(rec["metrics"]["sample"]["1"]["network"], rel=1e-5)
    assert records[0]["model"]["members"] == 19 and records[1]["model"]["members"] == 1


def test_predict_train_size_full_loads_the_whole_split_network(smoke_store, capsys):
    _, records, mp = smoke_store
    rc = main(["predict", "CCO", "--method", "net", "--qm9", str(QM9_FIXTURE), "--train-size", "full",
               "--network", "hard-sharing"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("network:"))
    assert "one hard-shared GINE" in line and "the whole training split" in line and records[1]["key"] in line
    # the budget's network is another experiment, not trained in this store
    assert main(["predict", "CCO", "--method", "net", "--qm9", "none"]) == 2
    assert "python -m factorlab run qm9_demo_model" in capsys.readouterr().err
