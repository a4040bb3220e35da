"""A network of equal members trained by several processes (FACTORLAB_STACK_PROCESSES) is the
network one process trains: the same weights and test errors bit for bit, the record's parts in
the same shape, only its clock per process; bad values of the variable are one-line errors.
Fixture only (the smoke budget of qm9_demo_full's 19 single-task networks)."""
from __future__ import annotations

import pytest
import torch

from factorlab.experiments import qm9_demo_full as full
from factorlab.experiments import qm9_demo_model as demo

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_chunks_keep_order_and_balance():
    members = [[t] for t in "abcdefg"]
    got = demo._chunks(members, 3)
    assert got == [[["a"], ["b"], ["c"]], [["d"], ["e"]], [["f"], ["g"]]]
    assert demo._chunks(members, 1) == [members]


@pytest.mark.parametrize("value, message", [("0", "got '0'"), ("two", "got 'two'"), ("-1", "got '-1'")])
def test_bad_process_counts_are_one_line_errors(monkeypatch, value, message):
    monkeypatch.setenv(demo.PROCESSES_ENV, value)
    with pytest.raises(ValueError, match=f"FACTORLAB_STACK_PROCESSES must be a positive integer.*{message}"):
        demo.stack_processes(19)


def test_process_count_is_capped_by_the_members(monkeypatch):
    monkeypatch.delenv(demo.PROCESSES_ENV, raising=False)
    assert demo.stack_processes(19) == 1
    monkeypatch.setenv(demo.PROCESSES_ENV, "4")
    assert demo.stack_processes(19) == 4 and demo.stack_processes(3) == 3


def test_two_processes_train_the_same_network_as_one(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_MODELS_DIR", str(tmp_path / "models"))
    cfg = next(c for c in full.grid("smoke") if c["sharing"] == "none")
    monkeypatch.delenv(demo.PROCESSES_ENV, raising=False)
    one = demo.train(cfg, "cpu")
    w_one = torch.load(demo.weights_path(cfg), weights_only=False)
    monkeypatch.setenv(demo.PROCESSES_ENV, "2")
    two = demo.train(cfg, "cpu")
    w_two = torch.load(demo.weights_path(cfg), weights_only=False)
    for key in ("test_mae", "test_mae_std", "valid_mae", "best_epoch", "composition_test_mae", "mean_test_mae_std"):
        assert two["metrics"][key] == one["metrics"][key], key
    assert two["metrics"]["sample"] == one["metrics"]["sample"]
    state_one, state_two = w_one["state_dict"], w_two["state_dict"]
    assert state_one.keys() == state_two.keys()
    assert all(torch.equal(state_one[k], state_two[k]) for k in state_one)
    assert all(torch.equal(w_one["baseline"][k], w_two["baseline"][k]) for k in w_one["baseline"])
    assert two["model"]["weights"]["sha256"] == one["model"]["weights"]["sha256"]  # the same file, byte for byte
    assert {k: v for k, v in two["history"].items() if k != "train_s"} == \
        {k: v for k, v in one["history"].items() if k != "train_s"}
    assert (two["model"]["params"], two["model"]["members"]) == (one["model"]["params"], 19)
    t = two["timing"]
    assert t["processes"] == 2 and len(t["process_train_s"]) == 2 and t["train_s"] == max(t["process_train_s"])
    assert "processes" not in one["timing"] and t["steps"] == one["timing"]["steps"]
