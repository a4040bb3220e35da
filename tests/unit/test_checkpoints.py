"""factorlab.results.checkpoints: a run killed between epochs resumes from its last saved epoch
to exactly the record it would have written uninterrupted; slots of other code are ignored,
slots of another commit with the same code are used; a finished run leaves no checkpoint
behind. QM9 fixture (300 molecules): fast."""
from __future__ import annotations

import pytest
import torch

from factorlab.data.qm9 import load_qm9, target_index
from factorlab.models import QM9GINE, stack_models
from factorlab.results import RunStore
from factorlab.results import checkpoints as ck
from factorlab.results import store as store_module
from factorlab.train import fit_regression, seed_everything

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

CONFIG = {"experiment": "ckpt_check", "profile": "smoke", "epochs": 4, "seed": 0}
COLUMNS = [target_index("U0_atom"), target_index("alpha")]


@pytest.fixture(scope="module")
def data():
    return load_qm9(fixture=True)


@pytest.fixture
def clean_git(monkeypatch):
    """The store sees a clean tree at commit ``"c0"`` whose code version is ``"v0"``
    (checkpoints need both); change ``state["code"]`` for a commit that changes the code."""
    state = {"commit": "c0", "dirty": False, "dirty_files": [], "code": "v0"}
    monkeypatch.setattr(store_module, "git_state",
                        lambda: {k: v for k, v in state.items() if k != "code"})
    monkeypatch.setattr(store_module, "code_version", lambda: state["code"])
    return state


class Killed(Exception):
    """Stands for the process being stopped between two epochs."""


def _train_fn(data, fits: int = 1):
    """A run that trains ``fits`` stacks of two one-target GINEs on the fixture, one after the
    other (as a run with a pretraining and a fine-tuning would)."""
    def train(cfg):
        results = {}
        for k in range(fits):
            seed_everything(cfg["seed"] + k)
            model = stack_models([QM9GINE(1, hidden=16, layers=2, head_hidden=8) for _ in COLUMNS])
            s = data.split
            fit = fit_regression(model, data, COLUMNS, train_ids=s["train"], valid_ids=s["valid"], test_ids=s["test"],
                                 epochs=cfg["epochs"], batch_size=32, lr=3e-3, seed=cfg["seed"])
            results[f"fit{k}"] = {"test_mae": fit.metrics["test_mae"], "best_epoch": fit.metrics["best_epoch"],
                                  "train_mse": fit.history["train_mse"], "steps": fit.timing["steps"],
                                  "resumed_from_epoch": fit.timing.get("resumed_from_epoch", 0),
                                  "weights": [float(p.detach().double().sum()) for p in model.parameters()]}
        return {"metrics": results}
    return train


def _kill_after(monkeypatch, saves: int):
    """Make the ``saves``-th checkpoint save (counted over the run) the last: it is written,
    then the run stops."""
    original, count = ck.Slot.save, {"n": 0}

    def save(self, state):
        original(self, state)
        count["n"] += 1
        if count["n"] == saves:
            raise Killed(f"stopped after save {saves}")
    monkeypatch.setattr(ck.Slot, "save", save)
    return lambda: monkeypatch.setattr(ck.Slot, "save", original)


@pytest.mark.parametrize("fits, kill_after", [(1, 2), (2, 5)])
def test_a_killed_run_resumes_to_the_uninterrupted_record(data, tmp_path, monkeypatch, clean_git, fits, kill_after):
    whole = RunStore(tmp_path / "whole").run(CONFIG, _train_fn(data, fits))
    store = RunStore(tmp_path / "resumed")
    restore = _kill_after(monkeypatch, kill_after)
    with pytest.raises(Killed):
        store.run(CONFIG, _train_fn(data, fits))
    folder = store.root / ck.CHECKPOINT_DIR / store.key(CONFIG)
    assert sorted(p.name for p in folder.iterdir()) == [f"fit{k}.pt" for k in range(fits)]
    assert CONFIG not in store  # nothing recorded by the killed run
    restore()
    resumed = store.run(CONFIG, _train_fn(data, fits))
    last = fits - 1
    # the run that was stopped resumes after its last saved epoch; earlier fits load their last epoch
    assert resumed["metrics"][f"fit{last}"]["resumed_from_epoch"] == kill_after - 4 * last
    for k in range(fits):
        got, want = resumed["metrics"][f"fit{k}"], whole["metrics"][f"fit{k}"]
        assert {n: v for n, v in got.items() if n != "resumed_from_epoch"} == \
            {n: v for n, v in want.items() if n != "resumed_from_epoch"}  # bit for bit
    assert not folder.exists()  # the record is written: the checkpoints are gone


