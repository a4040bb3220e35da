"""Experiments ``qm9_pairs`` and ``qm9_grouping``: grid sizes, configs, reading pair gains from
records, the partitions chosen from them, and the grid's dependence on the store."""
from __future__ import annotations

import numpy as np
import pytest

from factorlab.experiments import qm9_grouping as grouping
from factorlab.experiments import qm9_pairs as pairs
from factorlab.experiments.qm9_common import NASH11
from factorlab.experiments.registry import GridNeedsRecordsError
from factorlab.mtl.grouping import pair_gain_matrix
from factorlab.results import RunStore, config_hash

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("profile, runs", [("smoke", 3), ("cpu", 165), ("full", 165)])
def test_pairs_grid_has_every_pair_per_seed_and_no_single_task_stack(profile, runs):
    configs = pairs.configs(profile)
    assert len(configs) == runs == len({config_hash(c.to_dict()) for c in configs})
    tasks = pairs.TASKS[profile]
    assert {c.sharing for c in configs} == {"hard"}
    for seed in pairs.SEEDS[profile]:
        hard = [tuple(c.targets) for c in configs if c.seed == seed]
        assert len(hard) == len(set(hard)) == len(tasks) * (len(tasks) - 1) // 2
        assert all(NASH11.index(a) < NASH11.index(b) for a, b in hard)
    assert pairs.TASKS["cpu"] == NASH11 and pairs.TASKS["smoke"] == ["mu", "alpha", "homo"]


def test_pairs_config_rejects_bad_targets_and_single_task_runs():
    cfg = pairs.grid("smoke")[0]
    for bad in (["alpha", "mu"], ["mu"], ["mu", "gap"], ["mu", "alpha", "homo"]):
        with pytest.raises(ValueError, match="two distinct NASH11 targets in NASH11 order"):
            pairs.Config.from_dict({**cfg, "targets": bad})
    with pytest.raises(ValueError, match="sharing"):
        pairs.Config.from_dict({**cfg, "sharing": "none", "targets": ["mu", "alpha", "homo"]})


#: The budget keys a pair and its single-task reference must share (all but NOT_BUDGET).
BUDGET_KEYS = {"profile", "model", "model_kwargs", "data", "n_train", "n_valid", "n_test", "epochs", "batch_size",
               "lr", "weight_decay", "schedule", "baseline", "seed"}


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_pairs_and_their_single_task_reference_share_the_budget_field_by_field(profile):
    """Every pair config equals every qm9_single_task GINE config of its seed on every field
    but the experiment, the targets and the sharing (and the pairs' task_set)."""
    refs = pairs.reference_configs(profile)
    assert refs and {t for c in refs for t in c["targets"]} >= set(pairs.TASKS[profile])
    seeds = {c["seed"] for c in refs}
    assert seeds <= set(pairs.SEEDS[profile])
    for p in pairs.grid(profile):
        for ref in (c for c in refs if c["seed"] == p["seed"]):
            assert set(ref) - set(pairs.NOT_BUDGET) == BUDGET_KEYS == set(p) - set(pairs.NOT_BUDGET)
            for key in BUDGET_KEYS:
                assert p[key] == ref[key], (profile, key)
            assert pairs.budget_mismatch(p, ref) == []
    p, ref = pairs.grid(profile)[0], refs[0]
    assert pairs.budget_mismatch(p, {**ref, "epochs": ref["epochs"] + 1, "lr": 0.5}) == ["epochs", "lr"]
    assert pairs.budget_mismatch(p, {**ref, "targets": ["gap"], "experiment": "x", "sharing": "none"}) == []


def _fake_records(store: RunStore, profile: str, gains: dict[tuple[str, str], tuple[float, float]],
                  single: dict[str, float], reference: bool = True) -> None:
    """Write qm9_pairs records whose valid and test MAEs realise ``gains`` (percent, (g_ab, g_ba))
    against ``single``, and (``reference``) the qm9_single_task records holding ``single``."""
    def write(cfg, mae):
        store.run(cfg, lambda c: {"metrics": {"test_mae": mae, "valid_mae": mae}, "history": {}, "timing": {},
                                  "model": {}})

    for cfg in pairs.grid(profile):
        a, b = cfg["targets"]
        g_ab, g_ba = gains[(a, b)]
        write(cfg, {b: single[b] * (1 - g_ab / 100), a: single[a] * (1 - g_ba / 100)})
    if reference:
        for cfg in pairs.reference_configs(profile):
            write(cfg, {t: single.get(t, 1.0) for t in cfg["targets"]})


SINGLE = {"mu": 1.0, "alpha": 2.0, "homo": 4.0}
GAINS = {("mu", "alpha"): (10.0, 20.0), ("mu", "homo"): (-5.0, 0.0), ("alpha", "homo"): (5.0, -10.0)}


