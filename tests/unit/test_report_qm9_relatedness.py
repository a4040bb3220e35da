"""Report of the chapter "Which tasks help each other" (factorlab.report.qm9_relatedness), on
hand-built records: orientation of the measures, costs, Spearman against scipy, the bootstrap
over task pairs, the gains from pair records, the journal's claim in all its verdicts, the
benchmark frame paired per seed, the clustered encoder-swap figure and every glued value."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from factorlab import literature
from factorlab.experiments.qm9_common import NASH11
from factorlab.mtl.relatedness import Relatedness
from factorlab.report import qm9_relatedness as rep

TASKS = ["a", "b", "c", "d", "e"]


def _frame(values, tasks=TASKS) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(values, float), index=tasks, columns=tasks)


def _gains(seed=0, tasks=TASKS) -> pd.DataFrame:
    g = np.random.default_rng(seed).normal(size=(len(tasks), len(tasks))) * 10
    np.fill_diagonal(g, np.nan)
    return _frame(g, tasks)


def _rel_record(seed: int, matrices: dict[str, pd.DataFrame], task_set="nash11", **timing) -> dict:
    measures = {n: Relatedness(n, m, 1.0 + k).to_record() for k, (n, m) in enumerate(matrices.items())}
    t = {"measure_s": {n: 1.0 + k for k, n in enumerate(matrices)}, "hard_network_s": 100.0,
         "single_stack_s": 300.0, **timing}
    labels = list(next(iter(matrices.values())).index)
    return {"config": {"task_set": task_set, "seed": seed, "targets": labels},
            "metrics": {"measures": measures, "single_test_mae": {t_: 1.0 for t_ in labels}}, "timing": t}


# --- orientation, means, costs ----------------------------------------------------------------------

def test_orient_takes_absolute_correlations_and_negates_encoder_swap():
    m = _frame(np.arange(25).reshape(5, 5) - 12)
    assert (rep.orient("pearson_raw", m) == m.abs()).all().all()
    assert (rep.orient("encoder_swap", m) == 1 - m).all().all()
    assert (rep.orient("tag_affinity", m) == m).all().all()
    from factorlab.mtl.relatedness import affinity

    assert all((rep.orient(n, m) == affinity(n, m)).all().all() for n in rep.MEASURES)
    with pytest.raises(ValueError, match="unknown measure 'cosine'"):
        rep.orient("cosine", m)


def test_cost_adds_the_training_each_measure_needs():
    mats = {n: _gains() for n in ("pearson_raw", "gradient_cosine", "tag_affinity", "encoder_swap")}
    recs = [_rel_record(s, mats) for s in (0, 1)]  # own seconds 1, 2, 3, 4
    c = rep.cost_frame(recs).set_index("measure")
    assert list(c.index) == ["pearson_raw", "gradient_cosine", "tag_affinity", "encoder_swap"]
    assert c.loc["pearson_raw", "total_s"] == 1.0
    # the probed network less both probes' seconds (2 + 3), plus the probe itself
    assert c.loc["gradient_cosine", "training_s"] == 95.0 and c.loc["tag_affinity", "total_s"] == 98.0
    assert c.loc["encoder_swap", "total_s"] == 304.0 and c.loc["encoder_swap", "seeds"] == 2


def test_mean_matrix_averages_seeds_ignoring_nan():
    a, b = _frame(np.ones((5, 5))), _frame(3 * np.ones((5, 5)))
    b.iloc[0, 1] = np.nan
    m = rep.mean_matrix({0: a, 1: b})
    assert m.iloc[0, 1] == 1.0 and m.iloc[2, 3] == 2.0


# --- rank correlation ---------------------------------------------------------------------------------

def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, 40).astype(float), rng.normal(size=40)
    assert rep.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert math.isnan(rep.spearman([1, 1, 1], [1, 2, 3]))


def test_rank_correlation_is_one_for_the_gains_themselves_and_its_bootstrap_is_seeded():
    g = _gains()
    same = rep.rank_correlation(g, g, n_boot=200)
    assert same["rho"] == pytest.approx(1.0) and same["lo"] == pytest.approx(1.0) and same["pairs"] == 10
    flip = rep.rank_correlation(-g, g, n_boot=200)
    assert flip["rho"] == pytest.approx(-1.0)
    noisy = g + _gains(5) * 2
    r1, r2 = rep.rank_correlation(noisy, g, n_boot=300), rep.rank_correlation(noisy, g, n_boot=300)
    assert r1 == r2 and r1["lo"] <= r1["rho"] <= r1["hi"] and r1["hi"] - r1["lo"] > 0.05
    with pytest.raises(ValueError, match="n_boot"):
        rep.rank_correlation(g, g, n_boot=0)


def test_noise_ceiling_compares_seeds_pairwise():
    g = _gains()
    assert math.isnan(rep.noise_ceiling({0: g})["rho"]) and rep.noise_ceiling(None)["seed_pairs"] == 0
    c = rep.noise_ceiling({0: g, 1: g, 2: -g})
    assert c["seed_pairs"] == 3 and c["hi"] == pytest.approx(1.0) and c["lo"] == pytest.approx(-1.0)
    assert c["rho"] == pytest.approx(-1 / 3)


# --- gains from pair records ----------------------------------------------------------------------

def _pair_records(g: pd.DataFrame, single: dict[str, float], seed=0, drop=None) -> list[dict]:
    tasks = list(g.index)
    recs = []
    for i, a in enumerate(tasks):
        for b in tasks[i + 1:]:
            if drop == (a, b):
                continue
            mae = {b: single[b] * (1 - g.loc[a, b] / 100), a: single[a] * (1 - g.loc[b, a] / 100)}
            recs.append({"config": {"targets": [b, a], "seed": seed},
                         "metrics": {"test_mae": mae}, "timing": {"train_s": 2.0, "eval_s": 0.5}})
    return recs


def test_gain_matrices_recover_the_gains_and_skip_incomplete_seeds():
    g = _gains()
    single = {t: 1.0 + k for k, t in enumerate(TASKS)}
    recs = _pair_records(g, single, 0) + _pair_records(g, single, 1, drop=("a", "b"))
    got = rep.gain_matrices(recs, {0: single, 1: single}, TASKS)
    assert list(got) == [0]
    np.testing.assert_allclose(got[0].to_numpy(), g.to_numpy(), atol=1e-9)
    assert rep.pair_gain_cost_s(recs[:10], TASKS) == 25.0


def test_gains_cover_the_pair_targets_against_the_single_task_reference():
    tasks = NASH11[:3]
    g = _gains(1, tasks)
    ref = {t: 2.0 for t in tasks}
    recs = [{**r, "config": {**r["config"], "sharing": "hard"}} for r in _pair_records(g, ref)]
    stl = [{"config": {"seed": 0, "model": "gine"}, "metrics": {"test_mae": {**ref, "gap": 1.0}}},
           {"config": {"seed": 1, "model": "gine"}, "metrics": {"test_mae": {"mu": 1.0}}},  # incomplete
           {"config": {"seed": 0, "model": "schnet"}, "metrics": {"test_mae": {t: 9.0 for t in tasks}}}]
    assert rep.pair_tasks(recs) == tasks
    reference = rep.reference_from_records(stl, tasks)
    assert list(reference) == [0] and reference[0]["mu"] == 2.0  # SchNet left out
    got = rep.gain_matrices(recs, reference)
    np.testing.assert_allclose(got[0].to_numpy(), g.to_numpy(), atol=1e-9)
    assert rep.gain_matrices(recs, {}) == {}


def test_stack_consistency():
    mats = {"pearson_raw": _frame(np.eye(11), NASH11)}
    rel = [_rel_record(s, mats) for s in (0, 1)]  # single_test_mae 1.0 everywhere
    stl = [{"config": {"seed": 0, "model": "gine"}, "metrics": {"test_mae": {t: 1.0 for t in NASH11}}}]
    same = rep.stack_consistency(rel, stl)
    assert same["identical"] and same["seeds"] == 1 and same["max_diff_pct"] == 0
    assert same["verdict"].startswith("identical")
    stl[0]["metrics"]["test_mae"]["mu"] = 1.25
    other = rep.stack_consistency(rel, stl)
    assert not other["identical"] and other["max_diff_pct"] == pytest.approx(20.0)
    assert other["verdict"].startswith("not identical: the test MAEs of the relatedness stack differ by up to 20 %")
    assert rep.stack_consistency(rel, [])["verdict"].startswith("not measured")


def test_rank_matrix_scales_off_diagonal_ranks_to_the_unit_interval():
    m = _frame(np.arange(25, dtype=float).reshape(5, 5))
    r = rep.rank_matrix(m).to_numpy()
    assert np.isnan(np.diag(r)).all() and np.nanmin(r) == 0 and np.nanmax(r) == 1
    assert r[0, 1] < r[0, 2] < r[1, 0]


# --- the journal's claim --------------------------------------------------------------------------

def test_claim_verdicts():
    rng = np.random.default_rng(3)
    r = rng.uniform(-1, 1, (5, 5))
    r = _frame((r + r.T) / 2)
    assert rep.uncorrelated_claim(None, None)["verdict"].startswith("not measured")
    assert rep.uncorrelated_claim(r, {})["verdict"].startswith("not measured: no complete qm9_pairs")
    helps = r.abs() * 20 - 4  # uncorrelated pairs lose, the rest gain
    v = rep.uncorrelated_claim(r, {0: helps}, n_boot=300)
    assert v["verdict"].startswith("supported") and v["rho"] == pytest.approx(1.0)
    assert v["gain_uncorrelated"] < 0 < v["gain_correlated"]
    assert v["n_uncorrelated"] + v["n_correlated"] == 20
    a = r.abs().to_numpy()[~np.eye(5, dtype=bool)]
    assert v["harm_uncorrelated"] == pytest.approx((a < 0.2).sum() / (a < 0.3).sum()) and v["harm_correlated"] == 0.0
    v = rep.uncorrelated_claim(r, {0: r.abs() * 20 - 40}, n_boot=300)  # the same link, but every pair loses
    assert v["verdict"].startswith("partly supported: ") and v["gain_correlated"] < 0
    assert "100% of them losing" in v["verdict"]
    v = rep.uncorrelated_claim(r, {0: -r.abs()}, n_boot=300)
    assert v["verdict"].startswith("contradicted") and v["rho"] == pytest.approx(-1.0)
    flat = _frame(np.where(np.eye(5, dtype=bool), np.nan, 0.0)) + _gains(9) * 1e-3
    v = rep.uncorrelated_claim(r, {0: flat}, n_boot=300)
    assert v["verdict"].startswith(("not supported", "supported", "contradicted"))


def test_pearson_verdict():
    def pred(rows):
        return pd.DataFrame([{"measure": m, "label": rep.MEASURES[m], "total_s": 1.0, "rho": r, "lo": lo,
                              "hi": hi, "pairs": 55} for m, r, lo, hi in rows])
    nan = math.nan
    assert rep.pearson_verdict(pred([("pearson_raw", nan, nan, nan), ("encoder_swap", nan, nan, nan)])
                               ).startswith("not measured")
    v = rep.pearson_verdict(pred([("pearson_raw", 0.1, 0.0, 0.2), ("encoder_swap", 0.6, 0.4, 0.8)]))
    assert v.startswith("supported, clearly:")
    v = rep.pearson_verdict(pred([("pearson_raw", 0.1, 0.0, 0.5), ("encoder_swap", 0.3, 0.1, 0.6)]))
    assert v.startswith("supported:")
    v = rep.pearson_verdict(pred([("pearson_raw", 0.3, 0.1, 0.5), ("encoder_swap", 0.6, 0.4, 0.8),
                                  ("tag_affinity", 0.1, -0.1, 0.3)]))
    assert v.startswith("not supported: 1 of 2 other measures")
    paired = pd.DataFrame([{"measure": "encoder_swap", "label": "", "diff": 0.3, "lo": 0.1, "hi": 0.5, "pairs": 55,
                            "clear": True},
                           {"measure": "tag_affinity", "label": "", "diff": -0.2, "lo": -0.4, "hi": 0.1, "pairs": 55,
                            "clear": False}])
    v = rep.pearson_verdict(pred([("pearson_raw", 0.3, 0.1, 0.5), ("encoder_swap", 0.6, 0.4, 0.8),
                                  ("tag_affinity", 0.1, -0.1, 0.3)]), paired=paired)
    assert v.startswith("not supported: 1 of 2 other measures have a lower ρ than |Pearson| (point estimates), "
                        "0 of them clearly") and "and 1 a clearly higher ρ" in v


def test_rank_correlation_difference_resamples_the_same_pairs():
    g = _gains(1)
    noisy = g + _gains(2) * 0.5
    d = rep.rank_correlation_difference(g, noisy, g, n_boot=300)
    point = rep.rank_correlation(g, g)["rho"] - rep.rank_correlation(noisy, g)["rho"]
    assert d["diff"] == pytest.approx(point) and d["pairs"] == 10 and d["lo"] <= d["diff"] <= d["hi"]
    same = rep.rank_correlation_difference(noisy, noisy, g, n_boot=100)  # paired: every draw is exactly 0
    assert (same["diff"], same["lo"], same["hi"], same["clear"]) == (0.0, 0.0, 0.0, False)
    assert rep.rank_correlation_difference(g, -g, g, n_boot=100)["clear"]  # +1 against -1
    assert d == rep.rank_correlation_difference(g, noisy, g, n_boot=300)  # seeded
    with pytest.raises(ValueError, match="n_boot"):
        rep.rank_correlation_difference(g, g, g, n_boot=0)
    mats = {"encoder_swap": {0: 1 - g}, "pearson_raw": {0: noisy}, "tag_affinity": {0: -g}}
    f = rep.paired_rho_frame(mats, {0: g}, "encoder_swap", n_boot=100).set_index("measure")
    assert list(f.index) == ["pearson_raw", "tag_affinity"] and (f["diff"] < 0).all() and f.loc["tag_affinity", "clear"]
    assert rep.paired_rho_frame(mats, None, "encoder_swap").empty


def test_group_gain_difference_bootstraps_the_two_groups():
    r = _frame(np.full((5, 5), 0.5))
    r.iloc[0, 1] = r.iloc[1, 0] = 0.1  # one uncorrelated pair
    g = _frame(np.where(np.eye(5, dtype=bool), np.nan, 1.0))
    g.iloc[0, 1], g.iloc[1, 0] = -4.0, -2.0
    out = rep.group_gain_difference(r, {0: g}, n_boot=200)
    assert (out["uncorrelated"], out["correlated"], out["diff"]) == (-3.0, 1.0, -4.0)
    assert out["correlated_lo"] == out["correlated_hi"] == 1.0  # every correlated entry is 1
    assert out["diff_lo"] == out["diff_hi"] == -4.0 and out["clear"]  # draws without the pair give NaN, skipped


# --- benchmark frame ---------------------------------------------------------------------------------

def _mtl(method: str | None, seed: int, scale: float) -> dict:
    cfg = {"seed": seed, "n_train": 20000, "epochs": 10, **({"weighting": method} if method else {})}
    return {"config": cfg, "metrics": {"test_mae": {t: scale for t in NASH11}}}


def test_benchmark_frame_pairs_each_run_with_its_seeds_single_task():
    stl = [{"config": {"seed": 0, "model": "gine"}, "metrics": {"test_mae": {t: 1.0 for t in NASH11[:5]}}},
           {"config": {"seed": 0, "model": "gine"}, "metrics": {"test_mae": {t: 1.0 for t in NASH11[5:]}}},
           {"config": {"seed": 1, "model": "gine"}, "metrics": {"test_mae": {t: 2.0 for t in NASH11}}}]
    equal = [_mtl(None, s, 3.0) for s in (0, 1, 2)]  # seed 2 has no single-task reference
    weighted = [_mtl("famo", 0, 1.5), _mtl("uncertainty", 0, 0.5)]
    f = rep.benchmark_frame(weighted, equal, stl, NASH11)
    assert len(f) == 4 and set(f.seed) == {0, 1}
    s = rep.benchmark_summary(f).set_index("method")
    assert s.loc["equal", "mean"] == pytest.approx((200 + 50) / 2) and s.loc["equal", "seeds"] == 2
    assert s.loc["equal", "se"] == pytest.approx(np.std([200, 50], ddof=1) / np.sqrt(2))
    assert s.loc["famo", "mean"] == pytest.approx(50) and math.isnan(s.loc["famo", "se"])
    assert s.loc["uncertainty", "worse"] == 0 and s.loc["famo", "worse"] == 11
    table = rep.benchmark_table(rep.benchmark_summary(f))
    assert len(table) == 3 + len(literature.QM9_MTL_PUBLISHED)
    assert table.source.str.startswith("cited:").sum() == len(literature.QM9_MTL_PUBLISHED)
    assert "+177.6" in set(table[rep.BENCH_DM]) and set(table.setting[:3]) == {""}
    assert "mean ± SE" in rep.BENCH_DM and table[rep.BENCH_DM].iloc[0] == "+125.0 ± 75.0"
    assert table.setting.iloc[-1] == "MPNN (Gilmer et al.) + set2set, 110,000 train, 300 epochs (plateau)"
    cfg = {"model": "gine", "model_kwargs": {"layers": 4, "hidden": 64}, "n_train": 20000, "epochs": 10,
           "schedule": "cosine"}
    assert rep.our_setting([{"config": cfg}]) == "GINE 4x64, 20,000 train, 10 epochs (cosine)"


def test_the_reference_is_the_experiments_one_and_refuses_another_budget():
    """The chapter's reference is qm9_pairs.reference_from_records itself; the benchmark frame, its
    target table, the pair gains and the stack check compare it with their runs' budgets."""
    from factorlab.experiments.qm9_pairs import reference_from_records

    assert rep.reference_from_records is reference_from_records
    stl = [{"config": {"seed": 0, "model": "gine", "epochs": 10, "targets": list(NASH11)},
            "metrics": {"test_mae": {t: 1.0 for t in NASH11}}}]
    famo = _mtl("famo", 0, 1.5)
    famo["config"].update(experiment="qm9_weighting", epochs=12)
    msg = (r"^the single-task record of \[.*\] \(seed 0\) differs from qm9_weighting's budget in epochs: "
           r"Δm and pair gains need the same budget$")
    with pytest.raises(ValueError, match=msg):
        rep.benchmark_frame([famo], [], stl, NASH11)
    with pytest.raises(ValueError, match=msg):
        rep.benchmark_target_table([famo], [], stl, NASH11)
    assert rep.benchmark_frame([famo], [], [], NASH11).empty  # no reference: no row
    famo["config"]["epochs"] = 10
    assert rep.benchmark_frame([famo], [], stl, NASH11).delta_m.tolist() == pytest.approx([50.0])
    rel = [_rel_record(0, {"pearson_raw": _frame(np.eye(11), NASH11)})]
    rel[0]["config"].update(experiment="qm9_relatedness", epochs=3)
    with pytest.raises(ValueError, match="differs from qm9_relatedness' budget in epochs"):
        rep.stack_consistency(rel, stl)


