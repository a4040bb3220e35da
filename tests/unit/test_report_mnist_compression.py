"""factorlab.report.mnist_compression: frames, table and glued values of the compression chapter,
on a smoke-profile record and on hand-built records on both sides of "faster" (speedup 1)."""
from __future__ import annotations

import matplotlib
import pytest

from factorlab.experiments.mnist_compression import NAME
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
    assert cp4["compression"] == "10.0×" and cp4["layer speedup: measured"] == "1.05×"
    assert cp4["network: measured"] == "0.95×" and cp4["rel. error of W"] == "0.800"
    assert cp4["acc. decomposed (%)"] == "90.00" and t.iloc[2]["layer params"] == "300"
    assert set(t["quiet"]) == {"unknown"}


def test_quiet_flag_beside_the_times():
    quiet, busy = _hand_record(0), _hand_record(1)
    quiet["provenance"]["load"] = {"quiet": True}
    busy["provenance"]["load"] = {"quiet": False}
    assert set(report.results_table([quiet])["quiet"]) == {"yes"}
    assert set(report.results_table([busy])["quiet"]) == {"no"}
    assert set(report.results_table([quiet, busy])["quiet"]) == {"1 of 2"}
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
