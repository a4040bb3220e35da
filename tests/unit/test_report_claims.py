"""factorlab.report.claims: every journal quote is verbatim (up to whitespace), claims without
complete records are "not measured", the hand-built records of one experiment move its claims,
and the committed run store gives every claim a verdict (the shared verdict rules:
test_report_verdicts.py)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from factorlab.paths import REPO_ROOT
from factorlab.report import claims as report
from factorlab.results import RunStore


def test_every_quote_occurs_in_its_journal():
    folder = report.journals_dir()
    if folder is None:
        pytest.skip("the journals (../shared/journals) are not on this machine")
    missing = [c.id for c in report.CLAIMS if not report.quote_found(c, folder)]
    assert not missing, f"quotes not found verbatim in their journal: {missing}"


def test_claims_are_well_formed():
    ids = [c.id for c in report.CLAIMS]
    assert len(ids) == len(set(ids))
    assert set(report.claims_per_journal()) == set(report.JOURNALS)
    assert all(n > 0 for n in report.claims_per_journal().values())
    for c in report.CLAIMS:
        assert c.source in report.JOURNALS and c.quote.strip() and c.claim.strip()
        # a claim without a verdict function names only experiments not registered yet: when one
        # is registered, this fails until the claim gets its verdict function
        if c.verdict is None:
            assert not any(report.registered(e) for e in c.experiments), c.id
            assert c.note, c.id
        if c.chapter:
            assert (REPO_ROOT / f"{c.chapter}.ipynb").is_file(), c.chapter


def test_bib_keys_exist():
    bib = (REPO_ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    for key in report.JOURNALS:
        assert f"{{{key}," in bib


def test_no_records_means_not_measured():
    table = report.verdicts({})
    measured_without_records = {c.id for c in report.CLAIMS if not c.experiments and c.verdict is not None}
    assert set(table.loc[table.verdict != "not measured", "claim"]) == measured_without_records
    assert set(table.columns) == {"claim", "source", "quote", "claims", "measured", "verdict", "chapter"}


def test_a_grid_without_the_compared_configuration_is_not_measured():
    def lacks(recs):
        raise KeyError("separable_lowrank (factor=10)")

    def unpaired(recs):
        from factorlab.analysis import paired_difference
        import pandas as pd
        paired_difference(pd.Series({0: 1.0}), pd.Series({1: 1.0}))

    def broken(recs):
        raise ValueError("a real bug")

    for fn, text in [(lacks, "hold no separable_lowrank (factor=10)"), (unpaired, "no pair to compare")]:
        claim = report.Claim(id="x", source="log2018separable", quote="q", claim="c", experiments=["cifar_factorized"],
                             verdict=fn)
        verdict, measured = report.evaluate(claim, {"cifar_factorized": [{}]})
        assert verdict == "not measured" and text in measured
    with pytest.raises(ValueError, match="a real bug"):
        report.evaluate(report.Claim(id="x", source="log2018separable", quote="q", claim="c",
                                     experiments=["cifar_factorized"], verdict=broken), {"cifar_factorized": [{}]})


def test_task_subsets_is_computed():
    assert report.evaluate(next(c for c in report.CLAIMS if c.id == "task_subsets"), {})[0] == "reproduced"
    assert sum(math.comb(19, k) for k in range(2, 20)) == report.JOURNAL_SUBSETS


def _mnist_records(conv1: float, conv2: float) -> list[dict]:
    """Hand-built ``mnist_baselines`` records: every net and variant, three seeds, the journal
    variants of conv1 / conv2 at mean accuracy ``conv1`` / ``conv2`` (fractions, sd 0.005)."""
    out = []
    for net, variants in {"mlp": ("journal", "l2"), "conv1": ("journal", "l2", "adamw"),
                          "conv2": ("journal", "l2", "adamw")}.items():
        for variant in variants:
            for seed, e in enumerate((-0.005, 0.0, 0.005)):
                acc = {"conv1": conv1, "conv2": conv2}.get(net, 0.97) + e if variant == "journal" else 0.98 + e
                out.append({"experiment": "mnist_baselines", "key": f"{net}-{variant}-{seed}",
                            "config": {"experiment": "mnist_baselines", "profile": "cpu", "net": net,
                                       "variant": variant, "seed": seed, "epochs": 2, "batch_size": 128,
                                       "lr": 1e-3, "weight_decay": 0.1},
                            "metrics": {"test_acc": acc, "train_loss": 0.1}, "model": {"params": 1000},
                            "timing": {"train_s": 60.0, "steps": 200},
                            "history": {"epoch": [1, 2], "train_loss": [1.0, 0.5], "test_acc": [acc, acc]},
                            "provenance": {"device": "cpu"}})
    return out


def test_mnist_baseline_claims_follow_hand_built_records():
    v = report.verdicts({"mnist_baselines": _mnist_records(0.801, 0.90)}).set_index("claim").verdict
    assert v["mnist_conv1"] == "reproduced" and v["mnist_conv2"] == "not reproduced"
    assert v["slowdown_100x"] == "not measured"  # mnist_factorized has no records here


def _long(ratios: dict) -> dict:
    """Hand-built ``cifar_long`` records: final train / test loss ``ratios[label]`` (None: dense)."""
    recs = []
    for factor, ratio in ratios.items():
        cfg = {"experiment": "cifar_long", "profile": "cpu", "family": "dense" if factor is None else
               "separable_lowrank", "factorize": None if factor is None else
               {"family": "separable_lowrank", "factor": factor}}
        recs.append({"config": cfg, "history": {"epoch": [1, 2], "train_eval_loss": [1.0, ratio],
                                                "test_loss": [1.0, 1.0]}})
    return {"cifar_long": recs}


@pytest.mark.parametrize("ratios, no_overfit, overfits", [
    ({None: 0.1, 4: 0.9, 20: 0.95}, "reproduced", "not reproduced"),
    ({None: 0.1, 4: 0.2, 20: 0.95}, "partly", "partly"),
    ({None: 0.1, 4: 0.2, 20: 0.3}, "not reproduced", "reproduced"),
    ({None: 0.9, 4: 0.9, 20: 0.95}, "not reproduced", "not reproduced"),  # the dense net itself does not overfit
])
def test_overfitting_claims_on_hand_built_records(ratios, no_overfit, overfits):
    v = report.verdicts(_long(ratios)).set_index("claim").verdict
    assert (v["no_overfit"], v["long_overfits"]) == (no_overfit, overfits)


def test_cached_records_never_train(tmp_path, monkeypatch):
    monkeypatch.delenv("FACTORLAB_REQUIRE_CACHED", raising=False)
    recs, complete = report.cached_records("mnist_baselines", "cpu", RunStore(tmp_path))
    assert recs == [] and complete is False and not any(tmp_path.iterdir())
    assert report.cached_records("qm9_not_an_experiment", "cpu", RunStore(tmp_path)) == ([], False)
    assert report.load_records("cpu", RunStore(tmp_path)) == {}


def test_committed_run_store():
    """Every claim gets a verdict from the committed records; a claim is measured exactly when
    its experiments' cpu grids are complete (or it needs no records)."""
    store = RunStore(REPO_ROOT / "data" / "results")
    recs = report.load_records("cpu", store)
    table = report.verdicts(recs)
    assert len(table) == len(report.CLAIMS) and set(table.verdict) <= set(report.VERDICTS)
    for c, verdict in zip(report.CLAIMS, table.verdict):
        complete = all(e in recs for e in c.experiments) and c.verdict is not None
        if not complete:
            assert verdict == "not measured", c.id
    assert sum(report.verdict_counts(table).values()) == len(table)
    assert isinstance(report.html_table(table), str)
    status = report.grid_status("cpu", store)
    assert {e.split(" (")[0] for e in status.experiment} == set(report.claim_experiments())
    assert isinstance(status, pd.DataFrame)


