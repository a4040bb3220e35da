"""factorlab.report.mnist_factorized: tables, the half-point verdict and glued values of the
factorized-MNIST chapter, on smoke-profile records and on hand-built records around the
tolerance."""
from __future__ import annotations

import math
import matplotlib
import pytest

from factorlab.experiments.mnist_factorized import NAME, grid
from factorlab.report import mnist_factorized as report
from report_smoke import train_smoke


@pytest.fixture(scope="module")
def smoke_records(tmp_path_factory):
    """The smoke grid of ``mnist_factorized``, trained into a throw-away store."""
    return train_smoke(NAME, tmp_path_factory.mktemp("store"))


def _record(net, family, acc, params, *, c=None, width=None, seed=0, ttt=None, train_s=30.0, ept=None):
    """A hand-built run record: accuracy ``acc`` in %, time to target ``ttt`` (s, None: missed)."""
    epochs = 3 if net == "mlp" else 2
    layers = [] if family == "dense" else [{"params": params // 10, "dense_params": params // 10 * c, "rank": 4}]
    return {
        "experiment": NAME, "key": f"{net}-{family}-{c}-{width}-{seed}",
        "config": {"experiment": NAME, "profile": "cpu", "net": net, "family": family, "compression": c,
                   "width": width, "seed": seed, "epochs": epochs},
        "metrics": {"test_acc": acc / 100, "train_loss": 0.2, "target_loss": 0.3, "time_to_target_s": ttt,
                    "epochs_to_target": ept if ept is not None else (None if ttt is None else ttt / 10)},
        "model": {"params": params, "flops_per_sample": 2 * params, "factorized_layers": layers},
        "timing": {"train_s": train_s},
        "provenance": {"device": "cpu"},
    }


def _hand_records() -> list[dict]:
    """MLP: full dense 98.0 %; low-rank 0.45 points below at 4x (two seeds), 0.55 below at 16x;
    TT within at 16x; CP outside at 4x. Conv: full dense 99.0 %, separable 0.4 below at 3x."""
    return [
        _record("mlp", "dense", 98.0, 100_000, width=512, ttt=10.0, train_s=30.0),
        _record("mlp", "dense", 97.6, 20_000, width=64, ttt=12.0),
        _record("mlp", "dense", 97.0, 10_000, width=32, ttt=14.0),
        _record("mlp", "lowrank", 97.45, 30_000, c=4, seed=0, ttt=20.0, train_s=60.0),
        _record("mlp", "lowrank", 97.65, 30_000, c=4, seed=1, ttt=20.0, train_s=60.0),
        _record("mlp", "lowrank", 97.45, 12_000, c=16, ttt=None),
        _record("mlp", "tt", 97.9, 30_000, c=4, ttt=50.0, train_s=90.0),
        _record("mlp", "tt", 97.6, 12_000, c=16, ttt=15.0),
        _record("mlp", "cp", 97.0, 30_000, c=4, ttt=None),
        _record("conv2", "dense", 99.0, 25_000, width=32, ttt=8.0, train_s=40.0),
        _record("conv2", "dense", 98.0, 8_000, width=16, ttt=9.0),
        _record("conv2", "separable", 98.6, 19_000, c=3, ttt=16.0, train_s=80.0),
    ]


def test_half_point_verdict_on_both_sides_of_the_tolerance():
    table, values = report.tolerance_table(_hand_records())
    assert report.TOLERANCE == 0.5 and values["tolerance"] == 0.5  # glued: the prose types no threshold
    assert values["c05_mlp_lowrank"] == "4×"  # mean of 97.45 and 97.65 is 0.45 below; 16x is 0.55 below
    assert values["c05_mlp_tt"] == "16×" and values["c05_mlp_cp"] == "none"
    assert values["c05_conv2_separable"] == "3×"
    assert values["narrow_mlp"] == 64 and values["narrow_ratio_mlp"] == pytest.approx(5.0)
    assert values["narrow_conv2"] == 32 and values["narrow_ratio_conv2"] == pytest.approx(1.0)
    mlp = table[table.network == "MLP 784-512-512-10"]
    assert list(mlp.family) == ["lowrank", "cp", "tt", "dense, width 64"]  # the families in FAMILY_ORDER
    cp = mlp[mlp.family == "cp"].iloc[0]  # "none": shown at its smallest ratio, 1.0 below the full network
    assert cp["largest c within 0.5 pt"] == "none" and cp["shown at"] == "4×" and cp["network params there"] == "30,000"
    assert cp["vs full dense (points)"] == "-1.00" and cp["against the tolerance"] == "one seed"
    lr = mlp[mlp.family == "lowrank"].iloc[0]  # only seed 0 has a full dense network to pair with
    assert lr["network params there"] == "30,000" and lr["acc. there (%)"] == "97.55"
    assert lr["vs full dense (points)"] == "-0.55"
    assert values["d05_mlp_lowrank"] == "-0.55 points" and values["o05_mlp_lowrank"] == "one seed"
    assert mlp.iloc[3]["largest c within 0.5 pt"] == "5.0× (whole net; mean only)"  # one seed: not clearly within
    assert values["d05_mlp_dense"] == "-0.40 points"
    # within by the mean, but no paired difference is clearly within: the column and the prose say "mean only"
    assert lr["largest c within 0.5 pt"] == "4× (mean only)"
    assert values["within05_clear_mlp"] == "none"
    assert values["within05_mean_mlp"] == ("4× for low-rank (-0.55 points, one seed) and "
                                           "16× for TT (-0.40 points, one seed)")
    assert values["within05_mean_conv2"] == "3× for separable (-0.40 points, one seed)"


def test_within_lists_split_clearly_within_from_within_by_the_mean_only():
    clear, mean_only = report.within_lists([
        ("lowrank", "3×", "-0.28 ± 0.02 points", "clearly within"),
        ("cp", "3×", "-0.26 ± 0.12 points", "clearly within"),
        ("tucker", "4×", "-0.25 ± 0.07 points", "clearly within"),
        ("tt", "10×", "-0.45 ± 0.13 points", "not clear"),
        ("separable", "3×", "-0.19 ± 0.16 points", "not clear")])
    assert clear == "3× for low-rank and CP; 4× for Tucker"
    assert mean_only == ("10× for TT (-0.45 ± 0.13 points, not clear) and "
                         "3× for separable (-0.19 ± 0.16 points, not clear)")
    assert report.within_lists([]) == ("none", "none")
    assert report._mean_only("3×", "clearly within") == "3×"
    assert report._mean_only("2.4× (whole net)", "not clear") == "2.4× (whole net; mean only)"


def test_within_outcome_is_clear_only_beyond_two_standard_errors_of_the_tolerance():
    assert report.within_outcome(-0.28, 0.08) == "clearly within"  # 0.22 above -0.5 > 2 x 0.08
    assert report.within_outcome(-0.40, 0.06) == "not clear"  # 0.10 above, < 0.12
    assert report.within_outcome(-1.08, 0.08) == "clearly outside"
    assert report.within_outcome(-0.2, float("nan")) == "one seed"


def _seeded(net, family, accs, params, *, c=None, width=None):
    """One hand-built record per seed, accuracy ``accs[seed]`` in %."""
    return [_record(net, family, a, params, c=c, width=width, seed=k) for k, a in enumerate(accs)]


def _three_seed_records() -> list[dict]:
    """MLP, 3 seeds: dense 512 / 64 / 32 (100k / 20k / 10k params); TT 16x (15k) above both
    neighbours, CP 16x (15k) below both, low-rank 4x (30k) below the full net and level with
    width 64, TT 256x (5k) smaller than every dense network."""
    return (_seeded("mlp", "dense", [98.0, 98.2, 98.1], 100_000, width=512)
            + _seeded("mlp", "dense", [97.0, 97.1, 97.2], 20_000, width=64)
            + _seeded("mlp", "dense", [95.0, 95.5, 95.2], 10_000, width=32)
            + _seeded("mlp", "tt", [97.5, 97.6, 97.8], 15_000, c=16)
            + _seeded("mlp", "cp", [94.0, 94.2, 94.1], 15_000, c=16)
            + _seeded("mlp", "lowrank", [97.2, 96.9, 97.3], 30_000, c=4)
            + _seeded("mlp", "tt", [90.0, 90.5, 90.1], 5_000, c=256))


def test_paired_accuracy_differences_pair_by_seed():
    recs = _three_seed_records()
    d, se, n = report.paired_acc(recs, "mlp", "tt_16", "w64")
    assert n == 3 and d == pytest.approx(1.6 / 3) and se == pytest.approx(0.1 / 3 ** 0.5 / 3 ** 0.5, rel=1e-6)
    assert report.paired_acc(recs, "mlp", "w64", "tt_16")[0] == pytest.approx(-d)
    with pytest.raises(KeyError, match="no point 'tucker_16' of 'mlp'; points: "):
        report.paired_acc(recs, "mlp", "tucker_16", "w64")
    assert report.point_key("dense", None, 64.0) == "w64" and report.point_key("tt", 16.0, None) == "tt_16"


def test_size_matched_frame_names_the_dense_neighbours_and_their_outcomes():
    f = report.size_matched_frame(_three_seed_records()).set_index(["family", "compression"])
    assert list(f.index) == [("lowrank", 4), ("cp", 16), ("tt", 16), ("tt", 256)]  # FAMILY_ORDER, then c
    tt = f.loc[("tt", 16)]
    assert (tt.larger_width, tt.larger_params, tt.smaller_width) == (64, 20_000, 32)
    assert tt.larger_outcome == "better" and tt.smaller_outcome == "better"
    assert tt.smaller_diff == pytest.approx((2.5 + 2.1 + 2.6) / 3) and tt.larger_n == 3
    cp = f.loc[("cp", 16)]
    assert cp.larger_outcome == "worse" and cp.smaller_outcome == "worse"
    lr = f.loc[("lowrank", 4)]  # larger: the full net (worse); smaller: width 64, +0.2 -0.2 +0.1 (not clear)
    assert (lr.larger_width, lr.smaller_width) == (512, 64)
    assert lr.larger_outcome == "worse" and lr.smaller_outcome == "not clear"
    tiny = f.loc[("tt", 256)]
    assert tiny.larger_width == 32 and math.isnan(tiny.smaller_width) and tiny.smaller_outcome == ""
    v = report.size_matched_values(_three_seed_records())
    assert (v["n_beat_larger_mlp"], v["n_lose_larger_mlp"], v["n_lose_smaller_mlp"]) == (1, 3, 1)
    assert (v["n_fac_mlp_16"], v["n_beat_larger_mlp_16"], v["n_lose_smaller_mlp_16"]) == (2, 1, 1)
    assert v["vs_larger_mlp_tt_16"] == "+0.53 ± 0.03 points" and v["vs_larger_width_mlp_tt_16"] == 64
    assert v["vs_smaller_mlp_tt_256"] == "none" and v["vs_smaller_width_mlp_tt_256"] == 0
    t = report.size_matched_table(_three_seed_records()).set_index("point")
    assert t.loc["tt 16×", "larger dense: width (params)"] == "64 (20,000)"
    assert t.loc["tt 16×", "vs larger (points)"] == "+0.53 ± 0.03, better"
    assert t.loc["lowrank 4×", "vs smaller (points)"] == "+0.03 ± 0.12, not clear"
    assert (t.loc["tt 256×", "smaller dense: width (params)"], t.loc["tt 256×", "vs smaller (points)"]) == ("none", "")


def test_glue_values_on_hand_built_records():
    v = report.glue_values(_hand_records())
    assert list(v)[:4] == ["profile", "n_runs", "n_seeds", "devices"]
    assert v["n_runs"] == 12 and v["n_seeds"] == 2 and v["epochs_mlp"] == 3 and v["epochs_conv2"] == 2
    assert v["ref_mlp"] == pytest.approx(98.0) and v["ref_params_mlp"] == 100_000
    assert v["acc_mlp_lowrank_4"] == pytest.approx(97.55) and v["params_mlp_w64"] == 20_000
    assert v["n_fac_mlp"] == 5 and v["n_fac_conv2"] == 1
    assert v["epoch_ratio_mlp_tt_4"] == pytest.approx(3.0) and v["epoch_ratio_max_mlp"] == pytest.approx(3.0)
    assert v["epoch_ratio_conv2_separable_3"] == 2.0
    # at 4x: low-rank 97.55, TT 97.9, CP 97.0 (the lowest and highest with their families)
    assert (v["acc_min_mlp_4"], v["acc_min_family_mlp_4"]) == (pytest.approx(97.0), "cp")
    assert (v["acc_max_mlp_4"], v["acc_max_family_mlp_4"]) == (pytest.approx(97.9), "tt")
    assert not any(k.startswith(("ttt_", "ept_", "ref_ttt", "ref_ept")) for k in v)  # censoring-blind means are gone
    assert all(type(x) in (float, int, str) for x in v.values())


def test_points_and_epoch_time_tables():
    t = report.points_table(_hand_records(), "mlp")
    assert list(t.family) == ["dense, width 512", "dense, width 64", "dense, width 32",
                              "lowrank", "lowrank", "cp", "tt", "tt"]
    lr4 = t.iloc[3]
    assert lr4["c"] == "4×" and lr4["test acc. (%)"] == "97.55 ± 0.14" and lr4["vs full dense"] == "-0.45"
    assert lr4["factorized layers: params"] == "3,000 / 12,000"
    e = report.epoch_time_table(_hand_records())
    assert list(e.point[e.network == "MLP 784-512-512-10"]) == ["lowrank 4×", "lowrank 16×", "cp 4×", "tt 4×",
                                                                "tt 16×", "dense (full width)"]
    tt4 = e[e.point == "tt 4×"].iloc[0]
    assert tt4["s / epoch"] == "30.0" and tt4["epoch time vs dense"] == "3.00×" and tt4["quiet"] == "unknown"
    assert list(e["epoch time vs dense"][e.point == "dense (full width)"]) == ["1.00×"] * 2


def test_smoke_records(smoke_records):
    assert len(smoke_records) == len(grid("smoke"))
    v = report.glue_values(smoke_records)
    full = {r["config"]["net"]: r for r in smoke_records
            if r["config"]["family"] == "dense" and r["config"]["width"] in (512, 32)}
    assert v["ref_mlp"] == pytest.approx(100 * full["mlp"]["metrics"]["test_acc"])
    assert v["acc_conv2_w32"] == pytest.approx(100 * full["conv2"]["metrics"]["test_acc"])
    assert v["params_mlp_w512"] == full["mlp"]["model"]["params"] == v["ref_params_mlp"]
    assert v["profile"] == "smoke" and v["n_seeds"] == 1 and v["epochs_mlp"] == 1
    assert v["n_fac_mlp"] == 4 and v["n_fac_conv2"] == 5
    assert len(report.size_matched_table(smoke_records)) == 9  # one seed: every outcome "one seed"
    assert set(report.size_matched_frame(smoke_records).larger_outcome) <= {"one seed", ""}
    for r in smoke_records:
        c = r["config"]
        if c["family"] != "dense":
            assert v[f"acc_{c['net']}_{c['family']}_{c['compression']:g}"] == pytest.approx(100 * r["metrics"]["test_acc"])
    _, values = report.tolerance_table(smoke_records)
    fams = {"mlp": ["lowrank", "cp", "tucker", "tt"], "conv2": ["separable", "lowrank", "cp", "tucker", "tt"]}
    assert set(values) == ({f"{k}_{net}_{f}" for net, fs in fams.items() for f in fs for k in ("c05", "d05", "o05")}
                           | {f"{k}_{net}" for net in fams for k in ("narrow", "narrow_ratio")}
                           | {f"{k}_{net}_dense" for net in fams for k in ("d05", "o05")}
                           | {f"{k}_{net}" for net in fams for k in ("within05_clear", "within05_mean")} | {"tolerance"})
    assert len(report.points_table(smoke_records, "conv2")) == 7


def test_accuracy_figure():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = report.accuracy_figure(_hand_records())
    assert [ax.get_title() for ax in fig.axes] == ["MLP 784-512-512-10", "2 conv + pooling"]
    assert fig.axes[0].get_ylim() == pytest.approx((96.0, 99.0))  # min - 1 .. reference + 1
    plt.close(fig)


def _with_load(record: dict, quiet) -> dict:
    """``record`` with a provenance load block whose ``quiet`` is ``quiet`` (None: no block)."""
    if quiet is not None:
        record["provenance"]["load"] = {"quiet": quiet, "other_trainings": 0 if quiet else 1}
    return record


def test_quiet_flag_of_times_and_counts():
    recs = _hand_records()
    _with_load(recs[0], True)  # full dense MLP: quiet
    _with_load(recs[3], True)  # low-rank 4x, seed 0 quiet, seed 1 unknown: "1 of 2"
    _with_load(recs[6], False)  # TT 4x: busy
    e = report.epoch_time_table(recs)
    row = lambda point: e[(e.network == "MLP 784-512-512-10") & (e.point == point)].iloc[0]
    assert row("dense (full width)")["quiet"] == "yes"
    assert row("lowrank 4×")["quiet"] == "1 of 2"
    assert row("tt 4×")["quiet"] == "no" and row("tt 16×")["quiet"] == "unknown"
    v = report.glue_values(recs)
    assert (v["n_quiet"], v["n_not_quiet"], v["n_load_unknown"]) == (2, 1, 9)


def test_sizes_and_ranks_glued_from_the_records():
    v = report.glue_values(_hand_records())
    # factorized layers hold 12,000 dense parameters in the hand-built MLP (3,000 x 4) of 100,000
    assert v["layer_dense_params_mlp"] == 12_000 and v["hidden_share_mlp"] == pytest.approx(12.0)
    assert v["params_min_mlp_4"] == v["params_max_mlp_4"] == 30_000 and v["params_min_mlp_16"] == 12_000
    assert v["params_min_fac_mlp"] == 12_000 and v["params_min_conv2_3"] == 19_000
    assert v["ranks_mlp_tt_4"] == "4" and v["rank_mlp_tt_4"] == 4
    assert v["full_epochs_mlp"] == 20 and v["full_seeds"] == 3
    assert all(type(x) in (float, int, str) for x in v.values())


def test_ranks_of_two_layers_read_as_prose():
    recs = _hand_records()
    recs[3]["model"]["factorized_layers"] = [{"params": 10, "dense_params": 40, "rank": 4},
                                             {"params": 5, "dense_params": 20, "rank": 3}]
    recs[4]["model"]["factorized_layers"] = recs[3]["model"]["factorized_layers"]
    v = report.glue_values(recs)
    assert v["ranks_mlp_lowrank_4"] == "4 and 3" and v["rank_mlp_lowrank_4"] == 4
    recs[6]["model"]["factorized_layers"] = [{"params": 10, "dense_params": 40, "rank": [2, 2]}]
    v = report.glue_values(recs)
    assert v["ranks_mlp_tt_4"] == "[2, 2]" and "rank_mlp_tt_4" not in v