def test_benchmark_target_table_is_in_the_benchmarks_units():
    stl = [{"config": {"seed": s, "model": "gine"}, "metrics": {"test_mae": {t: 0.5 for t in NASH11}}} for s in (0, 1)]
    t = rep.benchmark_target_table([_mtl("famo", 0, 0.25)], [_mtl(None, 0, 1.0), _mtl(None, 1, 2.0)], stl, NASH11)
    t = t.set_index("target")
    assert t.loc["homo", "unit"] == "meV" and t.loc["homo", "single-task (ours)"] == "500"
    assert t.loc["mu", "unit"] == "D" and t.loc["mu", "equal weighting (LS) (ours)"] == "1.5"
    assert t.loc["U0_atom", "FAMO (ours)"] == "250" and "uncertainty weighting (UW) (ours)" not in t.columns
    assert t.loc["homo", "single-task (Navon et al., cited)"] == "60.6"
    big = rep.benchmark_target_table([], [_mtl(None, 0, 1.23456)], [], NASH11).set_index("target")
    assert big.loc["U0_atom", "equal weighting (LS) (ours)"] == "1235" and "single-task (ours)" not in big.columns


# --- figures ---------------------------------------------------------------------------------------

def test_cluster_order_puts_identical_tasks_together_and_figures_draw():
    import matplotlib

    matplotlib.use("Agg")
    base = np.random.default_rng(2).uniform(0.5, 2, (6, 6))
    base[:, 4] = base[:, 1]
    base[4, :] = base[1, :]
    m = _frame(base, list("uvwxyz"))
    order = rep.cluster_order(np.log2(m))
    assert abs(order.index("v") - order.index("y")) == 1
    fig = rep.encoder_swap_figure({0: m, 1: m})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == order
    pred = rep.prediction_frame({"pearson_raw": {0: m}}, None, pd.DataFrame(columns=["measure", "total_s"]))
    assert pred.rho.isna().all()
    rep.prediction_figure(pred)
    rep.measures_figure({"pearson_raw": {0: m}, "encoder_swap": {0: m}})


