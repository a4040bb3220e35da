"""Experiment ``qm9_soft_sharing``: the grid, its configs, and the λ path on the fixture: λ = 0
is exactly the single-task stack, λ = ∞ exactly hard sharing, the distance falls as λ grows."""
from __future__ import annotations

import json
import math

import pytest
import torch

from factorlab.experiments import get, run_experiment
from factorlab.experiments import qm9_common
from factorlab.experiments import qm9_soft_sharing as soft
from factorlab.experiments.qm9_common import NASH11, QM9Config, base_config, train_members
from factorlab.results import RunStore, config_hash


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _cfg(task_set="cv_u", method="l2", lam=0.0, **over) -> dict:
    """A smoke config of the grid with ``over`` applied."""
    for c in soft.grid("smoke"):
        if c["task_set"] == task_set and c["method"] == method and (method != "l2" or c["lam"] == lam):
            return {**c, **over}
    return soft.Config.from_dict({**soft.grid("smoke")[0], "lam": lam, **over}).to_dict()


def _spy(monkeypatch) -> list:
    """Capture what the experiment's train_members returns (the trained network)."""
    seen = []

    def spy(*args, **kwargs):
        seen.append(train_members(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(soft, "train_members", spy)
    return seen


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- the grid

@pytest.mark.parametrize("profile,runs", [("smoke", 12), ("cpu", 60), ("full", 60)])
def test_grid_sizes_seeds_and_json_safe_lambdas(profile, runs):
    configs = soft.grid(profile)
    assert len(configs) == runs and len({config_hash(c) for c in configs}) == runs
    assert {c["seed"] for c in configs} == set(soft.SEEDS[profile])
    l2 = [c for c in configs if c["method"] == "l2"]
    lams = soft.SMOKE_LAMBDAS if profile == "smoke" else soft.LAMBDAS
    assert sorted({json.dumps(c["lam"]) for c in l2}) == sorted(json.dumps(x) for x in lams)
    assert {"inf", 0.0} <= {c["lam"] for c in l2}
    assert all(c["lam"] is None and c["stitch"] == soft.STITCH for c in configs if c["method"] == "cross_stitch")
    assert {c["task_set"]: c["targets"] for c in configs} == {"cv_u": ["Cv", "U"], "nash11": NASH11}
    text = json.dumps(configs, allow_nan=False, sort_keys=True)  # strict JSON: no Infinity
    assert config_hash(json.loads(text)[0]) == config_hash(configs[0])


def test_full_lambda_path_and_budgets_compare_with_single_task_and_hard_sharing():
    assert soft.LAMBDAS == [0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, "inf"]
    single = get("qm9_single_task").grid("cpu")[0].to_dict()
    hard = get("qm9_hard_sharing").grid("cpu")[0].to_dict()
    same = ("model", "model_kwargs", "data", "n_train", "n_valid", "n_test", "epochs", "batch_size", "lr",
            "weight_decay", "schedule", "baseline")
    for c in soft.grid("cpu"):
        assert all(c[k] == single[k] == hard[k] for k in same)


def test_nash11_is_a_named_task_set_of_existing_targets():
    from factorlab.data.qm9 import TARGET_NAMES

    assert NASH11 == ["mu", "alpha", "homo", "lumo", "r2", "zpve", "U0_atom", "U_atom", "H_atom", "G_atom", "Cv"]
    assert set(NASH11) <= set(TARGET_NAMES) and "gap" not in NASH11
    assert qm9_common.task_set("nash11") == NASH11 and qm9_common.task_set("std12") == qm9_common.STANDARD_12
    assert set(qm9_common.TASK_SETS) == {"all19", "std12"}  # the hard-sharing grid's sets are unchanged
    with pytest.raises(ValueError, match="choose one of all19, std12, nash11"):
        qm9_common.task_set("nash12")


def test_bad_configs_raise_value_errors_naming_the_valid_values():
    good = _cfg()
    for bad in (-1e-3, float("nan"), "infinity", True):
        with pytest.raises(ValueError, match=r"'inf'|>= 0 or inf|must be"):
            soft.Config.from_dict({**good, "lam": bad})
    with pytest.raises(ValueError, match="as the string 'inf'"):
        soft.Config.from_dict({**good, "lam": math.inf})
    with pytest.raises(ValueError, match="cross_stitch config needs lam=None"):
        soft.Config.from_dict({**good, "method": "cross_stitch", "lam": 0.1, "stitch": dict(soft.STITCH)})
    with pytest.raises(ValueError, match="l2 config needs lam"):
        soft.Config.from_dict({**good, "lam": None})
    with pytest.raises(ValueError, match=r"task_set 'cv_u' is the targets \['Cv', 'U'\]"):
        soft.Config.from_dict({**good, "targets": ["Cv", "U_atom"]})
    with pytest.raises(ValueError, match="'cv_u' | 'nash11'"):
        soft.Config.from_dict({**good, "task_set": "std12"})
    assert soft.lam_value("inf") == math.inf and soft.lam_value(0.1) == 0.1


# ----------------------------------------------------------------------------- the endpoints

def test_lambda_zero_is_exactly_the_single_task_stack(monkeypatch):
    cfg = _cfg(lam=0.0)
    seen = _spy(monkeypatch)
    rec = soft.train(cfg, "cpu")
    (trained,) = seen
    # the single-task code path, same config and seed
    st_cfg = QM9Config(**base_config("qm9_single_task", "smoke", "gine", cfg["model_kwargs"]), sharing="none",
                       targets=["Cv", "U"], seed=cfg["seed"]).to_dict()
    reference = train_members(st_cfg, [["Cv"], ["U"]], "cpu")
    assert trained.model.groups == 2 and type(trained.model) is type(reference.model)
    assert _same_state(trained.model, reference.model)
    for key in ("test_mae", "valid_mae", "best_epoch", "test_mae_std"):
        assert rec["metrics"][key] == reference.parts["metrics"][key], key
    assert rec["history"]["train_mse"] == reference.parts["history"]["train_mse"]
    assert rec["history"]["penalty"] == [0.0, 0.0]
    # and the registered single-task experiment's own train() gives the same numbers
    assert get("qm9_single_task").train(st_cfg, "cpu")["metrics"]["test_mae"] == rec["metrics"]["test_mae"]


def test_lambda_inf_is_exactly_hard_sharing(monkeypatch):
    cfg = _cfg(task_set="nash11", lam="inf")
    seen = _spy(monkeypatch)
    rec = soft.train(cfg, "cpu")
    (trained,) = seen
    hard_cfg = QM9Config(**base_config("qm9_hard_sharing", "smoke", "gine", cfg["model_kwargs"]), sharing="hard",
                         targets=list(NASH11), seed=cfg["seed"]).to_dict()
    reference = train_members(hard_cfg, [list(NASH11)], "cpu")  # qm9_hard_sharing.train's path
    assert trained.model.groups == 1 and trained.model.num_tasks == 11
    assert _same_state(trained.model, reference.model)
    assert rec["metrics"]["test_mae"] == reference.parts["metrics"]["test_mae"]
    assert rec["metrics"]["valid_mae"] == reference.parts["metrics"]["valid_mae"]
    assert all(v == [0.0, 0.0] for v in rec["history"]["distance"].values())
    assert rec["history"]["penalty"] == [0.0, 0.0]


def test_distance_falls_monotonically_as_lambda_grows():
    lams = [0.0, 1e-2, 1.0, 100.0, "inf"]
    mean_distance = []
    for lam in lams:  # a short training on the fixture, at a larger step so distances grow
        rec = soft.train(_cfg(lam=lam, lr=1e-2, epochs=3), "cpu")
        d = rec["history"]["distance"]
        mean_distance.append(sum(v[-1] for v in d.values()) / len(d))
    assert all(a > b for a, b in zip(mean_distance, mean_distance[1:])), mean_distance
    assert mean_distance[0] > 0.05 and mean_distance[-1] == 0.0


# ----------------------------------------------------------------------------- the records

def test_records_hold_the_journal_quantities_and_the_normalisation():
    rec = soft.train(_cfg(lam=1.0), "cpu")
    m, h = rec["metrics"], rec["history"]
    for split in ("valid", "test"):
        assert set(m[f"{split}_loss_std"]) == {"Cv", "U"} and set(m[f"{split}_mae"]) == {"Cv", "U"}
        assert m[f"{split}_loss_std_total"] == pytest.approx(sum(m[f"{split}_loss_std"].values()))
    assert m["lam"] == 1.0 and m["constrained_params"] == soft.constrained_params(_cfg())
    enc = sum(p.numel() for p in soft.build_qm9_model("gine", 1, **_cfg()["model_kwargs"]).encoder.parameters())
    assert m["constrained_params"] == enc  # N: every encoder parameter of one member
    assert all(p > 0 for p in h["penalty"]) and len(h["data_loss"]) == len(h["epoch"]) == 2
    assert rec["model"]["penalty_layers"] == list(h["distance"]) and rec["model"]["penalty_layers"][0] == "encoder.node_in"
    json.dumps(rec, allow_nan=False)


def test_cross_stitch_record():
    rec = soft.train(_cfg(method="cross_stitch"), "cpu")
    h = rec["history"]
    assert rec["model"]["method"] == "cross_stitch" and rec["model"]["stitch_params"] == 2 * 2 * 2
    assert set(h["stitch"]) == {f"stitches.{l}.{k}" for l in range(2) for k in ("diag", "off")}
    assert len(h["distance"]["encoder.node_in"]) == 2 and h["penalty"] == [0.0, 0.0]
    assert rec["metrics"]["lam"] is None and set(rec["metrics"]["best_epoch"].values()) <= {1, 2}
    assert len(set(rec["metrics"]["best_epoch"].values())) == 1  # one network, one kept epoch


def test_smoke_grid_trains_into_a_store_and_labels(tmp_path):
    records = run_experiment("qm9_soft_sharing", "smoke", "cpu", store=RunStore(tmp_path))
    assert len(records) == 12
    assert all(all(v > 0 for v in r["metrics"]["test_mae"].values()) for r in records)
    exp = get("qm9_soft_sharing")
    assert exp.label(records[-1]["config"]) == "method=cross_stitch task_set=nash11 seed=0"
    assert exp.label(_cfg(lam="inf")) == "method=l2 task_set=cv_u lam=inf seed=0"
