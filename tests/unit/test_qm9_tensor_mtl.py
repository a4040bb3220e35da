"""qm9_tensor_mtl: grid, config validation, a smoke run's record, and the full-rank
factorized network equal to the single-task stack it comes from."""
from __future__ import annotations

import pytest
import torch

from factorlab.data.qm9 import load_qm9
from factorlab.experiments import qm9_tensor_mtl as tm
from factorlab.experiments.qm9_common import NASH11
from factorlab.models.qm9_saved import build_member_models, stack_or_single
from factorlab.models.qm9_task_factorized import factorize_gine
from factorlab.train.qm9_regression import QM9Loader


def test_grid_counts_and_fields():
    for profile, n_seeds in (("smoke", 1), ("cpu", 3), ("full", 3)):
        grid = tm.grid(profile)
        assert len(grid) == n_seeds * (len(tm.FACTORIZED) + len(tm.MRN_LAMBDAS) + 2) == n_seeds * 7
        assert len({tuple(sorted((k, str(v)) for k, v in c.items())) for c in grid}) == len(grid)
        assert all(c["targets"] == NASH11 for c in grid)
    methods = [c["method"] for c in tm.grid("smoke")]
    assert methods == ["laf", "tucker", "tt", "mrn", "mrn", "deep", "finetune"]
    deep = tm.grid("cpu")[5]
    assert (deep["deep_match"], deep["deep_layers"], deep["rel_error"]) == ("tucker", 2, tm.REL_ERROR)
    assert all(c["deep_match"] is None and c["deep_layers"] is None for c in tm.grid("cpu") if c["method"] != "deep")


def test_single_task_config_is_qm9_single_tasks_budget():
    from factorlab.experiments import qm9_single_task

    cfg = tm.grid("cpu")[0]
    mine = tm.single_task_config(cfg)
    ref = qm9_single_task.grid("cpu")[0]
    assert {k: v for k, v in mine.items() if k != "targets"} == {k: v for k, v in ref.items() if k != "targets"}
    assert mine["targets"] == NASH11


@pytest.mark.parametrize("change, message", [
    ({"method": "cp"}, "method"),
    ({"rel_error": 1.5}, "rel_error in \\[0, 1\\)"),
    ({"lam": 1e-3}, "lam=None"),
    ({"targets": NASH11[:3]}, "task_set 'nash11'"),
])
def test_factorized_config_errors(change, message):
    cfg = {**tm.grid("smoke")[0], **change}
    with pytest.raises(ValueError, match=message):
        tm.Config.from_dict(cfg)


@pytest.mark.parametrize("change, message", [
    ({"lam": None}, "finite lam >= 0"),
    ({"lam": -1.0}, "finite lam >= 0"),
    ({"rel_error": 0.1}, "rel_error=None"),
    ({"mrn": {"eps": 1e-3}}, "keys"),
])
def test_mrn_config_errors(change, message):
    cfg = {**tm.grid("smoke")[3], **change}
    with pytest.raises(ValueError, match=message):
        tm.Config.from_dict(cfg)


@pytest.mark.parametrize("change, message", [
    ({"deep_match": "cp"}, "deep_match must be"),
    ({"deep_layers": 0}, "deep_layers >= 1"),
    ({"rel_error": None}, "a deep config needs rel_error"),
    ({"method": "tucker"}, "only a deep config names deep_match"),
])
def test_deep_config_errors(change, message):
    cfg = {**tm.grid("smoke")[5], **change}
    with pytest.raises(ValueError, match=message):
        tm.Config.from_dict(cfg)


@pytest.mark.parametrize("change, message", [
    ({"rel_error": 0.1}, "a finetune config needs rel_error=None"),
    ({"lam": 0.01}, "a finetune config needs rel_error=None, lam=None"),
])
def test_finetune_config_errors(change, message):
    cfg = {**tm.grid("smoke")[6], **change}
    with pytest.raises(ValueError, match=message):
        tm.Config.from_dict(cfg)


def test_finetune_control_trains_the_stack_again_unshared(tmp_path, monkeypatch):
    """The control: the trained stack fine-tuned for the budget, nothing shared (the parameters
    of the 11 single-task networks), its reference check and stack as every run's."""
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    cfg = tm.smoke_variant(tm.grid("smoke")[6], n_train=32, n_valid=16, n_test=16, batch_size=16)
    parts = tm.train(cfg, "cpu")
    m = parts["metrics"]
    assert parts["model"]["method"] == "finetune" and parts["model"]["params"] == parts["model"]["single_params"]
    assert "sharing" not in parts["model"] and "task_correlation" not in m and m["lam"] is None
    assert set(m["test_mae"]) == set(NASH11) and m["test_mae"] != m["single_test_mae"]
    assert parts["timing"]["factorize_s"] == 0.0 and parts["timing"]["single_s"] > 0


