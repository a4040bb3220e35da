"""The ``full`` grids of ``qm9_pairs`` and ``qm9_grouping`` run in smoke: each distinct network
of them (a two-task pair, and, since ``qm9_grouping``'s grid is chosen from records, a group of
three and one of ten targets, the largest it trains, built from its ``full`` budget) is trained
through the experiment's own ``train`` at its full width (the ``full`` profile's GINE), on the
committed fixture for two steps (:func:`~factorlab.experiments.qm9_pairs.smoke_variant`).
Neither trains a single-task network (``qm9_single_task``'s records are the reference) nor the
group of all eleven (``qm9_soft_sharing``'s ``lam = "inf"`` run, smoke-run at full width in
``test_qm9_soft_sharing_full_grid.py``). Nothing is written to the run store; a few seconds
per network on one CPU core."""
from __future__ import annotations

import json
import math

import pytest

from factorlab.experiments import qm9_grouping, qm9_pairs
from factorlab.experiments.qm9_common import BUDGETS, NASH11, base_config
from factorlab.models import count_params
from factorlab.models.qm9 import QM9GINE

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _full_configs() -> list[dict]:
    pair = qm9_pairs.grid("full")[0]
    budget = BUDGETS["full"]
    groups = [qm9_grouping.Config(**base_config("qm9_grouping", "full", "gine", budget["gine"]), sharing="hard",
                                  task_set="nash11", targets=t, seed=0).to_dict() for t in (NASH11[:3], NASH11[:10])]
    return [pair, *groups]


CONFIGS = _full_configs()


def test_the_full_pairs_grid_has_only_pairs():
    every = qm9_pairs.grid("full")
    assert len(every) == 165
    assert {(c["sharing"], len(c["targets"])) for c in every} == {("hard", 2)}
    assert qm9_grouping.whole_set_configs("full") and all(c["lam"] == "inf" for c in qm9_grouping.whole_set_configs("full"))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c['experiment']}-{c['sharing']}-{len(c['targets'])}")
def test_full_network_trains_in_smoke(cfg):
    smoke = qm9_pairs.smoke_variant(cfg)
    for key in ("experiment", "sharing", "targets", "model_kwargs", "seed"):
        assert smoke[key] == cfg[key], key
    assert smoke["profile"] == "smoke" and cfg["model_kwargs"]["hidden"] == 128
    module = qm9_pairs if cfg["experiment"] == "qm9_pairs" else qm9_grouping
    rec = module.train(smoke, "cpu")
    expected = count_params(QM9GINE(num_tasks=len(cfg["targets"]), **cfg["model_kwargs"]))
    assert rec["model"]["params"] == expected
    assert rec["timing"]["steps"] == 2 and rec["timing"]["epochs_run"] == 1
    assert set(rec["metrics"]["test_mae"]) == set(cfg["targets"])
    assert all(math.isfinite(v) for v in rec["metrics"]["test_mae"].values())
    json.dumps(rec, allow_nan=False)