# --- the relatedness, grouping and tensor-MTL chapters' claims ----------------------------------

_TASKS = ["mu", "alpha", "homo", "lumo"]
#: Hand-built pair gains (%), G[i][j]: how much task j gains beside task i (positive: helps).
_GAINS = [[0, 8, -4, 2], [6, 0, -6, 1], [-3, -5, 0, 12], [3, 2, 10, 0]]


def _committed(name: str) -> list[dict]:
    recs, complete = report.cached_records(name, "cpu", RunStore(REPO_ROOT / "data" / "results"))
    if not complete:
        pytest.skip(f"the committed cpu grid of {name} is not complete")
    return recs


def _relatedness_records(measures: dict[str, list[list[float]]], seed: int = 0) -> list[dict]:
    """One hand-built ``qm9_relatedness`` record (nash11) holding ``measures`` over :data:`_TASKS`."""
    from factorlab.mtl.relatedness import Relatedness, labelled

    rec = {name: Relatedness(name, labelled(m, _TASKS), 1.0).to_record() for name, m in measures.items()}
    return [{"config": {"experiment": "qm9_relatedness", "task_set": "nash11", "seed": seed, "profile": "cpu"},
             "metrics": {"measures": rec, "single_test_mae": {}},
             "timing": {"measure_s": {n: 1.0 for n in measures}, "hard_network_s": 10.0, "single_stack_s": 20.0}}]


