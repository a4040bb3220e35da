"""factorlab.report.cifar_factorized's full-data comparison (experiment cifar_fulldata): the
table beside the research log's accuracies, the three differences the log reports and the
glued values, on hand-built records (exact means, paired standard errors) and with none."""
from __future__ import annotations

import json
import math

import pytest

from factorlab.experiments import cifar_fulldata as F
from factorlab.report import cifar_factorized as report
from factorlab.results import RunStore

SQRT3 = math.sqrt(3)
#: Accuracies (%) per variant at width 1/2, seed 0; seeds 1 and 2 add -1 and +1, except where
#: :data:`SHIFT` moves a variant's seeds differently (to give paired differences a spread).
ACC = {"dense": 90.0, "separable": 86.0, "lowrank2_usual": 83.0, "lowrank2_scaled": 84.0, "lowrank10_usual": 75.0,
       "lowrank10_scaled": 76.0, "tt": 70.0}
SHIFT = {"lowrank10_scaled": (-2.0, 2.0)}  # scaled − usual at factor 10: +1, -0, +2 → mean 1, se 1/√3


def _records(profile: str = "cpu", widths=(0.5,)) -> list[dict]:
    out = []
    for cfg in F.grid(profile):
        if cfg["width"] not in widths:
            continue
        name = F.variant_name(cfg)
        lo, hi = SHIFT.get(name, (-1.0, 1.0))
        acc = ACC[name] + {0: 0.0, 1: lo, 2: hi}[cfg["seed"]] + (3.0 if cfg["width"] == 1.0 else 0.0)
        out.append({"config": cfg, "metrics": {"test_acc": acc / 100, "n_train": 50000, "n_test": 10000},
                    "model": {"params": 1000 if name == "dense" else 100, "compression": 1.0},
                    "timing": {"train_s": 60.0}})
    return out


def test_journal_accuracies_are_the_claims_constants():
    from factorlab.report import claims

    j = report.journal_accuracies()
    assert (j["dense"], j["separable"]) == claims.JOURNAL_SEPARABLE
    assert (j["separable"], j["lowrank2_usual"]) == claims.JOURNAL_FACTOR2
    assert (j["lowrank10_scaled"], j["lowrank10_usual"]) == claims.JOURNAL_WD_FACTOR10
    assert set(j) == {"dense", "separable", "lowrank2_usual", "lowrank10_scaled", "lowrank10_usual"}


def _write(store: RunStore, recs: list[dict]) -> None:
    for r in recs:
        path = store.path(r["config"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**r, "key": store.key(r["config"])}))


def test_records_come_from_the_store_in_grid_order_and_count_the_grid(tmp_path):
    store, recs = RunStore(tmp_path), _records(widths=(0.5, 1.0))
    _write(store, recs[5:0:-1])  # five runs, written out of order
    have, complete = report.fulldata_records("cpu", store)
    assert complete is False and [r["config"] for r in have] == [r["config"] for r in recs[1:6]]
    _write(store, recs)
    have, complete = report.fulldata_records("cpu", store)
    assert complete is True and len(have) == 28


def test_table_beside_the_journal():
    t = report.fulldata_table(_records(widths=(0.5, 1.0)), "cpu")
    assert len(t) == 14 and list(t.width) == ["0.5"] * 7 + ["1"] * 7
    half = t[t.width == "0.5"].set_index("variant")
    assert list(half.index) == list(ACC)
    assert half.loc["dense", "ours (%)"] == "90.0 ± 1.0" and half.loc["dense", "ours − dense (points)"] == "—"
    assert half.loc["separable", "ours − dense (points)"] == "-4.0 ± 0.0"  # identical seed offsets
    assert half.loc["lowrank10_scaled", "ours (%)"] == "76.0 ± 2.0"
    assert half.loc["lowrank10_scaled", "ours − dense (points)"] == "-14.0 ± 0.6"
    assert list(half["research log (%, cited)"]) == ["94.0", "92.0", "81.2", "—", "77.8", "78.3", "—"]
    assert list(half.seeds) == [3] * 7 and half.loc["dense", "params"] == "1,000"
    one = t[t.width == "1"].set_index("variant")
    assert one.loc["tt", "ours (%)"] == "73.0" and list(one.seeds) == [1] * 7
    assert set(t["training (min)"]) == {"1.0"}  # 60 s per run
    assert set(t.quiet) == {"unknown"}  # hand-built records carry no load block


