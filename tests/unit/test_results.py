"""The run store: hashing, atomic records, cache hits, require-cached, provenance, tables.

Every test uses ``tmp_path`` as the store root; nothing touches ``data/results/``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from factorlab.results import (RunNotCachedError, RunRecordError, RunStore, canonical_json, config_hash,
                               default_store, describe_device, git_state, library_versions,
                               provenance, provenance_table, records_frame, run)

LIB = str(Path(__file__).resolve().parents[2] / "lib")

CFG = {"experiment": "toy", "profile": "smoke", "lr": 0.1, "seed": 3, "wd": 5e-4, "name": None,
       "model": {"widths": [512, 512], "dropout": 0.4, "opt": {"betas": [0.9, 0.999], "eps": 1e-8}}}
PROVENANCE_KEYS = {"git_commit", "git_dirty", "versions", "device", "profile", "started", "wall_s"}


def _result(cfg: dict) -> dict:
    return {"metrics": {"acc": 0.5 + cfg["seed"] / 100}, "history": {"loss": [1.0, 0.5]},
            "timing": {"train_s": 1.25}, "model": {"params": 10}}


def _shuffled(value):
    """The same config with every dict's key order reversed (tuples for lists, too)."""
    if isinstance(value, dict):
        return {k: _shuffled(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return tuple(_shuffled(v) for v in value)
    return value


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# --- hashing ---------------------------------------------------------------------------------

def test_hash_is_stable_across_processes_and_key_order():
    shuffled = _shuffled(CFG)
    assert list(shuffled) != list(CFG) and config_hash(shuffled) == config_hash(CFG)
    assert canonical_json(CFG) == canonical_json(shuffled)
    assert '"lr":0.1,' in canonical_json(CFG) and '"wd":0.0005' in canonical_json(CFG)
    code = ("import json,sys; from factorlab.results import config_hash; "
            "print(config_hash(json.loads(sys.argv[1])))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": LIB}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(shuffled)], env=env,
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == config_hash(CFG)


def test_hash_changes_with_any_value():
    base = config_hash(CFG)
    assert len(base) == 16 and re.fullmatch(r"[0-9a-f]{16}", base)
    assert config_hash({**CFG, "lr": 0.1000001}) != base
    assert config_hash({**CFG, "seed": 4}) != base
    assert config_hash({**CFG, "model": {**CFG["model"], "widths": [512, 256]}}) != base
    assert config_hash({**CFG, "extra": None}) != base


@pytest.mark.parametrize("bad,where", [
    ({"x": {1, 2}}, "x"), ({"y": [1, float("nan")]}, r"y\[1\]"), ({"y": float("inf")}, "y"),
    ({"z": {"w": object()}}, "z.w"), ({"n": np.float64(0.1)}, "n"), ({"i": [np.int64(3)]}, r"i\[0\]"),
    ({"t": {"u": torch.tensor(1.0)}}, "t.u"), ({"k": {1: "a"}}, "k")])
def test_non_json_values_are_rejected_with_their_path(bad, where):
    with pytest.raises(TypeError, match=where):
        canonical_json({"experiment": "toy", **bad})
    with pytest.raises(TypeError):
        config_hash({"experiment": "toy", **bad})


@pytest.mark.parametrize("cfg", [{"lr": 0.1}, {"experiment": 3}, {"experiment": "../up"},
                                 {"experiment": ""}, {"experiment": ".hidden"}, ["experiment"]])
def test_config_needs_a_usable_experiment(cfg):
    with pytest.raises(ValueError, match="experiment"):
        config_hash(cfg)


# --- the store ---------------------------------------------------------------------------------

def test_first_run_and_cache_hit_are_identical(tmp_path):
    store, calls = RunStore(tmp_path), []

    def train(cfg):
        calls.append(cfg)
        return _result(cfg)

    assert CFG not in store and store.get(CFG) is None
    first = store.run(CFG, train)
    second = store.run(CFG, train)
    third = RunStore(tmp_path).run(_shuffled(CFG), train)  # a fresh store, keys in another order
    assert first == second == third and len(calls) == 1 and CFG in store
    assert first["key"] == config_hash(CFG) and first["config"] == json.loads(canonical_json(CFG))
    assert first["schema"] == 1 and first["experiment"] == "toy"
    assert first["metrics"] == {"acc": 0.53} and first["history"] == {"loss": [1.0, 0.5]}
    path = tmp_path / "toy" / f"{config_hash(CFG)}.json"
    assert store.path(CFG) == path and json.loads(path.read_text()) == first
    assert _files(tmp_path) == [path]


def test_records_are_valid_json_with_provenance(tmp_path):
    rec = RunStore(tmp_path).run(CFG, _result)
    on_disk = json.loads(RunStore(tmp_path).path(CFG).read_text())
    prov = on_disk["provenance"]
    assert PROVENANCE_KEYS | {"load"} <= set(prov) <= PROVENANCE_KEYS | {"load", "git_dirty_files", "allowed_dirty"}
    assert prov["profile"] == "smoke" and prov["device"].startswith("cpu (")
    assert {"python", "factorlab", "torch", "numpy"} <= set(prov["versions"])
    started = datetime.fromisoformat(prov["started"])
    assert started.utcoffset().total_seconds() == 0 and started.microsecond == 0
    assert abs((datetime.now(timezone.utc) - started).total_seconds()) < 600
    assert isinstance(prov["wall_s"], float) and 0 <= prov["wall_s"] < 60
    assert prov["git_dirty"] in (True, False, None) and rec == on_disk


def test_numpy_and_torch_scalars_are_stored_as_numbers_and_nan_as_null(tmp_path):
    def train(cfg):
        return {"metrics": {"acc": np.float32(0.25), "n": np.int64(7), "ok": np.bool_(True),
                            "loss": torch.tensor(0.5), "diverged": float("nan"), "pair": (1, 2)},
                "history": [{"epoch": 0, "loss": float("inf")}]}

    rec = RunStore(tmp_path).run(CFG, train)
    assert rec["metrics"] == {"acc": 0.25, "n": 7, "ok": True, "loss": 0.5, "diverged": None,
                              "pair": [1, 2]}
    assert type(rec["metrics"]["n"]) is int and rec["history"] == [{"epoch": 0, "loss": None}]
    assert rec["timing"] == {} and rec["model"] == {}


def test_a_crash_in_train_fn_leaves_no_record_and_no_temp_file(tmp_path):
    store = RunStore(tmp_path)

    def boom(cfg):
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        store.run(CFG, boom)
    assert _files(tmp_path) == [] and store.get(CFG) is None and CFG not in store


def test_an_unstorable_result_leaves_nothing(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(TypeError, match=r"metrics\.bad"):
        store.run(CFG, lambda cfg: {"metrics": {"bad": object()}})
    with pytest.raises(TypeError):
        store.run(CFG, lambda cfg: {"history": {"curve": np.zeros(3)}})
    with pytest.raises(ValueError, match="unknown keys"):
        store.run(CFG, lambda cfg: {"metric": {}})
    assert _files(tmp_path) == []


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_require_cached_names_the_missing_run_and_never_trains(tmp_path, monkeypatch, value):
    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", value)
    called = []
    with pytest.raises(RunNotCachedError) as err:
        RunStore(tmp_path).run(CFG, lambda cfg: called.append(cfg) or _result(cfg))
    msg = str(err.value)
    assert config_hash(CFG) in msg and "'toy'" in msg and canonical_json(CFG) in msg
    assert "python -m factorlab run toy --profile smoke" in msg and "FACTORLAB_REQUIRE_CACHED" in msg
    assert not called and _files(tmp_path) == []


def test_require_cached_still_returns_stored_runs(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    first = store.run(CFG, _result)
    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", "1")
    assert store.run(CFG, lambda cfg: pytest.fail("must not train")) == first
    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", "0")  # anything else allows training
    assert store.run({**CFG, "seed": 4}, _result)["metrics"] == {"acc": 0.54}


def test_corrupt_or_misplaced_record_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    store.run(CFG, _result)
    path = store.path(CFG)
    path.write_text("{not json")
    with pytest.raises(RunRecordError, match=re.escape(str(path))):
        store.run(CFG, lambda cfg: pytest.fail("must not train over a corrupt record"))
    other = {**CFG, "seed": 4}
    store.run(other, _result)
    shutil.copy(store.path(other), path)
    with pytest.raises(RunRecordError, match="holds key"):
        store.get(CFG)


def test_default_root_is_read_at_call_time(tmp_path, monkeypatch):
    store = RunStore()
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path / "a"))
    assert store.root == (tmp_path / "a").resolve() and default_store().root == store.root
    rec = run(CFG, _result)
    assert (tmp_path / "a" / "toy" / f"{rec['key']}.json").is_file()
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path / "b"))
    assert store.get(CFG) is None and run(CFG, _result, store=RunStore(tmp_path / "a")) == rec


