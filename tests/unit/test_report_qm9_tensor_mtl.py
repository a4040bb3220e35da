"""report.qm9_tensor_mtl on hand-built records (paired Δm, references, best λ, sharing, MRN
correlation, verdicts) and on nothing ("not measured")."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from factorlab.experiments.qm9_common import NASH11
from factorlab.mtl import delta_m
from factorlab.report import qm9_tensor_mtl as R
from factorlab.report.verdicts import NOT_MEASURED


def _mae(scale: float) -> dict[str, float]:
    return {t: scale * (k + 1) for k, t in enumerate(NASH11)}


def _stl(seed: int, scale: float = 1.0) -> list[dict]:
    """qm9_single_task records of one seed, as stacks of 5 (targets outside NASH11 included)."""
    m = _mae(scale)
    return [{"config": {"model": "gine", "seed": seed, "targets": NASH11[:5] + ["gap"]},
             "metrics": {"test_mae": {**{t: m[t] for t in NASH11[:5]}, "gap": 9.0}}},
            {"config": {"model": "gine", "seed": seed, "targets": NASH11[5:]},
             "metrics": {"test_mae": {t: m[t] for t in NASH11[5:]}}}]


def _tensor(method: str, seed: int, scale: float, lam: float | None = None, valid: float = 1.0,
            single_scale: float = 1.0) -> dict:
    rec = {"config": {"method": method, "lam": lam, "seed": seed, "targets": list(NASH11), "task_set": "nash11"},
           "metrics": {"test_mae": _mae(scale), "single_test_mae": _mae(single_scale), "mean_valid_mae_std": valid,
                       "reference_check": {"equal": None}},
           "model": {"params": 1000, "single_params": 5000},
           "timing": {"train_s": 10.0, "single_s": 20.0, "factorize_s": 1.0}}
    if method == "deep":
        rec["model"].update(match_params=900, width=40, layers=6)
    elif method == "mrn":
        corr = np.eye(11)
        corr[0, 1] = corr[1, 0] = 0.5 + seed / 10
        rec["metrics"]["task_correlation"] = {"heads": corr.tolist()}
    else:
        rec["model"]["sharing"] = {"encoder.node_in": {"task_rank": 1 + seed, "rank_used": (1 + seed) / 11,
                                                       "init_rel_error": 0.05, "effective_rank": 1.0 + seed},
                                   "encoder.convs.0.nn.0": {"task_rank": 11, "rank_used": 1.0, "init_rel_error": 0.0}}
    return rec


def _soft(seed: int, lam, scale: float, valid: float = 1.0) -> dict:
    return {"config": {"method": "l2", "lam": lam, "seed": seed, "targets": list(NASH11), "task_set": "nash11"},
            "metrics": {"test_mae": _mae(scale), "valid_mae": _mae(scale), "mean_valid_mae_std": valid,
                        "constrained_params": 10, "valid_loss_std_total": 1.0, "test_loss_std_total": 1.0,
                        "test_loss_std": _mae(1.0)},
            "model": {"params": 700}, "timing": {"train_s": 5.0}, "history": {"distance": {}}}


def test_only_qm9_single_task_is_the_reference_and_a_missing_one_is_named():
    """Seed 1 has its own stack (single_test_mae) and a soft λ = 0 run but no qm9_single_task
    records: it gets no Δm (neither stands in), and the report names it and the command."""
    tensor = [{**_tensor("laf", s, 0.9, single_scale=2.0), "config": {**_tensor("laf", s, 0.9)["config"],
                                                                       "profile": "cpu"}} for s in (0, 1)]
    soft = [_soft(1, 0.0, 1.0), _soft(1, "inf", 0.8)]
    f = R.delta_m_frame(tensor, _stl(0), soft)
    assert f.seed.tolist() == [0] and f.label.tolist() == ["DMTRL LAF"]
    assert f.delta_m.tolist() == pytest.approx([100 * delta_m(_mae(0.9), _mae(1.0))])  # qm9_single_task, not 2.0
    msg = ("no Δm for seed(s) 1: their qm9_single_task reference of the 11 targets is missing "
           "(run `python -m factorlab run qm9_single_task --profile cpu`)")
    assert R.missing_reference(tensor, _stl(0), soft) == msg
    assert R.glue_values("cpu", tensor, _stl(0), soft)["qm9_reference_missing"] == msg
    assert R.missing_reference(tensor, _stl(0) + _stl(1)) == ""
    assert R.delta_m_frame(tensor, _stl(0)[:1]).empty  # a seed missing targets has no reference
    g = R.glue_values("cpu", tensor, [], soft)  # no reference at all: nothing measured, and said so
    assert g["qm9_dm_laf"] == g["qm9_dm_hard"] == NOT_MEASURED
    assert g["qm9_reference_missing"].startswith("no Δm for seed(s) 0, 1: ")


def test_a_reference_of_another_budget_is_refused():
    tensor = [_tensor("laf", 0, 0.9)]
    tensor[0]["config"].update(experiment="qm9_tensor_mtl", epochs=10)
    stl = _stl(0)
    for r in stl:
        r["config"].update(experiment="qm9_single_task", epochs=7)
    with pytest.raises(ValueError, match=r"^the single-task record of .* \(seed 0\) differs from qm9_tensor_mtl's "
                                         r"budget in epochs: Δm and pair gains need the same budget$"):
        R.delta_m_frame(tensor, stl)
    assert R.delta_m_frame(tensor, _stl(1)).empty  # another seed's records are not compared


def test_delta_m_is_paired_per_seed_with_mean_and_se():
    stl = _stl(0) + _stl(1, 2.0)
    tensor = [_tensor("tucker", 0, 0.9), _tensor("tucker", 1, 1.9)]
    f = R.delta_m_frame(tensor, stl)
    expect = [100 * delta_m(_mae(0.9), _mae(1.0)), 100 * delta_m(_mae(1.9), _mae(2.0))]
    assert f.delta_m.tolist() == pytest.approx(expect)
    s = R.summary_frame(f)
    assert s.label.tolist() == ["DMTRL Tucker"] and s.n_seeds.tolist() == [2]
    assert s.delta_m.iloc[0] == pytest.approx(np.mean(expect))
    assert s.delta_m_se.iloc[0] == pytest.approx(np.std(expect, ddof=1) / math.sqrt(2))
    assert f.total_s.tolist() == [31.0, 31.0] and f.train_s.tolist() == [10.0, 10.0]


def test_hard_and_best_soft_sharing_rows_and_mrn_at_its_best_lambda():
    stl = _stl(0) + _stl(1)
    soft = [_soft(s, lam, sc, v) for s in (0, 1) for lam, sc, v in
            ((0.0, 1.0, 1.0), (0.01, 0.95, 0.8), (1.0, 0.9, 0.9), ("inf", 0.8, 0.95))]
    tensor = [_tensor("mrn", s, sc, lam=lam, valid=v) for s in (0, 1)
              for lam, sc, v in ((1e-4, 0.99, 0.7), (1e-2, 0.5, 0.9))]
    assert R.best_mrn_lambda(tensor) == 1e-4
    f = R.delta_m_frame(tensor, stl, soft)
    s = R.summary_frame(f)
    assert s.label.tolist() == ["hard sharing", "soft sharing (best λ)", "MRN λ=0.0001"]
    assert s.delta_m.tolist() == pytest.approx([-20.0, -5.0, -1.0])  # soft: λ = 0.01, the best on validation
    assert R.beats_verdict(f, "MRN λ=0.0001", "hard sharing") == "higher"  # paired: SE 0 over two equal seeds
    assert R.beats_verdict(f, "DMTRL LAF", "hard sharing") == NOT_MEASURED
    assert R.beats_verdict(f[f.seed == 0], "MRN λ=0.0001", "hard sharing") == "too few seeds"


def test_sharing_frame_means_over_seeds_in_layer_order():
    tensor = [_tensor("laf", 0, 1.0), _tensor("laf", 1, 1.0), _tensor("mrn", 0, 1.0, lam=1e-3)]
    f = R.sharing_frame(tensor)
    assert f.layer.tolist() == ["encoder.node_in", "encoder.convs.0.nn.0"]
    assert f.effective_rank.iloc[0] == 1.5 and math.isnan(f.effective_rank.iloc[1])
    assert f.task_rank.tolist() == [1.5, 11.0] and f.rank_used.tolist() == pytest.approx([1.5 / 11, 1.0])
    t = R.sharing_table(tensor)
    assert t.index.tolist() == ["encoder.node_in", "encoder.convs.0.nn.0"] and t.iloc[1, 0] == "1.00"
    assert t.iloc[0, 0] == f"{1.5 / 11:.2f} (1.5)"
    assert R.sharing_summary(tensor) == {"qm9_most_shared": f"encoder.node_in ({1.5 / 11:.2f} to {1.5 / 11:.2f})",
                                         "qm9_least_shared": "encoder.convs.0.nn.0 (1.00 to 1.00)",
                                         "qm9_eff_rank_range": "1.5 to 1.5"}
    assert set(R.sharing_summary([]).values()) == {NOT_MEASURED}


def test_task_correlation_is_the_seed_mean_at_the_chosen_lambda():
    tensor = [_tensor("mrn", 0, 1.0, lam=1e-3), _tensor("mrn", 1, 1.0, lam=1e-3)]
    c = R.task_correlation(tensor)
    assert list(c.index) == NASH11 and c.loc["mu", "alpha"] == pytest.approx(0.55)
    assert R.task_correlation([_tensor("laf", 0, 1.0)]) is None
    fig = R.correlation_figure(c, list(reversed(NASH11)))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(reversed(NASH11))
    assert fig.axes[1].get_ylabel() == "learned task correlation"
    near = pd.DataFrame(1 - 3e-6 * (1 - np.eye(11)), index=NASH11, columns=NASH11)
    near.loc["mu", "alpha"] = near.loc["alpha", "mu"] = 1 - 1e-6
    fig = R.correlation_figure(near)  # all near one: 1 - C in units of 1e-6, diagonal blank
    assert fig.axes[1].get_ylabel() == "1 − learned task correlation (× 1e-6)"
    values = fig.axes[0].collections[0].get_array()
    assert values.count() == 11 * 10 and float(values.min()) == pytest.approx(1.0) and float(values.max()) == pytest.approx(3.0)
    from factorlab.report.mrn_correlation import correlation_gap
    assert correlation_gap(tensor) == "1.0e+00" and correlation_gap([]) == NOT_MEASURED  # uncorrelated pairs: 1 - 0
    assert R.glue_values("cpu", tensor, [])["qm9_mrn_corr_gap"] == "1.0e+00"
    plt.close("all")


def test_glue_values_say_not_measured_without_records():
    g = R.glue_values("cpu", [], [], [])
    assert g["qm9_dm_laf"] == g["qm9_dm_hard"] == g["qm9_mrn_lambda"] == g["qm9_laf_vs_hard"] == NOT_MEASURED
    assert g["qm9_n_seeds"] == 0
    g = R.glue_values("cpu", [_tensor("laf", 0, 0.9)], _stl(0))
    assert g["qm9_dm_laf"] == "-10.0 %" and g["qm9_laf_vs_hard"] == NOT_MEASURED and g["qm9_n_seeds"] == 1


def test_deeper_network_row_and_the_more_layers_verdict():
    """Tucker beats the deeper hard-shared network of its size when its Δm is clearly lower
    over 3 paired seeds; the deeper run's stack is no part of its cost."""
    stl = _stl(0) + _stl(1) + _stl(2)
    tucker = [_tensor("tucker", s, 0.80 + 0.01 * s) for s in range(3)]
    deep = [_tensor("deep", s, 0.95 + 0.01 * s) for s in range(3)]
    runs = R.runs_frame(tucker + deep)
    assert runs[runs.method == "deep"].pretrain_s.tolist() == [0.0] * 3
    assert runs[runs.method == "tucker"].pretrain_s.tolist() == [21.0] * 3
    f = R.delta_m_frame(tucker + deep, stl)
    deep_rows = f[f.label == R.METHOD_LABEL["deep"]]
    assert (deep_rows.total_s == deep_rows.train_s).all()  # the same rule as runs_frame: no pretraining
    assert (f[f.label == R.METHOD_LABEL["tucker"]].total_s == 31.0).all()
    assert sorted(set(f.label)) == sorted({R.METHOD_LABEL["tucker"], R.METHOD_LABEL["deep"]})
    g = R.glue_values("cpu", tucker + deep, stl)
    assert g["qm9_dm_deep"] == "-4.0 ± 0.6 %"
    assert (g["qm9_params_tucker"], g["qm9_params_single"], g["qm9_params_laf"]) == ("1,000", "5,000", NOT_MEASURED)
    assert g["qm9_tucker_vs_deep"] == "lower" and g["qm9_deep_vs_hard"] == NOT_MEASURED
    assert g["qm9_tucker_vs_deep_diff"] == "-15.0 ± 0.0 points, n = 3" and g["qm9_deep_vs_hard_diff"] == NOT_MEASURED
    assert g["qm9_time_quiet"] == "0 of the 6 runs timed were taken on a quiet machine (6 predate load recording)"
    for k, r in enumerate(tucker + deep):
        r["provenance"] = {"load": {"quiet": k != 0}}  # tucker seed 0 ran beside another training
    table = R.summary_table(R.delta_m_frame(tucker + deep, stl)).set_index("method")
    assert table.loc[R.METHOD_LABEL["tucker"], "timed on a quiet machine"] == "2 of 3"
    assert table.loc[R.METHOD_LABEL["deep"], "timed on a quiet machine"] == "yes"
    assert table.loc[R.METHOD_LABEL["deep"], "Δm (%), mean ± SE"] == "-4.0 ± 0.6"
    assert R.glue_values("cpu", tucker + deep, stl)["qm9_time_quiet"].startswith("5 of the 6 runs timed")
    for r in tucker + deep:
        del r["provenance"]
    same = R.glue_values("cpu", tucker + [_tensor("deep", s, 0.80 + 0.01 * s) for s in range(3)], stl)
    assert same["qm9_tucker_vs_deep"] == "within noise"
    assert R.glue_values("cpu", tucker, stl)["qm9_tucker_vs_deep"] == NOT_MEASURED
    finetune = [_tensor("finetune", s, 0.85 - 0.02 * s) for s in range(3)]  # tucker minus it: -5, -2, +1 points
    g = R.glue_values("cpu", tucker + finetune, stl)
    assert g["qm9_tucker_vs_finetune"] == "within noise" and g["qm9_laf_vs_finetune"] == NOT_MEASURED
    assert g["qm9_tucker_vs_finetune_diff"] == "-2.0 ± 1.7 points"  # mean -2, SE 3 / sqrt(3)
    assert g["qm9_laf_vs_finetune_diff"] == NOT_MEASURED
    assert (g["qm9_n_shared_methods"], g["qm9_n_beat_finetune"], g["qm9_n_lose_finetune"]) == (1, 0, 0)
    one = R.glue_values("cpu", tucker[:1] + finetune[:1], stl)
    assert one["qm9_tucker_vs_finetune"] == "too few seeds" and one["qm9_tucker_vs_finetune_diff"] == "-5.0 points"
    g = R.glue_values("cpu", tucker + [_tensor("finetune", s, 0.95) for s in range(3)], stl)
    assert g["qm9_tucker_vs_finetune"] == "lower" and (g["qm9_n_beat_finetune"], g["qm9_n_lose_finetune"]) == (1, 0)
    assert R.METHOD_LABEL["finetune"] in set(R.delta_m_frame(tucker + finetune, stl).label)