def test_table_reports_each_cells_quiet_runs():
    recs = _records()
    for r in recs:
        r["provenance"] = {"load": {"quiet": F.variant_name(r["config"]) == "dense" or r["config"]["seed"] == 0}}
    t = report.fulldata_table(recs, "cpu")
    half = t[t.width == "0.5"].set_index("variant")
    assert half.loc["dense", "quiet"] == "yes" and half.loc["tt", "quiet"] == "1 of 3"


def test_figure_draws_every_run_and_the_cited_accuracies():
    import matplotlib

    matplotlib.use("Agg")
    assert report.fulldata_figure([]) is None
    fig = report.fulldata_figure(_records(widths=(0.5, 1.0)))
    ax = fig.axes[0]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(dots) == 14 and sum(len(line.get_xdata()) for line in dots) == 28  # 7 variants x 2 widths, 28 runs
    cited = next(line for line in ax.lines if line.get_marker() == "D")
    assert sorted(cited.get_ydata()) == sorted(report.journal_accuracies().values())
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "dense"


def test_differences_and_verdicts():
    d = report.fulldata_differences(_records()).set_index("difference")
    assert list(d.index) == ["separable − dense", "rank factor 2 − separable", "factor 10: scaled − usual weight decay"]
    assert d.loc["separable − dense", "mean"] == pytest.approx(-4.0) and d.loc["separable − dense", "se"] == 0
    assert d.loc["rank factor 2 − separable", "journal"] == pytest.approx(81.2 - 92.0)
    wd = d.loc["factor 10: scaled − usual weight decay"]
    assert (wd["mean"], wd.se, wd.n) == (pytest.approx(1.0), pytest.approx(1 / SQRT3), 3)
    assert wd.journal == pytest.approx(0.5)
    # +1 ± 0.58: not twice its standard error from 0, so the direction in the mean only
    assert wd.verdict == "partly"
    assert d.loc["separable − dense", "verdict"] == "partly"  # -4 ± 0 is clear, but not the log's -2


def test_glue_values_with_records():
    v = report.fulldata_values(_records(widths=(0.5, 1.0)), "cpu")
    assert v["fulldata_status"] == "28 of 28 runs of cifar_fulldata under the cpu profile recorded"
    assert (v["fulldata_runs"], v["fulldata_grid_runs"], v["fulldata_epochs"]) == ("28", "28", "9.9")
    assert v["fulldata_n_train"] == "50,000" and v["fulldata_half_dense"] == "90.0 ± 1.0"
    assert (v["fulldata_batch"], v["fulldata_factors"]) == ("1024", "2 and 10")
    assert v["fulldata_one_dense"] == "93.0" and v["fulldata_diff2"] == "+1.0 ± 0.6"
    assert v["fulldata_diff2_journal"] == "+0.5" and v["fulldata_diff1_journal"] == "-10.8"
    assert v["journal_lowrank2_usual"] == "81.2" and v["fulldata_diff0_verdict"] == "partly"
    assert v["fulldata_minutes"] == "1 to 1"
    recs = _records()
    for r in recs:
        r["timing"]["train_s"] = 600.0
    recs[0]["timing"]["train_s"], recs[4]["timing"]["train_s"] = 330.0, 2125.0  # 5.5 and 35.4 minutes
    assert report.fulldata_values(recs, "cpu")["fulldata_minutes"] == "6 to 35"
    assert all(isinstance(x, str) for x in v.values())


def test_without_records_everything_reads_not_measured(tmp_path):
    recs, complete = report.fulldata_records("cpu", RunStore(tmp_path))  # an empty store: never trains
    assert recs == [] and complete is False and not any(tmp_path.iterdir())
    t = report.fulldata_table(recs, "cpu")
    assert len(t) == 14 and set(t["ours (%)"]) == {"not measured"} and set(t.seeds) == {0}
    assert set(t.params) == {"—"} and t["research log (%, cited)"].iloc[0] == "94.0"
    assert set(t["training (min)"]) == {"—"} and set(t.quiet) == {"—"} and set(t["ours − dense (points)"]) == {"—"}
    d = report.fulldata_differences(recs)
    assert list(d.verdict) == ["not measured"] * 3 and list(d.n) == [0] * 3
    v = report.fulldata_values(recs, "cpu")
    assert v["fulldata_status"] == "not measured: no records of cifar_fulldata under the cpu profile yet (0 of 28 runs)"
    assert v["fulldata_half_dense"] == v["fulldata_one_tt"] == v["fulldata_diff0"] == "not measured"
    assert v["fulldata_n_train"] == v["fulldata_minutes"] == "not measured" and v["journal_dense"] == "94.0"