# --- glue ---------------------------------------------------------------------------------------------

def test_glue_values_with_and_without_pair_records():
    rng = np.random.default_rng(4)
    mats = {n: _frame(rng.uniform(-1, 1, (11, 11)), NASH11) for n in rep.MEASURES}
    rel = [_rel_record(s, mats) for s in (0, 1, 2)]
    rel.append(_rel_record(0, {"encoder_swap": _frame(rng.uniform(0.5, 2, (19, 19)), list("abcdefghijklmnopqrs"))},
                           task_set="all19"))
    stl = [{"config": {"seed": s, "model": "gine"}, "metrics": {"test_mae": {t: 1.0 for t in NASH11}}} for s in (0, 1)]
    args = dict(weighting_records=[_mtl("famo", 0, 1.2)], equal_records=[_mtl(None, 0, 2.0)], stl_records=stl)
    v = rep.glue_values("smoke", rel, [], n_boot=50, **args)
    assert v["pairs_measured"] == 0 and v["n_pairs"] == 55 and v["best_measure"] == "not measured"
    assert v["claim_verdict"].startswith("not measured") and math.isnan(v["rho_encoder_swap"])
    assert (v["n_ordered"], v["n_gaining"]) == (0, 0) and math.isnan(v["gain_mean"]) and math.isnan(v["best_rho"])
    assert v["swap_tasks"] == 19 and v["dm_equal"] == pytest.approx(100) and v["dm_famo"] == pytest.approx(20)
    assert v["dm_uncertainty_seeds"] == 0 and v["pub_best_method"] == "GO4Align" and v["pub_equal"] == 177.6
    assert (v["our_n_train"], v["our_epochs"], v["pub_n_train"], v["pub_epochs"]) == ("20,000", 10, "110,000", 300)
    g = _gains(0, NASH11)
    v = rep.glue_values("smoke", rel, _pair_records(g, {t: 1.0 for t in NASH11}), n_boot=50, **args)
    assert v["pairs_measured"] == 1 and v["claim_verdict"].split(":")[0] in {"supported", "partly supported",
                                                                              "not supported", "contradicted"}
    off = g.to_numpy()[~np.eye(11, dtype=bool)]
    assert (v["n_ordered"], v["n_gaining"]) == (110, int((off > 0).sum()))
    assert v["gain_mean"] == pytest.approx(off.mean()) and v["gain_max"] == pytest.approx(off.max())
    assert all(np.isfinite(v[f"rho_{m}"]) for m in rep.MEASURES) and v["best_measure"] != "not measured"
    best = max(rep.MEASURES, key=lambda m: v[f"rho_{m}"])
    assert v["best_measure"] == rep.MEASURES[best] and v["best_rho"] == v[f"rho_{best}"]
    assert (v["best_lo"], v["best_hi"], v["best_cost_s"]) == (v[f"lo_{best}"], v[f"hi_{best}"], v[f"cost_{best}"])
    others = [m for m in rep.MEASURES if m != best]
    assert v["best_n_others"] == len(others) and 0 <= v["best_n_clear"] <= len(others)
    assert all(v[f"best_minus_{m}"] == pytest.approx(v[f"rho_{best}"] - v[f"rho_{m}"]) for m in others)
    assert all(v[f"best_minus_{m}_lo"] <= v[f"best_minus_{m}_hi"] for m in others)
    n_named = 0 if v["best_not_clear_of"] == "none" else len(v["best_not_clear_of"].split("; "))
    assert n_named == len(others) - v["best_n_clear"]
    assert v["pair_cost_quiet"] == "0 of the 55 records timed were taken on a quiet machine (55 predate load recording)"
    assert v["claim_diff"] == pytest.approx(v["claim_gain_uncorrelated"] - v["claim_gain_correlated"])
    assert v["claim_diff_lo"] <= v["claim_diff_hi"] and v["claim_diff_clear"] in {"clear", "not clear"}


