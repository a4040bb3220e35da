"""The run store: hashing, atomic records, cache hits, require-cached, provenance."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from factorlab.results import (RunNotCachedError, RunStore, canonical_json, config_hash, git_state,
                               provenance_table, records_frame)

CFG = {"experiment": "toy", "profile": "smoke", "lr": 0.1, "seed": 3,
       "model": {"widths": [512, 512], "dropout": 0.4}, "wd": 5e-4, "name": None}


def _result(cfg):
    return {"metrics": {"acc": 0.5 + cfg["seed"] / 100}, "history": {"loss": [1.0, 0.5]},
            "timing": {"train_s": 1.25}, "model": {"params": 10}}


def test_hash_is_stable_across_processes_and_key_order():
    shuffled = dict(reversed(list(CFG.items())))
    shuffled["model"] = {"dropout": 0.4, "widths": (512, 512)}
    assert config_hash(shuffled) == config_hash(CFG)
    code = ("import json,sys; from factorlab.results import config_hash; "
            "print(config_hash(json.loads(sys.argv[1])))")
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, json.dumps(shuffled)], env=env,
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == config_hash(CFG)


def test_hash_changes_with_any_value():
    assert config_hash({**CFG, "lr": 0.1000001}) != config_hash(CFG)
    assert config_hash({**CFG, "model": {"widths": [512, 256], "dropout": 0.4}}) != config_hash(CFG)
    assert len(config_hash(CFG)) == 16


@pytest.mark.parametrize("bad,where", [({"x": {1, 2}}, "x"), ({"y": [1, float("nan")]}, r"y\[1\]"),
                                       ({"z": {"w": object()}}, "z.w")])
def test_non_json_values_are_rejected_with_their_path(bad, where):
    with pytest.raises(TypeError, match=where):
        canonical_json({"experiment": "toy", **bad})


def test_config_needs_an_experiment():
    with pytest.raises(ValueError, match="experiment"):
        config_hash({"lr": 0.1})


def test_first_run_and_cache_hit_are_identical(tmp_path):
    store, calls = RunStore(tmp_path), []

    def train(cfg):
        calls.append(cfg)
        return _result(cfg)

    first = store.run(CFG, train)
    second = store.run(CFG, train)
    assert first == second and len(calls) == 1
    assert first["key"] == config_hash(CFG) and first["config"] == json.loads(canonical_json(CFG))
    path = tmp_path / "toy" / f"{config_hash(CFG)}.json"
    on_disk = json.loads(path.read_text())
    assert on_disk == first
    prov = on_disk["provenance"]
    for k in ("git_commit", "git_dirty", "versions", "device", "profile", "started", "wall_s"):
        assert k in prov
    assert prov["profile"] == "smoke" and prov["versions"]["torch"]
    assert store.records("toy") == [first]


def test_a_crash_leaves_no_record_and_no_temp_file(tmp_path):
    store = RunStore(tmp_path)

    def boom(cfg):
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        store.run(CFG, boom)
    assert list(tmp_path.rglob("*")) == [] or not any(p.is_file() for p in tmp_path.rglob("*"))
    assert store.get(CFG) is None


def test_a_crash_while_writing_leaves_nothing(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(TypeError):
        store.run(CFG, lambda cfg: {"metrics": {"bad": object()}})
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_require_cached_names_the_missing_run(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", "1")
    called = []
    with pytest.raises(RunNotCachedError) as err:
        RunStore(tmp_path).run(CFG, lambda cfg: called.append(cfg) or _result(cfg))
    msg = str(err.value)
    assert config_hash(CFG) in msg and "'toy'" in msg and "python -m factorlab run toy --profile smoke" in msg
    assert not called


def test_require_cached_still_returns_stored_runs(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    first = store.run(CFG, _result)
    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", "1")
    assert store.run(CFG, lambda cfg: pytest.fail("must not train")) == first


def test_nan_metrics_are_stored_as_null(tmp_path):
    rec = RunStore(tmp_path).run(CFG, lambda cfg: {"metrics": {"loss": float("nan")}})
    assert rec["metrics"]["loss"] is None and rec["history"] == {}


def test_unknown_result_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown keys"):
        RunStore(tmp_path).run(CFG, lambda cfg: {"metric": {}})


def test_corrupt_record_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    store.run(CFG, _result)
    store.path(CFG).write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        store.run(CFG, _result)


def test_git_state_outside_a_repository_does_not_raise(monkeypatch, tmp_path):
    import importlib

    prov = importlib.import_module("factorlab.results.provenance")  # the module, not the function
    monkeypatch.setattr(prov, "REPO_ROOT", tmp_path)
    assert git_state() == {"commit": None, "dirty": None}


def test_tables_have_one_row_per_record(tmp_path):
    store = RunStore(tmp_path)
    recs = [store.run({**CFG, "seed": s}, _result) for s in range(3)]
    table = provenance_table(recs)
    assert len(table) == 3 and set(table["run"]) == {r["key"] for r in recs}
    frame = records_frame(recs)
    assert sorted(frame["metrics.acc"]) == [0.5, 0.51, 0.52]
