"""factorlab.report.mnist_multitask: tables, the time-to-target comparison with censoring and
the two journal verdicts, on the smoke records and on hand-built records."""
from __future__ import annotations

import math

import matplotlib
import pytest

from factorlab.experiments.mnist_multitask import FACTORIZED, METHODS, NAME, grid
from factorlab.report import mnist_multitask as report
from report_smoke import train_smoke


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """A throw-away run store holding the smoke grid of ``mnist_multitask``: (store folder, records)."""
    store = tmp_path_factory.mktemp("store")
    return store, train_smoke(NAME, store)


@pytest.fixture(scope="module")
def smoke_records(smoke_store):
    """The smoke grid's records of ``mnist_multitask``."""
    return smoke_store[1]


def test_smoke_records_fill_every_table(smoke_records):
    assert len(smoke_records) == len(grid("smoke"))
    runs = report.runs_frame(smoke_records)
    assert list(runs.method) == list(METHODS)
    assert all(len(e) == 10 and all(0 <= v <= 100 for v in e) for e in runs.task_error)
    assert runs.pretrain_s.notna().tolist() == [m in FACTORIZED for m in runs.method]
    single = smoke_records[0]
    for r in smoke_records:
        if r["config"]["method"] in FACTORIZED:  # the kept single-task networks, not a different retraining
            assert r["timing"]["pretrain_train_loss"] == single["metrics"]["train_loss"]
            assert all(e <= 0.5 + 1e-6 for e in r["model"]["init_rel_error"])
    by_method = {r["config"]["method"]: r for r in smoke_records}
    assert by_method["deep"]["model"]["match_params"] == by_method["tucker"]["model"]["params"]
    table = report.error_table(smoke_records)
    assert len(table) == len(METHODS) and table.columns[1] == "error (%), 256 images"
    sharing = report.sharing_table(smoke_records)
    assert len(sharing) == len(FACTORIZED) * 4 and set(sharing.layer) == {"conv1", "conv2", "fc1", "head"}
    assert ((sharing["effective rank at init"] >= 1) & (sharing["effective rank at init"] <= 10)).all()
    ttt = report.time_to_target_frame(smoke_records)
    assert len(ttt) == len(METHODS) and (ttt.target_loss == single["metrics"]["train_loss"]).all()
    assert len(report.slowdown_table(smoke_records)) == len(METHODS) - 1
    values = report.glue_values(smoke_records)
    assert values["n_points"] == len(FACTORIZED) and values["deeper_pairs"] == 0
    assert values["deeper_verdict"] == "not measured"  # one seed: no standard error
    assert values["pretrain_mismatches"] == 0 and values["rel_error"] == 0.5
    assert values["single_init"] == "shared"
    matplotlib.use("Agg")
    fig = report.error_figure(smoke_records)
    assert len(fig.axes[0].lines) >= len(METHODS)


def _record(method, n_train, seed, error, *, window_loss, train_s, final_loss=0.1, params=1000, pretrain_s=0.0):
    """A hand-built record: windows of equal length ending at train_s."""
    w = len(window_loss)
    timing = {"train_s": train_s, "epochs_run": 2}
    if method in FACTORIZED:
        timing.update(pretrain_s=pretrain_s, decompose_s=0.0)
    return {"experiment": NAME, "key": f"{method}-{n_train}-{seed}",
            "config": {"experiment": NAME, "profile": "cpu", "method": method, "n_train": n_train, "seed": seed,
                       "epochs": 2},
            "metrics": {"mean_error": error, "task_error": [error] * 10, "train_loss": final_loss},
            "history": {"window_loss": window_loss, "window_s": [train_s * (k + 1) / w for k in range(w)],
                        "window_epoch": [2 * (k + 1) / w for k in range(w)]},
            "timing": timing, "model": {"params": params, "flops_per_sample": 1}, "provenance": {"device": "cpu"}}


def _hand(slow_tucker: bool):
    """Single-task reaches its final loss 0.1 at its last window (10 s); hard at half its
    training (5 of 10 s); tucker (pretrained for 10 s) reaches it at 1 s, or never in 2000 s."""
    recs = []
    for seed in (0, 1, 2):
        recs.append(_record("single", 1000, seed, 2.0, window_loss=[0.5, 0.1], train_s=10.0))
        recs.append(_record("hard", 1000, seed, 2.5, window_loss=[0.1, 0.05], train_s=10.0))
        tucker = [0.3, 0.2] if slow_tucker else [0.1, 0.09]
        recs.append(_record("tucker", 1000, seed, 1.0 + 0.1 * seed, window_loss=tucker,
                            train_s=2000.0 if slow_tucker else 2.0, pretrain_s=10.0))
        recs.append(_record("deep", 1000, seed, 1.5 + 0.1 * seed, window_loss=[0.2, 0.2], train_s=10.0))
    return recs


