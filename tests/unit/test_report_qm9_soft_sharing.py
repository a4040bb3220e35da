"""factorlab.report.qm9_soft_sharing: the soft-sharing chapter's frames, Δm against the λ = 0 run
of the same seed, λ chosen on validation, the verdicts and the glued values, on smoke-profile
records (the smoke grid trained into a temporary store) and on hand-built records on both sides
of every threshold: a paired difference just beyond and just within CLEAR_SE standard errors,
a best λ equal to and different from the journal's 0.1, a λ that beats both endpoints and one
that beats only one."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from report_smoke import train_smoke

from factorlab.mtl import delta_m
from factorlab.report import qm9_soft_sharing as report

matplotlib.use("Agg")

SQRT3 = math.sqrt(3)
E = (-1.0, 0.0, 1.0)  # per-seed offsets: sd 1, standard error 1/sqrt(3)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke records of qm9_soft_sharing (12 runs), in a temporary store."""
    return train_smoke("qm9_soft_sharing", tmp_path_factory.mktemp("store"))


def _rec(lam, seed: int, dm: float = 0.0, valid: float = 0.5, *, method: str = "l2", n_param: int = 1000,
         dist: float = 0.1, task_set: str = "cv_u") -> dict:
    """A hand-built record of the journal's pair whose two targets both change by ``dm`` % against
    a single-task MAE of 1 (so its Δm against a λ = 0 record with ``dm`` 0 is ``dm``)."""
    targets = ["Cv", "U"]
    mae = {t: 1.0 + dm / 100 for t in targets}
    loss = {t: v ** 2 / 10 for t, v in mae.items()}
    cfg = {"experiment": "qm9_soft_sharing", "profile": "cpu", "method": method, "task_set": task_set,
           "lam": lam if method == "l2" else None, "seed": seed, "targets": targets, "epochs": 10,
           "model_kwargs": {"layers": 4, "hidden": 64}}
    metrics = {"test_mae": mae, "valid_mae": dict(mae), "test_loss_std": loss, "valid_loss_std": dict(loss),
               "test_loss_std_total": sum(loss.values()), "valid_loss_std_total": sum(loss.values()),
               "mean_valid_mae_std": valid, "constrained_params": n_param, "lam": cfg["lam"]}
    return {"key": f"{method}-{lam}-{seed}", "config": cfg, "metrics": metrics,
            "history": {"distance": {"encoder.b": [1.0, dist / 2], "encoder.a": [1.0, dist]}},
            "model": {"n_train": 20000, "penalty_layers": ["encoder.a", "encoder.b"]},
            "provenance": {"device": "cpu (x86_64, 1 threads)"}}


def _path(dm: dict, valid: dict | None = None, seeds=(0, 1, 2)) -> list[dict]:
    """Records of the L2 path: ``dm[lam]`` per-seed Δm list (λ = 0 gets 0), ``valid[lam]`` the
    per-seed validation criterion (default 0.5), plus a cross-stitch run with Δm +1."""
    valid = valid or {}
    out = [_rec(0.0, s, 0.0, valid.get(0.0, [0.5] * 3)[i]) for i, s in enumerate(seeds)]
    for lam, values in dm.items():
        out += [_rec(lam, s, values[i], valid.get(lam, [0.5] * 3)[i]) for i, s in enumerate(seeds)]
    out += [_rec(None, s, 1.0, 0.6, method="cross_stitch") for s in seeds]
    return out


def _beats(ratio_ok: float, ratio_short: float) -> list[dict]:
    """λ = 0.01 clearly below both endpoints (|mean| = ``ratio_ok`` SE against λ = 0), λ = 0.1
    below both in the mean but only ``ratio_short`` SE below λ = 0, λ = 1 worse than single-task
    and better than hard sharing (beats only λ = ∞)."""
    return _path({0.01: [-ratio_ok / SQRT3 + e for e in E], 0.1: [-ratio_short / SQRT3 + e for e in E],
                  1.0: [1.0 + e for e in E], "inf": [10.0, 11.0, 12.0]})