def test_the_journal_sentences_are_quoted_verbatim():
    from factorlab.report import claims

    folder = claims.journals_dir()
    if folder is None:
        pytest.skip("the journals (../shared/journals) are not on this machine")
    text = claims.normalize((folder / claims.JOURNALS["journal2019soft"][0]).read_text(encoding="utf-8")).lower()
    for quote in (rep.JOURNAL_CLAIM, rep.PEARSON_CLAIM):
        assert claims.normalize(quote).lower() in text, quote


def test_every_glue_name_of_the_chapter_is_computed():
    """Each {glue:text} reference in the chapter's prose names a value of glue_values."""
    import json
    import re
    from pathlib import Path

    nb = Path(__file__).resolve().parents[2] / "notebooks" / "qm9_relatedness.ipynb"
    prose = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
    names = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", prose))
    rng = np.random.default_rng(6)
    rel = [_rel_record(0, {n: _frame(rng.uniform(-1, 1, (11, 11)), NASH11) for n in rep.MEASURES})]
    v = rep.glue_values("smoke", rel, [], [_mtl("famo", 0, 1.0)], [_mtl(None, 0, 1.0)], [], n_boot=10)
    assert names and names <= set(v), sorted(names - set(v))


# --- MRN's learned task correlation as one more measure ------------------------------------------------