def test_records_are_sorted_by_key(tmp_path):
    store = RunStore(tmp_path)
    recs = [store.run({**CFG, "seed": s}, _result) for s in range(4)]
    store.run({**CFG, "experiment": "other"}, _result)
    assert store.records("toy") == sorted(recs, key=lambda r: r["key"])
    assert len(store.records()) == 5 and store.records("missing") == []


# --- provenance ----------------------------------------------------------------------------------

def test_git_state_outside_a_repository_does_not_raise(monkeypatch, tmp_path):
    import importlib

    assert git_state(tmp_path) == {"commit": None, "dirty": None, "dirty_files": []}
    prov = importlib.import_module("factorlab.results.provenance")  # the module, not the function
    monkeypatch.setattr(prov, "REPO_ROOT", tmp_path / "absent")
    assert git_state() == {"commit": None, "dirty": None, "dirty_files": []}
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert git_state(tmp_path) == {"commit": None, "dirty": None, "dirty_files": []}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_ignores_changes_under_data_results(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "code.py").write_text("x = 1\n")
    (tmp_path / "data" / "results" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "results" / "toy" / "old.json").write_text("{}\n")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    state = git_state(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", state["commit"]) and state["dirty"] is False
    (tmp_path / "data" / "results" / "toy" / "new.json").write_text("{}\n")
    (tmp_path / "data" / "results" / "toy" / "old.json").write_text("{\"a\": 1}\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "lib" / "new.py").write_text("y = 2\n")
    assert git_state(tmp_path)["dirty"] is True
    (tmp_path / "lib" / "new.py").unlink()
    (tmp_path / "lib" / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path) == {"commit": state["commit"], "dirty": True, "dirty_files": ["lib/code.py"]}
    (tmp_path / "sub").mkdir()
    assert git_state(tmp_path / "sub") == {"commit": None, "dirty": None, "dirty_files": []}  # not the top


def test_versions_and_device_description():
    versions = library_versions()
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert versions["numpy"] == np.__version__ and versions["python"].count(".") == 2
    assert re.fullmatch(r"cpu \(.+, \d+ threads\)", describe_device("cpu"))
    assert describe_device(torch.device("cpu")) == describe_device("cpu")


def test_provenance_block():
    clean = {"commit": "c" * 40, "dirty": False, "dirty_files": []}
    prov = provenance({"experiment": "toy", "profile": "cpu"}, "cpu", started=0.0, wall_s=1.5, git=clean)
    assert set(prov) == PROVENANCE_KEYS and prov["git_commit"] == "c" * 40 and prov["git_dirty"] is False
    assert prov["started"] == "1970-01-01T00:00:00+00:00" and prov["wall_s"] == 1.5
    assert prov["profile"] == "cpu" and provenance({"experiment": "toy"}, "cpu", 0.0, 0.0)["profile"] is None


# --- tables ----------------------------------------------------------------------------------------

def test_provenance_table_has_one_row_per_record(tmp_path):
    store = RunStore(tmp_path)
    recs = [store.run({**CFG, "seed": s}, _result) for s in range(3)]
    table = provenance_table(recs[::-1])
    assert len(table) == 3 and list(table["run"]) == sorted(r["key"] for r in recs)
    assert list(table.columns) == ["run", "experiment", "profile", "device", "git commit", "started",
                                   "wall time (s)"]
    fake = {**recs[0], "provenance": {**recs[0]["provenance"], "git_commit": "0123456789abcdef",
                                      "git_dirty": True, "wall_s": 12.345}}
    row = provenance_table([fake]).iloc[0]
    assert row["git commit"] == "0123456789+dirty" and row["wall time (s)"] == 12.3
    assert len(provenance_table([])) == 0


def test_records_frame_flattens_config_and_metrics(tmp_path):
    store = RunStore(tmp_path)
    recs = [store.run({**CFG, "seed": s}, _result) for s in (2, 0, 1)]
    frame = records_frame(recs)
    assert len(frame) == 3 and list(frame["key"]) == sorted(r["key"] for r in recs)
    assert sorted(frame["metrics.acc"]) == [0.5, 0.51, 0.52]
    assert {"config.lr", "config.model.dropout", "config.model.opt.eps"} <= set(frame.columns)
    assert set(frame["config.model.widths"]) == {"[512, 512]"}
    assert records_frame(recs[::-1]).equals(frame)
    picked = records_frame(recs, metrics=["acc", "missing"])
    assert [c for c in picked.columns if c.startswith("metrics.")] == ["metrics.acc", "metrics.missing"]
    assert picked["metrics.missing"].isna().all()