def test_lambda_labels_keys_and_positions():
    assert [report.lam_label(x) for x in (0.0, 1e-4, 0.1, 100.0, math.inf, math.nan)] == \
        ["0", "0.0001", "0.1", "100", "∞", "cross-stitch"]
    assert [report.lam_key(x) for x in (0.0, 1e-5, 0.1, 100.0, math.inf, math.nan)] == \
        ["0", "1em05", "0p1", "100", "inf", "cs"]
    pos = report.lam_positions([0.0, 1e-2, 1.0, math.inf, math.nan])
    gap = 10 ** report.ENDPOINT_GAP
    assert pos[0.0] == pytest.approx(1e-2 / gap) and pos[math.inf] == pytest.approx(gap)
    assert pos["cross-stitch"] == pytest.approx(gap ** 2) and pos[1e-2] == 1e-2


def test_clearly_negative_at_the_threshold():
    assert report.CLEAR_SE == 2
    assert report.clearly_negative(-2.01, 1.0) and not report.clearly_negative(-1.99, 1.0)
    assert not report.clearly_negative(3.0, 1.0) and not report.clearly_negative(-5.0, math.nan)


def test_delta_m_is_paired_with_the_same_seeds_single_task_run():
    records = _beats(2.02, 1.98)
    records[1]["metrics"]["test_mae"] = {"Cv": 2.0, "U": 2.0}  # λ = 0, seed 1: a different reference
    f = report.runs_frame(records)
    at = f.set_index(["setting", "seed"]).delta_m
    assert at["0", 0] == at["0", 1] == 0.0
    assert at["∞", 0] == pytest.approx(10.0) and at["∞", 1] == pytest.approx(100 * ((1.11 - 2) / 2))
    assert at["cross-stitch", 2] == pytest.approx(1.0)
    t = report.target_frame(records)
    assert t[(t.setting == "∞") & (t.seed == 1) & (t.target == "Cv")].rel.iloc[0] == pytest.approx(-44.5)
    with pytest.raises(ValueError, match="no λ = 0"):
        report.runs_frame(records[3:])


def test_a_lambda_beats_both_just_beyond_two_standard_errors():
    f = report.runs_frame(_beats(2.02, 1.98))
    s = report.summary_frame(f).set_index("setting")
    assert s.loc["0.01", "vs0"] == pytest.approx(-2.02 / SQRT3) and s.loc["0.01", "vs0_se"] == pytest.approx(1 / SQRT3)
    assert s.loc["0.01", "vs0_n"] == 3 and s.loc["0.01", "dm_sd"] == pytest.approx(1.0)
    assert s.loc["0.01", "beats0"] and s.loc["0.01", "beatsinf"] and s.loc["0.01", "beats_both"]
    assert not s.loc["0.1", "beats0"] and s.loc["0.1", "beatsinf"] and s.loc["0.1", "beats_both_mean"]
    assert not s.loc["1", "beats0"] and s.loc["1", "beatsinf"] and not s.loc["1", "beats_both_mean"]  # only one
    assert s.loc["∞", "vsinf"] == 0.0 and not s.loc["0", "beats0"]
    v = report.beats_both_verdict(f, "cv_u")
    assert v == {"clear": ["0.01"], "mean_only": ["0.1"], "n_finite": 3, "verdict": "clearly", "cross_stitch": "no"}
    assert list(report.summary_table(f)["vs λ = 0, ± SE"])[:2] == ["+0.0 ± 0.0", "-1.2 ± 0.6 ✓"]


def test_no_lambda_beats_both_just_within_two_standard_errors():
    f = report.runs_frame(_beats(1.98, 1.5))
    v = report.beats_both_verdict(f, "cv_u")
    assert v["verdict"] == "in the mean only" and v["clear"] == [] and v["mean_only"] == ["0.01", "0.1"]
    one_sided = report.runs_frame(_path({0.01: [-3.0 + e / 10 for e in E], "inf": [-10.0, -11.0, -12.0]}))
    s = report.summary_frame(one_sided).set_index("setting")
    assert s.loc["0.01", "beats0"] and not s.loc["0.01", "beatsinf"]  # beats single-task, not hard sharing
    assert report.beats_both_verdict(one_sided, "cv_u")["verdict"] == "no"


