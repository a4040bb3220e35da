"""factorlab.report.mnist_compression: frames, table and glued values of the compression chapter,
on a smoke-profile record and on hand-built records on both sides of "faster" (speedup 1)."""
from __future__ import annotations

import math

import matplotlib
import pytest

from factorlab.experiments.mnist_compression import NAME
from factorlab.layers.base import _beats, inference_reference
from factorlab.layers.paths import INFERENCE_MARGIN
from factorlab.report import mnist_compression as report
from report_smoke import train_smoke


@pytest.fixture(scope="module")
def smoke_records(tmp_path_factory):
    """The smoke grid of ``mnist_compression`` (one run), trained into a throw-away store."""
    return train_smoke(NAME, tmp_path_factory.mktemp("store"))


def _row(method, rank, params, flops, net_flops, layer_s, net_s, acc=0.9, ft=0.97, rel=0.5):
    """One decomposition; the dense layer takes 1 s of the dense net's 4 s."""
    return {"method": method, "rank": rank, "params": params, "flops": flops, "net_flops_per_sample": net_flops,
            "dense_layer_s": 1.0, "layer_s": layer_s, "dense_net_s": 4.0, "net_s": net_s,
            "acc_decomposed": acc, "acc_finetuned": ft, "rel_error": rel}


def _hand_record(seed=0, shift=0.0) -> dict:
    """Dense layer: 900 params, 1000 FLOPs; dense net 2000 FLOPs. CP rank 4 makes the layer just
    faster (0.95 s) and the net just slower (4.2 s); CP rank 8 the reverse; Tucker rank 4 both
    faster."""
    return {
        "experiment": NAME, "key": f"hand{seed}",
        "config": {"experiment": NAME, "profile": "cpu", "seed": seed, "epochs": 3, "finetune_epochs": 1,
                   "timing_batch": 1000, "timing_repeats": 15},
        "metrics": {"baseline_acc": 0.98 + shift,
                    "dense_layer": {"params": 900, "flops": 1000, "net_flops_per_sample": 2000},
                    "results": [_row("cp", 4, 90, 100, 1100, 0.95, 4.2, acc=0.9 + shift, rel=0.8),
                                _row("cp", 8, 180, 200, 1200, 1.05, 3.8),
                                _row("tucker", 4, 300, 500, 1500, 0.5, 3.9, rel=0.25)]},
        "provenance": {"device": "cpu"},
    }


def test_glue_values_on_both_sides_of_faster():
    v = report.glue_values([_hand_record()])
    assert list(v)[:8] == ["profile", "n_runs", "devices", "epochs", "ft_epochs", "batch", "repeats", "base_acc"]
    assert (v["profile"], v["n_runs"], v["epochs"], v["ft_epochs"], v["batch"], v["repeats"]) == ("cpu", 1, 3, 1, 1000, 15)
    assert v["base_acc"] == pytest.approx(98.0)
    assert v["cp_4_compression"] == pytest.approx(10.0) and v["cp_4_flop_speedup"] == pytest.approx(10.0)
    assert v["cp_4_layer_speedup"] == pytest.approx(1 / 0.95) and v["cp_4_net_speedup"] == pytest.approx(4 / 4.2)
    assert v["cp_4_acc_decomposed"] == pytest.approx(90.0) and v["cp_4_rel_error"] == 0.8
    assert v["n_variants"] == 3
    assert v["n_layer_faster"] == 2  # cp 4 (1.05x) and tucker 4; cp 8 (0.95x) is not
    assert v["n_net_faster"] == 2  # cp 8 and tucker 4; cp 4 (0.95x) is not
    assert v["eff_min"] == pytest.approx((1 / 0.95) / 10) and v["eff_max"] == pytest.approx(1.0)
    assert v["layer_speedup_max"] == pytest.approx(2.0) and v["layer_speedup_max_what"] == "tucker at rank 4"
    assert v["layer_speedup_max_flops"] == pytest.approx(2.0)
    assert v["net_speedup_max"] == pytest.approx(4 / 3.8)
    assert v["layer_share_pct"] == pytest.approx(25.0) and v["net_bound"] == pytest.approx(4 / 3)  # Amdahl
    assert v["net_flop_speedup_max"] == pytest.approx(2000 / 1100)
    assert v["layer_params"] == 900 and v["layer_flops_pct"] == pytest.approx(50.0)
    assert (v["n_quiet"], v["n_not_quiet"], v["n_load_unknown"]) == (0, 0, 1)  # no load block
    assert all(type(x) in (float, int, str) for x in v.values())