def _pair_records(reference: dict[str, float], seed: int = 0) -> list[dict]:
    """Hand-built ``qm9_pairs`` records over :data:`_TASKS` whose gains against ``reference``
    (test MAE per target) are :data:`_GAINS`."""
    out = []
    for i, a in enumerate(_TASKS):
        for j, b in enumerate(_TASKS[i + 1:], i + 1):
            mae = {a: reference[a] * (1 - _GAINS[j][i] / 100), b: reference[b] * (1 - _GAINS[i][j] / 100)}
            out.append({"config": {"experiment": "qm9_pairs", "targets": [a, b], "seed": seed},
                        "metrics": {"test_mae": mae}, "timing": {"train_s": 1.0}})
    return out


def _stl(mae: float = 1.0) -> list[dict]:
    return [{"config": {"experiment": "qm9_single_task", "model": "gine", "seed": 0, "targets": _TASKS},
             "metrics": {"test_mae": {t: mae for t in _TASKS}}}]


def _claim(cid: str) -> report.Claim:
    return next(c for c in report.CLAIMS if c.id == cid)


def test_relatedness_claims_point_at_registered_experiments_and_chapters():
    for cid in ("mtl_harm", "pearson", "encoder_swap"):
        c = _claim(cid)
        assert c.verdict is not None and all(report.registered(e) for e in c.experiments + c.extra), cid
    assert _claim("pearson").experiments == ("qm9_relatedness", "qm9_pairs", "qm9_single_task")
    assert _claim("pearson").chapter == _claim("encoder_swap").chapter == "notebooks/qm9_relatedness"
    assert set(_claim("mtl_harm").extra) == {"qm9_relatedness", "qm9_pairs"}
    assert "qm9_task_relatedness" not in report.claim_experiments()
    assert "qm9_encoder_swap" not in report.claim_experiments()


def test_pending_chapters_are_named_in_words_not_linked(tmp_path, monkeypatch):
    import json

    import yaml

    from factorlab import paths

    toc = (REPO_ROOT / "_toc.yml").read_text(encoding="utf-8")
    in_toc = {e["file"] for p in yaml.safe_load(toc)["parts"] for e in p["chapters"]}
    table = report.verdicts({})
    html = report.html_table(table)
    for c in report.CLAIMS:
        if c.chapter.startswith("notebooks/") and "/pending/" not in c.chapter:
            assert c.chapter in in_toc, c.chapter  # a link must point at a page of the book
    assert report.chapter_title("notebooks/qm9_relatedness") == "Which tasks help each other"
    # a sibling page of notebooks/claims_revisited, named by its title ("../x.html" once pointed outside the site)
    assert "<a href='qm9_relatedness.html'>Which tasks help each other</a>" in html and "href='../" not in html
    # a pending chapter of its own (whichever chapters are pending in the repository now)
    (tmp_path / "notebooks" / "pending").mkdir(parents=True)
    cell = {"cell_type": "markdown", "metadata": {}, "source": ["# A chapter & its runs\n", "\n", "Text."]}
    (tmp_path / "notebooks" / "pending" / "demo.ipynb").write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    pending = table.copy()
    pending["chapter"] = ""  # the other chapters' titles are read from the repository, not from tmp_path
    pending.loc[pending.claim == "more_layers", "chapter"] = "notebooks/pending/demo"
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    assert report.chapter_title("notebooks/pending/demo") == "A chapter & its runs"
    html = report.html_table(pending)
    assert html.count("(pending)") == 1 and "“A chapter &amp; its runs” (pending)" in html
    assert "pending/" not in html and "href='../pending" not in html
    with pytest.raises(ValueError, match="no chapter notebook"):
        report.chapter_title("notebooks/nope")