def test_a_checkpoint_of_other_code_is_ignored(data, tmp_path, monkeypatch, clean_git, capsys):
    store = RunStore(tmp_path)
    restore = _kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        store.run(CONFIG, _train_fn(data))
    restore()
    clean_git.update(commit="c1", code="v1")  # the code moved on: resuming would mix two versions
    record = store.run(CONFIG, _train_fn(data))
    assert record["metrics"]["fit0"]["resumed_from_epoch"] == 0
    assert "was written by code version v0, not v1; the run starts over" in capsys.readouterr().err
    assert record == RunStore(tmp_path / "fresh").run(CONFIG, _train_fn(data)) | {
        "provenance": record["provenance"]}


def test_a_commit_of_records_only_keeps_the_slot(data, tmp_path, monkeypatch, clean_git):
    """A commit that changes no code (new records, notebooks) between the stop and the restart
    resumes the run, and the record pins the new commit."""
    whole = RunStore(tmp_path / "whole").run(CONFIG, _train_fn(data))
    store = RunStore(tmp_path / "resumed")
    restore = _kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        store.run(CONFIG, _train_fn(data))
    restore()
    clean_git["commit"] = "c1"  # same code version v0
    record = store.run(CONFIG, _train_fn(data))
    assert record["metrics"]["fit0"]["resumed_from_epoch"] == 2
    assert record["provenance"]["git_commit"] == "c1"
    assert {n: v for n, v in record["metrics"]["fit0"].items() if n != "resumed_from_epoch"} == \
        {n: v for n, v in whole["metrics"]["fit0"].items() if n != "resumed_from_epoch"}


def test_no_slots_without_a_code_version(data, tmp_path, monkeypatch, clean_git):
    """A clean tree whose code version cannot be read (git gone mid-way) saves nothing."""
    clean_git["code"] = None
    store = RunStore(tmp_path)
    store.run(CONFIG, _train_fn(data))
    assert not (store.root / ck.CHECKPOINT_DIR).exists()


def test_a_slot_of_another_training_is_not_resumed(data, tmp_path, monkeypatch, clean_git):
    """Run A is stopped after its first fit's epoch 2; a changed run (its first fit now trains
    another model, as when a process reuses a trained stack) must not load that slot."""
    store = RunStore(tmp_path)
    restore = _kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        store.run(CONFIG, _train_fn(data))
    restore()

    def other(cfg):
        seed_everything(0)
        model = QM9GINE(2, hidden=16, layers=2, head_hidden=8)  # one two-target network, not a stack of two
        s = data.split
        fit = fit_regression(model, data, COLUMNS, train_ids=s["train"], valid_ids=s["valid"], test_ids=s["test"],
                             epochs=cfg["epochs"], batch_size=32, lr=3e-3, seed=cfg["seed"])
        return {"metrics": {"resumed_from_epoch": fit.timing.get("resumed_from_epoch", 0),
                            "test_mae": fit.metrics["test_mae"]}}
    record = store.run(CONFIG, other)
    assert record["metrics"]["resumed_from_epoch"] == 0
    assert record["metrics"]["test_mae"] == RunStore(tmp_path / "fresh").run(CONFIG, other)["metrics"]["test_mae"]


def test_no_slots_outside_a_run_or_for_a_dirty_tree(tmp_path):
    assert ck.next_slot() is None
    with ck.run_checkpoints(tmp_path, None):
        assert ck.next_slot() is None
    with ck.run_checkpoints(tmp_path, "c0"):
        assert [ck.next_slot().path.name for _ in range(3)] == ["fit0.pt", "fit1.pt", "fit2.pt"]
    assert ck.next_slot() is None


def test_an_unreadable_slot_starts_the_run_over(tmp_path, capsys):
    slot = ck.Slot(tmp_path / "fit0.pt", "c0")
    slot.path.write_bytes(b"not a checkpoint")
    assert slot.load() is None
    assert "ignoring unreadable checkpoint" in capsys.readouterr().err
    slot.save({"epoch": 1, "w": torch.ones(2)})
    assert slot.load()["epoch"] == 1 and not list(tmp_path.glob("*.tmp*"))
