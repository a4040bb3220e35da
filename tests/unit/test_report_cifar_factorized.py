"""factorlab.report.cifar_factorized: the CIFAR chapter's frames, tables, figures, verdicts and
glued values, on smoke-profile records (trained into a temporary store) and on hand-built
records on both sides of each threshold (a paired difference of 1.9 and 2.1 standard errors;
training/test loss ratios around 0.5 and 0.85; the anchor's 2 standard errors)."""
from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest
from report_smoke import train_smoke

from factorlab.report import cifar_factorized as report

matplotlib.use("Agg")

SQRT3 = math.sqrt(3)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke records of the four CIFAR experiments, in a temporary store."""
    root = tmp_path_factory.mktemp("store")
    return {e: train_smoke(f"cifar_{e}", root) for e in ("baselines", "factorized", "long", "init")}


def _rec(family: str, acc: float, params: int, *, width: float = 0.5, wd: str = "usual", seed: int = 0,
         factor: int | None = None, compression: float = 1.0, net: str = "airbench") -> dict:
    fac = None if family == "dense" else {"family": family, **({"factor": factor} if factor else {})}
    return {"config": {"net": net, "family": family, "width": width, "wd_mode": wd, "seed": seed, "factorize": fac,
                       "dataset_variant": "cifar10-jpeg-q75"},
            "metrics": {"test_acc": acc / 100, "n_train": 5000, "n_test": 1000}, "model": {"params": params,
                                                                                         "compression": compression},
            "timing": {"train_s": 10.0}, "provenance": {"device": "cpu (x86_64, 1 threads)"}}


def _paired(family: str, factor: int, x: float, params: int, compression: float) -> list[dict]:
    """Three seeds of usual (50 %) and scaled (50 + x − 1, x, x + 1 %) weight decay: the paired
    difference has mean x and standard error 1/√3."""
    return [r for seed, d in enumerate((x - 1, x, x + 1)) for r in (
        _rec(family, 50.0, params, wd="usual", seed=seed, factor=factor, compression=compression),
        _rec(family, 50.0 + d, params, wd="scaled", seed=seed, factor=factor, compression=compression))]


def _hand():
    base = [_rec("dense", 45.0, 1000, width=0.125), _rec("dense", 65.0, 100000, width=0.5)]
    fact = (_paired("lowrank", 4, 1.9 / SQRT3, 5000, 2.0)  # +1.9 standard errors: not clear
            + _paired("lowrank", 20, -2.1 / SQRT3, 3000, 8.0))  # -2.1 standard errors: clear
    init = [_rec("dense", 35.0, 1000, width=0.125), _rec("dense", 58.0, 100000, width=0.5)]
    return base, fact, init


def _long(family: str, factor: int | None, train: float, test: float) -> dict:
    r = _rec(family, 70.0, 1000, factor=factor)
    r["history"] = {"epoch": [1, 2, 3], "train_eval_loss": [2.0, 1.0, train], "test_loss": [2.0, 1.5, test]}
    return r


def _anchor(profile: str, diff: float, se: float, device: str = "cpu") -> dict:
    stats = {"time_s_median": 10.0, "acc_mean": 0.6, "acc_std": 0.01}
    return {"config": {"profile": profile, "device": device, "ours_recipe": {"epochs": 8, "batch_size": 512},
                       "airbench_version": "0.1.8", "target_ratio": 1.2},
            "metrics": {"acc_diff": diff, "acc_diff_se": se, "n_ours": 5, "n_airbench": 5, "ratio": 0.97,
                        "n_train": 5000, "airbench": stats, "ours": stats, "target_ratio": 1.2, "time_ok": True,
                        "target_met": False},
            "model": {"channels": [16, 32, 32]}, "timing": {"threads": 1, "device_name": "NVIDIA H100"}}


def test_weight_decay_clear_at_two_standard_errors():
    base, fact, init = _hand()
    d = report.weight_decay_differences(report.runs_frame(fact))
    assert d.loc["lowrank (factor=4)", "mean"] / d.loc["lowrank (factor=4)", "se"] == pytest.approx(1.9)
    assert list(d.clear) == [True, False]  # factor=20 (-2.1 se) then factor=4 (+1.9 se), sorted by variant
    v = report.glue_values("cpu", base, fact, [_long("dense", None, 0.5, 1.0)], init, [], [])
    assert (v["n_scaled_better"], v["n_pairs"], v["n_clear"], v["n_clear_better"]) == (1, 2, 1, 0)
    assert v["wd_pattern"].startswith("The sign follows the compression: scaling raised the mean accuracy of every "
                                      "variant compressed 2.0× or less (whole network) and lowered it for every "
                                      "variant compressed 8.0× or more")
    table = report.weight_decay_table(report.runs_frame(fact), report.factorized_points(*map(report.runs_frame, (base, fact, init))))
    assert list(table["scaled − usual (points)"]) == ["-1.2 ± 0.6", "+1.1 ± 0.6"]
    assert list(table["usual (%)"]) == ["50.0 ± 0.0", "50.0 ± 0.0"] and list(table["params"]) == ["3,000", "5,000"]


def test_weight_decay_pattern_that_does_not_follow_compression():
    fm = pd.DataFrame({"variant": ["a", "b", "c"], "compression": [2.0, 4.0, 8.0]})
    d_mean = pd.Series({"a": -1.0, "b": 1.0, "c": -1.0})
    assert report.weight_decay_pattern(fm, d_mean) == ("The sign does not follow the compression ratio in a simple "
                                                       "way at this budget.")


def test_against_the_thinned_dense_net():
    base, fact, init = _hand()
    b, f, ni = map(report.runs_frame, (base, fact, init))
    fm = report.factorized_points(b, f, ni).set_index("variant")
    # the dense curves are linear in log parameters: 45 % at 1,000 and 65 % at 100,000 parameters
    # (identity start), 35 % and 58 % (random start)
    assert fm.loc["lowrank (factor=4)", "dense_same_size"].tolist() == pytest.approx([45 + 10 * math.log10(5)] * 2)
    assert fm.loc["lowrank (factor=20)", "dense_random_start"].tolist() == pytest.approx([35 + 11.5 * math.log10(3)] * 2)
    v = report.glue_values("cpu", base, fact, [_long("dense", None, 0.5, 1.0)], init, [], [])
    # only factor 20 with usual decay (50 % against 49.77 %) beats the thinned dense net
    assert v["thin_headline"] == ("Under this budget, factorizing beats thinning the dense network to the same size "
                                  "in 1 of 4 configurations.")
    assert (v["n_vs_dense"], v["n_below_dense"], v["vs_dense_worst"], v["vs_dense_best"]) == (4, 3, "-2.0", "+0.2")
    assert v["vs_dense_best_what"] == "lowrank (factor=20), weight decay usual"
    assert v["init_change_fact"] == "-7.0" and v["init_change_thin"] == "-10.0" and v["init_thin_widths"] == "0.125"
    assert v["n_cmp_random"] == 4 and v["n_beat_random"] == 4 and v["random_margin"] == "+7.0 to +9.5"
    assert v["ref_acc"] == 65.0 and v["ref_params"] == "100,000" and v["fact_max_params"] == "5,000"
    assert report.thin_headline(pd.DataFrame({"vs_dense": [0.1, 0.2]})).startswith(
        "Under this budget, every factorized variant beats")
    assert report.thin_headline(pd.DataFrame({"vs_dense": [0.0, -0.2]})).startswith(
        "Under this budget, factorizing every 3×3 convolution costs more accuracy")
    rows = report.init_comparison(b, ni)
    assert list(report.init_table(rows)["identity − random (points, ± SE)"]) == ["+10.0", "+7.0"]  # one pair: no SE
    assert list(rows.pairs) == [1, 1]
    # three seeds at width 0.5: identity 64, 65, 66 against random 58 each: differences 6, 7, 8
    base3 = [_rec("dense", a, 100000, width=0.5, seed=s) for s, a in enumerate((64.0, 65.0, 66.0))]
    init3 = [_rec("dense", 58.0, 100000, width=0.5, seed=s) for s in range(3)]
    rows = report.init_comparison(report.runs_frame(base3), report.runs_frame(init3))
    assert (rows["diff"].iloc[0], rows.pairs.iloc[0]) == (pytest.approx(7.0), 3)
    assert rows.diff_se.iloc[0] == pytest.approx(1 / SQRT3)  # sd 1 over √3
    assert list(report.init_table(rows)["identity − random (points, ± SE)"]) == ["+7.0 ± 0.6"]
    unpaired = report.init_comparison(report.runs_frame(base3), report.runs_frame(
        [_rec("dense", 58.0, 100000, width=0.5, seed=7)]))
    assert list(report.init_table(unpaired)["identity − random (points, ± SE)"]) == ["+7.0 (unpaired)"]


def test_overfit_verdicts_on_both_sides_of_their_bounds():
    assert [report.overfit_verdict(r) for r in (0.49, 0.5, 0.84, 0.85)] == [
        "overfits", "overfits a little", "overfits a little", "hardly overfits"]
    v = report.long_values([_long("dense", None, 0.49, 1.0), _long("lowrank", 4, 0.51, 1.0),
                            _long("lowrank", 20, 0.86, 1.0)])
    assert (v["long_dense_fit"], v["long_f4_fit"], v["long_f20_fit"]) == ("overfits", "overfits a little",
                                                                         "hardly overfits")
    assert v["long_conclusion"] == "Neither compressed network overfits within this budget"
    assert v["long_f4_train"] == 0.51 and v["long_epochs"] == 3 and v["long_f20_acc"] == pytest.approx(70.0)
    v = report.long_values([_long("dense", None, 0.9, 1.0), _long("lowrank", 20, 0.49, 1.0)])
    assert v["long_conclusion"].startswith("A compressed network can overfit: the factor-20 variant")


def test_long_values_over_seeds():
    """Three seeds a variant: means, the spread of the loss ratio, and how many runs overfit."""
    recs = [_long("dense", None, t, 1.0) for t in (0.1, 0.2, 0.3)] + \
        [_long("lowrank", 4, t, 1.0) for t in (0.4, 0.45, 0.6)] + [_long("lowrank", 20, t, 1.0) for t in (0.9, 1.0, 1.1)]
    v = report.long_values(recs)
    assert v["long_seeds"] == 3 and v["long_dense_train"] == pytest.approx(0.2) and v["long_dense_n"] == 3
    assert v["long_f4_ratio"] == pytest.approx(1.45 / 3) and v["long_f4_fit"] == "overfits"  # mean 0.483
    assert v["long_f4_overfit_runs"] == 2 and v["long_f20_overfit_runs"] == 0
    assert v["long_f20_ratio_sd"] == pytest.approx(0.1)
    assert v["long_conclusion"] == "A compressed network overfits in some runs only: the factor-4 variant in 2 of its 3"
    recs[5] = _long("lowrank", 4, 0.3, 1.0)
    assert report.long_values(recs)["long_conclusion"] == (
        "A compressed network can overfit: the factor-4 variant drives its training loss far below its test loss "
        "in every one of its 3 runs")


def test_anchor_verdict_at_two_standard_errors():
    assert report.anchor_values([_anchor("smoke", 0.0, 0.01)]) == {}  # no cpu record
    v = report.anchor_values([_anchor("full", 0.05, 0.01, "cuda"), _anchor("cpu", -0.019, 0.01)])
    assert v["anchor_cpu_verdict"] == "reaches airbench94's accuracy" and v["anchor_cpu_diff"] == "-1.90"
    assert v["anchor_cpu_noise"] == "inside twice its standard error" and v["anchor_cpu_se"] == "1.00"
    assert report.anchor_values([_anchor("cpu", -0.021, 0.01)])["anchor_cpu_verdict"] == "falls short of airbench94's accuracy"
    v = report.anchor_values([_anchor("cpu", 0.021, 0.01)])
    assert v["anchor_cpu_verdict"] == "is more accurate than airbench94"
    assert v["anchor_cpu_noise"] == "more than twice its standard error"
    text = report.anchor_summary([_anchor("cpu", 0.021, 0.01)])
    assert text.startswith("- **cpu, CPU**: accuracy ours − airbench94 +2.10 ± 1.00 points") and "not run yet" in text
    gpu = report.anchor_summary([_anchor("full", 0.0, 0.01, "cuda")])
    assert "**0.97×** (target ≤ 1.2×: met)" in gpu and "not run yet" not in gpu
    assert list(report.anchor_table([_anchor("cpu", 0.0, 0.01)]).method) == ["airbench94 (its package)",
                                                                             "ours (cifar_baselines)"]
    assert (v["anchor_cpu_version"], v["anchor_target_ratio"], v["anchor_cpu_quiet"]) == ("0.1.8", 1.2, "unknown")


def test_anchor_quiet_flag():
    quiet, busy = _anchor("cpu", 0.0, 0.01), _anchor("cpu", 0.0, 0.01)
    quiet["provenance"] = {"load": {"quiet": True}}
    busy["provenance"] = {"load": {"quiet": False}}
    assert set(report.anchor_table([quiet]).quiet) == {"yes"} and set(report.anchor_table([busy]).quiet) == {"no"}
    assert set(report.anchor_table([_anchor("cpu", 0.0, 0.01)]).quiet) == {"unknown"}
    assert report.anchor_values([quiet])["anchor_cpu_quiet"] == "yes"
    # a comparison measured over several processes: each seed pair's own flag, not the record's
    resumed = _anchor("cpu", 0.0, 0.01)
    resumed["provenance"] = {"load": {"quiet": True}}
    resumed["metrics"]["ours_runs"] = [{"seed": s, "load": {"quiet": q}} for s, q in enumerate((True, False, True))]
    assert report.anchor_quiet(resumed) == "2 of 3" and set(report.anchor_table([resumed]).quiet) == {"2 of 3"}
    assert report.anchor_values([resumed])["anchor_cpu_quiet"] == "2 of 3"
    resumed["metrics"]["ours_runs"][1].pop("load")  # a run without its own load: the record's flag
    assert report.anchor_quiet(resumed) == "yes"


def test_smoke_records(smoke):
    base, fact, long, init = (smoke[k] for k in ("baselines", "factorized", "long", "init"))
    mf = [{"metrics": {"speedup_min": 1.14, "speedup_max": 2.46, "n": 17}}]
    v = report.glue_values("smoke", base, fact, long, init, [], mf)
    f = report.runs_frame(fact)
    assert v["profile"] == "smoke" and v["fact_net"] == fact[0]["config"]["net"]
    assert v["fact_best"] == pytest.approx(f.groupby(["net", "variant", "wd_mode"]).acc.mean().max())
    assert (v["mf_min"], v["mf_max"], v["mf_n"], v["mf_quiet"]) == ("1.1", "2.5", 17, "unknown")
    runs = base + fact + long + init
    assert v["n_timed"] == len(runs) == v["n_quiet"] + v["n_not_quiet"] + v["n_load_unknown"]
    assert v["n_load_unknown"] == 0  # the store records the load of every new run
    assert (v["overfits_ratio"], v["overfits_little_ratio"]) == (0.5, 0.85)
    assert v["long_epochs"] == len(long[0]["history"]["epoch"]) and {"long_f4_fit", "long_f20_fit"} <= set(v)
    assert float(v["full_minutes"]) > 0 and "anchor_cpu_verdict" not in v
    fm = report.factorized_points(report.runs_frame(base), f, report.runs_frame(init))
    assert len(fm) == 9 and fm.seeds.eq(1).all()
    fig = report.accuracy_figure(report.runs_frame(base), f, fm, base[0]["config"]["dataset_variant"])
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel().endswith(", lossy)")
    fig = report.long_figure(long)
    assert len(fig.axes[0].lines) == 2 * len(long) + 2  # train and test per run, two empty style keys
    labels = [t.get_text() for t in fig.legends[0].get_texts()]  # one legend under the axes
    assert len(labels) == len(long) + 2 and labels[-2:] == ["training loss (clean)", "test loss"]
    assert fig.axes[0].get_legend() is None
    from factorlab.literature import CIFAR_PUBLISHED

    published = report.published_table()
    assert len(published) == len(CIFAR_PUBLISHED) and published["test accuracy (%)"][0] == "94.01"


def test_the_thinned_dense_net_is_clearly_ahead_only_beyond_two_standard_errors():
    """Three seeds per dense width (±1 point: the curve's standard error 1/√3 at every size):
    of the three factorized points below the curve by their means, only the one 3.4 standard
    errors below counts as clearly below."""
    base = [_rec("dense", acc + d, params, width=w, seed=seed) for w, acc, params in ((0.125, 45.0, 1000),
                                                                                       (0.5, 65.0, 100000))
            for seed, d in enumerate((-1.0, 0.0, 1.0))]
    _, fact, init = _hand()
    fm = report.factorized_points(*map(report.runs_frame, (base, fact, init))).set_index(["variant", "wd_mode"])
    usual4, scaled4 = fm.loc[("lowrank (factor=4)", "usual")], fm.loc[("lowrank (factor=4)", "scaled")]
    assert usual4.vs_dense_se == pytest.approx(1 / SQRT3)  # the factorized seeds agree exactly
    assert scaled4.vs_dense_se == pytest.approx(math.sqrt(2 / 3))  # seeds ±1 on both sides
    assert usual4.vs_dense / usual4.vs_dense_se == pytest.approx(-(10 * math.log10(5) - 5) * SQRT3)  # -3.45
    v = report.glue_values("cpu", base, fact, [_long("dense", None, 0.5, 1.0)], init, [], [])
    assert (v["n_vs_dense"], v["n_below_dense"], v["n_below_dense_clear"]) == (4, 3, 1)
    one_seed = report.glue_values("cpu", _hand()[0], fact, [_long("dense", None, 0.5, 1.0)], init, [], [])
    assert one_seed["n_below_dense_clear"] == 0  # one dense seed per width: no standard error, nothing clear
