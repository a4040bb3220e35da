"""The ``full`` grouped demo network (``qm9_demo_model``, ``sharing="grouped"``) trains, saves
and loads in smoke: its grid entry is chosen from the grouping records, so a grouping shaped
like the largest ``qm9_grouping`` trains (a group of ten, a singleton, and the eight targets
outside the 11 as single-task networks: members of three sizes) is built from the ``full``
budget at its full width and trained through the experiment's own ``train`` on the committed
fixture for one epoch (:func:`~factorlab.experiments.qm9_pairs.smoke_variant`); weights go to
a throw-away folder, nothing to the run store."""
from __future__ import annotations

import pytest

from factorlab.experiments import qm9_demo_model as demo
from factorlab.experiments.qm9_common import ALL_TARGETS, BUDGETS, NASH11, base_config
from factorlab.experiments.qm9_pairs import smoke_variant

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_full_grouped_network_trains_saves_and_loads_in_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_MODELS_DIR", str(tmp_path))
    groups = [NASH11[:10], NASH11[10:]]
    full = demo.Config(**base_config(demo.NAME, "full", "gine", BUDGETS["full"]["gine"]), sharing="grouped",
                       groups=groups, targets=list(ALL_TARGETS), seed=0).to_dict()
    cfg = smoke_variant(full)
    assert cfg["groups"] == groups and cfg["model_kwargs"] == full["model_kwargs"]
    parts = demo.train(cfg, "cpu")
    members = demo.members_of(cfg)
    assert parts["model"]["members"] == len(members) == 2 + len(ALL_TARGETS) - len(NASH11)
    assert sorted(parts["metrics"]["test_mae"]) == sorted(ALL_TARGETS)
    from factorlab.models.qm9_saved import load_qm9_predictor

    pred = load_qm9_predictor(demo.weights_path(cfg), sha256=parts["model"]["weights"]["sha256"])
    assert pred.members == members and sorted(pred.targets) == sorted(ALL_TARGETS)