def test_time_to_target_is_censored_where_never_reached():
    ttt = report.time_to_target_frame(_hand(slow_tucker=True)).set_index(["method", "seed"])
    assert ttt.loc[("single", 0), "time_s"] == 10.0 and not ttt.loc[("single", 0), "censored"]
    assert ttt.loc[("hard", 0), "time_s"] == 5.0 and ttt.loc[("hard", 0), "epochs"] == 1.0
    assert ttt.loc[("tucker", 0), "censored"] and ttt.loc[("tucker", 0), "time_s"] == 2000.0
    assert ttt.loc[("tucker", 0), "with_pretrain_s"] == 2010.0 and ttt.loc[("tucker", 0), "epochs"] == 2.0
    s = report.slowdown_frame(_hand(slow_tucker=True)).set_index("method")
    assert s.loc["hard", "ratio"] == pytest.approx(0.5) and s.loc["hard", "bound"] == "="
    assert s.loc["tucker", "ratio_pretrain"] == pytest.approx(201.0) and s.loc["tucker", "bound"] == "≥"
    assert s.loc["tucker", "n_censored"] == 3
    assert report.slowdown_table(_hand(slow_tucker=True)).iloc[1]["time vs single-task"] == "≥ 200.00×"
    assert report.slowdown_table(_hand(slow_tucker=True)).iloc[1]["time, range over seeds"] == "≥ 200.00–200.00×"


def test_slowdown_carries_its_range_over_seeds_and_the_quiet_flag():
    recs = _hand(slow_tucker=False)
    recs[1]["timing"]["train_s"] = 20.0  # hard, seed 0: reaches the target at 10 of 20 s
    recs[1]["history"]["window_s"] = [10.0, 20.0]
    for r in recs:
        r["provenance"]["load"] = {"quiet": not (r["config"]["method"] == "hard" and r["config"]["seed"] == 2)}
        r["config"]["rel_error"] = 0.5  # what glue_values reads of a DMTRL config
    s = report.slowdown_frame(recs).set_index("method")
    assert (s.loc["hard", "ratio_min"], s.loc["hard", "ratio_max"]) == (0.5, 1.0)
    assert s.loc["hard", "quiet"] == "5 of 6" and s.loc["tucker", "quiet"] == "yes"
    table = report.slowdown_table(recs).set_index("method")
    assert table.iloc[0]["time, range over seeds"] == "0.50–1.00×" and table.iloc[0]["quiet machine"] == "5 of 6"
    assert report.glue_values(recs)["ttt_quiet"] == "11 of the 12 runs timed were taken on a quiet machine (1 on a busy one)"
    for r in recs:
        del r["provenance"]["load"]
    assert report.glue_values(recs)["ttt_quiet"].endswith("(12 predate load recording)")


def test_slower_verdict_counts_lower_bounds_as_slower_and_exact_fast_points_as_faster():
    v = report.slower_verdict(_hand(slow_tucker=True))
    assert (v["verdict"], v["slower"], v["faster"], v["n_points"]) == ("reproduced", 1, 0, 1)
    assert (v["n_runs"], v["censored_runs"], v["max_bound"], v["max_method"], v["max_n_train"]) == \
        (3, 3, "≥", "tucker", 1000)
    assert v["max_epoch_ratio"] == pytest.approx(1.0)  # all 2 epochs against the single-task networks' 2
    v = report.slower_verdict(_hand(slow_tucker=False))
    assert (v["verdict"], v["slower"], v["faster"]) == ("not reproduced", 0, 1)
    assert (v["n_runs"], v["censored_runs"], v["max_bound"]) == (3, 0, "=")
    assert v["max_ratio"] == pytest.approx(1.1)  # (1 s to the target + 10 s pretraining) / 10 s
    assert v["max_epoch_ratio"] == pytest.approx(0.5)  # its first epoch against the single-task networks' 2


def test_deeper_verdict_pairs_seeds_and_needs_a_clear_difference():
    f = report.deeper_frame(_hand(slow_tucker=True))
    assert len(f) == 1 and f.iloc[0]["diff"] == pytest.approx(0.5) and f.iloc[0]["outcome"] == "DMTRL better"
    v = report.deeper_verdict(_hand(slow_tucker=True))
    assert (v["verdict"], v["not_worse"], v["n_pairs"]) == ("not reproduced", 0, 1)


def test_a_dmtrl_run_from_other_single_task_networks_is_counted():
    recs = _hand(slow_tucker=False)
    for r in recs:
        if r["config"]["method"] == "tucker":
            r["timing"]["pretrain_train_loss"] = 0.1
    recs[2]["timing"]["pretrain_train_loss"] = 0.11
    assert report.pretrain_mismatches(recs) == 1