def test_seeds_are_averaged():
    records = [_hand_record(0), _hand_record(1, shift=-0.02)]
    assert len(report.decompositions_frame(records)) == 6
    g = report.summary_frame(records).set_index(["method", "rank"])
    assert g.loc[("cp", 4), "acc_decomposed"] == pytest.approx(89.0)
    assert report.baseline_accuracy(records) == pytest.approx(97.0)
    assert report.glue_values(records)["n_runs"] == 2


def test_results_table():
    t = report.results_table([_hand_record()])
    assert list(t.method) == ["cp", "cp", "tucker"] and list(t["rank"]) == ["8", "4", "4"]  # by compression
    cp4 = t.iloc[1]
    assert cp4["compression"] == "10.0×" and cp4["layer speedup: FLOPs"] == "10.0×"
    assert cp4["rel. error of W"] == "0.800" and cp4["seeds"] == 1
    assert cp4["acc. decomposed (%, mean ± SE)"] == "90.00" and t.iloc[2]["layer params"] == "300"  # one seed: no SE
    assert cp4["fine-tuned − dense (points, paired ± SE)"] == "-1.00"
    # measured times live in the path table (mean ± SE, with the quiet flag), not here
    assert not any("measured" in c or c == "quiet" for c in t.columns)


def test_results_table_gives_n_and_standard_errors_over_seeds():
    records = [_hand_record(0), _hand_record(1, shift=-0.02)]  # seed 1: dense 96 %, CP rank 4 88 %
    t = report.results_table(records).set_index(["method", "rank"])
    cp4 = t.loc[("cp", "4")]
    assert cp4["seeds"] == 2
    assert cp4["acc. decomposed (%, mean ± SE)"] == "89.00 ± 1.00"  # 90 and 88: sd 1.414, SE 1.0
    assert cp4["acc. fine-tuned (%, mean ± SE)"] == "97.00 ± 0.00"  # 97 in both runs
    assert cp4["fine-tuned − dense (points, paired ± SE)"] == "+0.00 ± 1.00"  # -1 and +1, paired within the run
    f = report.accuracy_frame(records).set_index(["method", "rank"])
    assert f.loc[("cp", 4), "lost_decomposed"] == pytest.approx(8.0) and f.loc[("cp", 4), "lost_decomposed_se"] == 0
    assert f.loc[("cp", 4), "ft_gain"] == pytest.approx(8.0) and f.loc[("cp", 4), "ft_gain_se"] == pytest.approx(1.0)
    v = report.glue_values(records)
    assert v["n_seeds"] == 2 and v["cp_4_acc_decomposed_se"] == pytest.approx(1.0)
    assert v["cp_4_lost_finetuned_mean"] == pytest.approx(0.0) and v["cp_4_recovered_pct"] == pytest.approx(100.0)


def test_quiet_flag_beside_the_times():
    quiet, busy = _hand_record(0), _hand_record(1)
    quiet["provenance"]["load"] = {"quiet": True}
    busy["provenance"]["load"] = {"quiet": False}
    v = report.glue_values([quiet, busy, _hand_record(2)])
    assert (v["n_quiet"], v["n_not_quiet"], v["n_load_unknown"]) == (1, 1, 1)


