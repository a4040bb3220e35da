"""factorlab.report.qm9_grouping: per-seed Δm of chosen partitions from qm9_single_task, pair and
group records (Δm always against qm9_single_task of the same seed), the summary over seeds, the aim's verdict on both sides of its rule (every seed below
0, fewer networks than tasks), the pair-based prediction against the group, the noise ceiling
and the glued values; on hand-built records and on the smoke records."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from report_smoke import train_smoke

from factorlab.mtl.grouping import Partition
from factorlab.report import qm9_grouping as report

matplotlib.use("Agg")

TASKS = ["mu", "alpha", "homo"]
SINGLE = {"mu": 1.0, "alpha": 2.0, "homo": 4.0}


def _rec(sharing: str, targets: list[str], seed: int, mae: dict) -> dict:
    experiment = "qm9_single_task" if sharing == "none" else "qm9_pairs" if len(targets) == 2 else "qm9_grouping"
    return {"key": f"{sharing}-{'-'.join(targets)}-{seed}",
            "config": {"experiment": experiment, "profile": "cpu", "model": "gine", "epochs": 10,
                       "sharing": sharing, "targets": targets, "seed": seed},
            "metrics": {"test_mae": dict(mae), "valid_mae": dict(mae)}, "provenance": {"device": "cpu"}}


def _records(triple_change: list[float], pair_change: float = -10.0, seeds=(0, 1, 2)):
    """Per seed: the qm9_single_task reference (two stacks, as its grid may split the targets),
    every pair with each member's MAE changed by ``pair_change`` % (+ seed), and the triple
    with every MAE changed by ``triple_change[seed]`` %."""
    singles, pairs, groups = [], [], []
    for s in seeds:
        singles.append(_rec("none", ["mu", "alpha"], s, {t: SINGLE[t] for t in ("mu", "alpha")}))
        singles.append(_rec("none", ["homo", "gap"], s, {"homo": SINGLE["homo"], "gap": 9.0}))
        for a, b in (("mu", "alpha"), ("mu", "homo"), ("alpha", "homo")):
            c = pair_change + s
            pairs.append(_rec("hard", [a, b], s, {t: SINGLE[t] * (1 + c / 100) for t in (a, b)}))
        groups.append(_rec("hard", TASKS, s, {t: v * (1 + triple_change[s] / 100) for t, v in SINGLE.items()}))
    return singles, pairs, groups


CHOSEN = {("oracle", "exact", 1): Partition(((0, 1, 2),), 0.0),
          ("oracle", "exact", 2): Partition(((0, 1), (2,)), 0.0),
          ("dcor", "cluster", 2): Partition(((0, 1), (2,)), 0.0)}


def test_curve_pairs_every_grouping_with_its_seed():
    singles, pairs, groups = _records([-5.0, -6.0, -7.0])
    curve = report.curve_frame(CHOSEN, pairs, groups, single_records=singles)
    assert len(curve) == 3 * 4  # per seed: single-task + three partitions
    k1 = curve[(curve.source == "oracle") & (curve.k == 1)].set_index("seed").delta_m
    assert k1.tolist() == pytest.approx([-5.0, -6.0, -7.0])
    k2 = curve[(curve.source == "oracle") & (curve.k == 2)].set_index("seed").delta_m
    # mu and alpha gain -(pair_change + seed) %, homo alone 0
    assert k2.tolist() == pytest.approx([2 * (-10 + s) / 3 for s in range(3)])
    summary = report.curve_summary(curve)
    row = summary[(summary.source == "oracle") & (summary.k == 1)].iloc[0]
    assert row.n == 3 and row.dm == pytest.approx(-6.0) and row.dm_se == pytest.approx(1 / math.sqrt(3))
    assert row.dm_max == pytest.approx(-5.0)
    table = report.summary_table(summary)
    assert "-6.0 ± 0.6" in table["Δm (%)"].tolist()
    wide = report.pivot_table(summary).set_index("source, search (Δm %; networks →)")
    assert list(wide.columns) == ["1", "2"]  # networks; single-task training (k = 3 here) is left out
    oracle = "oracle (pair gains), exact"
    assert list(wide.index) == [oracle, "dcor, clustered"]  # the oracle first
    assert wide.loc[oracle, "1"] == "-6.0"
    assert wide.loc[oracle, "2"] == f"{np.mean([2 * (-10 + s) / 3 for s in range(3)]):+.1f}"
    assert wide.loc["dcor, clustered", "1"] == "·"
    assert report.source_label("dcor_residual") == "distance corr., residual" and report.source_label("x") == "x"


def test_one_network_weightings_sit_at_one_network_and_are_not_groupings():
    singles, pairs, groups = _records([-5.0, -6.0, -7.0])
    famo = [{"config": {"seed": s, "weighting": "famo"},
             "metrics": {"test_mae": {t: v * 0.9 for t, v in SINGLE.items()}}} for s in (0, 1, 2)]
    curve = report.curve_frame(CHOSEN, pairs, groups, famo, single_records=singles)
    rows = curve[curve.search == "weighting"]
    assert rows.source.tolist() == ["famo"] * 3 and (rows.k == 1).all()
    assert rows.delta_m.tolist() == pytest.approx([-10.0] * 3)
    aim = report.aim_verdict(curve, 3)
    assert aim["best_dm"] == pytest.approx(-6.0)  # the grouping's, not FAMO's -10
    summary = report.curve_summary(curve)
    assert "loss weighting, one network" in report.summary_table(summary).search.tolist()
    report.curve_figure(summary)
    values = report.glue_values(pairs, groups, CHOSEN, 3, famo, single_records=singles)
    assert values["dm_weighting_famo"] == pytest.approx(-10.0)


def test_a_grouping_missing_a_network_is_left_out():
    singles, pairs, groups = _records([-5.0, -6.0, -7.0])
    curve = report.curve_frame(CHOSEN, pairs, groups[:1], single_records=singles)
    assert sorted(curve[curve.k == 1].seed) == [0]


def test_aim_needs_every_seed_below_zero_with_fewer_networks():
    singles, pairs, _ = _records([0, 0, 0], pair_change=5.0)  # pairs hurt
    for change, verdict in (([-1.0, -2.0, -0.1], "reached"), ([-1.0, -2.0, 0.1], "not reached")):
        _, _, groups = _records(change, pair_change=5.0)
        aim = report.aim_verdict(report.curve_frame(CHOSEN, pairs, groups, single_records=singles), 3)
        assert aim["verdict"] == verdict
        assert aim["n_candidates"] == 2  # k = 1 and the k = 2 partition, counted once for two sources
        assert aim["best"] == "mu,alpha,homo" and aim["best_k"] == 1
    aim = report.aim_verdict(report.curve_frame(CHOSEN, pairs, groups[:2], single_records=singles), 3)
    assert aim["n_candidates"] == 1 and aim["verdict"] == "not reached"
    empty = report.curve_frame(CHOSEN, pairs, [], single_records=singles).iloc[0:0]
    assert report.aim_verdict(empty, 3)["verdict"] == "not measured"
    only_pairs = {k: v for k, v in CHOSEN.items() if k[2] == 2}
    pairs_cut = [r for r in pairs if r["config"]["seed"] != 2]
    aim = report.aim_verdict(report.curve_frame(only_pairs, pairs_cut, [], single_records=singles), 3)
    assert aim["verdict"] == "not measured" and "in all 3 seeds" in aim["text"]


def test_prediction_uses_the_same_seeds_test_pair_gains():
    singles, pairs, groups = _records([-5.0, -6.0, -7.0])
    pred = report.prediction_frame(pairs, groups, single_records=singles)
    assert len(pred) == 9
    # every pair gain of seed s is 10 - s %, so Standley's mean predicts that for every member
    for row in pred.itertuples():
        assert row.predicted == pytest.approx(10.0 - row.seed)
        assert row.actual == pytest.approx(5.0 + row.seed)
    agree = report.prediction_agreement(pred)
    assert agree["n"] == 9 and agree["bias_pp"] == pytest.approx(np.mean([5 + s - (10 - s) for s in range(3)]))


def test_noise_ceiling_ranks_seeds_against_each_other():
    singles, pairs, _ = _records([0, 0, 0])
    for r in pairs:  # distinct gains, the same ranks in every seed (a larger spread in later seeds)
        if r["config"]["sharing"] == "hard":
            a, b = r["config"]["targets"]
            seed = r["config"]["seed"]
            for t in (a, b):
                code = 3 * TASKS.index(a) + TASKS.index(b) + TASKS.index(t)
                r["metrics"]["test_mae"][t] = SINGLE[t] * (1 + code * (seed + 1) / 100)
    ceil = report.noise_ceiling(pairs, single_records=singles)
    assert ceil["n_seeds"] == 3 and ceil["rhos"] == pytest.approx([1.0, 1.0, 1.0])
    seed0 = [r for r in pairs if r["config"]["seed"] == 0]
    assert math.isnan(report.noise_ceiling(seed0, single_records=singles)["mean"])


def test_delta_m_is_against_qm9_single_task_of_the_same_seed_and_its_budget():
    """Singletons and Δm come from the qm9_single_task records (whatever stack holds a task);
    a seed without them has no row; a reference of another budget is refused; the reused
    all-target run counts apart from the grouping's own."""
    singles, pairs, groups = _records([-5.0, -6.0, -7.0])
    half = [r for r in singles if not (r["config"]["seed"] == 1 and "homo" in r["config"]["targets"])]
    curve = report.curve_frame(CHOSEN, pairs, groups, single_records=half)
    assert sorted(set(curve.seed)) == [0, 2]
    assert report.curve_frame(CHOSEN, pairs, groups, single_records=[]).empty
    errors = report.group_errors(pairs, groups, single_records=singles)
    assert report.single_mae(errors[1]) == SINGLE
    bad = [{**r, "config": {**r["config"], "epochs": 3}} for r in singles]
    with pytest.raises(ValueError, match="differs from qm9_pairs' budget in epochs"):
        report.curve_frame(CHOSEN, pairs, groups, single_records=bad)
    reused = [{**g, "config": {**g["config"], "experiment": "qm9_soft_sharing", "sharing": "soft"}} for g in groups]
    values = report.glue_values(pairs, reused[:1] + groups[1:], CHOSEN, 3, single_records=singles)
    assert (values["n_groups"], values["n_reused"], values["n_single"], values["n_pairs"]) == (2, 1, 6, 9)
    assert values["dm_oracle_k1"] == pytest.approx(-6.0)
    aim = report.aim_verdict(report.curve_frame(CHOSEN, pairs, reused[:1] + groups[1:], single_records=singles), 3)
    assert values["aim_best_k"] == aim["best_k"] and values["aim_best"] == aim["best"]