@pytest.mark.parametrize("pearson_first, expected", [(False, "reproduced"), (True, "not reproduced")])
def test_pearson_claim_follows_the_rank_correlation_with_the_gains(pearson_first, expected):
    import numpy as np

    g = np.array(_GAINS, float)
    good, bad = g / 100, (g.max() - g + 1) / 100  # bad: ranks the pairs backwards
    measures = {"pearson_raw": good if pearson_first else bad, "gradient_cosine": bad if pearson_first else good}
    recs = {"qm9_relatedness": _relatedness_records(measures), "qm9_pairs": _pair_records({t: 1.0 for t in _TASKS}),
            "qm9_single_task": _stl()}
    verdict, text = report.evaluate(_claim("pearson"), recs)
    assert verdict == expected
    assert text.startswith("supported" if expected == "reproduced" else "not supported")
    # without pair records the claim is not measured, naming what is missing
    verdict, text = report.evaluate(_claim("pearson"), {k: v for k, v in recs.items() if k != "qm9_pairs"})
    assert verdict == "not measured" and "qm9_pairs" in text


def test_encoder_swap_claim_needs_the_all_target_table():
    import numpy as np

    t = np.array([[1.0, 0.9, 1.2, 1.1], [1.3, 1.0, 0.8, 1.5], [1.0, 1.1, 1.0, 2.0], [0.7, 1.4, 1.2, 1.0]])
    recs = _relatedness_records({"encoder_swap": t})
    assert report.evaluate(_claim("encoder_swap"), {"qm9_relatedness": recs})[0] == "not measured"  # nash11 only
    recs[0]["config"]["task_set"] = "all19"
    verdict, text = report.evaluate(_claim("encoder_swap"), {"qm9_relatedness": recs})
    assert verdict == "reproduced"
    assert text.startswith("4 × 4 encoder-swap table, complete in 1 of 1 seeds") and "in 4 of 12 ordered pairs" in text
    t[0, 1] = np.nan
    recs = _relatedness_records({"encoder_swap": t})
    recs[0]["config"]["task_set"] = "all19"
    assert report.evaluate(_claim("encoder_swap"), {"qm9_relatedness": recs})[0] == "partly"


def test_mtl_harm_adds_the_link_to_correlation_when_measured():
    import numpy as np

    hard, stl = _committed("qm9_hard_sharing"), _committed("qm9_single_task")
    base = {"qm9_hard_sharing": hard, "qm9_single_task": stl}
    verdict, text = report.evaluate(_claim("mtl_harm"), base)
    assert verdict in {"partly", "not reproduced"} and "no complete records of qm9_relatedness and qm9_pairs" in text
    if verdict != "partly":
        pytest.skip("the committed hard-sharing records show no harm")
    from factorlab.experiments.qm9_pairs import reference_from_records

    ref = reference_from_records(stl, _TASKS)[0]
    g = np.array(_GAINS, float)
    supported = np.where(g > 0, 0.9, 0.1)  # correlated pairs gain, uncorrelated pairs lose
    for label, expected, head in [(supported, "reproduced", "supported"), (1 - supported, "not reproduced",
                                                                            "contradicted")]:
        recs = {**base, "qm9_relatedness": _relatedness_records({"pearson_raw": label}), "qm9_pairs": _pair_records(ref)}
        verdict, text = report.evaluate(_claim("mtl_harm"), recs)
        assert verdict == expected and f"the link to correlation, {head}" in text, text


def test_sentence_verdicts():
    assert [report._sentence_verdict(s) for s in ("supported, clearly: x", "not supported: y", "contradicted: z",
                                                  "not measured: w", "partly supported: v")] == \
        ["reproduced", "not reproduced", "not reproduced", "not measured", "partly"]
    with pytest.raises(ValueError, match="unknown verdict sentence"):
        report._sentence_verdict("maybe")