def _corr(seed: int) -> np.ndarray:
    """A symmetric 11 x 11 correlation with distinct |off-diagonal| values, half of them negative."""
    k = len(NASH11)
    c = np.eye(k)
    iu = np.triu_indices(k, 1)
    vals = np.linspace(0.05, 0.95, len(iu[0]))[np.random.default_rng(seed).permutation(len(iu[0]))]
    c[iu] = vals * np.where(np.arange(len(vals)) % 2, -1.0, 1.0)
    return np.triu(c, 1) + np.triu(c, 1).T + np.eye(k)


def _mrn(seed: int, lam: float, valid: float, corr: np.ndarray, targets=NASH11, single_s=20.0) -> dict:
    """A qm9_tensor_mtl MRN record with what the reports read."""
    return {"config": {"method": "mrn", "lam": lam, "seed": seed, "targets": list(targets), "task_set": "nash11"},
            "metrics": {"test_mae": {t: 1.0 for t in targets}, "mean_valid_mae_std": valid,
                        "reference_check": {"equal": None}, "task_correlation": {"heads": corr.tolist()}},
            "model": {"params": 1000, "single_params": 5000},
            "timing": {"train_s": 10.0 + seed, "single_s": single_s, "factorize_s": 0.0}}


def _mrn_grid() -> list[dict]:
    """λ = 1e-3 wins on validation (seed-mean 0.5 vs 0.7); the other λ's matrices and timings
    differ, so reading them would show."""
    return ([_mrn(s, 1e-3, 0.5 + 0.1 * s, _corr(0)) for s in (0, 1)]
            + [_mrn(s, 1e-2, 0.7, -_corr(1) + 2 * np.eye(11), single_s=500.0) for s in (0, 1)])