def test_deep_network_is_deeper_and_its_width_matches_the_parameter_count():
    cfg = tm.grid("cpu")[5]
    d = tm.deep_config(cfg, 40)
    assert d["sharing"] == "hard" and d["model_kwargs"]["layers"] == cfg["model_kwargs"]["layers"] + 2
    assert d["model_kwargs"]["hidden"] == 40 and d["targets"] == NASH11
    counts = {w: tm.deep_params(cfg, w) for w in range(20, 61)}
    assert all(counts[w] < counts[w + 1] for w in range(20, 60))  # grows with the width
    for target in (counts[33], counts[33] + 1, (counts[47] + counts[48]) // 2, counts[60] - 1):
        best = min(counts, key=lambda w: (abs(counts[w] - target), w))
        assert tm.deep_width(cfg, target) == best
    with pytest.raises(ValueError, match="target_params must be >= 1"):
        tm.deep_width(cfg, 0)


def test_full_rank_factorization_equals_the_single_task_stack():
    cfg = tm.single_task_config(tm.grid("smoke")[0])
    stack = stack_or_single(build_member_models(cfg, [[t] for t in NASH11], seed=0)).eval()
    fact = factorize_gine(stack, "tucker", rel_error=0.0).eval()  # decomposed in float64, cast back
    data = load_qm9("cpu", fixture=True)
    batch = next(iter(QM9Loader(data, data.split["train"][:32], batch_size=32, shuffle=False, drop_last=False)))
    out, ref = fact(batch), stack(batch)
    assert out.shape == (32, 11)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_smoke_run_record_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    for cfg in (tm.grid("smoke")[0], tm.grid("smoke")[3], tm.grid("smoke")[5]):
        small = tm.smoke_variant(cfg, n_train=32, n_valid=16, n_test=16, batch_size=16)
        parts = tm.train(small, "cpu")
        m = parts["metrics"]
        assert set(m["test_mae"]) == set(NASH11) == set(m["single_test_mae"])
        assert m["reference_check"]["equal"] is None  # an empty store holds no reference
        assert set(parts["timing"]) >= {"train_s", "single_s", "factorize_s"}
        assert parts["model"]["single_params"] > 0 and parts["history"]["single_history"]["epoch"] == [1]
        if cfg["method"] == "laf":
            sharing = parts["model"]["sharing"]
            assert len(sharing) == 1 + 3 * small["model_kwargs"]["layers"]
            for s in sharing.values():
                assert s["rank_used"] == s["task_rank"] / 11 and s["init_rel_error"] <= 0.1 + 1e-6
                assert 1 - 1e-6 <= s["effective_rank"] <= s["task_rank"] + 1e-6
            assert 0 < parts["model"]["params"] < parts["model"]["single_params"]
        elif cfg["method"] == "mrn":
            corr = torch.tensor(m["task_correlation"]["heads"])
            assert corr.shape == (11, 11)
            torch.testing.assert_close(corr.diagonal(), torch.ones(11, dtype=corr.dtype))
            assert "penalty" in parts["history"] and parts["model"]["params"] == parts["model"]["single_params"]


@pytest.mark.parametrize("method", ["laf", "mrn"])
def test_full_config_smoke_runs_at_full_width(tmp_path, monkeypatch, method):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    cfg = next(c for c in tm.grid("full") if c["method"] == method)
    small = tm.smoke_variant(cfg, n_train=32, n_valid=16, n_test=16, batch_size=32)
    assert small["model_kwargs"] == cfg["model_kwargs"] and small["model_kwargs"]["hidden"] == 128
    parts = tm.train(small, "cpu")
    assert set(parts["metrics"]["test_mae"]) == set(NASH11)
    if method == "mrn":
        assert parts["model"]["mrn_layers"] == ["heads", "encoder.convs.3.nn.2"]
        assert parts["metrics"]["mrn_updates"] == {"heads": 1, "encoder.convs.3.nn.2": 1}  # one step, update_every 50
        if cfg["method"] == "deep":  # one deeper hard-shared GINE at the Tucker network's parameter count
            info = parts["model"]
            assert info["members"] == 1 and info["layers"] == cfg["model_kwargs"]["layers"] + 2
            assert info["params"] == tm.deep_params(small, info["width"])
            assert info["width"] == tm.deep_width(small, info["match_params"])


def test_runs_of_a_seed_reuse_one_stack_and_get_the_records_they_would_alone(tmp_path, monkeypatch):
    """The second run of a seed takes the stack the first trained (timing says so), and its
    metrics are exactly those of the same run started in a fresh process (nothing cached)."""
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    laf, mrn = (tm.smoke_variant(tm.grid("smoke")[k], n_train=32, n_valid=16, n_test=16, batch_size=16)
                for k in (0, 3))
    tm._STACK.clear()
    first = tm.train(laf, "cpu")
    reused = tm.train(mrn, "cpu")
    assert first["timing"]["single_reused"] is False and reused["timing"]["single_reused"] is True
    tm._STACK.clear()
    alone = tm.train(mrn, "cpu")
    assert alone["timing"]["single_reused"] is False
    for key in ("test_mae", "valid_mae", "single_test_mae", "task_correlation"):
        assert reused["metrics"][key] == alone["metrics"][key], key
    other_seed = {**laf, "seed": 1}
    assert tm.train(other_seed, "cpu")["timing"]["single_reused"] is False
    tm._STACK.clear()
