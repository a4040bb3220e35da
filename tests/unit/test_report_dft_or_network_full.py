"""factorlab.report.dft_or_network on the training size (experiment ``qm9_demo_full``) and the
network's worst cases: hand-built records with known errors, with and without the whole-split
records, and the store lookup that never trains."""
from __future__ import annotations

import math

import pytest

from factorlab.experiments import qm9_demo_full
from factorlab.mtl import CHEMICAL_ACCURACY
from factorlab.report import dft_or_network as report
from factorlab.report.qm9 import TARGET_ORDER
from factorlab.results import RunStore

ACCURATE = [t for t in TARGET_ORDER if t in CHEMICAL_ACCURACY]


def _dft(idx: int, heavy: int, smiles: str, dft_targets: tuple[str, ...] = ("homo", "r2")) -> dict:
    """A dft_validation record: every QM9 label 10.0; the DFT only for ``dft_targets`` (10.001)."""
    qm9 = {t: 10.0 for t in TARGET_ORDER}
    return {"config": {"qm9_index": idx, "heavy_atoms": heavy, "hessian": False},
            "metrics": {"qm9": qm9, "dft": {t: 10.001 for t in dft_targets}, "error": {t: 0.001 for t in dft_targets}},
            "model": {"smiles": smiles, "n_atoms": 5, "n_basis": 10}, "timing": {"scf_s": 1.0, "total_s": 1.0},
            "provenance": {"device": "cpu"}}


def _net(sharing: str, mae: dict[str, float], errors: dict[int, dict[str, float]], n_train: int | None = 20000,
         epochs: int = 10, split: str = "train_unused") -> dict:
    """A qm9_demo_model-like record: test MAE ``mae`` (1.0 elsewhere); on molecule ``i`` of
    ``errors`` the prediction is QM9's 10.0 plus the given error (0 elsewhere)."""
    sample = {str(i): {"split": split, "network": {t: 10.0 + e.get(t, 0.0) for t in TARGET_ORDER}}
              for i, e in errors.items()}
    return {"config": {"sharing": sharing, "epochs": epochs, "n_train": n_train, "profile": "cpu"},
            "metrics": {"test_mae": {t: mae.get(t, 1.0) for t in TARGET_ORDER}, "sample": sample},
            "model": {"n_train": n_train or 110000}, "timing": {"train_s": 600.0 * epochs}}


DFT = [_dft(1, 1, "C"), _dft(2, 1, "N"), _dft(21, 4, "CC(C)C")]
#: methane's ⟨R²⟩ off by 40 (test MAE 2: ratio 20), its HOMO by 3 (MAE 0.2: 15), ammonia's ⟨R²⟩ by 20 (10)
SUBSET = [_net("none", {"r2": 2.0, "homo": 0.2}, {1: {"r2": -40.0, "homo": 3.0}, 2: {"r2": -20.0}, 21: {"mu": 0.5}}),
          _net("hard", {}, {1: {}})]


def _whole(mae_scale: float = 0.5) -> list[dict]:
    """The whole-split single-task network: every test MAE ``mae_scale`` times the subset's
    (mu's unchanged); methane now in its training split and off by 1 on ⟨R²⟩."""
    mae = {t: mae_scale * (2.0 if t == "r2" else 0.2 if t == "homo" else 1.0) for t in TARGET_ORDER}
    mae["mu"] = 1.0
    return [_net("none", mae, {1: {"r2": 1.0}}, n_train=None, epochs=20, split="train")]


def test_train_size_frame_sets_the_whole_split_beside_the_subset():
    tab = report.train_size_frame(SUBSET, _whole()).set_index("target")
    assert tab.loc["r2", "single-task, training subset"] == 2.0
    assert tab.loc["r2", "single-task, whole training split"] == 1.0
    ratio = tab["single-task: whole / subset"]
    assert ratio.drop("mu").tolist() == pytest.approx([0.5] * 18) and ratio["mu"] == 1.0
    assert tab["hard-shared, whole training split"].isna().all()  # no whole-split hard-shared record
    shown = report.train_size_table(tab.reset_index()).set_index("target")
    assert shown.loc["r2", "single-task: whole / subset"] == "0.50"
    assert set(shown["hard-shared, whole training split"]) == {"not measured"}
    assert set(shown["hard-shared: whole / subset"]) == {"not measured"}
    assert shown.loc["A", "chemical accuracy (cited)"] == ""


def test_train_size_glue_counts_and_states_the_gain():
    v = report.train_size_glue(SUBSET, _whole())
    assert v["n_train_full"] == "110,000" and v["epochs_full"] == 20 and v["train_min_full"] == pytest.approx(200.0)
    assert v["quiet_full"] == "unknown"  # the hand-built record has no load
    assert v["full_ratio_median"] == pytest.approx(0.5) and v["full_n_better"] == 18
    # test MAE <= cited chemical accuracy: none before (r2 2.0 > 1.2, homo 0.2, the rest 1.0); after, r2 alone (1.0)
    assert v["subset_n_accurate"] == 0 and v["full_n_accurate"] == 1
    s = v["full_split_sentence"]
    assert s.startswith("One run at each size (seed 0 on the subset; the whole-split networks were trained once, "
                        "seed 0), so no seed-to-seed spread: trained on the whole training split (110,000 molecules, "
                        "20 epochs) instead of 20,000 molecules for 10 epochs")
    assert "0.50 times as large (median over the 19 targets), lower on 18 of them; they are chemically accurate " \
           "on 1 of the 16 targets with a cited accuracy (0 before)." in s