def test_partial_records_count_and_leave_the_rest_not_measured():
    recs = [r for r in _records() if F.variant_name(r["config"]) in ("dense", "separable")]
    v = report.fulldata_values(recs, "cpu")
    assert v["fulldata_status"] == "6 of 28 runs of cifar_fulldata under the cpu profile recorded"
    assert v["fulldata_diff0"] == "-4.0 ± 0.0" and v["fulldata_diff1"] == "not measured"
    assert v["fulldata_half_tt"] == "not measured"


def test_anchor_records_keep_the_chapters_scale_apart(tmp_path):
    """The chapter's anchor table reads only the comparison with cifar_baselines; the full-data
    one comes by asking for it."""
    folder = tmp_path / "cifar_anchor"
    folder.mkdir()
    for key, ours in (("a", "cifar_baselines"), ("b", "cifar_fulldata"), ("c", None)):
        cfg = {"experiment": "cifar_anchor", "profile": "cpu", **({"ours_experiment": ours} if ours else {})}
        (folder / f"{key}.json").write_text(json.dumps({"config": cfg}))
    store = RunStore(tmp_path)
    assert [r["config"].get("ours_experiment") for r in report.anchor_records(store)] == ["cifar_baselines", None]
    assert [r["config"]["ours_experiment"] for r in report.anchor_records(store, "cifar_fulldata")] == \
        ["cifar_fulldata"]


def test_fulldata_anchor_values_with_and_without_the_record():
    none = report.fulldata_anchor_values([])
    assert len(none) == 9 and set(none.values()) == {"not measured"}
    rec = {"config": {"profile": "cpu", "device": "cpu", "airbench_version": "0.1.8", "target_ratio": 1.2,
                      "ours_experiment": "cifar_fulldata"},
           "metrics": {"acc_diff": -0.003, "acc_diff_se": 0.001, "n_ours": 3, "ratio": 1.25,
                       "ours": {"acc_mean": 0.925}},
           "timing": {"threads": 1}, "provenance": {}}
    v = report.fulldata_anchor_values([rec])
    assert (v["fulldata_anchor_diff"], v["fulldata_anchor_se"], v["fulldata_anchor_seeds"]) == ("-0.30", "0.10", "3")
    assert v["fulldata_anchor_verdict"] == "falls short of airbench94's accuracy"  # 3 standard errors below
    assert (v["fulldata_anchor_ratio"], v["fulldata_anchor_acc"], v["fulldata_anchor_version"]) == \
        ("1.25", "92.5", "0.1.8")


def test_differences_table_for_display():
    t = report.fulldata_differences_table(_records())
    assert list(t.columns) == ["difference", "ours (points)", "seed pairs", "research log (points, cited)", "verdict"]
    assert list(t["ours (points)"]) == ["-4.0 ± 0.0", "-3.0 ± 0.0", "+1.0 ± 0.6"]
    assert list(t["research log (points, cited)"]) == ["-2.0", "-10.8", "+0.5"] and list(t["seed pairs"]) == [3] * 3
    empty = report.fulldata_differences_table([])
    assert set(empty["ours (points)"]) == {"not measured"} and set(empty.verdict) == {"not measured"}


def test_anchor_sentence_with_and_without_the_record():
    assert "not measured" in report.fulldata_anchor_sentence([])
    assert "--ours cifar_fulldata" in report.fulldata_anchor_sentence([])
    rec = {"config": {"profile": "cpu", "device": "cpu", "airbench_version": "0.1.8", "target_ratio": 1.2,
                      "ours_experiment": "cifar_fulldata"},
           "metrics": {"acc_diff": 0.001, "acc_diff_se": 0.001, "n_ours": 3, "ratio": 1.25,
                       "ours": {"acc_mean": 0.925}},
           "timing": {"threads": 1}, "provenance": {"load": {"quiet": True}}}
    s = report.fulldata_anchor_sentence([rec])
    assert "reaches airbench94's accuracy" in s and "+0.10 ± 0.10 points, 3 seeds each" in s
    assert "1.25 times its time per run (quiet machine: yes)" in s and "version 0.1.8" in s


def test_levels_sentence_lists_what_is_measured_and_what_is_not():
    recs = [r for r in _records() if F.variant_name(r["config"]) in ("dense", "separable", "tt")]
    v = report.fulldata_values(recs, "cpu")
    assert v["fulldata_levels"] == ("The factorized variants reach: separable convolutions 86.0 % (3 seeds); "
                                    "the tensor train 70.0 % (3 seeds). Not measured yet: rank factor 2 with the usual "
                                    "weight decay, rank factor 2 with scaled weight decay, rank factor 10 with the usual "
                                    "weight decay, rank factor 10 with scaled weight decay.")
    assert report.fulldata_values([], "cpu")["fulldata_levels"].startswith("Not measured yet: separable convolutions")