# --- journal 000's two sentences on DMTRL's MNIST tasks (mnist_multitask) -----------------------

def _multitask(slow: bool, deeper_error: float, seeds=(0, 1, 2)) -> list[dict]:
    """Hand-built ``mnist_multitask`` records at 1,000 images: the single-task networks reach
    their final loss 0.1 at the end of 10 s; Tucker (pretrained for 10 s) reaches it after 1 s,
    or never in 2,000 s (``slow``); its mean error is 1.0 + 0.1 seed (%), the deeper network's
    ``deeper_error`` + 0.1 seed."""
    def rec(method, seed, error, loss, train_s):
        timing = {"train_s": train_s, "epochs_run": 2}
        if method == "tucker":
            timing.update(pretrain_s=10.0, decompose_s=0.0)
        return {"config": {"experiment": "mnist_multitask", "profile": "cpu", "method": method, "n_train": 1000,
                           "seed": seed, "epochs": 2},
                "metrics": {"mean_error": error, "task_error": [error] * 10, "train_loss": 0.1},
                "history": {"window_loss": loss, "window_s": [train_s / 2, train_s], "window_epoch": [1.0, 2.0]},
                "timing": timing, "model": {"params": 1000, "flops_per_sample": 1}, "provenance": {"device": "cpu"}}

    out = []
    for seed in seeds:
        out += [rec("single", seed, 2.0, [0.5, 0.1], 10.0),
                rec("tucker", seed, 1.0 + 0.1 * seed, [0.3, 0.2] if slow else [0.1, 0.09], 2000.0 if slow else 2.0),
                rec("deep", seed, deeper_error + 0.1 * seed, [0.2, 0.2], 10.0)]
    return out


def test_mnist_multitask_claims_read_the_chapters_verdicts():
    for cid in ("slowdown_100x_mtl", "more_layers"):
        c = _claim(cid)
        assert c.experiments == ("mnist_multitask",) and c.verdict is not None, cid
        assert c.chapter == "notebooks/tensor_mtl" and report.registered("mnist_multitask")
    # the two readings of the "100 times" sentence are two claims on two experiments, one quote
    assert _claim("slowdown_100x").experiments == ("mnist_factorized",)
    assert _claim("slowdown_100x").quote == _claim("slowdown_100x_mtl").quote
    assert "mnist_multitask" in report.claim_experiments()

    v = report.verdicts({"mnist_multitask": _multitask(slow=True, deeper_error=0.5)}).set_index("claim")
    assert v.verdict["slowdown_100x_mtl"] == "reproduced"  # ≥ 201× (censored), pretraining counted
    assert v.measured["slowdown_100x_mtl"].startswith("1 of 1 DMTRL points")
    assert "3 of 3 DMTRL runs never reached it (censored)" in v.measured["slowdown_100x_mtl"]
    assert "DMTRL Tucker at 1,000 images, ≥ 201.0× the time (≥ 1.0× the epochs" in v.measured["slowdown_100x_mtl"]
    assert v.verdict["more_layers"] == "reproduced"  # deeper clearly better: 0.5 points lower in every seed
    assert v.measured["more_layers"].startswith("deeper hard sharing not clearly worse than the DMTRL network at "
                                                "1 of 1 (training-set size, method) pairs, clearly better at 1")
    assert v.verdict["slowdown_100x"] == "not measured"  # the other reading: mnist_factorized has no records here
    assert "mnist_factorized" in v.measured["slowdown_100x"]

    v = report.verdicts({"mnist_multitask": _multitask(slow=False, deeper_error=1.5)}).set_index("claim")
    assert v.verdict["slowdown_100x_mtl"] == "not reproduced"  # (1 s + 10 s pretraining) / 10 s = 1.1×
    assert "0 of 3 DMTRL runs never reached it" in v.measured["slowdown_100x_mtl"]
    assert "1.1× the time (0.5× the epochs" in v.measured["slowdown_100x_mtl"]
    assert v.verdict["more_layers"] == "not reproduced"  # deeper clearly worse by 0.5 points