def test_mrn_measure_is_the_learned_correlation_at_the_chosen_lambda():
    from factorlab.report.qm9_tensor_mtl import best_mrn_lambda

    tensor = _mrn_grid()
    assert best_mrn_lambda(tensor) == 1e-3
    assert best_mrn_lambda([_mrn(0, 1e-2, 0.5, _corr(0)), _mrn(0, 1e-3, 0.5, _corr(0))]) == 1e-3  # tie: smallest
    assert [r["config"]["lam"] for r in rep.mrn_runs(tensor)] == [1e-3, 1e-3]
    mats = rep.mrn_matrices(tensor)
    assert list(mats) == [0, 1]
    for m in mats.values():
        assert list(m.index) == list(m.columns) == NASH11
        assert (m.to_numpy() == _corr(0)).all()  # exactly the recorded matrix
    aff = rep.orient(rep.MRN_MEASURE, rep.mean_matrix(mats))
    assert (aff.to_numpy() == np.abs(_corr(0))).all()  # |C|: a negative correlation couples as tightly
    assert aff.loc["mu", "alpha"] == aff.loc["alpha", "mu"] == abs(_corr(0)[0, 1])
    # a run that lists its targets in another order is put back into NASH11's
    perm = list(reversed(range(11)))
    shuffled = _mrn(0, 1e-3, 0.5, _corr(0)[np.ix_(perm, perm)], targets=[NASH11[k] for k in perm])
    assert (rep.mrn_matrices([shuffled])[0].to_numpy() == _corr(0)).all()
    with pytest.raises(ValueError, match="expected 11 x 11"):
        rep.mrn_matrices([_mrn(0, 1e-3, 0.5, np.eye(3))])
    # it joins the nash11 measures (and only those), after the qm9_relatedness ones
    rel = [_rel_record(0, {"pearson_raw": _frame(np.eye(11), NASH11)})]
    assert list(rep.measure_matrices(rel, "nash11", tensor)) == ["pearson_raw", rep.MRN_MEASURE]
    assert rep.MRN_MEASURE not in rep.measure_matrices(rel, "all19", tensor)