def test_without_whole_split_records_nothing_is_made_up():
    v = report.train_size_glue(SUBSET, [])
    assert {k: x for k, x in v.items() if k != "full_split_sentence"} == dict.fromkeys(
        ["n_train_full", "epochs_full", "train_min_full", "quiet_full", "full_ratio_median", "full_n_better", "full_n_accurate", "subset_n_accurate"],
        "not measured")
    assert v["full_split_sentence"] == ("The single-task networks trained on the whole training split are not in the "
                                        "records of the cpu profile yet (experiment qm9_demo_full).")
    already = [_net("none", {}, {1: {}}, n_train=None), SUBSET[1]]
    assert report.train_size_glue(already, [])["full_split_sentence"] == \
        "Under this profile the networks already train on the whole training split (110,000 molecules)."
    tab = report.train_size_frame(SUBSET, [])
    assert tab["single-task, whole training split"].isna().all() and len(tab) == 19


def test_train_size_glue_of_the_hard_shared_network_has_its_prefix():
    whole = [_net("hard", {t: 0.25 for t in TARGET_ORDER}, {1: {}}, n_train=None, epochs=20, split="train")]
    subset = [SUBSET[0], _net("hard", {t: 1.0 for t in TARGET_ORDER}, {1: {}})]
    v = report.train_size_glue(subset, whole, "hard")
    assert set(v) == {"hard_n_train_full", "hard_epochs_full", "hard_train_min_full", "hard_quiet_full",
                      "hard_full_ratio_median", "hard_full_n_better",
                      "hard_full_n_accurate", "hard_subset_n_accurate", "hard_full_split_sentence"}
    assert v["hard_full_ratio_median"] == pytest.approx(0.25) and v["hard_full_n_better"] == 19
    assert "the hard-shared network's test MAE is 0.25 times as large" in v["hard_full_split_sentence"]
    assert "; it is chemically accurate on" in v["hard_full_split_sentence"]
    assert report.train_size_glue(subset, [], "hard")["hard_full_split_sentence"] == (
        "The hard-shared network trained on the whole training split is not in the records of the cpu profile yet "
        "(experiment qm9_demo_full).")
    assert report.train_size_glue(subset, whole)["full_ratio_median"] == "not measured"  # the single-task one
    with pytest.raises(ValueError, match="no whole-split network 'grouped': expected one of none, hard"):
        report.train_size_glue(subset, whole, "grouped")


def test_worst_predictions_rank_by_the_error_in_test_maes():
    worst = report.worst_predictions(DFT, SUBSET, n=4)
    got = [(r.SMILES, r.target, r["ratio to test MAE"]) for _, r in worst.iterrows()]
    assert got == [("C", "r2", 20.0), ("C", "homo", 15.0), ("N", "r2", 10.0), ("CC(C)C", "mu", 0.5)]
    first = worst.iloc[0]
    assert first.QM9 == 10.0 and first.network == -30.0 and first.error == -40.0 and first.DFT == 10.001
    assert first["ratio to chemical accuracy"] == pytest.approx(40.0 / CHEMICAL_ACCURACY["r2"])
    assert math.isnan(worst.iloc[3].DFT)  # no DFT of mu for that molecule
    assert "whole split: network" not in worst and worst.split.tolist() == ["train_unused"] * 4
    r2 = report.worst_predictions(DFT, SUBSET, targets=["r2"], n=1)  # e.g. methane's ⟨R²⟩
    assert (r2.SMILES.tolist(), r2.target.tolist()) == (["C"], ["r2"])
    s = report.worst_sentence(worst)
    assert s == ("Relative to its own test error, the network is furthest from QM9 on the ⟨R²⟩ of C (1 heavy "
                 "atom, never seen: -30 against QM9's 10 a0², 20 times its test MAE); the HOMO of C (1 heavy atom, "
                 "never seen: 13 against QM9's 10 eV, 15 times its test MAE); the ⟨R²⟩ of N (1 heavy atom, never "
                 "seen: -10 against QM9's 10 a0², 10 times its test MAE).")
    assert "(4 heavy atoms, never seen: 10.5 against QM9's 10 D, 0.5 times its test MAE)" in \
        report.worst_sentence(worst.iloc[3:])
    shown = report.worst_table(worst)
    assert shown.loc[0, "ratio to test MAE"] == "20.0" and shown.loc[3, "DFT"] == "" and "qm9_index" not in shown