def test_mnist_multitask_claims_without_records_or_seeds_are_not_measured():
    for recs in ({}, {"mnist_multitask": []}):
        v = report.verdicts(recs).set_index("claim")
        for cid in ("slowdown_100x_mtl", "more_layers"):
            assert v.verdict[cid] == "not measured"
            assert v.measured[cid] == "no complete records of mnist_multitask under this profile"
    one_seed = {"mnist_multitask": _multitask(slow=True, deeper_error=0.5, seeds=(0,))}
    verdict, measured = report.evaluate(_claim("more_layers"), one_seed)
    assert verdict == "not measured" and "two or more seeds" in measured
    assert report.evaluate(_claim("slowdown_100x_mtl"), one_seed)[0] == "reproduced"  # a ratio needs no SE
    no_dmtrl = {"mnist_multitask": [r for r in one_seed["mnist_multitask"] if r["config"]["method"] != "tucker"]}
    verdict, measured = report.evaluate(_claim("slowdown_100x_mtl"), no_dmtrl)
    assert verdict == "not measured" and measured.startswith("the records hold no DMTRL run")


def test_more_layers_on_qm9_reads_the_tensor_chapters_paired_verdict():
    """The deeper hard-shared GINE against the Tucker network of its size, Δm paired by seed
    (records built as the QM9 tensor chapter's tests build them)."""
    import test_report_qm9_tensor_mtl as T

    c = _claim("more_layers_qm9")
    assert c.experiments == ("qm9_tensor_mtl", "qm9_single_task") and c.chapter.endswith("/qm9_tensor_mtl")
    assert c.quote == _claim("more_layers").quote
    stl = T._stl(0) + T._stl(1) + T._stl(2)
    tucker = [T._tensor("tucker", s, 0.80 + 0.01 * s) for s in range(3)]

    def verdict(deep_scale):
        deep = [T._tensor("deep", s, deep_scale + 0.01 * s) for s in range(3)]
        return report.evaluate(c, {"qm9_tensor_mtl": tucker + deep, "qm9_single_task": stl})

    v, text = verdict(0.95)  # deeper worse by 15 points of Δm in every seed
    assert v == "not reproduced" and text.endswith("one: +15.0 ± 0.0 points (3 seeds, paired; higher)")
    assert verdict(0.70)[0] == "reproduced"
    assert verdict(0.80)[0] == "partly"  # equal: within noise
    v, text = report.evaluate(c, {"qm9_tensor_mtl": tucker, "qm9_single_task": stl})
    assert v == "not measured" and "no two seeds" in text


# --- the research log's CIFAR differences on the whole training set -----------------------------

def _fulldata_records(widths=(0.5,)) -> list[dict]:
    """Hand-built cifar_fulldata records: accuracies per variant, seeds 1 and 2 at -1 and +1 (the
    factor-10 scaled variant at -2 and +2 and the separable one at -1.5 and +0.5, so that their
    paired differences have a spread)."""
    from factorlab.experiments import cifar_fulldata as F

    acc = {"dense": 90.0, "separable": 88.5, "lowrank2_usual": 80.0, "lowrank2_scaled": 80.0,
           "lowrank10_usual": 75.0, "lowrank10_scaled": 76.0, "tt": 70.0}
    out = []
    for cfg in F.grid("cpu"):
        if cfg["width"] in widths:
            name = F.variant_name(cfg)
            shift = {"lowrank10_scaled": {0: 0.0, 1: -2.0, 2: 2.0}, "separable": {0: 0.0, 1: -1.5, 2: 0.5}}.get(
                name, {0: 0.0, 1: -1.0, 2: 1.0})
            out.append({"config": cfg, "metrics": {"test_acc": (acc[name] + shift[cfg["seed"]]) / 100},
                        "model": {"params": 1, "compression": 1.0}, "timing": {"train_s": 1.0}})
    return out