def test_smoke_record(smoke_records):
    (rec,) = smoke_records
    v = report.glue_values(smoke_records)
    assert v["profile"] == "smoke" and v["base_acc"] == pytest.approx(100 * rec["metrics"]["baseline_acc"])
    assert v["n_variants"] == len(rec["metrics"]["results"]) == 2
    for row in rec["metrics"]["results"]:
        key = f"{row['method']}_{row['rank']}"
        assert v[f"{key}_acc_finetuned"] == pytest.approx(100 * row["acc_finetuned"])
        assert v[f"{key}_layer_speedup"] == pytest.approx(row["dense_layer_s"] / row["layer_s"])
    assert v["n_layer_faster"] == sum(r["dense_layer_s"] > r["layer_s"] for r in rec["metrics"]["results"])
    # timed on whatever machine runs the tests: the share can exceed 100 % under load
    share = v["layer_share_pct"] / 100
    assert share > 0 and v["net_bound"] == (pytest.approx(1 / (1 - share)) if share < 1 else float("inf"))


def test_figure():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = report.figure([_hand_record()])
    assert len(fig.axes) == 2 and fig.axes[0].get_ylim() == pytest.approx((88.0, 100.0))
    assert fig.axes[1].get_xlabel() == "speedup of the layer\npredicted by FLOPs"
    plt.close(fig)


# -- path timing ------------------------------------------------------------------------------

def _path_row(method, rank, flops, layer_s, net_s, factored_s, net_factored_s, path, roofline_s, factored_roofline_s):
    """A path-timed decomposition: dense layer 1 s of a 4 s dense net, dense roofline 1 ms."""
    return {**_row(method, rank, 90, flops, 1100, layer_s, net_s), "layer_path": path,
            "layer_factored_s": factored_s, "net_factored_s": net_factored_s, "dense_roofline_s": 1e-3,
            "roofline_s": roofline_s, "factored_roofline_s": factored_roofline_s, "bound": "memory",
            "factored_bound": "memory", "dense_bound": "compute", "path_choices": {}, "paths_roofline_s": {}}


# Per seed: CP rank 4 layer speed-ups 2, 3, 4 (chosen: the rebuilt weight, once channels-last),
# factored 1, 2, 3; network 1.1, 1.2, 1.3 (factored 0.9 each); roofline bounds 10, 10, 10 (chosen)
# and 20, 25, 30 (factored). Tucker rank 8: factored all seeds, layer 0.5 (slower), bound 4.
SEEDS = {0: (2, 1, 1.1, "dense"), 1: (3, 2, 1.2, "dense"), 2: (4, 3, 1.3, "dense_cl")}
FACTORED_BOUND = {0: 20, 1: 25, 2: 30}


def _path_record(seed) -> dict:
    rec = _hand_record(seed)
    up, fup, net_up, path = SEEDS[seed]
    rec["config"]["path_timing"] = True
    rec["metrics"]["results"] = [
        _path_row("cp", 4, 100, 1 / up, 4 / net_up, 1 / fup, 4 / 0.9, path, 1e-4, 1e-3 / FACTORED_BOUND[seed]),
        _path_row("tucker", 8, 500, 2.0, 4.5, 2.0, 4.5, "factored", 2.5e-4, 2.5e-4)]
    rec["metrics"]["machine"] = {"peak_flops": (50 + seed) * 1e9, "bandwidth": 20e9}
    return rec