def test_relatedness_order_is_none_without_pair_records():
    assert R.relatedness_order([], _stl(0)) is None


def test_on_smoke_records():
    from factorlab.experiments import qm9_single_task
    from factorlab.experiments import qm9_tensor_mtl as tm

    recs = []
    for cfg in (tm.grid("smoke")[0], tm.grid("smoke")[3]):
        small = tm.smoke_variant(cfg, n_train=32, n_valid=16, n_test=16, batch_size=16)
        recs.append({"config": small, **tm.train(small, "cpu")})
    assert R.delta_m_frame(recs, []).empty  # no qm9_single_task record: no Δm, the runs' own stacks are no reference
    assert R.glue_values("smoke", recs, [])["qm9_reference_missing"] == (
        "no Δm for seed(s) 0: their qm9_single_task reference of the 11 targets is missing "
        "(run `python -m factorlab run qm9_single_task --profile smoke`)")
    single_keys = set(next(c for c in qm9_single_task.grid("smoke") if c["model"] == "gine"))
    stl = [{"config": {**{k: v for k, v in recs[0]["config"].items() if k in single_keys},
                       "experiment": "qm9_single_task", "sharing": "none"},
            "metrics": {"test_mae": recs[0]["metrics"]["single_test_mae"]}}]  # a stand-in of the same budget
    f = R.delta_m_frame(recs, stl)
    assert f.label.tolist() == ["DMTRL LAF", "MRN λ=0.001"] and np.isfinite(f.delta_m).all()
    assert f.delta_m.iloc[0] == pytest.approx(100 * delta_m(recs[0]["metrics"]["test_mae"],
                                                             recs[0]["metrics"]["single_test_mae"], NASH11))
    assert R.sharing_frame(recs).layer.tolist()[0] == "encoder.node_in"
    c = R.task_correlation(recs)
    assert c.shape == (11, 11) and np.allclose(np.diag(c), 1.0)
    g = R.glue_values("smoke", recs, [])
    assert g["qm9_mrn_lambda"] == "0.001" and g["qm9_dm_hard"] == NOT_MEASURED


