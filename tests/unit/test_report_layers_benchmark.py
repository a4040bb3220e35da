"""factorlab.report.layers_benchmark: frames, tables and glued values of the layer-speed chapter,
on a smoke-profile record and on hand-built rows on both sides of every threshold (ours/dense
1, measured/predicted 1.5, dense time 1 ms, TensorLy-Torch 2x, the faster path)."""
from __future__ import annotations

import math

import matplotlib
import pytest

from factorlab.experiments.layers_benchmark import NAME
from factorlab.report import layers_benchmark as report


def _lin(family, shape, c, batch, dense_s, ratio, flop_ratio, rank="4", tl=None):
    """A linear row: ours takes ``ratio`` times the dense time; ``tl`` = (factorized,
    reconstructed) TensorLy-Torch times over ours."""
    row = {"kind": "linear", "family": family, "shape": shape, "compression": c, "rank": rank, "params": 100,
           "dense_params": 400, "batch": batch, "dense_flops": 1000, "ours_flops": int(1000 * flop_ratio),
           "flop_ratio": flop_ratio, "dense_s": dense_s, "ours_s": dense_s * ratio}
    if tl:
        row["tltorch_factorized_s"], row["tltorch_reconstructed_s"] = (t * row["ours_s"] for t in tl)
    return row


def _conv(family, c, batch, dense_s, path, factored_s, rebuilt_s, flop_ratio):
    """A 64-channel convolution row; ours runs ``path``."""
    return {"kind": "conv", "family": family, "shape": "64->64 3x3 @32x32", "compression": c, "rank": "5",
            "params": 100, "dense_params": 400, "batch": batch, "dense_flops": 1000,
            "ours_flops": int(1000 * flop_ratio), "flop_ratio": flop_ratio, "dense_s": dense_s, "path": path,
            "ours_factored_s": factored_s, "ours_dense_s": rebuilt_s, "flops_factored": 500, "flops_dense": 1000,
            "ours_s": factored_s if path == "factored" else rebuilt_s}


def _hand_record() -> dict:
    rows = [
        _lin("lowrank", "784->512", 4, 1, 2e-3, 1.01, 0.25),  # batch 1: just slower than dense
        _lin("lowrank", "784->512", 4, 32, 2e-3, 0.99, 0.68),  # just faster; measured/predicted 1.456
        _lin("cp", "784->512", 4, 1, 0.9e-3, 0.99, 1.2, rank="961", tl=(2.1, 2.5)),  # dense under 1 ms
        _lin("cp", "512->512", 4, 32, 1.1e-3, 1.2, 1.1, rank="900", tl=(1.9, 3.0)),  # peer 1.9x: misses 2x
        _conv("tt", 16, 32, 4e-3, "factored", 0.01, 0.002, 0.5),  # the rule picks the slower path
        _conv("cp", 4, 256, 0.02, "dense", 0.03, 0.01, 0.4),
        _conv("separable", None, 1, 1.5e-3, "factored", 0.001, 0.002, 0.5),
        _conv("lowrank", 16, 32, 1e-3, "factored", 0.0008, 0.0009, 0.5),  # dense exactly 1 ms; m/p 1.6
    ]
    return {"experiment": NAME, "key": "0123456789abcdef",
            "config": {"experiment": NAME, "profile": "cpu", "device": "cpu"},
            "metrics": {"rows": rows, "tltorch": "0.5.0", "threads": 1}, "timing": {"threads": 1, "wall_s": 9.0},
            "provenance": {"profile": "cpu", "device": "cpu (x86_64, 1 threads)", "git_commit": "abcdef0123456789",
                           "git_dirty": False, "started": "2026-01-01T00:00:00+00:00", "wall_s": 9.04}}


def test_targets_on_both_sides_of_their_thresholds():
    t = list(report.targets(_hand_record()).values())
    assert t[0] == (2, 3)  # batch 1, compressed: 1.01x misses, 0.99x and 0.67x meet
    assert t[1] == (4, 7)  # dense >= 1 ms (0.9 ms left out, 1.0 ms in): 1.456, 1.09, 1.25, 1.33 meet
    assert t[2] == (1, 2)  # TensorLy-Torch 2.1x meets, 1.9x misses
    table = report.targets_table(_hand_record())
    assert list(table["rows meeting it"]) == ["2 of 3", "4 of 7", "1 of 2"]