def test_groups_and_weightings_are_checked_against_the_references_budget():
    """Every run taken against the single-task reference is budget-checked, not only the pairs:
    a group or a one-network weighting of another budget is refused, naming its experiment."""
    singles, pairs, groups = _records([-5.0, -6.0, -7.0])
    long_groups = [{**g, "config": {**g["config"], "epochs": 20}} for g in groups]
    with pytest.raises(ValueError, match=r"\(seed 0\) differs from qm9_grouping's budget in epochs"):
        report.curve_frame(CHOSEN, pairs, long_groups, single_records=singles)
    with pytest.raises(ValueError, match="differs from qm9_grouping's budget in epochs"):
        report.prediction_frame(pairs, long_groups, single_records=singles)
    famo = [{"config": {"experiment": "qm9_weighting", "seed": 2, "weighting": "famo", "epochs": 5},
             "metrics": {"test_mae": dict(SINGLE)}}]
    with pytest.raises(ValueError, match=r"\(seed 2\) differs from qm9_weighting's budget in epochs"):
        report.curve_frame(CHOSEN, pairs, groups, famo, single_records=singles)


def test_glue_values_on_smoke_records(tmp_path):
    singles = [r for r in train_smoke("qm9_single_task", tmp_path) if r["config"]["model"] == "gine"]
    pairs = train_smoke("qm9_pairs", tmp_path)
    groups = train_smoke("qm9_grouping", tmp_path)
    assert len(pairs) == 3 and len(groups) == 1 and len(singles) == 1
    from factorlab.experiments import qm9_grouping

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
        chosen = qm9_grouping.chosen_partitions("smoke")
    values = report.glue_values(pairs, groups, chosen, 1, single_records=singles)
    assert values["n_tasks"] == 3 and values["n_pairs"] == 3 and values["n_groups"] == 1
    assert values["aim_verdict"] in ("reached", "not reached") and values["ceiling_seeds"] == 1
    assert math.isnan(values["ceiling_rho"]) and values["pred_n"] == 3
    assert {"dm_oracle_k1", "dm_oracle_k2"} <= set(values)
    assert all(isinstance(v, (int, float, str)) for v in values.values())
    curve = report.curve_frame(chosen, pairs, groups, single_records=singles)
    single = curve[curve.source == "single-task"].iloc[0]
    assert single.k == 3 and single.delta_m == 0.0
    summary = report.curve_summary(curve)
    report.curve_figure(summary)
    report.prediction_figure(report.prediction_frame(pairs, groups, single_records=singles))