def test_layers_in_module_order_whatever_the_json_order():
    names = ["encoder.convs.0.lin", "encoder.convs.0.nn.0", "encoder.convs.0.nn.2", "encoder.convs.1.lin",
             "encoder.convs.1.nn.0", "encoder.node_in"]  # sorted, as a JSON record keeps them
    assert sorted(names, key=R.layer_key) == ["encoder.node_in", "encoder.convs.0.nn.0", "encoder.convs.0.nn.2",
                                              "encoder.convs.0.lin", "encoder.convs.1.nn.0", "encoder.convs.1.lin"]


def test_mrn_rank_correlation_with_the_pair_gains_is_the_relatedness_chapters():
    """qm9_mrn_gain_rho is report.qm9_relatedness's MRN row (|C| at the chosen λ against the
    seed-mean gains), and "not measured" without MRN runs or without pair gains."""
    from factorlab.report import qm9_relatedness as rel

    tensor = [_tensor("mrn", s, 1.0, lam=lam, valid=v) for s in (0, 1) for lam, v in ((1e-3, 0.5), (1e-2, 0.9))]
    corr = np.abs(R.task_correlation(tensor).to_numpy())
    one = {t: 1.0 for t in NASH11}
    stl = [{"config": {"seed": 0, "model": "gine"}, "metrics": {"test_mae": one}}]
    pairs = [{"config": {"targets": [a, b], "seed": 0},  # gains 10 |C|: mu and alpha gain, no other pair
              "metrics": {"test_mae": {a: 1 - corr[i, j] / 10, b: 1 - corr[i, j] / 10}}}
             for i, a in enumerate(NASH11) for j, b in enumerate(NASH11) if i < j]
    g = R.glue_values("cpu", tensor, stl, pair_records=pairs)
    assert g["qm9_mrn_gain_rho"] == rel.mrn_prediction_text(tensor, pairs, stl)
    assert g["qm9_mrn_gain_rho"] == "ρ = +1.00 [+1.00, +1.00] over 55 task pairs"  # every tie shared by both
    assert R.glue_values("cpu", tensor, stl)["qm9_mrn_gain_rho"] == NOT_MEASURED
    assert R.glue_values("cpu", [_tensor("laf", 0, 0.9)], stl, pair_records=pairs)["qm9_mrn_gain_rho"] == NOT_MEASURED