def test_mrn_cost_is_its_stack_and_fine_tuning_at_the_chosen_lambda():
    c = rep.cost_frame([], "nash11", _mrn_grid()).set_index("measure")
    assert list(c.index) == [rep.MRN_MEASURE]
    row = c.loc[rep.MRN_MEASURE]
    assert (row.own_s, row.training_s, row.total_s, row.seeds) == (0.0, 20.0 + 10.5, 30.5, 2)
    assert rep.cost_frame([], "all19", _mrn_grid()).empty


def test_mrn_predicts_gains_monotone_in_its_absolute_correlation_with_rho_one():
    tensor = _mrn_grid()
    g = np.abs(_corr(0)) * 10  # larger |C|, larger gain; symmetric, distinct per pair
    np.fill_diagonal(g, np.nan)
    gains = {0: _frame(g, NASH11)}
    pred = rep.prediction_frame(rep.measure_matrices([], "nash11", tensor), gains,
                                rep.cost_frame([], "nash11", tensor), n_boot=20)
    r = pred.set_index("measure").loc[rep.MRN_MEASURE]
    assert [r.rho, r.lo, r.hi] == pytest.approx([1.0] * 3, abs=1e-12) and (r.pairs, r.total_s) == (55, 30.5)
    assert r.label == rep.LABELS[rep.MRN_MEASURE]
    assert rep.prediction_text(pred) == "ρ = +1.00 [+1.00, +1.00] over 55 task pairs"
    # through the pair records and the chapter's glue, the same (the gains rebuilt from MAEs)
    pairs = _pair_records(gains[0], {t: 1.0 for t in NASH11})
    stl = [{"config": {"seed": 0, "model": "gine"}, "metrics": {"test_mae": {t: 1.0 for t in NASH11}}}]
    rng = np.random.default_rng(7)
    rel = [_rel_record(0, {n: _frame(rng.uniform(-1, 1, (11, 11)), NASH11) for n in rep.MEASURES})]
    v = rep.glue_values("smoke", rel, pairs, [], [], stl, n_boot=20, tensor_records=tensor)
    assert v["rho_mrn_correlation"] == pytest.approx(1.0) and v["cost_mrn_correlation"] == 30.5
    assert v["mrn_rho"] == "ρ = +1.00 [+1.00, +1.00] over 55 task pairs" and v["n_mrn_seeds"] == 2
    assert v["best_measure"] == rep.LABELS[rep.MRN_MEASURE]
    assert v["cost_quiet"].startswith("0 of the 3 records timed")  # the relatedness record and MRN's two
    # the journal's Pearson sentence is judged on the qm9_relatedness measures alone, as on the claims page
    alone = rep.glue_values("smoke", rel, pairs, [], [], stl, n_boot=20)
    assert v["pearson_verdict"] == alone["pearson_verdict"] and "rho_mrn_correlation" not in alone
    assert rep.mrn_prediction_text(tensor, pairs, stl, n_boot=20) == v["mrn_rho"]


def test_without_mrn_runs_the_measure_is_absent():
    rel = [_rel_record(0, {"pearson_raw": _frame(np.eye(11), NASH11)})]
    not_mrn = [{**_mrn(0, 1e-3, 0.5, _corr(0)), "config": {**_mrn(0, 1e-3, 0.5, _corr(0))["config"],
                                                           "method": "laf", "lam": None}}]
    for tensor in ([], not_mrn):
        assert rep.mrn_matrices(tensor) == {} and rep.mrn_runs(tensor) == []
        assert list(rep.measure_matrices(rel, "nash11", tensor)) == ["pearson_raw"]
        assert rep.MRN_MEASURE not in set(rep.cost_frame(rel, "nash11", tensor).measure)
    v = rep.glue_values("smoke", rel, [], [], [], [], n_boot=10)
    assert v["mrn_rho"] == "not measured" and v["n_mrn_seeds"] == 0 and "rho_mrn_correlation" not in v
    assert rep.mrn_prediction_text([], [], []) == "not measured"
    assert rep.mrn_prediction_text(_mrn_grid(), [], []) == "not measured"  # runs, but no pair gains