def _journal(gap_ratio: float | None) -> list[dict]:
    """The path with the lowest validation criterion at λ = 1 (0.5 each seed) and λ = 0.1 above
    it by ``gap_ratio`` standard errors (None: λ = 0.1 is the best)."""
    if gap_ratio is None:
        valid = {0.1: [0.4, 0.4, 0.4], 1.0: [0.45] * 3}
    else:
        g = gap_ratio * 0.01 / SQRT3
        valid = {0.1: [0.5 + g + 0.01 * e for e in E], 1.0: [0.5] * 3}
    valid.update({0.0: [0.6] * 3, "inf": [0.7] * 3, 0.01: [0.55] * 3})
    return _path({0.01: [0.0] * 3, 0.1: [0.0] * 3, 1.0: [0.0] * 3, "inf": [5.0] * 3}, valid)


def test_journal_lambda_best_and_within_two_standard_errors():
    v = report.journal_lambda_verdict(report.runs_frame(_journal(None)))
    assert v["best"] == 0.1 and v["is_journal"] and v["within"] == "yes" and v["gap"] == 0.0
    assert v["N"] == 1000 and v["best_pp"] == pytest.approx(100.0) and v["journal_pp"] == pytest.approx(100.0)
    assert "the journal's value" in v["text"]
    v = report.journal_lambda_verdict(report.runs_frame(_journal(1.98)))
    assert v["best"] == 1.0 and not v["is_journal"] and v["within"] == "yes" and v["gap_n"] == 3
    assert v["gap"] == pytest.approx(1.98 * 0.01 / SQRT3) and v["gap_se"] == pytest.approx(0.01 / SQRT3)
    assert "within 2 standard errors" in v["text"] and "N = 1,000" in v["text"]
    v = report.journal_lambda_verdict(report.runs_frame(_journal(2.02)))
    assert v["within"] == "no" and "more than 2 standard errors worse" in v["text"]
    one_seed = [r for r in _journal(2.02) if r["config"]["seed"] == 0]
    assert report.journal_lambda_verdict(report.runs_frame(one_seed))["within"] == "undetermined"
    no_journal = [r for r in _journal(2.02) if r["config"]["lam"] != 0.1]
    assert report.journal_lambda_verdict(report.runs_frame(no_journal))["within"] == "not trained"


def test_best_lambda_whole_path_and_finite_and_per_task():
    records = _journal(2.02)
    for r in records:  # Cv is best at λ = 0.01, U at hard sharing
        if r["config"]["lam"] == 0.01:
            r["metrics"]["valid_mae"]["Cv"] = 0.1
        if r["config"]["lam"] == "inf":
            r["metrics"]["valid_mae"]["U"] = 0.1
    f = report.runs_frame(records)
    assert report.best_lambda(f, "cv_u") == 1.0 and report.best_lambda(f, "cv_u", finite_only=True) == 1.0
    per = report.per_task_best_lambda(report.target_frame(records), "cv_u").set_index("target")
    assert per.loc["Cv", "setting"] == "0.01" and per.loc["U", "setting"] == "∞"
    assert per.loc["Cv", "valid_mae"] == pytest.approx(0.1) and per.loc["Cv", "valid_mae_0"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no finite λ"):
        report.best_lambda(report.runs_frame([r for r in records if r["config"]["lam"] in (0.0, "inf")]), "cv_u",
                           finite_only=True)


def test_glue_values_on_hand_built_records():
    v = report.glue_values(_beats(2.02, 1.98))
    assert all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in v.values())
    assert v["profile"] == "cpu" and v["n_seeds"] == 3 and v["seeds"] == "0, 1, 2" and v["n_lams"] == 3
    assert (v["lam_min"], v["lam_max"], v["clear_se"], v["journal_lambda"]) == ("0.01", "1", 2, 0.1)
    assert v["beats_both_cv_u"] == "clearly" and v["n_beats_both_clear_cv_u"] == 1
    assert v["n_beats_both_mean_cv_u"] == 2 and v["beats_both_lams_cv_u"] == "0.01"
    assert v["dm_inf_cv_u"] == pytest.approx(11.0) and v["dm_inf_cv_u_sd"] == pytest.approx(1.0)
    assert v["dm_cs_cv_u"] == pytest.approx(1.0) and v["dm_cs_cv_u_sd"] == 0.0
    assert v["dm_min_lam_cv_u"] == "0.01" and v["dm_min_cv_u"] == pytest.approx(-2.02 / SQRT3)
    assert v["best_finite_lam_cv_u"] == "0.01"  # every validation criterion ties at 0.5: the smallest λ
    assert v["best_lam_cv_u"] == "0" and v["best_finite_lam_pp_cv_u"] == pytest.approx(10.0)
    assert v["chosen_beats0_cv_u"] == "yes" and v["chosen_vs0_cv_u_se"] == pytest.approx(1 / SQRT3)
    assert v["dist0_cv_u"] == pytest.approx(0.075) and v["N_cv_u"] == "1,000"
    assert v["journal_pp"] == pytest.approx(100.0)
    assert v["journal_best_lam_J"] == 0.1 and v["journal_best_total"] == 0.0654
    assert v["journal_span_pct"] == pytest.approx(100 * (0.1059 / 0.0654 - 1))
    assert v["ours_loss_U"] == pytest.approx(v["ours_total"] / 2) and v["ours_U_share_pct"] == pytest.approx(50.0)
    assert "nash11" not in " ".join(v)  # no runs of that task set


