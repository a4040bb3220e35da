"""Experiment ``qm9_relatedness``: its grid and configs, and one smoke run on the fixture whose
record holds every measure's labelled matrix and cost as strict JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest

from factorlab.experiments import get
from factorlab.experiments import qm9_relatedness as rel
from factorlab.experiments.qm9_common import NASH11, ALL_TARGETS
from factorlab.mtl import Relatedness
from factorlab.results import config_hash


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("profile,runs", [("smoke", 2), ("cpu", 6), ("full", 6)])
def test_grid_task_sets_seeds_and_budgets(profile, runs):
    grid = rel.grid(profile)
    assert len(grid) == runs and len({config_hash(c) for c in grid}) == runs
    assert {c["task_set"]: c["targets"] for c in grid} == {"nash11": NASH11, "all19": ALL_TARGETS}
    hard = get("qm9_hard_sharing").grid(profile)[0].to_dict()
    same = ("model", "model_kwargs", "data", "n_train", "n_valid", "n_test", "epochs", "batch_size", "lr", "baseline")
    assert all(c[k] == hard[k] for c in grid for k in same)
    assert all(c["lookahead_lr"] == c["lr"] for c in grid)


@pytest.mark.parametrize("over", [{"targets": ["mu"]}, {"probe_every": 0}, {"swap": {"epochs": 1}},
                                  {"lookahead_lr": 0.0}])
def test_bad_configs_raise(over):
    with pytest.raises(ValueError):
        rel.Config.from_dict({**rel.grid("smoke")[0], **over})


@pytest.fixture(scope="module")
def nash11_parts(one_thread):
    """The record parts of the smoke ``nash11`` run (trained once for the module, one thread)."""
    cfg = next(c for c in rel.grid("smoke") if c["task_set"] == "nash11")
    return rel.train(cfg, "cpu")


def test_smoke_run_records_every_measure_with_its_cost(nash11_parts):
    parts = nash11_parts
    json.dumps(parts, allow_nan=False)
    measures = parts["metrics"]["measures"]
    assert set(measures) == {f"{m}_{y}" for m in ("pearson", "spearman", "dcor") for y in ("raw", "residual")} | {
        "gradient_cosine", "tag_affinity", "encoder_swap"}
    for name, record in measures.items():
        r = Relatedness.from_record(record)
        assert r.labels == NASH11 and r.matrix.shape == (11, 11) and np.isfinite(r.matrix.to_numpy()).all()
        assert parts["timing"]["measure_s"][name] == record["seconds"] > 0
    assert measures["gradient_cosine"]["info"]["steps_probed"] == parts["history"]["hard"]["epoch"][-1] * 7
    assert parts["timing"]["hard_network_s"] > 0 and parts["timing"]["single_stack_s"] > 0


def test_the_stack_trained_for_encoder_swap_is_qm9_single_tasks_bit_for_bit(nash11_parts):
    """The 11-member single-task stack of the relatedness run and qm9_single_task's 19-member
    stack of the same seed (smoke: the fixture) give *equal* test MAEs for every shared target:
    the same config fields, the same seeded members, a stack's size and order not mattering."""
    from factorlab.experiments import qm9_single_task

    (stl_cfg,) = [c for c in qm9_single_task.grid("smoke") if c["model"] == "gine"]
    rel_cfg = next(c for c in rel.grid("smoke") if c["task_set"] == "nash11")
    same = ("data", "n_train", "n_valid", "n_test", "epochs", "batch_size", "lr", "weight_decay", "schedule",
            "model", "model_kwargs", "baseline", "seed", "profile")
    assert {k: rel_cfg[k] for k in same} == {k: stl_cfg[k] for k in same}
    stl = qm9_single_task.train(stl_cfg, "cpu")["metrics"]["test_mae"]
    mine = nash11_parts["metrics"]["single_test_mae"]
    assert list(mine) == NASH11
    assert {t: mine[t] for t in NASH11} == {t: stl[t] for t in NASH11}