def test_missing_records_are_not_measured():
    values = report.glue_values([])
    assert values["slower_verdict"] == values["deeper_verdict"] == values["sizes"] == values["dmtrl_best"] == "not measured"
    assert values["ttt_quiet"] == "not measured"
    assert math.isnan(values["max_ratio"]) and report.error_table([]).empty
    v = report.slower_verdict([])
    assert (v["n_points"], v["n_runs"], v["censored_runs"]) == (0, 0, 0) and math.isnan(v["max_epoch_ratio"])


def test_the_claims_table_reads_these_verdicts_from_a_smoke_store(smoke_store):
    """report.claims loads the complete smoke grid from the store (never training) and gives the
    journal's two sentences this module's verdicts; an empty store leaves them not measured."""
    from factorlab.report import claims
    from factorlab.results import RunStore

    store, records = smoke_store
    recs = claims.load_records("smoke", RunStore(store))
    assert recs["mnist_multitask"] == records
    table = claims.verdicts(recs).set_index("claim")
    s = report.slower_verdict(records)
    assert table.verdict["slowdown_100x_mtl"] == s["verdict"] != "not measured"
    assert table.measured["slowdown_100x_mtl"].startswith(f"{s['slower']} of {s['n_points']} DMTRL points")
    assert f"{s['censored_runs']} of {s['n_runs']} DMTRL runs never reached it" in table.measured["slowdown_100x_mtl"]
    assert table.verdict["more_layers"] == "not measured"  # one seed: no standard error
    assert "two or more seeds" in table.measured["more_layers"]
    empty = claims.verdicts(claims.load_records("smoke", RunStore(store / "empty"))).set_index("claim")
    assert (empty.verdict[["slowdown_100x_mtl", "more_layers"]] == "not measured").all()
    assert (empty.measured[["slowdown_100x_mtl", "more_layers"]]
            == "no complete records of mnist_multitask under this profile").all()


def test_paired_differences_against_single_task_and_hard_sharing():
    recs = _hand(slow_tucker=False)  # single 2.0, hard 2.5, tucker 1.0/1.1/1.2, deep 1.5/1.6/1.7 (seeds 0-2)
    f = report.against_frame(recs, "single").set_index("method")
    assert list(f.index) == ["hard", "tucker", "deep"] and (f.n == 3).all()
    assert f.loc["tucker", "diff"] == pytest.approx(-0.9) and f.loc["tucker", "se"] == pytest.approx(0.1 / 3 ** 0.5)
    assert (f.loc["tucker", "outcome"], f.loc["hard", "outcome"]) == ("better", "worse")
    h = report.against_frame(recs, "hard").set_index("method")
    assert h.loc["tucker", "diff"] == pytest.approx(-1.4) and h.loc["single", "diff"] == pytest.approx(-0.5)
    one_seed = [r for r in recs if r["config"]["seed"] == 0]
    assert set(report.against_frame(one_seed, "single").outcome) == {"one seed"}
    s = report.dmtrl_summary(recs)
    assert (s["n_points"], s["better_single"], s["worse_single"], s["better_hard"]) == (1, 1, 0, 1)
    assert s["best_by_size"] == "Tucker at 1,000 images, -0.90 ± 0.06 points (n = 3)"
    table = report.against_table(recs)
    assert list(table.method) == ["hard sharing", "DMTRL Tucker", "deeper hard sharing"]
    assert table.iloc[1]["vs single-task"] == "-0.90 ± 0.06 better"
    assert table.iloc[0]["vs hard sharing"] == ""
    with pytest.raises(ValueError, match="reference must be one of"):
        report.against_frame(recs, "dense")
    assert report.dmtrl_summary([])["best_by_size"] == "not measured"
    assert (s["n_points_long"], s["better_long"]) == (0, 0)  # no single_long runs yet
    longer = recs + [_record("single_long", 1000, seed, 1.2 - 0.05 * seed, window_loss=[0.1, 0.05], train_s=20.0)
                     for seed in (0, 1, 2)]  # tucker minus it: -0.2, -0.05, +0.1
    s = report.dmtrl_summary(longer)
    assert (s["n_points_long"], s["better_long"], s["worse_long"]) == (1, 0, 0)
    row = report.against_table(longer).set_index("method").loc["DMTRL Tucker"]
    assert row["vs single-task, 2× epochs"] == "-0.05 ± 0.09"


def test_sharing_summary_averages_each_layers_final_effective_rank():
    def rec(method, ranks):
        return {"config": {"method": method}, "model": {"sharing_final": [
            {"name": n, "effective_rank": v} for n, v in zip(("conv1", "conv2", "fc1", "head"), ranks)]}}

    recs = [rec("laf", [1.0, 2.0, 4.0, 1.5]), rec("tucker", [1.2, 3.0, 3.0, 1.5]), rec("hard", [9, 9, 9, 9])]
    s = report.sharing_summary(recs)
    assert s == {"by_layer": "conv1 1.1, conv2 2.5, fc1 3.5, head 1.5", "most_shared": "conv1", "least_shared": "fc1"}