def test_endpoint_gap_pairs_the_largest_lambda_with_hard_sharing_by_seed():
    """The largest finite λ against λ = ∞: paired Δm difference, training MSE above hard
    sharing's (%), and the distance at that λ; NaN without hard-sharing runs."""
    recs = _path({1.0: [5.0, 6.0, 10.0], 100.0: [20.0, 22.0, 27.0], "inf": [10.0, 11.0, 12.0]})
    train = {(1.0, 0): 0.1, (100.0, 0): 0.12, (100.0, 1): 0.13, (100.0, 2): 0.15, ("inf", 0): 0.1,
             ("inf", 1): 0.1, ("inf", 2): 0.1}
    for r in recs:
        c = r["config"]
        r["history"]["train_mse"] = {"Cv": [1.0, 2 * train.get((c["lam"], c["seed"]), 0.1)], "U": [1.0, 0.0]}
        if c["lam"] == 100.0:
            r["history"]["distance"] = {"encoder.a": [1.0, 2e-5], "encoder.b": [1.0, 4e-5]}
    f = report.runs_frame(recs)
    assert f.train_mse.tolist()[:1] == [pytest.approx(0.1)]
    g = report.endpoint_gap(f, "cv_u")
    assert g["lam"] == 100.0 and g["n"] == 3
    assert g["dm"] == pytest.approx(12.0) and g["dm_se"] == pytest.approx(np.std([10, 11, 15], ddof=1) / SQRT3)
    assert g["train_pct"] == pytest.approx(100 * np.mean([0.2, 0.3, 0.5]))
    assert g["train_pct_se"] == pytest.approx(100 * np.std([0.2, 0.3, 0.5], ddof=1) / SQRT3)
    assert g["distance"] == pytest.approx(3e-5)
    v = report.glue_values(recs)
    assert (v["gap_lam_cv_u"], v["gap_dm_cv_u"], v["gap_dist_cv_u"]) == ("100", pytest.approx(12.0), pytest.approx(3e-5))
    no_inf = report.runs_frame([r for r in recs if r["config"]["lam"] != "inf"])
    assert math.isnan(report.endpoint_gap(no_inf, "cv_u")["dm"])