def test_per_task_picture_and_mutual_pairs():
    """Every pair lowers both members' errors by 10 - seed %: each target's best partner gives
    +9.0 ± 0.6 (mean and SE over seeds 0-2), the partner gains as much, and all three pairs are
    mutual; with errors raised instead, no pair is."""
    singles, pairs, _ = _records([0.0, 0.0, 0.0])
    frame = report.per_task_frame(pairs, single_records=singles).set_index("target")
    assert list(frame.index) == TASKS
    assert frame.loc["mu", "best partner"] in ("alpha", "homo") and frame.loc["mu", "mean gain (%)"] == "+9.0"
    assert frame.loc["mu", "gain beside it (%)"] == frame.loc["mu", "partner's gain (%)"] == "+9.0 ± 0.6"
    assert frame.loc["homo", "pair total (%)"] == "+18.0"
    assert report.mutual_pairs(pairs, single_records=singles) == {"n_mutual": 3, "n_positive_total": 3,
                                                                  "n_unordered_pairs": 3}
    singles, pairs, _ = _records([0.0, 0.0, 0.0], pair_change=5.0)
    assert report.mutual_pairs(pairs, single_records=singles) == {"n_mutual": 0, "n_positive_total": 0,
                                                                  "n_unordered_pairs": 3}
    assert report.per_task_frame(pairs, single_records=singles).loc[0, "pair total (%)"] == "-12.0"
    assert report.per_task_frame([], single_records=singles).empty
