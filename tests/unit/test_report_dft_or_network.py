"""factorlab.report.dft_or_network: the DFT-or-network chapter's frames, tables, figures and
glued values, on smoke-profile records (trained into a temporary store) and on hand-built
records on both sides of each verdict (one print step, chemical accuracy 1, the small/large
molecule bounds) and with exact power laws."""
from __future__ import annotations

import math
import statistics

import matplotlib
import pytest
from report_smoke import train_smoke

from factorlab.experiments.dft_validation import QM9_PRINTED_STEP
from factorlab.mtl import CHEMICAL_ACCURACY
from factorlab.report import dft_or_network as report
from factorlab.report.qm9 import TARGET_ORDER

matplotlib.use("Agg")

DEVICE = "cpu (x86_64, 1 threads)"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke records of dft_validation (one molecule) and qm9_demo_model (two networks)."""
    root = tmp_path_factory.mktemp("store")
    return train_smoke("dft_validation", root), train_smoke("qm9_demo_model", root)


def _dft(idx: int, heavy: int, n_basis: int, scf_s: float, steps: dict[str, float], hessian_s: float | None = None):
    """A dft_validation record whose error on each target of ``steps`` is that many print steps."""
    qm9 = {t: 1.0 for t in TARGET_ORDER}
    error = {t: k * QM9_PRINTED_STEP[t] for t, k in steps.items()}
    timing = {"scf_s": scf_s, "polarizability_s": 1.0, "total_s": scf_s + 1.0 + (hessian_s or 0.0)}
    if hessian_s is not None:
        timing["hessian_s"] = hessian_s
    return {"config": {"qm9_index": idx, "heavy_atoms": heavy, "hessian": hessian_s is not None},
            "metrics": {"qm9": qm9, "dft": {t: qm9[t] + e for t, e in error.items()}, "error": error,
                        "energy_error_mEh": -0.01 * idx},
            "model": {"smiles": "C" * heavy, "n_atoms": 3 * heavy, "n_basis": n_basis},
            "timing": timing, "provenance": {"device": DEVICE}}


def _net(sharing: str, test_ratio: dict[str, float], sample: dict[int, float], params: int):
    """A qm9_demo_model record: test MAE = ratio x chemical accuracy (1.0 for the rotational
    constants); on each molecule of ``sample`` every target off QM9's label by that many
    chemical accuracies (1 for A, B, C)."""
    mae = {t: test_ratio.get(t, 2.0) * CHEMICAL_ACCURACY.get(t, 1.0) for t in TARGET_ORDER}
    pred = {str(i): {"split": "train" if i == 1 else "test",
                     "network": {t: 1.0 + k * CHEMICAL_ACCURACY.get(t, 1.0) for t in TARGET_ORDER}}
            for i, k in sample.items()}
    config = {"sharing": sharing, "epochs": 10, **({"groups": [["mu", "alpha"], ["homo", "lumo", "r2"]]}
                                                   if sharing == "grouped" else {})}
    return {"config": config,
            "metrics": {"test_mae": mae, "sample": pred},
            "model": {"n_train": 20000, "n_valid": 2000, "n_test": 10831, "params": params,
                      "members": len(TARGET_ORDER) if sharing == "none" else 1, "targets": list(TARGET_ORDER)},
            "timing": {"inference": {"single_s": 0.002, "featurize_s": 0.001, "batched_s": 1e-4, "batch_size": 256}},
            "provenance": {"device": DEVICE}}


def _hand():
    dft = [_dft(1, 1, 10, 1.0, {"mu": 0.5, "homo": 1.0}, hessian_s=2.0),
           _dft(2, 3, 20, 8.0, {"mu": 1.01, "homo": 0.99}, hessian_s=32.0),  # power 3 (SCF), 4 (Hessian)
           _dft(3, 4, 40, 64.0, {"mu": 0.2, "homo": 0.2}),
           _dft(4, 7, 80, 512.0, {"mu": 0.2, "homo": 0.2})]
    nets = [_net("none", {"mu": 1.0, "homo": 1.01, "lumo": 0.5}, {1: 0.5, 2: 2.0, 3: 9.0, 4: 3.0}, 1900),
            _net("hard", {}, {1: 1.0}, 500)]
    return dft, nets


def test_verdicts_on_both_sides_of_their_thresholds():
    dft, nets = _hand()
    v = report.glue_values("cpu", dft, nets, [])
    # largest error: mu 1.01 steps (over one), homo 1.0 step (within one)
    assert v["n_within_one"] == 1 and v["worst_target"] == "mu" and v["worst_ratio"] == pytest.approx(1.01)
    # network test MAE / chemical accuracy: mu 1.0 and lumo 0.5 accurate (<= 1), homo 1.01 not
    assert v["n_net_accurate"] == 2 and v["net_ratio_min_t"] == "lumo" and v["net_ratio_max"] == pytest.approx(2.0)
    # per molecule median ratio of the single-task networks: <= 3 heavy atoms (0.5, 2.0), >= 7 (3.0); 4 is neither
    assert v["small_ratio"] == pytest.approx(1.25) and v["large_ratio"] == pytest.approx(3.0)
    assert v["n_train_split"] == 1 and v["per_size"] == 1 and v["hessian_max"] == 3
    assert v["threads_sentence"].startswith("The speed-up on two threads has not been measured")


def test_power_laws_and_times():
    dft, nets = _hand()
    v = report.glue_values("cpu", dft, nets, [])
    assert v["scf_power"] == pytest.approx(3.0) and v["hess_power"] == pytest.approx(4.0)
    assert v["hess_extrap_h"] == pytest.approx(2.0 * 8 ** 4 / 3600)  # 2 s at 10 basis functions, read at 80
    assert (v["largest_smiles"], v["largest_nbf"]) == ("CCCCCCC", 80)
    assert (v["hess_min"], v["hess_max"]) == (2.0, 32.0) and (v["scf_min"], v["scf_max"]) == (1.0, 512.0)
    assert v["speedup_max"] == pytest.approx(512.0 / 0.003) and v["net_rate"] == pytest.approx(1e4)
    assert v["net_single_ms"] == pytest.approx(2.0) and v["batch_size"] == "256" and v["params_stl"] == "1,900"
    assert v["energy_err_max"] == pytest.approx(0.04)
    # the Hessian against the SCF: 2 and 4 times its time; fitted power 4 against 3
    assert v["hess_n"] == 2 and (v["hess_over_scf_min"], v["hess_over_scf_max"]) == (2.0, 4.0)
    assert v["hess_vs_scf_power"] == "higher than"
    assert v["speedup_min_3g"] == report.sig3(1.0 / 0.003) == "333" and v["speedup_max_3g"] == "171,000"
    assert v["speedup_flag"].startswith("not quiet: ")  # hand records carry no load block
    assert len(v) == 62


def test_sig3_and_the_power_comparison():
    assert [report.sig3(x) for x in (689.318, 127401.25, 3.1169, 0.01234, 99.96)] == \
        ["689", "127,000", "3.12", "0.0123", "100"]
    assert report._compare_powers(2.44, 2.65) == "lower than" and report._compare_powers(3.0, 2.98) == "about the same as"
    assert report._compare_powers(float("nan"), 2.0) == "not comparable"


def test_speedup_flag_says_which_side_was_not_quiet_and_which_way_it_biases():
    quiet = {"provenance": {"load": {"quiet": True}}}
    unknown = {"provenance": {}}
    assert report.speedup_flag([quiet, quiet], "yes") == "both sides timed on a quiet machine"
    s = report.speedup_flag([unknown, quiet], "yes")
    assert s.startswith("not quiet: the SCF times") and "(quiet: 1 of 2)" in s and "upper bounds" in s
    assert "lower bounds" in report.speedup_flag([quiet], "no")
    assert "rough" in report.speedup_flag([unknown], "unknown")


def test_frames_and_tables():
    dft, nets = _hand()
    mols = report.molecules_frame(dft, nets)
    assert list(mols.Index) == [1, 2, 3, 4] and list(mols["network split"]) == ["train", "test", "test", "test"]
    show = report.molecules_table(mols)
    assert list(show["Hessian (s)"]) == ["2.0", "32.0", "", ""] and show["energy error (mEh)"][0] == "-0.0100"
    summary = report.dft_error_summary(dft)
    assert list(summary.index) == ["mu", "homo"] and list(summary.molecules) == [4, 4]
    assert list(report.dft_error_table(summary)["max / print step"]) == ["1.01", "1.00"]
    tab = report.network_frame(dft, nets).set_index("target")
    assert tab.loc["mu", "single-task MAE, this sample"] == pytest.approx(3.625 * CHEMICAL_ACCURACY["mu"])
    assert math.isnan(tab.loc["A", "single-task / chemical accuracy"]) and math.isnan(tab.loc["lumo", "DFT median |error|, this sample"])
    assert report.network_table(tab.reset_index()).set_index("target").loc["A", "chemical accuracy (cited)"] == ""
    pts = report.speed_error_points(dft, nets).set_index(["group", "method"])
    dft_scf = pts.loc[("scf", "DFT: largest |error| on the sample")]
    assert dft_scf.seconds == 36.0  # median SCF time of the sample
    assert dft_scf.hi == pytest.approx(max(1.01 * QM9_PRINTED_STEP["mu"] / CHEMICAL_ACCURACY["mu"],
                                           1.0 * QM9_PRINTED_STEP["homo"] / CHEMICAL_ACCURACY["homo"]))
    assert ("pol", "DFT: largest |error| on the sample") not in pts.index  # alpha not computed


def test_figures():
    dft, nets = _hand()
    fig = report.accuracy_figure(report.per_molecule_ratio(dft, nets))
    assert [len(c.get_offsets()) for c in fig.axes[0].collections] == [1, 4]  # molecules per network
    assert fig.axes[0].get_legend_handles_labels()[1] == ["hard-shared GINE", "19 single-task GINEs"]
    assert report.accuracy_figure(report.per_molecule_ratio(dft, [_net("none", {}, {}, 1), _net("hard", {}, {}, 1)])) is None
    fig = report.time_figure(report.molecules_frame(dft, nets), nets)
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[0].collections) == 3
    fig = report.speed_error_figure(report.speed_error_points(dft, nets))
    assert fig.axes[0].get_legend_handles_labels()[1][2:] == [label for label, _ in report.DFT_STEP_GROUPS.values()]


def test_threads_sentence_from_the_record():
    rec = {"metrics": {"speedup_min": 1.342, "speedup_max": 1.69,
                       "rows": [{"heavy_atoms": 3}, {"heavy_atoms": 5}, {"heavy_atoms": 6}]}}
    assert report.threads_sentence([rec]).startswith(
        "On two threads of the same machine (a machine whose load was not recorded) the SCF "
        "ran 1.34 to 1.69 times faster than on one, on 3 molecules of 3 to 6 heavy atoms")
    for quiet, words in ((True, "(a quiet machine)"), (False, "(a busy machine)")):
        assert words in report.threads_sentence([{**rec, "provenance": {"load": {"quiet": quiet}}}])


def test_smoke_records(smoke):
    dft, nets = smoke
    v = report.glue_values("smoke", dft, nets, report.thread_records("smoke"))
    stl = next(r for r in nets if r["config"]["sharing"] == "none")
    assert v["n_dft"] == 1 and v["per_size"] == 1 and v["params_stl"] == f"{stl['model']['params']:,}"
    assert math.isnan(v["scf_power"]) and math.isnan(v["hess_extrap_h"])  # one molecule: no fit
    assert v["scf_min"] == v["scf_max"] == dft[0]["timing"]["scf_s"]
    assert v["n_targets_dft"] == len(report.dft_error_summary(dft))
    ratios = {t: stl["metrics"]["test_mae"][t] / a for t, a in CHEMICAL_ACCURACY.items()}
    assert v["n_net_accurate"] == sum(r <= 1 for r in ratios.values())
    assert v["net_ratio_median"] == pytest.approx(statistics.median(ratios.values()))
    assert v["n_members_stl"] == stl["model"]["members"] and v["n_heads_hard"] == 19
    # records written by the store carry their load: every DFT timing is quiet or not, none unknown
    assert "predate" not in v["dft_quiet_sentence"] and v["net_quiet"] != "unknown"
    grouped = next(r for r in nets if r["config"]["sharing"] == "grouped")  # the smoke grid trains all three
    assert v["grouped_groups"] == "mu, alpha, homo" and v["n_members_grouped"] == grouped["model"]["members"] == 17
    assert v["net_timing_source"] == "qm9_demo_model"  # no qm9_demo_inference record of these networks
    assert len(v) == 62 + 5  # five values of the grouped network


def test_sizes_members_and_quiet_counts():
    dft, nets = _hand()
    dft[0]["provenance"]["load"] = {"quiet": True}
    dft[1]["provenance"]["load"] = {"quiet": False}
    nets[0]["provenance"]["load"] = {"quiet": True}
    v = report.glue_values("cpu", dft, nets, [])
    assert (v["size_min"], v["size_max"], v["small_max"], v["large_min"]) == (1, 7, 3, 7)
    assert (v["n_members_stl"], v["n_heads_hard"]) == (19, 19)
    assert v["dft_quiet_sentence"] == ("1 of the 4 DFT timings were taken on a quiet machine "
                                       "(1 on a busy one, 2 predate load recording)")
    assert v["net_quiet"] == "1 of 2"
    assert v["net_timing_sentence"] == ("Each network was timed right after its own training (its qm9_demo_model "
                                        "record), 1 of 2 on a quiet machine; benchmarks/qm9_demo_inference.py has not "
                                        "timed these networks together.")


def test_three_networks_side_by_side_and_only_those_recorded():
    dft, nets = _hand()
    grouped = _net("grouped", {"mu": 0.8}, {1: 0.25, 4: 0.5}, 1200)
    grouped["model"]["members"] = 10
    tab = report.network_frame(dft, nets + [grouped])
    cols = [c for c in tab.columns if c.endswith("test split")]
    assert cols == ["single-task MAE, test split", "hard-shared MAE, test split", "grouped MAE, test split"]
    assert tab.set_index("target").loc["mu", "grouped MAE, test split"] == pytest.approx(0.8 * CHEMICAL_ACCURACY["mu"])
    # only the networks recorded: the record order does not matter, a missing one has no column
    only = report.network_frame(dft, [grouped, nets[0]])
    assert [c for c in only.columns if c.endswith("test split")] == ["single-task MAE, test split",
                                                                     "grouped MAE, test split"]
    assert list(report.network_frame(dft, nets[:1]).columns) == [c for c in report.network_frame(dft, nets).columns
                                                                 if c != "hard-shared MAE, test split"]
    fig = report.accuracy_figure(report.per_molecule_ratio(dft, nets + [grouped]))
    assert sorted(fig.axes[0].get_legend_handles_labels()[1]) == sorted(report.NETWORK_LABELS.values())
    assert sorted(len(c.get_offsets()) for c in fig.axes[0].collections) == [1, 2, 4]
    v = report.glue_values("cpu", dft, nets + [grouped], [])
    assert v["grouped_groups"] == "mu, alpha | homo, lumo, r2" and v["n_members_grouped"] == 10
    assert v["grouped_shared"] == "mu, alpha | homo, lumo, r2"
    one = {**grouped, "config": {**grouped["config"], "groups": [["mu"], ["zpve", "Cv"], ["alpha"]]}}
    assert report.glue_values("cpu", dft, nets + [one], [])["grouped_shared"] == "zpve, Cv"  # singletons left out
    assert v["grouped_single_ms"] == pytest.approx(2.0) and v["net_quiet"] == "unknown"
    assert "grouped_groups" not in report.glue_values("cpu", dft, nets, [])  # the two-network chapter is unchanged
    with pytest.raises(ValueError, match="unknown qm9_demo_model sharing"):
        report.networks([_net("soft", {}, {}, 1)])


def _bench(networks: dict[str, dict], single: dict[str, float], quiet: bool | None, started: str,
           batched: float = 5e-5, featurize: float = 4e-4) -> dict:
    """A qm9_demo_inference record that timed ``networks`` (sharing -> qm9_demo_model record):
    one molecule ``single[sharing]`` seconds, ``batched`` per molecule in batches of 1,024."""
    inf = {s: {"single_s": single[s], "featurize_s": featurize, "batched_s": batched, "batch_size": 1024,
               "threads": 1} for s in networks}
    return {"experiment": "qm9_demo_inference",
            "config": {"networks": {s: r["key"] for s, r in networks.items()}},
            "metrics": {"inference": inf, "repeats": 5},
            "model": {"networks": {s: {"key": r["key"], "sha256": r["model"]["weights"]["sha256"]}
                                   for s, r in networks.items()}},
            "provenance": {"started": started, "device": DEVICE,
                           **({} if quiet is None else {"load": {"quiet": quiet}})}}


def test_network_times_from_the_quiet_benchmark_record_where_it_timed_these_networks(tmp_path):
    import json

    from factorlab.results import RunStore

    dft, nets = _hand()
    grouped = _net("grouped", {}, {1: 0.5}, 1200)
    nets = nets + [grouped]
    for k, r in enumerate(nets):
        r["key"] = f"{k:016x}"
        r["model"]["weights"] = {"sha256": f"sha{k}"}
    by = {r["config"]["sharing"]: r for r in nets}
    store = RunStore(tmp_path)
    folder = tmp_path / "qm9_demo_inference"
    folder.mkdir()

    def write(name: str, rec: dict) -> None:
        (folder / f"{name}.json").write_text(json.dumps(rec))

    # nothing recorded: the training records' times, as before
    t = report.inference_timings(nets, store)
    assert t["source"] == "qm9_demo_model" and t["by_sharing"]["none"]["single_s"] == 0.002 and t["repeats"] is None
    assert report.timing_records(nets, store) == []
    # records of other networks are not these networks' times: another key, other weights, one network missing
    other_key = {**by, "hard": {**by["hard"], "key": "f" * 16}}
    other_sha = {**by, "grouped": {**by["grouped"], "model": {**by["grouped"]["model"], "weights": {"sha256": "x"}}}}
    write("a", _bench(other_key, dict.fromkeys(by, 1e-3), True, "2025-01-01T00:00:00"))
    write("b", _bench(other_sha, dict.fromkeys(by, 1e-3), True, "2025-01-01T00:00:00"))
    write("c", _bench({"none": by["none"], "hard": by["hard"]}, dict.fromkeys(by, 1e-3), True, "2025-01-01T00:00:00"))
    assert report.inference_timings(nets, store)["source"] == "qm9_demo_model"
    # a busy record of these networks is used where it is the only one, and says so
    busy = _bench(by, {"none": 4e-3, "hard": 3e-3, "grouped": 5e-3}, False, "2025-03-01T00:00:00")
    write("d", busy)
    t = report.inference_timings(nets, store)
    assert (t["source"], t["quiet"], t["records"]) == ("qm9_demo_inference", "no", [busy])
    # a quiet one is preferred, even when older
    quiet = _bench(by, {"none": 1.5e-3, "hard": 1e-3, "grouped": 2.5e-3}, True, "2025-02-01T00:00:00")
    write("e", quiet)
    t = report.inference_timings(nets, store)
    assert (t["source"], t["quiet"], t["records"], t["repeats"]) == ("qm9_demo_inference", "yes", [quiet], 5)
    assert report.timing_records(nets, store) == [quiet]
    assert report.network_one_molecule_s(nets, store) == pytest.approx(1.5e-3 + 4e-4)
    v = report.glue_values("cpu", dft, nets, [], store=store)
    assert v["net_timing_source"] == "qm9_demo_inference" and v["net_quiet"] == "yes"
    assert v["net_timing_sentence"] == ("The networks were timed together in one process "
                                        "(benchmarks/qm9_demo_inference.py, experiment qm9_demo_inference: medians "
                                        "of 5 repeats interleaved across the networks, one thread), on a quiet machine.")
    assert (v["net_single_ms"], v["hard_single_ms"], v["grouped_single_ms"]) == pytest.approx((1.5, 1.0, 2.5))
    assert (v["net_featurize_ms"], v["net_batched_us"], v["batch_size"]) == (pytest.approx(0.4), pytest.approx(50.0),
                                                                           "1,024")
    assert v["speedup_max"] == pytest.approx(512.0 / 1.9e-3) and v["net_rate"] == pytest.approx(2e4)
    mols = report.molecules_frame(dft, nets)
    lines = report.time_figure(mols, nets, store=store).axes[0].lines
    assert [ln.get_ydata()[0] for ln in lines] == pytest.approx([1.9e-3, 1.5e-3, 5e-5])
    assert "batches of 1,024" in lines[2].get_label()
    pts = report.speed_error_points(dft, nets, store=store)
    assert list(pts[pts.method.str.startswith("network")].seconds) == pytest.approx([1.9e-3] * 3)
    # the default store (FACTORLAB_RESULTS_DIR) is read when none is given
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
        assert report.glue_values("cpu", dft, nets, [])["net_single_ms"] == pytest.approx(1.5)