def test_single_task_agreement_compares_the_lambda_zero_runs_with_qm9_single_task():
    """λ = 0 runs against the qm9_single_task reference of the same seed: identical, a
    difference in %, no common seed, and another budget refused."""
    recs = _path({1.0: [1.0, 2.0, 3.0]})  # λ = 0 runs: MAE 1.0 on Cv and U, seeds 0-2

    def stl(seed, cv=1.0, epochs=10):
        return {"config": {"seed": seed, "model": "gine", "epochs": epochs, "targets": ["Cv", "U"]},
                "metrics": {"test_mae": {"Cv": cv, "U": 1.0}}}

    same = report.single_task_agreement(recs, [stl(0), stl(1)])
    assert (same["identical"], same["seeds"], same["targets"], same["max_diff_pct"]) == (True, 2, 2, 0.0)
    assert same["verdict"] == "identical: every test MAE of the λ = 0 runs equals qm9_single_task's exactly (2 seed(s), 2 targets)"
    off = report.single_task_agreement(recs, [stl(0), stl(1, cv=0.8)])
    assert not off["identical"] and off["max_diff_pct"] == pytest.approx(25.0)
    assert off["verdict"].startswith("not identical: the test MAEs of the λ = 0 runs differ by up to 25 %")
    none = report.single_task_agreement(recs, [stl(7)])
    assert none["seeds"] == 0 and none["verdict"].startswith("not measured")
    with pytest.raises(ValueError, match="differs from qm9_soft_sharing's budget in epochs"):
        report.single_task_agreement(recs, [stl(0, epochs=20)])
    v = report.glue_values(recs, [stl(0), stl(1), stl(2)])
    assert (v["stl_identical"], v["stl_seeds"], v["stl_targets"], v["stl_max_diff_pct"]) == ("yes", 3, 2, 0.0)


def test_journal_table_is_the_journals():
    jt = report.journal_table()
    assert list(jt["λ_J (journal)"]) == [0.001, 0.01, 0.1, 1.0]
    assert (jt["C_V loss"] + jt["U_298 loss"] - jt["total loss"]).abs().max() < 2e-4  # its total is the sum
    assert jt.loc[jt["total loss"].idxmin(), "λ_J (journal)"] == report.JOURNAL_LAMBDA


def test_smoke_frames_verdicts_and_figures(smoke):
    assert len(smoke) == 12
    f, t, d = report.runs_frame(smoke), report.target_frame(smoke), report.distance_frame(smoke)
    assert report.task_sets(f) == ["cv_u", "nash11"]
    assert (f[f.setting == "0"].delta_m == 0).all()
    hard = next(r for r in smoke if r["config"]["lam"] == "inf" and r["config"]["task_set"] == "nash11")
    single = next(r for r in smoke if r["config"]["lam"] == 0 and r["config"]["task_set"] == "nash11")
    dm = 100 * delta_m(hard["metrics"]["test_mae"], single["metrics"]["test_mae"])
    assert f[(f.task_set == "nash11") & (f.setting == "∞")].delta_m.iloc[0] == pytest.approx(dm)
    assert (d[d.setting == "∞"].distance == 0).all() and (d[d.setting == "0"].distance > 0).all()
    assert list(d[(d.task_set == "cv_u") & (d.setting == "0")].layer)[0] == "node_in"  # module order
    q = report.journal_quantities(f)
    assert list(q["λ (ours)"]) == ["0", "0.01", "1", "100", "∞", "cross-stitch"]
    assert q.loc[1, "λ N"] == f"{0.01 * f.N.iloc[0]:.3g}"
    per = report.per_task_best_lambda(t, "nash11")
    assert len(per) == 11 and set(per.setting) <= {"0", "0.01", "1", "100", "∞"}
    v = report.glue_values(smoke)
    assert all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in v.values())
    assert v["profile"] == "smoke" and v["n_runs"] == 12 and v["journal_within"] == "not trained"
    assert v["n_best_zero_nash11"] + v["n_best_finite_nash11"] + v["n_best_inf_nash11"] == 11
    assert v["beats_both_cv_u"] in ("no", "in the mean only")  # one seed: never clear
    assert v["N_cv_u"] == f"{f.N.iloc[0]:,}" and v["journal_pp"] == pytest.approx(0.1 * f.N.iloc[0])
    fig = report.lambda_path_figure(f)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["L2 path, Cv and U (the journal's pair)", "cross-stitch, Cv and U (the journal's pair)",
                      "L2 path, 11 targets (Nash-MTL set)", "cross-stitch, 11 targets (Nash-MTL set)"]
    assert [x.get_text() for x in fig.axes[0].get_xticklabels()][0] == "0\nsingle-task"
    fig = report.target_curves_figure(t)
    assert len(fig.axes) == 2 and len(fig.axes[1].get_legend_handles_labels()[1]) == 11
    fig = report.distance_figure(d)
    assert len(fig.axes) == 2 and len(fig.axes[1].get_legend_handles_labels()[1]) == len(hard["history"]["distance"])