def test_worst_predictions_with_the_whole_split_network():
    worst = report.worst_predictions(DFT, SUBSET, _whole(), n=3)
    assert worst.SMILES.tolist() == ["C", "C", "N"]
    first = worst.iloc[0]
    assert first["whole split: network"] == 11.0 and first["whole split: ratio to test MAE"] == pytest.approx(1.0)
    assert first["whole split: split"] == "train"
    assert math.isnan(worst.iloc[2]["whole split: network"])  # ammonia: not in the whole-split record's sample
    s = report.worst_sentence(worst)
    assert s.endswith(" Trained on the whole training split, it is off by 1.0, 0.0, (not predicted) times its own test "
                      "MAE on the same cases (it trained on C).")
    assert report.worst_sentence(worst.iloc[0:0]) == "The networks predicted none of this chapter's molecules."


def test_full_split_records_read_the_store_and_never_train(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    assert report.full_split_records("smoke", store) == [] and report.full_split_records("full", store) == []
    cfg = qm9_demo_full.grid("smoke")[1]
    store.run(cfg, lambda c: {"metrics": {}, "history": {}, "timing": {}, "model": {}})
    got = report.full_split_records("smoke", store)
    assert [r["key"] for r in got] == [store.get(cfg)["key"]] and got[0]["config"]["sharing"] == "hard"


def _seeded(sharing: str, mae: float, seed: int) -> dict:
    rec = _net(sharing, {t: mae for t in TARGET_ORDER}, {1: {}})
    rec["config"]["seed"] = seed
    return rec


def test_several_seeds_the_chapter_describes_the_lowest_and_reports_the_spread():
    recs = [_seeded("none", m, s) for s, m in ((1, 1.1), (0, 1.0), (2, 0.9))] + \
        [_seeded("hard", m, s) for s, m in ((0, 2.0), (1, 2.2), (2, 1.8))]
    net = report.networks(recs)
    assert (net["none"]["config"]["seed"], net["hard"]["config"]["seed"]) == (0, 0)
    v = report.seed_spread(recs)
    assert v["seeds_per_network"] == 3
    assert v["cv_none"] == pytest.approx(10.0) and v["cv_hard"] == pytest.approx(10.0)  # sd 0.1 of mean 1.0
    assert v["ratio_hard"] == pytest.approx(2.0) and v["ratio_hard_se"] == pytest.approx(0.0, abs=1e-12)
    assert v["spread_sentence"] == (
        "Over 3 seeds per network, a target's test MAE varies from seed to seed by a median 10.0 % (19 single-task "
        "GINEs), 10.0 % (hard-shared GINE); the hard-shared GINE's test MAE is 2.000 ± 0.000 times the single-task "
        "networks' of the same seed (geometric mean over the targets; mean ± standard error over the seeds).")


def test_one_seed_has_no_spread():
    v = report.seed_spread(SUBSET)
    assert v["seeds_per_network"] == 1 and math.isnan(v["cv_none"]) and math.isnan(v["ratio_hard_se"])
    # hard-shared: 1.0 everywhere against single-task 2.0 (r2), 0.2 (homo), 1.0 elsewhere
    assert v["ratio_hard"] == pytest.approx(math.exp((math.log(0.5) + math.log(5.0)) / 19))
    assert v["spread_sentence"].startswith("Each network has one seed, so its test MAEs carry no seed-to-seed spread; "
                                           "the hard-shared GINE's test MAE is 1.05 times")


def test_sharing_by_size_compares_hard_and_single_task_at_both_sizes():
    subset = [_net("none", {}, {}), _net("hard", {t: 0.5 for t in TARGET_ORDER[:4]} | {"mu": 2.0}, {})]
    v = report.sharing_by_size(subset, [])
    ratio = math.exp((3 * math.log(0.5) + math.log(2.0)) / len(TARGET_ORDER))  # mu is one of the first four
    assert v["hard_vs_none_subset"] == pytest.approx(ratio) and v["hard_better_subset"] == 3
    assert v["hard_vs_none_full"] == "not measured" and v["sharing_size_seed"] == 0
    assert v["sharing_size_sentence"].endswith("the single-task and hard-shared networks are not in the records "
                                               "yet (experiment qm9_demo_full).")
    whole_none = _net("none", {t: 2.0 for t in TARGET_ORDER}, {}, n_train=None)
    v = report.sharing_by_size(subset, [whole_none])
    assert "the hard-shared network is not in the records yet" in v["sharing_size_sentence"]
    whole_hard = _net("hard", {t: 1.0 for t in TARGET_ORDER}, {}, n_train=None)
    v = report.sharing_by_size(subset, [whole_none, whole_hard])
    assert v["hard_vs_none_full"] == pytest.approx(0.5) and v["hard_better_full"] == len(TARGET_ORDER)
    assert "trained on the whole training split, 0.50 times (lower on 19 of them)" in v["sharing_size_sentence"]
    assert "one seed each" in v["sharing_size_sentence"]
    assert report.sharing_by_size([subset[0]], [])["hard_vs_none_subset"] == "not measured"