def test_pair_gains_read_from_records_against_qm9_single_task(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = RunStore(tmp_path)
    assert pairs.pair_gains("smoke", store)[0] == []
    _fake_records(store, "smoke", GAINS, SINGLE)
    seeds, g = pairs.pair_gains("smoke", store)
    assert seeds == [0] and g.shape == (1, 3, 3)
    assert g[0, 0, 1] == pytest.approx(10.0) and g[0, 1, 0] == pytest.approx(20.0)
    assert g[0, 1, 2] == pytest.approx(5.0) and g[0, 2, 1] == pytest.approx(-10.0)
    errs, single = pairs.pair_errors("smoke", store)[0]
    assert single == SINGLE == pairs.reference_errors("smoke", store)[0]
    np.testing.assert_allclose(g[0], pair_gain_matrix(errs, single, pairs.TASKS["smoke"]))
    assert pairs.missing_runs("smoke", store) == ""
    with pytest.raises(ValueError, match="split must be 'test' or 'valid'"):
        pairs.pair_errors("smoke", store, "train")


def test_a_seed_without_its_single_task_reference_is_not_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = RunStore(tmp_path)
    _fake_records(store, "smoke", GAINS, SINGLE, reference=False)
    assert pairs.pair_errors("smoke", store) == {} and pairs.pair_gains("smoke", store)[0] == []
    msg = pairs.missing_runs("smoke", store)
    assert msg == ("the single-task reference of seed(s) 0 is missing: run "
                   "`python -m factorlab run qm9_single_task --profile smoke`")
    with pytest.raises(GridNeedsRecordsError, match="python -m factorlab run qm9_single_task --profile smoke"):
        grouping.chosen_partitions("smoke", store)


def test_a_reference_of_another_budget_is_refused(tmp_path, monkeypatch):
    from factorlab.experiments import qm9_single_task

    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    grid = qm9_single_task.grid
    monkeypatch.setattr(qm9_single_task, "grid", lambda profile: [{**c, "epochs": 7} for c in grid(profile)])
    with pytest.raises(ValueError, match=r"differs from qm9_pairs' budget in epochs"):
        pairs.reference_errors("smoke", RunStore(tmp_path))
    rec = {"config": {**pairs.reference_configs("smoke")[0]}, "metrics": {"test_mae": SINGLE}}
    pair = {"config": pairs.grid("smoke")[0]}
    with pytest.raises(ValueError, match=r"differs from qm9_pairs' budget in epochs"):
        pairs.reference_from_records([rec], list(SINGLE), [pair])
    assert pairs.reference_from_records([rec], list(SINGLE)) == {0: SINGLE}
    # every compared run of the seed is checked, whichever comes last and whatever its experiment
    same = {"config": {**rec["config"], "experiment": "qm9_pairs", "targets": ["mu", "alpha"]}}
    with pytest.raises(ValueError, match=r"differs from qm9_pairs' budget in epochs"):
        pairs.reference_from_records([rec], list(SINGLE), [pair, same])
    weighting = {"config": {**rec["config"], "experiment": "qm9_weighting", "lr": 0.5, "weighting": "famo"}}
    with pytest.raises(ValueError, match=r"^the single-task record of .* \(seed 0\) differs from qm9_weighting's "
                                         r"budget in lr: Δm and pair gains need the same budget$"):
        pairs.reference_from_records([rec], list(SINGLE), [same, weighting])
    assert pairs.reference_from_records([rec], list(SINGLE), [same]) == {0: SINGLE}
    assert pairs.reference_from_records([rec], list(SINGLE) + ["gap"], [same]) == {}  # a seed lacking a task


def test_grouping_chooses_partitions_from_pair_records(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = RunStore(tmp_path)
    with pytest.raises(GridNeedsRecordsError, match="python -m factorlab run qm9_pairs --profile smoke.*"
                                                    "python -m factorlab run qm9_single_task --profile smoke"):
        grouping.chosen_partitions("smoke", store)
    assert grouping.groups_to_train("smoke", store) == [["mu", "alpha", "homo"]]  # the smoke fallback
    _fake_records(store, "smoke", GAINS, SINGLE)
    chosen = grouping.chosen_partitions("smoke", store)
    assert set(chosen) == {("oracle", s, k) for s in grouping.SEARCHES for k in grouping.KS["smoke"]}
    assert chosen[("oracle", "exact", 2)].groups == ((0, 1), (2,))  # mu and alpha help each other most
    assert chosen[("oracle", "exact", 2)].score == pytest.approx((10 + 20) / 3)
    assert grouping.groups_to_train("smoke", store) == [["mu", "alpha", "homo"]]


def test_grouping_without_pair_records_names_the_commands_for_cpu(tmp_path):
    with pytest.raises(GridNeedsRecordsError, match=r"^qm9_grouping \(cpu\) .*python -m factorlab run qm9_pairs "
                                                    r"--profile cpu.*python -m factorlab run qm9_single_task "
                                                    r"--profile cpu"):
        grouping.groups_to_train("cpu", RunStore(tmp_path))


def test_affinity_is_the_one_convention_of_mtl_relatedness():
    from factorlab.mtl.relatedness import affinity, encoder_swap_affinity

    m = np.array([[1.0, -0.8], [-0.8, 1.0]])
    np.testing.assert_allclose(grouping.affinity("pearson_raw", m), [[0, 0.8], [0.8, 0]])
    swap = np.array([[1.0, 1.3], [0.9, 1.0]])
    np.testing.assert_allclose(grouping.affinity("encoder_swap", swap), [[0, -0.3], [0.1, 0]])
    np.testing.assert_allclose(encoder_swap_affinity(swap), 1 - swap)
    for name in ("pearson_raw", "spearman_residual", "dcor_raw", "gradient_cosine", "tag_affinity", "encoder_swap"):
        want = affinity(name, swap - 0.5)
        np.fill_diagonal(want, 0.0)
        np.testing.assert_array_equal(grouping.affinity(name, swap - 0.5), want)
    np.testing.assert_allclose(grouping.affinity("tag_affinity", m), [[0, -0.8], [-0.8, 0]])
    with pytest.raises(ValueError, match="no affinity mapping for measure 'mystery'"):
        grouping.affinity("mystery", m)


def test_grouping_config_needs_three_ordered_targets():
    cfg = grouping.grid("smoke")[0]
    assert cfg["targets"] == ["mu", "alpha", "homo"] and cfg["sharing"] == "hard"
    for bad in (["mu", "alpha"], ["alpha", "mu", "homo"], ["mu", "mu", "homo"], ["mu", "alpha", "gap"]):
        with pytest.raises(ValueError, match="three or more distinct NASH11 targets"):
            grouping.Config.from_dict({**cfg, "targets": bad})
    with pytest.raises(ValueError, match="all 11 NASH11 targets is not trained here: it is qm9_soft_sharing's"):
        grouping.Config.from_dict({**cfg, "targets": NASH11})


@pytest.mark.parametrize("profile", ["cpu", "full"])
def test_the_group_of_all_eleven_reuses_soft_sharings_hard_shared_runs(profile, monkeypatch):
    """All 11 targets in one network is qm9_soft_sharing's lam='inf' nash11 run of each seed
    (qm9_weighting's equal-weight row), the same budget field by field; never in the grid."""
    from factorlab.experiments.qm9_weighting import equal_weight_configs

    whole = grouping.whole_set_configs(profile)
    assert whole == equal_weight_configs(profile) and [c["seed"] for c in whole] == grouping.SEEDS[profile]
    group = pairs.grid(profile)[0]
    for c in whole:
        assert c["experiment"] == "qm9_soft_sharing" and c["lam"] == "inf" and c["targets"] == NASH11
        # beyond the sharing, only how soft sharing names hard sharing differs
        assert pairs.budget_mismatch({**group, "seed": c["seed"]}, c) == ["lam", "method", "stitch"]
    monkeypatch.setattr(grouping, "groups_to_train", lambda p: [list(NASH11), NASH11[:3]])
    assert [c.targets for c in grouping.configs(profile)] == [NASH11[:3]] * len(grouping.SEEDS[profile])
    assert grouping.whole_set_configs("smoke") == []


def test_the_reused_all_eleven_run_trains_exactly_as_a_grouping_network_would():
    """qm9_soft_sharing's lam='inf' training and qm9_grouping's (fit_members over one group) give
    the same test MAEs, bit for bit (the fixture, smoke budget)."""
    from factorlab.experiments import qm9_soft_sharing
    from factorlab.experiments.qm9_common import fit_members

    (soft_cfg,) = [c for c in qm9_soft_sharing.grid("smoke") if c["task_set"] == "nash11" and c["lam"] == "inf"]
    soft = qm9_soft_sharing.train(soft_cfg, "cpu")
    group_cfg = {**grouping.grid("smoke")[0], "targets": list(NASH11)}  # what qm9_grouping.train would fit
    mine = fit_members(group_cfg, [list(NASH11)], "cpu")
    assert mine["metrics"]["test_mae"] == soft["metrics"]["test_mae"]
    assert mine["metrics"]["best_epoch"] == soft["metrics"]["best_epoch"]


def test_measures_join_once_every_relatedness_seed_is_recorded(tmp_path, monkeypatch):
    from factorlab.experiments import qm9_relatedness

    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = RunStore(tmp_path)
    _fake_records(store, "smoke", GAINS, SINGLE)
    assert grouping.measure_matrices("smoke", store) == {}
    # a nash11 relatedness record in which homo is unrelated to mu and alpha
    labels = NASH11
    m = np.full((11, 11), 0.05)
    m[0, 1] = m[1, 0] = 0.9
    np.fill_diagonal(m, 1.0)
    measure = {"name": "dcor_residual", "labels": labels, "matrix": m.tolist(), "seconds": 1.0, "info": {}}
    (cfg,) = [c.to_dict() for c in qm9_relatedness.configs("smoke") if c.task_set == "nash11"]
    store.run(cfg, lambda c: {"metrics": {"measures": {"dcor_residual": measure}}, "history": {}, "timing": {},
                              "model": {}})
    mats = grouping.measure_matrices("smoke", store)
    assert list(mats) == ["dcor_residual"] and mats["dcor_residual"].shape == (3, 3)
    chosen = grouping.chosen_partitions("smoke", store)
    assert chosen[("dcor_residual", "exact", 2)].groups == ((0, 1), (2,))
    assert chosen[("dcor_residual", "cluster", 2)].groups == ((0, 1), (2,))