def test_path_speedups_mean_and_se_over_seeds():
    g = report.path_speedup_frame([_path_record(s) for s in (0, 1, 2)]).set_index(["method", "rank"])
    cp = g.loc[("cp", 4)]
    assert (cp.n_seeds, cp.n_path_timed, cp.layer_path) == (3, 3, "dense ×2, dense_cl ×1")
    se1 = 1 / math.sqrt(3)  # sample SD 1 of (2, 3, 4) and (1, 2, 3)
    assert (cp.layer_speedup, cp.layer_speedup_se) == (pytest.approx(3.0), pytest.approx(se1))
    assert (cp.layer_factored_speedup, cp.layer_factored_speedup_se) == (pytest.approx(2.0), pytest.approx(se1))
    assert (cp.net_speedup, cp.net_speedup_se) == (pytest.approx(1.2), pytest.approx(0.1 / math.sqrt(3)))
    assert (cp.net_factored_speedup, cp.net_factored_speedup_se) == (pytest.approx(0.9), pytest.approx(0.0, abs=1e-12))
    assert (cp.roofline_speedup, cp.roofline_speedup_se) == (pytest.approx(10.0), pytest.approx(0.0, abs=1e-12))
    assert (cp.factored_roofline_speedup, cp.factored_roofline_speedup_se) == (pytest.approx(25.0),
                                                                              pytest.approx(5 / math.sqrt(3)))
    assert cp.roofline_efficiency == pytest.approx(0.3) and cp.flop_speedup == pytest.approx(10.0)
    tk = g.loc[("tucker", 8)]
    assert tk.layer_path == "factored" and tk.layer_speedup == pytest.approx(0.5) and tk.roofline_speedup == 4.0


def test_path_table_and_glue_values():
    records = [_path_record(s) for s in (0, 1, 2)]
    t = report.path_table(records).set_index("method")
    assert t.loc["cp", "layer: chosen"] == "3.00 ± 0.58×" and t.loc["cp", "layer: factored"] == "2.00 ± 0.58×"
    assert t.loc["cp", "roofline: chosen"] == "10.00 ± 0.00×" and t.loc["cp", "network: chosen"] == "1.20 ± 0.06×"
    assert t.loc["cp", "chosen path"] == "dense ×2, dense_cl ×1" and t.loc["cp", "seeds"] == 3
    assert t.loc["tucker", "FLOPs"] == "2.0×"
    v = report.path_glue_values(records)
    assert (v["path_n_runs"], v["path_n_seeds"], v["path_n_variants"]) == (3, 3, 2)
    assert v["peak_gflops"] == pytest.approx(51.0) and v["bandwidth_gbs"] == pytest.approx(20.0)
    assert v["path_cp_4_layer_speedup"] == pytest.approx(3.0)
    assert v["path_cp_4_layer_speedup_se"] == pytest.approx(1 / math.sqrt(3))
    assert v["path_cp_4_path"] == "dense ×2, dense_cl ×1" and v["path_tucker_8_path"] == "factored"
    assert not set(v) & set(report.glue_values(records))  # one glue name, one value
    assert (v["n_chose_factored"], v["n_chose_partial"], v["n_chose_rebuilt"], v["n_chose_mixed"]) == (1, 0, 1, 0)
    assert (v["n_chosen_faster"], v["n_factored_faster"], v["n_never_slower"], v["n_net_chosen_faster"]) == (1, 1, 1, 1)
    # clearly: CP's chosen 3.0 ± 0.58 (2.0 above one > 2 SE) and its network 1.2 ± 0.06; its factored
    # 2.0 ± 0.58 is 1.0 above one, within 2 SE
    assert (v["n_chosen_clearly_faster"], v["n_factored_clearly_faster"], v["n_net_chosen_clearly_faster"]) == (1, 0, 1)
    assert v["chosen_speedup_max"] == pytest.approx(3.0) and v["chosen_speedup_max_bound"] == pytest.approx(10.0)
    assert v["chosen_speedup_max_what"] == "cp at rank 4 (dense ×2, dense_cl ×1)"
    assert v["roofline_speedup_max"] == pytest.approx(10.0)
    assert (v["roofline_eff_min"], v["roofline_eff_max"]) == (pytest.approx(0.125), pytest.approx(0.3))
    assert v["net_factored_speedup_max"] == pytest.approx(0.9)
    assert all(type(x) in (float, int, str) for x in v.values())