def test_glue_values_on_hand_built_rows():
    v = report.glue_values(_hand_record())
    assert list(v)[:6] == ["profile", "devices", "threads", "tltorch", "path_agree", "path_total"]
    assert (v["profile"], v["devices"], v["threads"], v["tltorch"]) == ("cpu", "cpu (x86_64, 1 threads)", 1, "0.5.0")
    assert (v["path_agree"], v["path_total"]) == (3, 4)
    assert (v["faster_linear"], v["rows_linear"], v["faster_conv"], v["rows_conv"]) == (2, 4, 3, 4)
    assert (v["t1_met"], v["t1_n"], v["t2_met"], v["t2_n"], v["t3_met"], v["t3_n"]) == (2, 3, 4, 7, 1, 2)
    assert v["peer_median"] == pytest.approx(2.0) and v["peer_min"] == pytest.approx(1.9)
    assert v["peer_max"] == pytest.approx(2.1)
    assert v["mp_median"] == pytest.approx(0.99 / 0.68)
    assert v["reco_median"] == pytest.approx(2.75) and v["fact_median"] == pytest.approx(2.0)
    assert v["lr_lin_best"] == pytest.approx(0.99) and v["lr_lin_worst"] == pytest.approx(0.99)
    assert v["bigconv_best"] == pytest.approx(1 / 1.5) and v["bigconv_worst"] == pytest.approx(0.8)
    assert v["tt_fact_over_reb_min"] == pytest.approx(5.0) and v["tt_fact_over_reb_max"] == pytest.approx(5.0)
    assert v["cp256_fact_over_reb"] == pytest.approx(3.0)
    assert v["cp_lin_rank"] == "900, 961" and v["cp_lin_pred_min"] == pytest.approx(1.1)
    assert all(type(x) in (float, int, str) for x in v.values())


def test_measurements_table_and_provenance():
    t = report.measurements_table(_hand_record())
    assert len(t) == 8 and t.iloc[0]["layer"] == "linear 784->512" and t.iloc[0]["c"] == "4×"
    assert t.iloc[0]["dense ms"] == "2.000" and t.iloc[0]["ours / dense"] == "1.01"
    assert t.iloc[0]["tltorch f / ours"] == "" and t.iloc[2]["tltorch f / ours"] == "2.10"
    assert t.iloc[0]["path"] == "" and t.iloc[0]["factored ms"] == ""
    sep = t.iloc[6]
    assert sep["c"] == "" and sep["path"] == "factored" and sep["rebuilt ms"] == "2.000"
    prov = report.provenance_frame(_hand_record())
    assert prov.iloc[0][["run", "git commit", "wall time (s)"]].tolist() == ["0123456789abcdef", "abcdef0123", 9.0]
    assert prov.iloc[0]["quiet"] == "unknown" and report.glue_values(_hand_record())["quiet"] == "unknown"


def test_quiet_flag_from_the_load_block():
    for quiet, label in ((True, "yes"), (False, "no")):
        rec = _hand_record()
        rec["provenance"]["load"] = {"quiet": quiet, "other_trainings": 0}
        assert report.provenance_frame(rec).iloc[0]["quiet"] == label
        assert report.glue_values(rec)["quiet"] == label


def test_smoke_record(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("FACTORLAB_REQUIRE_CACHED", raising=False)
    rec = report.load_record("smoke", "cpu")
    rows = rec["metrics"]["rows"]
    assert len(report.measurements_frame(rec)) == len(rows) == 2  # TT linear and CP conv at batch 32
    v = report.glue_values(rec)
    assert v["profile"] == "smoke" and v["rows_linear"] == v["rows_conv"] == 1 and v["path_total"] == 1
    conv = next(r for r in rows if r["kind"] == "conv")
    assert v["faster_conv"] == int(conv["ours_s"] < conv["dense_s"])
    assert v["path_agree"] == int(conv["path"] == ("factored" if conv["ours_factored_s"] <= conv["ours_dense_s"]
                                                   else "dense"))
    assert math.isnan(v["lr_lin_best"])  # no low-rank linear row in the smoke subset
    assert v["quiet"] in ("yes", "no")  # the store records the load of every new record
    # recomputed from the rows, the targets are those stored with the record
    assert {k: list(t) for k, t in report.targets(rec).items()} == rec["metrics"]["targets"]


def test_figure():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = report.figure(_hand_record())
    assert [ax.get_title() for ax in fig.axes] == ["linear layers", "conv layers"]
    plt.close(fig)
