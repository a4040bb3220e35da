"""factorlab.report.run_records: the appendix table of every record in the store."""
from __future__ import annotations

import pytest

from factorlab.report import run_records as report
from factorlab.results import RunStore


def _record(experiment, key, config, metrics, *, profile="cpu", commit="0123456789abcdef", dirty=False,
            wall=12.345, quiet=None) -> dict:
    prov = {"profile": profile, "device": "cpu (x86_64, 1 threads)", "git_commit": commit, "git_dirty": dirty,
            "wall_s": wall}
    if quiet is not None:
        prov["load"] = {"quiet": quiet, "other_trainings": 0 if quiet else 1}
    return {"experiment": experiment, "key": key, "config": {"experiment": experiment, "profile": profile, **config},
            "metrics": metrics, "provenance": prov}


def test_label_picks_the_distinguishing_keys_else_every_scalar():
    assert report.label({"experiment": "e", "profile": "cpu", "seed": 1, "net": "mlp", "lr": 0.1,
                         "compression": None, "model": {"a": 1}}) == "net=mlp, seed=1"
    # no known key: every scalar entry but experiment and profile, sorted; lists and dicts left out
    assert report.label({"experiment": "e", "profile": "cpu", "budget_s": 0.3, "device": "cpu", "shapes": [1]}) \
        == "budget_s=0.3, device=cpu"


def test_headline_metric_order():
    assert report.headline_metric({"test_loss": 0.5, "test_acc": 0.9}) == "test_acc"
    assert report.headline_metric({"test_acc": None, "baseline_acc": 0.97}) == "baseline_acc"
    assert report.headline_metric({"test_acc": [0.9], "rows": []}) is None


def test_records_table_rows():
    t = report.records_table([
        _record("mnist_baselines", "k1", {"net": "mlp", "seed": 0}, {"test_acc": 0.98123456}),
        _record("layers_benchmark", "k2", {"budget_s": 0.3}, {"rows": []}, commit=None, dirty=True, wall=1.04),
    ])
    assert list(t.columns) == report.COLUMNS
    assert t.iloc[0].tolist() == ["mnist_baselines", "k1", "cpu", "net=mlp, seed=0", "test_acc", "0.9812",
                                  "cpu (x86_64, 1 threads)", "0123456789", "12.3", "unknown"]
    assert t.iloc[1][["what", "metric", "value", "commit", "wall (s)"]].tolist() == \
        ["budget_s=0.3", "", "", "unknown+dirty", "1.0"]


def test_quiet_column():
    t = report.records_table([_record("e", "k1", {"seed": 0}, {}, quiet=True),
                              _record("e", "k2", {"seed": 1}, {}, quiet=False),
                              _record("e", "k3", {"seed": 2}, {})])
    assert list(t["quiet"]) == ["yes", "no", "unknown"]


def test_load_records_by_profile_from_a_store(tmp_path):
    store = RunStore(tmp_path)
    for profile, seed in (("smoke", 0), ("smoke", 1)):
        store.run({"experiment": "toy", "profile": profile, "seed": seed},
                  lambda c: {"metrics": {"test_acc": 0.5 + c["seed"] / 10}})
    assert len(report.load_records(store=store)) == 2
    assert len(report.load_records("smoke", store=store)) == 2 and report.load_records("cpu", store=store) == []
    t = report.records_table(report.load_records(store=store))
    assert sorted(t["value"]) == ["0.5000", "0.6000"] and set(t["what"]) == {"seed=0", "seed=1"}
    assert set(t["profile"]) == {"smoke"}
    assert set(t["quiet"]) <= {"yes", "no"}  # the store records the load of every new run


def test_every_committed_record_gets_a_row():
    records = report.load_records()
    if not records:
        pytest.skip("empty run store")
    t = report.records_table(records)
    assert len(t) == len(records) and (t["what"] != "").all()
    assert t["run"].str.fullmatch(r"[0-9a-f]{16}").all()


def test_dirty_in_use_lists_only_dirty_records_of_a_current_grid(tmp_path, monkeypatch):
    from factorlab.report import store as report_store

    store = RunStore(tmp_path)
    in_grid = [{"experiment": "toy", "profile": "cpu", "seed": s} for s in (0, 1)]
    monkeypatch.setattr(report_store, "grid_configs", lambda name, profile, where=None: in_grid if name == "toy" else [])

    def rec(cfg, dirty):
        return {"experiment": cfg["experiment"], "key": store.key(cfg), "config": cfg, "metrics": {},
                "provenance": {"git_dirty": dirty, "git_commit": "a" * 40, "profile": cfg["profile"],
                               "started": "2026-11-26T12:00:00+00:00"}}
    old = {"experiment": "toy", "profile": "cpu", "seed": 9}  # dirty, but no longer in the grid
    records = [rec(in_grid[0], True), rec(in_grid[1], False), rec(old, True),
               rec({"experiment": "other", "profile": "cpu", "seed": 0}, True)]
    table = report.dirty_in_use(records, store)
    assert list(table.run) == [store.key(in_grid[0])]
    assert table.iloc[0].to_dict() == {"experiment": "toy", "run": store.key(in_grid[0]), "what": "seed=0",
                                       "commit": "a" * 10, "started": "2026-11-26"}
    assert report.dirty_in_use(records[1:2], store).empty
