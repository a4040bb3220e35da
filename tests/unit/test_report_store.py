"""factorlab.report.store: grid lookups that never train."""
import json

from factorlab.report import store as rs
from factorlab.results import RunStore


def test_grid_configs_filters_by_where():
    every = rs.grid_configs("cifar_fulldata", "cpu")
    half = rs.grid_configs("cifar_fulldata", "cpu", {"width": 0.5})
    assert (len(every), len(half)) == (28, 21)
    assert all(c["width"] == 0.5 for c in half) and half == [c for c in every if c["width"] == 0.5]
    assert rs.grid_configs("not_an_experiment", "cpu") == [] and not rs.registered("not_an_experiment")


def test_stored_records_keeps_order_and_says_complete(tmp_path):
    store = RunStore(tmp_path)
    configs = rs.grid_configs("cifar_fulldata", "cpu", {"width": 1.0})
    assert rs.stored_records(configs, store) == ([], False)
    assert rs.stored_records([], store) == ([], False)
    for i in (2, 0):  # written out of order
        path = store.path(configs[i])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"config": configs[i], "key": store.key(configs[i]), "i": i}))
    have, complete = rs.stored_records(configs, store)
    assert [r["i"] for r in have] == [0, 2] and complete is False
    for i in range(len(configs)):
        store.path(configs[i]).write_text(json.dumps({"config": configs[i], "key": store.key(configs[i]), "i": i}))
    have, complete = rs.stored_records(configs, store)
    assert [r["i"] for r in have] == list(range(len(configs))) and complete is True
    assert rs.cached_records("cifar_fulldata", "cpu", store, {"width": 1.0}) == (have, True)