def test_summary_sentence_with_all_some_and_no_differences():
    v = report.fulldata_values(_records(), "cpu")
    assert v["fulldata_summary"] == (
        "On the whole training set at width 0.5: separable − dense -4.0 ± 0.0 points over 3 seed pairs (the research "
        "log: -2.0; partly); rank factor 2 − separable -3.0 ± 0.0 points over 3 seed pairs (the research log: -10.8; "
        "partly); factor 10: scaled − usual weight decay +1.0 ± 0.6 points over 3 seed pairs (the research log: +0.5; "
        "partly).")
    some = [r for r in _records() if F.variant_name(r["config"]) in ("dense", "separable")]
    assert report.fulldata_values(some, "cpu")["fulldata_summary"].endswith(
        "Not measured yet: rank factor 2 − separable, factor 10: scaled − usual weight decay.")
    assert report.fulldata_values([], "cpu")["fulldata_summary"] == (
        "On the whole training set nothing is measured yet (not measured: no records of cifar_fulldata under the cpu "
        "profile yet (0 of 28 runs)).")


def test_collapse_of_scaled_weight_decay_is_measured_from_the_records_and_the_networks():
    recs = _records()
    for r in recs:  # the scaled runs end at chance, as on the whole training set
        r["timing"]["steps"] = 476
        r["metrics"]["train_loss"] = 2.2 if r["config"]["wd_mode"] == "scaled" else 1.0
        if r["config"]["wd_mode"] == "scaled":
            r["metrics"]["test_acc"] = 0.1
    c = report.fulldata_collapse(recs)
    assert (c["n"], c["at_chance"], c["steps"]) == (6, 6, 476) and c["uniform_loss"] == pytest.approx(math.log(10))
    recipe = recs[0]["config"]["recipe"]
    assert c["lr_wd"] == pytest.approx(100 * recipe["lr"] * recipe["weight_decay"])
    lo2, hi2, s_lo2, s_hi2 = c["factors"][2]
    lo10, hi10, _, s_hi10 = c["factors"][10]
    assert 1 < lo2 <= hi2 < lo10 <= hi10  # factor 10 compresses every layer more than factor 2
    assert s_lo2 == pytest.approx(c["lr_wd"] * lo2) and s_hi10 == pytest.approx(c["lr_wd"] * hi10)
    cfg10 = next(r["config"] for r in recs if r["config"]["wd_mode"] == "scaled" and r["config"]["factorize"]["factor"] == 10)
    assert max(report.compression_ratios(cfg10)) == pytest.approx(hi10)
    s = report.fulldata_values(recs, "cpu")["fulldata_collapse"]
    assert s.startswith("6 of the 6 runs with weight decay scaled by compression end at chance (10 % test accuracy")
    assert "final training loss 2.20-2.20 against 2.30 for a uniform guess" in s and "over 476 steps" in s
    none = [r for r in recs if r["config"]["wd_mode"] != "scaled"]
    assert report.fulldata_collapse(none) is None
    assert report.fulldata_values(none, "cpu")["fulldata_collapse"] == "No run with scaled weight decay is recorded yet."


def test_subset_contrast_counts_the_scaled_runs_at_chance():
    runs = [{"config": {"wd_mode": m}, "metrics": {"test_acc": a}, "timing": {"steps": 156}}
            for m, a in (("scaled", 0.105), ("scaled", 0.145), ("usual", 0.1), ("scaled", 0.3))]
    v = report.subset_collapse_values(runs)
    assert v == {"subset_steps": "156", "subset_n_scaled": 3, "subset_at_chance": 1, "subset_min_scaled": "10.5"}
    assert report.subset_collapse_values([])["subset_min_scaled"] == "not measured"


def test_the_width_summary_gives_no_verdict_with_one_seed():
    recs = _records(widths=(0.5, 1.0))
    one = report.fulldata_width_summary(recs, 1.0)
    assert one == ("At width 1, with one seed (no spread, so no verdict), the dense network reaches 93.0 % (the "
                   "research log: 94.0 % for its ResNet): separable − dense -4.0 points (the research log: -2.0); "
                   "rank factor 2 − separable -3.0 points (the research log: -10.8); factor 10: scaled − usual "
                   "weight decay +1.0 points (the research log: +0.5).")
    assert report.fulldata_width_summary(recs, 0.5).startswith("At width 0.5, over 3 seed pairs, the dense network "
                                                               "reaches 90.0 %")
    assert report.fulldata_width_summary(_records(), 1.0) == ""
    assert report.fulldata_values(_records(), "cpu")["fulldata_one_summary"] == "Not measured yet at width 1."
