"""The ``full`` CIFAR-10 grids run in smoke: every distinct model variant of the ``full`` grids
of ``cifar_baselines``, ``cifar_factorized``, ``cifar_long`` and ``cifar_init`` (distinct by net,
width, factorize spec, initialisation, weight-decay mode and recipe kind: 57 of the 147 runs) is trained through the
real code path (:func:`factorlab.experiments.cifar_common.train_config`) at its full width,
on the committed fixture for two steps (:func:`~factorlab.experiments.cifar_common.smoke_variant`).

So each full configuration is shown to build, to get its optimizer parameter groups (weight
decay scaled by each compressed layer's compression ratio where ``wd_mode="scaled"``) from the
training loop itself, to take finite training steps, and to have the parameter count of the
full model. Nothing is written to the run store. About a second per variant on one CPU core.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from factorlab.experiments import cifar_common as cc
from factorlab.experiments import get_experiment
from factorlab.models import count_params
from factorlab.models.cifar import describe_factorized
from factorlab.train import cifar_recipe as fast

EXPERIMENTS = ("cifar_baselines", "cifar_factorized", "cifar_long", "cifar_init")


def variant_key(cfg: dict) -> tuple:
    """What makes a model variant: net, width, factorize spec, initialisation, weight-decay mode,
    recipe kind."""
    return (cfg["net"], cfg["width"], json.dumps(cfg["factorize"], sort_keys=True), cfg.get("dirac", True),
            cfg["wd_mode"], cfg["recipe"]["schedule"]["kind"])


def distinct_full_variants() -> list[dict]:
    """The first config of each distinct variant of the ``full`` grids, in grid order."""
    seen: dict[tuple, dict] = {}
    for name in EXPERIMENTS:
        for cfg in get_experiment(name).grid("full"):
            seen.setdefault(variant_key(cfg), cfg)
    return list(seen.values())


VARIANTS = distinct_full_variants()


def _id(cfg: dict) -> str:
    spec = cfg["factorize"] or {}
    opts = ",".join(f"{k}={v}" for k, v in sorted(spec.items()) if k != "family")
    return f"{cfg['net']}-w{cfg['width']:g}-{cfg['family']}{'(' + opts + ')' if opts else ''}" \
           f"{'' if cfg.get('dirac', True) else '-nodirac'}-{cfg['wd_mode']}-{cfg['recipe']['schedule']['kind']}"


def test_the_variants_cover_every_full_config():
    every = [c for name in EXPERIMENTS for c in get_experiment(name).grid("full")]
    assert len(every) == 147 and len(VARIANTS) == 57
    assert {variant_key(c) for c in every} == {variant_key(c) for c in VARIANTS}
    assert {c["family"] for c in VARIANTS} == {"dense", "separable", "separable_lowrank", "separable_tt", "tucker",
                                               "cp"}
    assert {c["recipe"]["schedule"]["kind"] for c in VARIANTS} == {"piecewise", "triangle", "cosine"}


@pytest.mark.parametrize("cfg", VARIANTS, ids=_id)
def test_full_variant_trains_in_smoke(cfg, monkeypatch):
    smoke = cc.smoke_variant(cfg)
    for key in ("net", "width", "factorize", "family", "wd_mode", "seed", "dataset_variant"):
        assert smoke[key] == cfg[key], key
    assert smoke.get("dirac", True) == cfg.get("dirac", True)
    assert smoke["profile"] == "smoke" and smoke["data_source"] == "fixture"
    assert smoke["recipe"]["schedule"]["kind"] == cfg["recipe"]["schedule"]["kind"]

    torch.manual_seed(0)
    full = cc.build_model(cfg)
    full_params = count_params(full)

    groups_seen: list[list[dict]] = []

    def spy(model, **kwargs):  # the groups fit_fast itself builds for its optimizer
        groups = real_param_groups(model, **kwargs)
        groups_seen.append(groups)
        return groups

    real_param_groups = fast.param_groups
    monkeypatch.setattr(fast, "param_groups", spy)
    rec = cc.train_config(smoke, "cpu")

    # the net trained is the full configuration's
    assert rec["model"]["params"] == full_params
    assert rec["model"]["params_all"] == count_params(full, trainable_only=False)
    assert rec["model"]["factorized"] == describe_factorized(full)
    assert (len(rec["model"]["factorized"]) > 0) == (cfg["factorize"] is not None)

    # its optimizer groups: every trainable parameter once, compressed layers' decay scaled in "scaled" mode
    (groups,) = groups_seen
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and sum(p.numel() for g in groups for p in g["params"]) == full_params
    compressed = [g for g in groups if g["name"].startswith("compressed")]
    base_wd = smoke["recipe"]["weight_decay"] * smoke["recipe"]["batch_size"]
    if cfg["factorize"] is None:
        assert compressed == []
    elif cfg["wd_mode"] == "scaled":
        rows = {r["name"]: r for r in rec["model"]["factorized"]}
        assert len(compressed) == len(rows) > 0
        for g in compressed:
            row = rows[g["name"].split(":", 1)[1]]
            assert math.isclose(g["wd_multiplier"], row["dense_params"] / row["params"]) and g["wd_multiplier"] > 1
            assert math.isclose(g["weight_decay"], base_wd * g["wd_multiplier"])
    else:
        assert [g["name"] for g in compressed] == ["compressed"] and compressed[0]["weight_decay"] == base_wd

    # it trained: two finite steps, evaluated, labelled
    m = rec["metrics"]
    assert rec["timing"]["steps"] == 2 and rec["timing"]["epochs_run"] == 1
    assert math.isfinite(m["train_loss"]) and math.isfinite(m["test_loss"]) and not m["diverged"]
    assert m["n_train"] == 20 and m["n_test"] == 10 and m["dataset_variant"] == cfg["dataset_variant"]
    assert m["lossy_data"] is True
    if "eval_train_n" in cfg["recipe"]:
        assert len(rec["history"]["train_eval_loss"]) == 1