def test_path_kind():
    assert [report.path_kind(p) for p in ("factored_cl", "dense", "merge_in ×2, depthwise ×1",
                                           "factored ×2, factored_cl ×1", "dense ×1, factored ×2")] == \
        ["factored", "rebuilt", "partial", "factored", "mixed"]


def test_old_records_show_what_they_have():
    """Records timed before path timing: the factored path was forced, no roofline."""
    old = _hand_record()
    f = report.decompositions_frame([old])
    assert not f.path_timing.any() and set(f.layer_path) == {"factored"}
    assert list(f.layer_factored_speedup) == list(f.layer_speedup) and f.roofline_speedup.isna().all()
    g = report.summary_frame([old]).set_index(["method", "rank"])
    assert g.loc[("cp", 4), "layer_factored_speedup"] == pytest.approx(1 / 0.95)
    t = report.path_table([old]).set_index(["method", "rank"])
    assert t.loc[("cp", "4"), "layer: chosen"] == "–" and t.loc[("cp", "4"), "roofline: chosen"] == "–"
    assert t.loc[("cp", "4"), "layer: factored"] == "1.05×" and t.loc[("cp", "4"), "chosen path"] == "factored"
    with pytest.raises(ValueError, match="path_timing"):
        report.path_glue_values([old])
    with pytest.raises(ValueError, match="path_timing"):
        report.path_figure([old])
    # old and new runs of a variant: factored speed-ups from all, chosen ones from the path-timed
    mixed = report.path_speedup_frame([old, _path_record(1)]).set_index(["method", "rank"]).loc[("cp", 4)]
    assert (mixed.n_seeds, mixed.n_path_timed) == (2, 1) and mixed.layer_speedup == pytest.approx(3.0)
    assert mixed.layer_factored_speedup == pytest.approx((1 / 0.95 + 2) / 2)


def test_smoke_record_times_paths(smoke_records):
    (rec,) = smoke_records
    assert rec["config"]["path_timing"] is True
    machine = rec["metrics"]["machine"]
    assert machine["peak_flops"] > 0 and machine["bandwidth"] > 0 and machine["gemm_n"] == 512
    rows = rec["metrics"]["results"]
    assert len({r["dense_roofline_s"] for r in rows}) == 1
    for r in rows:
        assert r["layer_factored_s"] > 0 and r["net_factored_s"] > 0 and r["layer_s"] > 0
        ((label, choice),) = r["path_choices"].items()  # the layer alone and in the net: one key
        assert "eval no_grad" in label and choice["how"] == "measured"
        # eval: the rebuilt weight unless another path is faster by more than the margin
        times = choice["times_s"]
        assert r["layer_path"] == choice["path"] == _beats(times, inference_reference(times), INFERENCE_MARGIN)
        assert set(r["paths_roofline_s"]) == set(choice["times_s"])
        assert r["roofline_s"] == r["paths_roofline_s"][r["layer_path"]] > 0
        assert r["factored_roofline_s"] == r["paths_roofline_s"]["factored"]
        assert {r["bound"], r["factored_bound"], r["dense_bound"]} <= {"memory", "compute"}
    g = report.path_speedup_frame(smoke_records).set_index(["method", "rank"])
    v = report.path_glue_values(smoke_records)
    for r in rows:
        key = f"path_{r['method']}_{r['rank']}"
        assert g.loc[(r["method"], r["rank"]), "layer_speedup"] == pytest.approx(r["dense_layer_s"] / r["layer_s"])
        assert v[f"{key}_roofline_speedup"] == pytest.approx(r["dense_roofline_s"] / r["roofline_s"])
        assert v[f"{key}_net_factored_speedup"] == pytest.approx(r["dense_net_s"] / r["net_factored_s"])
        assert math.isnan(v[f"{key}_layer_speedup_se"])  # one seed


def test_path_figure():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = report.path_figure([_path_record(s) for s in (0, 1, 2)])
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    assert fig.axes[1].get_ylabel() == "measured speedup of the network"
    plt.close(fig)
