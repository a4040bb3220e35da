"""The ``full`` grid of ``qm9_soft_sharing`` runs in smoke: every distinct variant of it (method,
task set, and λ as 0, finite or ∞: 8 of the 60 runs) is trained through the experiment's own
``train`` at its full width (the ``full`` profile's GINE), on the committed fixture for two
steps (:func:`~factorlab.experiments.qm9_soft_sharing.smoke_variant`).

So each full configuration is shown to build the network it names (the parameter count of
the full model), to take finite steps with its penalty or units, and to write the record's
quantities. Nothing is written to the run store. A few seconds per variant on one CPU core.
"""
from __future__ import annotations

import json
import math

import pytest

from factorlab.experiments import qm9_soft_sharing as soft
from factorlab.models import count_params
from factorlab.models.qm9 import QM9GINE


def variant_key(cfg: dict) -> tuple:
    """What makes a variant: method, task set, and λ's kind (0, finite, ∞; none for cross-stitch)."""
    lam = cfg["lam"]
    kind = None if lam is None else "inf" if lam == "inf" else "zero" if lam == 0 else "finite"
    return cfg["method"], cfg["task_set"], kind


def distinct_full_variants() -> list[dict]:
    """The first config of each distinct variant of the ``full`` grid, in grid order."""
    seen: dict[tuple, dict] = {}
    for cfg in soft.grid("full"):
        seen.setdefault(variant_key(cfg), cfg)
    return list(seen.values())


VARIANTS = distinct_full_variants()


def full_params(cfg: dict) -> int:
    """Parameters of the network a full config trains."""
    k = len(cfg["targets"])
    if cfg["lam"] == "inf":
        return count_params(QM9GINE(num_tasks=k, **cfg["model_kwargs"]))
    stack = count_params(QM9GINE(num_tasks=1, groups=k, **cfg["model_kwargs"]))
    units = cfg["model_kwargs"]["layers"] * k * k if cfg["method"] == "cross_stitch" else 0
    return stack + units


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_the_variants_cover_every_full_config():
    every = soft.grid("full")
    assert len(every) == 60 and len(VARIANTS) == 8
    assert {variant_key(c) for c in every} == {variant_key(c) for c in VARIANTS}


@pytest.mark.parametrize("cfg", VARIANTS, ids=lambda c: "-".join(str(x) for x in variant_key(c)))
def test_full_variant_trains_in_smoke(cfg):
    smoke = soft.smoke_variant(cfg)
    for key in ("method", "lam", "stitch", "task_set", "targets", "model_kwargs", "seed"):
        assert smoke[key] == cfg[key], key
    assert smoke["profile"] == "smoke" and smoke["data"] == "fixture" and cfg["model_kwargs"]["hidden"] == 128

    rec = soft.train(smoke, "cpu")
    assert rec["model"]["params"] == full_params(cfg)  # the full configuration's network
    assert rec["timing"]["steps"] == 2 and rec["timing"]["epochs_run"] == 1
    m, h = rec["metrics"], rec["history"]
    assert all(math.isfinite(v) for v in m["test_mae"].values()) and math.isfinite(m["test_loss_std_total"])
    assert set(m["valid_loss_std"]) == set(cfg["targets"]) and m["constrained_params"] > 0
    assert (h["penalty"][0] > 0) == (variant_key(cfg)[2] == "finite")
    assert len(h["distance"]) == len(rec["model"]["penalty_layers"]) > 0
    json.dumps(rec, allow_nan=False)