def test_cifar_claims_read_the_whole_training_set_when_its_half_width_grid_is_there():
    recs = {"cifar_fulldata": _fulldata_records()}
    v, text = report.separable_vs_dense(recs)
    # -1.5, -2, -2: -1.83 ± 0.17, clear and within two standard errors of the log's -2
    assert v == "reproduced" and text == "separable − dense: -1.8 ± 0.2 points (3 seeds; all training images, width 1/2)"
    v, text = report.factor2_vs_separable(recs)  # -8.5, -8, -8: clear, but not the log's -10.8 in size
    assert v == "partly" and text.startswith("rank factor 2 − separable: -8.2 ± 0.2 points (3 seeds")
    v, text = report.wd_factor10(recs)  # +1 ± 0.58: the log's direction, not clear
    assert v == "partly" and text.startswith("factor 10: scaled − usual weight decay: +1.0 ± 0.6 points")
    for cid in ("separable", "factor2", "wd_factor10"):
        assert "cifar_fulldata" in next(c for c in report.CLAIMS if c.id == cid).extra


def test_claims_read_only_the_half_width_part_of_cifar_fulldata(tmp_path):
    import json

    store = RunStore(tmp_path)
    half = _fulldata_records()
    for r in half[:-1]:
        path = store.path(r["config"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**r, "key": store.key(r["config"])}))
    assert "cifar_fulldata" not in report.load_records("cpu", store)  # one half-width run missing
    r = half[-1]
    store.path(r["config"]).write_text(json.dumps({**r, "key": store.key(r["config"])}))
    got = report.load_records("cpu", store)
    assert len(got["cifar_fulldata"]) == 21  # complete without any full-width run
    assert report.cached_records("cifar_fulldata", "cpu", store)[1] is False  # the whole grid is not
    row = report.grid_status("cpu", store).set_index("experiment").loc["cifar_fulldata (width=0.5)"]
    assert (row.records, row.complete) == ("21 of 21", "yes")


def _compression_records(layer_s: dict[int, list[float]], finetuned: dict[int, list[float]]) -> list[dict]:
    """mnist_compression records of three seeds, one CP row per rank: the dense layer takes
    1.0 s, the CP layer ``layer_s[rank][seed]``; the trained network 98.0 %, fine-tuned
    ``finetuned[rank][seed]`` %."""
    recs = []
    for seed in range(3):
        rows = [{"method": "cp", "rank": rank, "params": 10, "flops": 100, "rel_error": 0.1,
                 "acc_decomposed": 0.9, "acc_finetuned": finetuned[rank][seed] / 100, "layer_s": layer_s[rank][seed],
                 "net_s": 2.0, "dense_layer_s": 1.0, "dense_net_s": 2.0, "net_flops_per_sample": 1000}
                for rank in layer_s]
        recs.append({"config": {"seed": seed}, "provenance": {},
                     "metrics": {"baseline_acc": 0.98, "results": rows,
                                 "dense_layer": {"flops": 1000, "params": 100, "net_flops_per_sample": 2000}}})
    return recs


def test_cp_claims_count_only_clear_paired_differences():
    # rank 4: 1/0.5 = 2x in every seed (clear); rank 8: 1.25x, 0.8x, 1.25x (mean 1.1, not clear)
    layer_s = {4: [0.5, 0.5, 0.5], 8: [0.8, 1.25, 0.8]}
    # rank 4: +0.1, +0.2, +0.3 points (mean +0.2, se 0.058: clear); rank 8: +1, -1, +0.5 (not clear)
    finetuned = {4: [98.1, 98.2, 98.3], 8: [99.0, 97.0, 98.5]}
    recs = {"mnist_compression": _compression_records(layer_s, finetuned)}
    verdict, sentence = report.cp_speedup(recs)
    assert verdict == "partly" and sentence.startswith("CP-decomposed convolution clearly faster than the dense one "
                                                        "at 1 of 2 ranks (beyond 2 standard errors, 3 seeds; means "
                                                        "1.10–2.00×, FLOPs predict 10.0–10.0×)")
    verdict, sentence = report.cp_regularizes(recs)
    assert verdict == "partly" and "clearly above the trained original at 1 of 2 ranks (paired by seed, n = 3" in sentence
    assert "mean differences +0.17 to +0.20 points" in sentence
    finetuned[4] = [98.1, 97.9, 98.3]  # +0.1, -0.1, +0.3: mean +0.1, se 0.115, not clear
    assert report.cp_regularizes({"mnist_compression": _compression_records(layer_s, finetuned)})[0] == "not reproduced"