def test_target_frame_changes_average_to_delta_m_and_the_figures_draw():
    stl = _stl(0) + _stl(1)
    tensor = [_tensor("tucker", s, 0.8 + 0.1 * s) for s in (0, 1)] + [_tensor("finetune", s, 0.9) for s in (0, 1)]
    tensor[0]["metrics"]["test_mae"]["mu"] *= 2  # one target of one run doubles: +60 % against 0.8
    soft = [_soft(s, "inf", 1.1) for s in (0, 1)]
    tf = R.target_frame(tensor, stl, soft)
    assert len(tf) == 11 * 6 and set(tf.target) == set(NASH11)
    one = tf[(tf.label == "DMTRL Tucker") & (tf.seed == 0)].set_index("target").change
    assert one["mu"] == pytest.approx(60.0) and one["alpha"] == pytest.approx(-20.0)
    f = R.delta_m_frame(tensor, stl, soft)
    means = tf.groupby(["label", "seed"]).change.mean()
    for _, row in f.iterrows():
        assert means[(row.label, row.seed)] == pytest.approx(row.delta_m)
    fig = R.delta_m_figure(f)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["hard sharing", "DMTRL Tucker", R.METHOD_LABEL["finetune"]]  # display order
    assert any(ln.get_xdata()[0] == pytest.approx(-10.0) for ln in fig.axes[0].get_lines())  # the control's mean
    fig = R.target_figure(tf)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == NASH11
    assert fig.axes[0].texts[0].get_text() == "10"  # hard sharing, mu: +10 %
    plt.close("all")
