"""Chapter "Claims revisited" (``notebooks/claims_revisited.ipynb``): every claim and reported
figure of the five research journals (``../shared/journals/``), quoted, beside what the book
measured, with a verdict computed from the run records by the chapter modules' own functions.

Verdicts (:data:`VERDICTS`, from :mod:`factorlab.report.verdicts`, which the chapters' modules
share without importing this one):

- ``reproduced``: the records show what the journal says, by the claim's rule below;
- ``partly``: they show it in direction or for some of the cases, not in size or for all;
- ``not reproduced``: they contradict it;
- ``not measured``: no experiment of the book measures it, or its experiment's grid under the
  profile shown is not complete in the run store (a grid counts only when **every** config of
  it has a record: :func:`cached_records`), or the records cannot decide (one seed where a
  standard error is needed). Such a verdict changes by itself when the records appear.

Thresholds, stated once and reused from the chapters: a paired difference is *clear* beyond
:data:`CLEAR_SE` standard errors and a journal figure is *within noise* of ours within
:data:`REPRODUCE_SD` prediction standard deviations (:mod:`factorlab.report.mnist_baselines`);
the slowdown named by the journal is :data:`JOURNAL_SLOWDOWN`
(:mod:`factorlab.report.mnist_factorized`); a run *overfits* below the loss ratio
:data:`OVERFITS` (:mod:`factorlab.report.cifar_factorized`). Rules shared by several claims
(:mod:`factorlab.report.verdicts`): :func:`~factorlab.report.verdicts.difference_verdict` (a
journal's difference between two settings against our paired difference) and
:func:`~factorlab.report.verdicts.count_verdict` (a claim about every case of a set).

One sentence of journal 000, "100 times as long to reach the same loss", is judged under two
readings, as two claims measured by different experiments: ``slowdown_100x`` for tensor-factorized
layers against the dense network on one task (``mnist_factorized``), ``slowdown_100x_mtl`` for
tensor-factorized multitask learning (DMTRL) against the single-task networks it starts from
(``mnist_multitask``), the setting the journal's paragraph describes.

The journals' numbers in :data:`CLAIMS` are *their* results (cited), never ours.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from factorlab.analysis import paired_difference
from factorlab.report.cifar_factorized import OVERFITS
from factorlab.report.mnist_baselines import REPRODUCE_SD
from factorlab.report.mnist_factorized import JOURNAL_SLOWDOWN
from factorlab.report.verdicts import CLEAR_SE, NOT_MEASURED, VERDICTS, clear, count_verdict, difference_verdict
from factorlab.report.formatting import pm
from factorlab.report.store import cached_records, grid_configs, registered, stored_records  # noqa: F401 (re-exported)

#: The journals: bib key -> (file in ``../shared/journals/``, short label).
JOURNALS: dict[str, tuple[str, str]] = {
    "paul2020journal15": ("000_a51a7f96ef812bc2.txt", "Journal Report 15, January 2020"),
    "paul2019journal9": ("001_5e111c8ba4f4b3f8.txt", "Journal Report 9, November 2019"),
    "rasmussen2020slides": ("002_55ce58ed2b51785e.txt", "Thesis slides, week 2, September 2020"),
    "journal2019soft": ("003_f6f295696ee6ff6a.txt", "Journal report, October 2019"),
    "log2018separable": ("004_41cef03a9595610f.txt", "Research log, December 2018"),
}

#: What a verdict function returns: (verdict, what we measured, in one short text).
Verdict = tuple[str, str]


@dataclass(frozen=True)
class Claim:
    """One claim or reported figure of a journal.

    Args:
        id: a short stable name.
        source: the journal's bib key (:data:`JOURNALS`).
        quote: the journal's words, exactly as in its text file (up to runs of whitespace).
        claim: what it claims, in one line.
        experiments: the registered experiments whose complete grids measure it (empty: none
            does; names not registered yet are planned experiments).
        verdict: ``records_by_experiment -> (verdict, measured)``, called only when every
            experiment's grid is complete; None while no function exists (then "not measured").
        chapter: the chapter that measures it (a document path of the book), or "".
        note: why it is not measured, when no experiment measures it.
    """

    id: str
    source: str
    quote: str
    claim: str
    experiments: tuple[str, ...] = ()
    verdict: Callable[[dict], Verdict] | None = None
    chapter: str = ""
    note: str = ""
    extra: tuple[str, ...] = field(default=())  # experiments read when present, not required


# --- loading what exists, without training ----------------------------------------------------

#: The part of an experiment's grid the claims read where it is not the whole grid (config key ->
#: value): ``cifar_fulldata``'s half-width runs (three seeds per variant) carry the research log's
#: comparisons, its full-width runs (one seed) cannot and need not be complete for them.
CLAIM_PARTS: dict[str, dict] = {"cifar_fulldata": {"width": 0.5}}


def claim_experiments() -> list[str]:
    """Every experiment some claim reads, sorted."""
    return sorted({e for c in CLAIMS for e in c.experiments + c.extra})


def load_records(profile: str, store=None) -> dict[str, list[dict]]:
    """``{experiment: records}`` for every experiment of :func:`claim_experiments` whose grid
    under ``profile`` (its :data:`CLAIM_PARTS` part, where it has one) is complete in the store
    (:func:`cached_records`); incomplete and unregistered ones are left out, so their claims
    are "not measured" (or, for an ``extra`` experiment, judged without it)."""
    out = {}
    for name in claim_experiments():
        recs, complete = cached_records(name, profile, store, CLAIM_PARTS.get(name))
        if complete:
            out[name] = recs
    return out


def grid_status(profile: str, store=None) -> pd.DataFrame:
    """Per experiment of :func:`claim_experiments`: whether it is registered, the records held
    of its grid under ``profile`` and the grid size (of the part the claims read, named after
    the experiment, e.g. "cifar_fulldata (width=0.5)", where :data:`CLAIM_PARTS` gives one)."""
    rows = []
    for name in claim_experiments():
        part = CLAIM_PARTS.get(name)
        configs = grid_configs(name, profile, part)
        recs, complete = stored_records(configs, store)
        size = len(configs)
        label = f"{name} ({', '.join(f'{k}={v}' for k, v in part.items())})" if part else name
        rows.append({"experiment": label, "registered": "yes" if registered(name) else "not yet",
                     "records": f"{len(recs)} of {size}" if size else "", "complete": "yes" if complete else "no"})
    return pd.DataFrame(rows)


def _profile(records: list[dict]) -> str:
    return str(records[0]["config"].get("profile", "?")) if records else "?"


# --- verdict functions, one per measured claim -----------------------------------------------

def slowdown_100x(recs: dict) -> Verdict:
    """Journal 000's "100 times as long", read for factorized layers on one task:
    :func:`factorlab.report.mnist_factorized.journal_verdict` at both targets (the full dense
    network's own final training loss, the strict reading of "the same loss", and the lenient
    target), over both nets. "reproduced" when every point is at least 100× slower at some
    target; "partly" when some point is; otherwise "not reproduced" when some point is measured
    faster at some target (the text says how many stay open, censored below 100×), and
    "not measured" when nothing is measured either way."""
    from factorlab.report.mnist_factorized import TARGETS, journal_verdict

    v = journal_verdict(recs["mnist_factorized"])
    if v["slowdown_measured"] == NOT_MEASURED:
        return NOT_MEASURED, "the records hold no training-loss curves, so no time to target"
    parts, every, some, faster_any = [], False, False, False
    for target in TARGETS:
        keys = [k[len("n_points_"):] for k in v if k.startswith("n_points_") and k.endswith(f"_{target}")]
        if not keys:
            continue
        n = sum(v[f"n_points_{k}"] for k in keys)
        slower = sum(v[f"slower_100_{k}"] for k in keys)
        faster = sum(v[f"faster_100_{k}"] for k in keys)
        top = max(keys, key=lambda k: v[f"max_ratio_{k}"])
        every, some, faster_any = every or slower == n, some or slower > 0, faster_any or faster > 0
        parts.append(f"{target} target: {slower} of {n} factorized points ≥ {JOURNAL_SLOWDOWN:g}× slower, {faster} "
                     f"measured below it, {n - slower - faster} open (censored below it); largest "
                     f"{v[f'max_bound_{top}'].replace('=', '')}{v[f'max_ratio_{top}']:.1f}× ({v[f'max_point_{top}']})")
    text = "; ".join(parts)
    if every:
        return "reproduced", text
    if some:
        return "partly", text
    return ("not reproduced" if faster_any else NOT_MEASURED), text


def slowdown_100x_mtl(recs: dict) -> Verdict:
    """Journal 000's "100 times as long", read for tensor-factorized multitask learning:
    :func:`factorlab.report.mnist_multitask.slower_verdict` on the DMTRL points (method ×
    training-set size) of ``mnist_multitask``, time to the single-task networks' final training
    loss with their pretraining counted; runs that never reached it are counted as censored."""
    from factorlab.report.mnist_multitask import METHOD_LABEL, slower_verdict

    m = slower_verdict(recs["mnist_multitask"])
    if not m["n_points"]:
        return NOT_MEASURED, ("the records hold no DMTRL run with loss curves beside a single-task run of its size "
                              "and seed")
    text = (f"{m['slower']} of {m['n_points']} DMTRL points (method × training-set size) ≥ {JOURNAL_SLOWDOWN:g}× "
            f"slower than the single-task networks to their final training loss (pretraining counted), "
            f"{m['faster']} faster, {m['open']} open; {m['censored_runs']} of {m['n_runs']} DMTRL runs never reached "
            f"it (censored); slowest: {METHOD_LABEL[m['max_method']]} at {m['max_n_train']:,} images, "
            f"{_bounded(m['max_ratio'], m['max_bound'])} the time ({_bounded(m['max_epoch_ratio'], m['max_bound'])} "
            f"the epochs of its own training)")
    return m["verdict"], text


def _bounded(ratio: float, bound: str) -> str:
    """A slowdown ``ratio`` with its bound sign (``=`` exact, ``≥``/``≤`` a lower/upper bound,
    ``?`` neither: both runs missed the target, or the seeds disagree)."""
    sign = {"=": "", "≥": "≥ ", "≤": "≤ "}.get(bound, "")
    return f"{sign}{ratio:.1f}×" + (" (neither exact nor a bound)" if bound == "?" else "")


def more_layers(recs: dict) -> Verdict:
    """Journal 000's "more productive to simply add more layers":
    :func:`factorlab.report.mnist_multitask.deeper_verdict` (a deeper hard-shared network at the
    Tucker DMTRL network's parameter count against each DMTRL network, paired by seed; "not
    measured" with one seed)."""
    from factorlab.report.mnist_multitask import deeper_verdict

    d = deeper_verdict(recs["mnist_multitask"])
    if not d["n_pairs"]:
        return NOT_MEASURED, ("no (training-set size, DMTRL method) with two or more seeds of both networks: no "
                              "standard error")
    return d["verdict"], (f"deeper hard sharing not clearly worse than the DMTRL network at {d['not_worse']} of "
                          f"{d['n_pairs']} (training-set size, method) pairs, clearly better at {d['deeper_better']} "
                          f"(same parameter count, clear beyond {CLEAR_SE} SE)")


def more_layers_qm9(recs: dict) -> Verdict:
    """Journal 000's "more productive to simply add more layers to our original networks", read
    for those networks (graph networks on QM9): the deeper hard-shared GINE of the Tucker
    network's parameter count against the Tucker-factorized network, Δm paired by seed
    (:func:`factorlab.report.qm9_tensor_mtl.beats_verdict`): the deeper network clearly lower ->
    "reproduced", no clear difference -> "partly", Tucker clearly lower -> "not reproduced"."""
    from factorlab.report.qm9_tensor_mtl import METHOD_LABEL, beats_verdict, delta_m_frame, paired_text

    frame = delta_m_frame(recs["qm9_tensor_mtl"], recs["qm9_single_task"])
    deep, tucker = METHOD_LABEL["deep"], METHOD_LABEL["tucker"]
    outcome = beats_verdict(frame, deep, tucker)
    n = len(set(frame[frame.label == deep].seed) & set(frame[frame.label == tucker].seed))
    verdict = {"lower": "reproduced", "within noise": "partly", "higher": "not reproduced"}.get(outcome, NOT_MEASURED)
    if verdict == NOT_MEASURED:
        return verdict, f"no two seeds of both the deeper hard-shared and the Tucker network on the 11 targets ({outcome})"
    return verdict, (f"Δm of the deeper hard-shared GINE (the Tucker network's parameters) minus the Tucker-factorized "
                     f"one: {paired_text(frame, deep, tucker)} ({n} seeds, paired; {outcome})")


def _mnist_baseline(net: str) -> Callable[[dict], Verdict]:
    def verdict(recs: dict) -> Verdict:
        from factorlab.report.mnist_baselines import glue_values

        v = glue_values(recs["mnist_baselines"])
        text = (f"{v[f'acc_{net}_journal']:.1f} ± {v[f'std_{net}_journal']:.1f} % ({v['n_seeds']} seeds, "
                f"{v[f'epochs_{net}']} epoch{'s' if v[f'epochs_{net}'] != 1 else ''}); the journal's {v[f'journal_{net}']:.1f} % is "
                f"{v[f'gap_sd_{net}']:.0f} prediction SDs away")
        return ("reproduced" if v[f"reproduces_{net}"] == "reproduces" else "not reproduced"), text
    verdict.__doc__ = f"The journal's accuracy of MNIST net {net}: mnist_baselines' ``reproduces_{net}``."
    return verdict


def cp_speedup(recs: dict) -> Verdict:
    """Lebedev et al.'s CP speed-up: CP ranks whose measured layer time, running the
    decomposition's own sequence of convolutions (``layer_factored_speedup``: the factored path,
    not whatever path the layer would choose), beats the dense layer's clearly: the mean ratio
    over seeds (each against its own run's dense timing) above 1 by more than ``CLEAR_SE``
    standard errors."""
    from factorlab.report.mnist_compression import path_speedup_frame

    g = path_speedup_frame(recs["mnist_compression"])
    g = g[g.method == "cp"]
    m, se = g.layer_factored_speedup, g.layer_factored_speedup_se
    k = int(sum(mi > 1 and clear(mi - 1, si) for mi, si in zip(m, se)))
    return count_verdict(k, len(g)), (f"CP-decomposed convolution clearly faster than the dense one at {k} of "
                                      f"{len(g)} ranks (beyond {CLEAR_SE} standard errors, {int(g.n_seeds.min())} "
                                      f"seeds; means {m.min():.2f}–{m.max():.2f}×, FLOPs predict "
                                      f"{g.flop_speedup.min():.1f}–{g.flop_speedup.max():.1f}×)")


def cp_regularizes(recs: dict) -> Verdict:
    """Lebedev et al.'s "regularizing effect": CP ranks whose fine-tuned network is clearly more
    accurate than the trained network it came from, paired by seed (each run fine-tunes its
    own trained network). The fine-tuned network also trained one epoch more, which the
    sentence says."""
    from factorlab.report.mnist_compression import decompositions_frame

    f = decompositions_frame(recs["mnist_compression"])
    f = f[f.method == "cp"]
    k, diffs, n = 0, [], 0
    for _, g in f.groupby("rank"):
        g = g.set_index("seed")
        m, se, n = paired_difference(g.acc_finetuned, g.baseline_acc)
        diffs.append(m)
        k += int(m > 0 and clear(m, se))
    ranks = f["rank"].nunique()
    return count_verdict(k, ranks), (f"fine-tuned CP network clearly above the trained original at {k} of {ranks} "
                                     f"ranks (paired by seed, n = {n}, beyond {CLEAR_SE} standard errors; mean "
                                     f"differences {min(diffs):+.2f} to {max(diffs):+.2f} points; the fine-tuning "
                                     f"is one more epoch of training)")


def dft_or_network_goal(recs: dict) -> Verdict:
    """Journal 9's winter goal: a program predicting a molecule's properties by DFT or by the
    network, with both methods' accuracy and speed measured on the same molecules."""
    from factorlab.report.dft_or_network import glue_values

    v = glue_values(_profile(recs["dft_validation"]), recs["dft_validation"], recs["qm9_demo_model"],
                    recs.get("dft_threads_benchmark", []))
    ok = v["n_dft"] > 0 and v["speedup_min"] == v["speedup_min"]
    text = (f"factorlab predict: DFT reproduces {v['n_within_one']} of {v['n_targets_dft']} QM9 labels within one "
            f"printed step on {v['n_dft']} molecules; the network is {v['speedup_min']:,.0f}–{v['speedup_max']:,.0f}× "
            f"faster, at a median {v['net_ratio_median']:.1f}× chemical accuracy")
    return ("reproduced" if ok else NOT_MEASURED), text


def _soft(recs: dict) -> pd.DataFrame:
    from factorlab.report.qm9_soft_sharing import runs_frame

    return runs_frame(recs["qm9_soft_sharing"])


def soft_lambda(recs: dict) -> Verdict:
    """Journal 003's "optimal λ close to 0.1":
    :func:`factorlab.report.qm9_soft_sharing.journal_lambda_verdict` (validation split)."""
    from factorlab.report.qm9_soft_sharing import journal_lambda_verdict

    v = journal_lambda_verdict(_soft(recs))
    if v["is_journal"]:
        return "reproduced", v["text"]
    return {"yes": "partly", "no": "not reproduced"}.get(v["within"], NOT_MEASURED), v["text"]


def soft_table(recs: dict) -> Verdict:
    """Journal 003's table: of its four λ, 0.1 has the lowest total loss. Ours: the seed-mean
    summed standardized test MSE at the same λ; the gap of 0.1 to the lowest is paired by seed."""
    from factorlab.report.qm9_soft_sharing import JOURNAL_LAMBDA, JOURNAL_TABLE, JOURNAL_TASK_SET

    f = _soft(recs)
    f = f[(f.task_set == JOURNAL_TASK_SET) & (f.method == "l2") & f.lam.isin([row[0] for row in JOURNAL_TABLE])]
    if JOURNAL_LAMBDA not in set(f.lam):
        return NOT_MEASURED, f"λ = {JOURNAL_LAMBDA:g} not trained"
    mean = f.groupby("lam").test_loss_total.mean()
    best = float(mean.idxmin())
    text = f"lowest summed standardized test MSE of those λ at {best:g} ({mean[best]:.3g})"
    if best == JOURNAL_LAMBDA:
        return "reproduced", text
    by = f.set_index(["lam", "seed"]).test_loss_total
    gap, se, _ = paired_difference(by[JOURNAL_LAMBDA], by[best])
    text += f"; λ = {JOURNAL_LAMBDA:g} higher by {pm(gap, se, '.2g')}"
    if se != se:
        return NOT_MEASURED, text
    return ("partly" if not clear(gap, se) else "not reproduced"), text


def soft_limits(recs: dict) -> Verdict:
    """Journal 003's limits: the smallest finite λ behaves as single-task (its Δm not clearly
    different from λ = 0) and the largest as hard sharing (not clearly different from λ = ∞)."""
    from factorlab.report.qm9_soft_sharing import JOURNAL_TASK_SET, summary_frame

    s = summary_frame(_soft(recs))
    s = s[(s.task_set == JOURNAL_TASK_SET) & (s.method == "l2") & (s.lam > 0) & (s.lam < math.inf)]
    if s.empty:
        return NOT_MEASURED, "no finite λ trained"
    lo, hi = s.loc[s.lam.idxmin()], s.loc[s.lam.idxmax()]
    if lo.vs0_se != lo.vs0_se or hi.vsinf_se != hi.vsinf_se:
        return NOT_MEASURED, "one seed: no standard error"
    k = int(not clear(lo.vs0, lo.vs0_se)) + int(not clear(hi.vsinf, hi.vsinf_se))
    return count_verdict(k, 2), (f"Δm at λ = {lo.lam:g} vs λ = 0: {pm(lo.vs0, lo.vs0_se)} points; at λ = {hi.lam:g} "
                                 f"vs λ = ∞: {pm(hi.vsinf, hi.vsinf_se)} points (clear beyond {CLEAR_SE} SE)")


#: The chapter of the task-relatedness measures.
RELATEDNESS_CHAPTER = "notebooks/qm9_relatedness"


def _relatedness(recs: dict) -> tuple[dict, dict, pd.DataFrame]:
    """The nash11 measures of ``qm9_relatedness`` (``{measure: {seed: matrix}}``), the measured
    pair gains of ``qm9_pairs`` against ``qm9_single_task`` (``{seed: G}``) and their
    :func:`factorlab.report.qm9_relatedness.prediction_frame`, as the chapter computes them."""
    from factorlab.experiments.qm9_pairs import reference_from_records
    from factorlab.report import qm9_relatedness as rel

    matrices = rel.measure_matrices(recs["qm9_relatedness"])
    tasks = rel.pair_tasks(recs["qm9_pairs"])
    reference = reference_from_records(recs["qm9_single_task"], tasks, recs["qm9_pairs"])  # budget-checked
    gains = rel.gain_matrices(recs["qm9_pairs"], reference, tasks)
    return matrices, gains, rel.prediction_frame(matrices, gains, rel.cost_frame(recs["qm9_relatedness"]))


def _sentence_verdict(sentence: str) -> str:
    """A chapter's verdict sentence ("supported...", "partly supported...", "not supported...",
    "contradicted...", "not measured...") as a claim verdict."""
    for head, verdict in (("not measured", NOT_MEASURED), ("not supported", "not reproduced"),
                          ("partly supported", "partly"), ("supported", "reproduced"),
                          ("contradicted", "not reproduced")):
        if sentence.startswith(head):
            return verdict
    raise ValueError(f"unknown verdict sentence {sentence[:40]!r}: expected supported, partly supported, "
                     "not supported, contradicted or not measured")


def pearson(recs: dict) -> Verdict:
    """Journal 003's "Pearson's correlation is the least effective":
    :func:`factorlab.report.qm9_relatedness.pearson_verdict` on the measures' rank correlation
    with the measured pair gains ("supported" -> reproduced, "not supported" -> not reproduced),
    with the paired bootstrap against |Pearson| (:func:`~factorlab.report.qm9_relatedness.paired_rho_frame`)
    as the chapter gives it."""
    from factorlab.report.qm9_relatedness import CLAIM_MEASURE, paired_rho_frame, pearson_verdict

    matrices, gains, pred = _relatedness(recs)
    sentence = pearson_verdict(pred, paired=paired_rho_frame(matrices, gains, CLAIM_MEASURE))
    return _sentence_verdict(sentence), sentence


def encoder_swap(recs: dict) -> Verdict:
    """Journal 9's encoder swaps: reproduced when ``qm9_relatedness`` holds the all-target
    (``all19``) encoder-swap table with every off-diagonal entry finite in every seed (the
    chapter draws it: :func:`factorlab.report.qm9_relatedness.encoder_swap_figure`)."""
    import numpy as np

    from factorlab.report.qm9_relatedness import mean_matrix, measure_matrices

    per_seed = measure_matrices(recs["qm9_relatedness"], "all19").get("encoder_swap", {})
    if not per_seed:
        return NOT_MEASURED, "the records hold no all-target encoder-swap table"
    n = len(mean_matrix(per_seed))
    off = ~np.eye(n, dtype=bool)
    finite = sum(int(np.isfinite(m.to_numpy(float)[off]).all()) for m in per_seed.values())
    t = mean_matrix(per_seed).to_numpy(float)[off]
    text = (f"{n} × {n} encoder-swap table, complete in {finite} of {len(per_seed)} seeds; a lent encoder serves "
            f"the task at least as well as its own in {int((t <= 1).sum())} of {t.size} ordered pairs (seed mean)")
    return ("reproduced" if finite == len(per_seed) else "partly"), text


def mtl_harm(recs: dict) -> Verdict:
    """Journal 003's "can be harmful [...] uncorrelated tasks": targets whose hard-shared (19
    targets) test MAE is worse than single-task, and, when ``qm9_relatedness`` and ``qm9_pairs``
    have complete records, :func:`factorlab.report.qm9_relatedness.uncorrelated_claim` (does
    |Pearson| of the labels predict the pair gains, do uncorrelated pairs lose?). Harm shown and
    the link supported -> "reproduced"; harm shown without the link (or the link not measured)
    -> "partly"; no harm or the link contradicted -> "not reproduced"."""
    from factorlab.report.qm9_hard_sharing import paired_change, results_frame

    res = results_frame(recs["qm9_hard_sharing"], [r for r in recs["qm9_single_task"]
                                                   if r["config"].get("model") == "gine"])
    change = paired_change(res).get("all19", pd.DataFrame(columns=["mean", "se", "n", "clear"])).dropna(
        subset=["mean"])
    if change.empty:
        return NOT_MEASURED, "no 19-target run"
    worse = change[change.clear & (change["mean"] > 0)]
    text = (f"hard sharing of all 19 targets: {len(worse)} of {len(change)} targets clearly worse than single-task "
            f"(paired by seed, beyond {CLEAR_SE} standard errors; {int((change['mean'] > 0).sum())} worse by the "
            f"mean)")
    if len(worse):
        text += f", up to {worse['mean'].max():+.0f} % ({worse['mean'].idxmax()})"
    if not (recs.get("qm9_relatedness") and recs.get("qm9_pairs")):
        text += "; the link to correlation: no complete records of qm9_relatedness and qm9_pairs under this profile"
        return ("partly" if len(worse) else "not reproduced"), text
    from factorlab.report.qm9_relatedness import CLAIM_MEASURE, mean_matrix, uncorrelated_claim

    matrices, gains, _ = _relatedness(recs)
    label = mean_matrix(matrices[CLAIM_MEASURE]) if CLAIM_MEASURE in matrices else None
    sentence = uncorrelated_claim(label, gains)["verdict"]
    link = _sentence_verdict(sentence)
    text += f"; the link to correlation, {sentence}"
    if not len(worse) or sentence.startswith("contradicted"):
        return "not reproduced", text
    return ("reproduced" if link == "reproduced" else "partly"), text


def task_subsets(recs: dict) -> Verdict:
    """Journal 003's count of task sets: subsets of two or more of the 19 targets (no records)."""
    n = sum(math.comb(19, k) for k in range(2, 20))
    return ("reproduced" if n == JOURNAL_SUBSETS else "not reproduced"), f"Σ_(k≥2) C(19, k) = {n:,}"


#: The journal's count of task sets of two or more of 19 targets (journal 003, cited).
JOURNAL_SUBSETS = 524268


def _cifar_f(recs: dict) -> pd.DataFrame:
    from factorlab.report.cifar_factorized import runs_frame

    return runs_frame(recs["cifar_factorized"])


def _paired(a: pd.Series, b: pd.Series) -> tuple[float, float, int]:
    seeds = sorted(set(a.index) & set(b.index))
    return paired_difference(a[seeds], b[seeds]) if seeds else (math.nan, math.nan, 0)


def _fulldata(recs: dict, i: int) -> Verdict | None:
    """The research log's ``i``-th difference (:data:`~factorlab.report.cifar_factorized.FULLDATA_DIFFERENCES`)
    measured on the whole training set (``cifar_fulldata`` at half width, paired by seed), or
    None when those records are not all there (the claim is then judged on the subset grid)."""
    if not recs.get("cifar_fulldata"):
        return None
    from factorlab.report.cifar_factorized import fulldata_differences

    row = fulldata_differences(recs["cifar_fulldata"]).iloc[i]
    return str(row.verdict), (f"{row.difference}: {pm(row['mean'], row.se)} points ({int(row.n)} seeds; all "
                              "training images, width 1/2)")


def separable_vs_dense(recs: dict) -> Verdict:
    """Journal 004: separable convolutions cost 2 points against the dense network (94 % → 92 %).
    Ours: on the whole training set when ``cifar_fulldata``'s half-width grid is complete
    (:func:`_fulldata`), else on the subset grid: the separable variant (usual weight decay)
    minus the dense net of the same width, paired by seed."""
    from factorlab.report.cifar_factorized import runs_frame

    full = _fulldata(recs, 0)
    if full is not None:
        return full
    f, b = _cifar_f(recs), runs_frame(recs["cifar_baselines"])
    sep = f[(f.variant == "separable") & (f.wd_mode == "usual")]
    dense = b[(b.net == sep.net.iloc[0]) & (b.width == sep.width.iloc[0])]
    d, se, n = _paired(sep.set_index("seed").acc, dense.set_index("seed").acc)
    return difference_verdict(d, se, JOURNAL_SEPARABLE[1] - JOURNAL_SEPARABLE[0]), (
        f"separable − dense: {pm(d, se)} points ({n} seeds, {_profile(recs['cifar_factorized'])} budget)")


#: Journal 004's accuracies (cited, %): dense then separable; separable then rank factor 2.
JOURNAL_SEPARABLE = (94.0, 92.0)
JOURNAL_FACTOR2 = (92.0, 81.2)
#: Journal 004's scaled and usual weight decay at rank factor 10 (cited, %).
JOURNAL_WD_FACTOR10 = (78.3, 77.8)


def factor2_vs_separable(recs: dict) -> Verdict:
    """Journal 004: a low-rank bottleneck of factor 2 costs 10.8 points against the separable
    network. Ours: factor 2 minus separable (usual weight decay), paired by seed, on the whole
    training set when those records exist (:func:`_fulldata`), else on the subset grid."""
    full = _fulldata(recs, 1)
    if full is not None:
        return full
    f = _cifar_f(recs)
    u = f[f.wd_mode == "usual"]
    d, se, n = _paired(u[u.variant == "separable_lowrank (factor=2)"].set_index("seed").acc,
                       u[u.variant == "separable"].set_index("seed").acc)
    return difference_verdict(d, se, JOURNAL_FACTOR2[1] - JOURNAL_FACTOR2[0]), (
        f"rank factor 2 − separable: {pm(d, se)} points ({n} seeds)")


def wd_factor10(recs: dict) -> Verdict:
    """Journal 004: weight decay scaled by compression beats the usual one at rank factor 10.
    Ours: on the whole training set when those records exist (:func:`_fulldata`), else
    :func:`factorlab.report.cifar_factorized.weight_decay_differences` of that variant."""
    from factorlab.report.cifar_factorized import weight_decay_differences

    full = _fulldata(recs, 2)
    if full is not None:
        return full

    d = weight_decay_differences(_cifar_f(recs)).loc["separable_lowrank (factor=10)"]
    return difference_verdict(float(d["mean"]), float(d.se), JOURNAL_WD_FACTOR10[0] - JOURNAL_WD_FACTOR10[1]), (
        f"scaled − usual weight decay at factor 10: {pm(d['mean'], d.se)} points ({int(d.n)} seeds)")


def wd_scaling(recs: dict) -> Verdict:
    """Journal 004: scaling weight decay by compression "works slightly better". Ours: variants
    where scaled is clearly better (beyond :data:`CLEAR_SE` paired SE), of all variants."""
    from factorlab.report.cifar_factorized import weight_decay_differences

    d = weight_decay_differences(_cifar_f(recs))
    better, worse = int((d.clear & (d["mean"] > 0)).sum()), int((d.clear & (d["mean"] < 0)).sum())
    return count_verdict(better, len(d)), (f"scaled weight decay clearly better for {better} of {len(d)} variants, "
                                           f"clearly worse for {worse}")


def _long_ratios(recs: dict) -> tuple[float, dict[str, float]]:
    """Final clean training loss / test loss of the dense ``cifar_long`` network and of each
    compressed one (by variant label), each the mean over its seeds."""
    from factorlab.report.cifar_factorized import variant_label

    by: dict[str, list[float]] = {}
    for r in recs["cifar_long"]:
        h = r["history"]
        label = "dense" if r["config"]["family"] == "dense" else variant_label(r["config"])
        by.setdefault(label, []).append(float(h["train_eval_loss"][-1]) / float(h["test_loss"][-1]))
    means = {k: sum(v) / len(v) for k, v in by.items()}
    dense = means.pop("dense", math.nan)
    return dense, means


def long_no_overfit(recs: dict) -> Verdict:
    """Journal 004: the low-rank network does not overfit where the dense one does. Ours:
    ``cifar_long`` (dense must overfit; counts compressed runs that do not)."""
    dense, comp = _long_ratios(recs)
    k = sum(v >= OVERFITS for v in comp.values())
    text = (f"train/test loss: dense {dense:.2f}; " + ", ".join(f"{k_} {v:.2f}" for k_, v in comp.items())
            + f" (overfits below {OVERFITS:g})")
    if not dense < OVERFITS:
        return "not reproduced", text
    return count_verdict(k, len(comp)), text


def long_overfits(recs: dict) -> Verdict:
    """Journal 004: on a long schedule the compressed network overfits (train loss 0.04, test
    0.265). Ours: ``cifar_long`` compressed runs below :data:`OVERFITS`."""
    _, comp = _long_ratios(recs)
    k = sum(v < OVERFITS for v in comp.values())
    epochs = len(recs["cifar_long"][0]["history"]["epoch"])
    return count_verdict(k, len(comp)), (f"{k} of {len(comp)} compressed networks overfit after {epochs} epochs "
                                         f"(train/test loss {min(comp.values()):.2f}–{max(comp.values()):.2f})")


# --- the claims --------------------------------------------------------------------------------

_GPU = "needs the journal's GPU and full-scale training; no GPU run is in the records"
#: Every claim and reported figure of the five journals, in journal order.
CLAIMS: list[Claim] = [
    Claim("slowdown_100x", "paul2020journal15",
          "I estimate that the tensor factorization network took 100 times as long to reach the same loss as the "
          "basic network.",
          "Read for factorized layers: a tensor-factorized MNIST network needs 100× the time of the dense one to "
          "reach the same loss.",
          ("mnist_factorized",), slowdown_100x, "notebooks/mnist_factorized"),
    Claim("slowdown_100x_mtl", "paul2020journal15",
          "I estimate that the tensor factorization network took 100 times as long to reach the same loss as the "
          "basic network.",
          "Read for multitask learning (the journal's setting): a tensor-factorized multitask network (DMTRL, ten "
          "one-vs-all MNIST tasks) needs 100× the time of the single-task networks to reach their loss.",
          ("mnist_multitask",), slowdown_100x_mtl, "notebooks/tensor_mtl"),
    Claim("more_layers", "paul2020journal15",
          "I suspect it would be more productive to simply add more layers to our original networks.",
          "Adding layers to a dense network pays more than factorizing it.",
          ("mnist_multitask",), more_layers, "notebooks/tensor_mtl"),
    Claim("more_layers_qm9", "paul2020journal15",
          "I suspect it would be more productive to simply add more layers to our original networks.",
          "Read for the journal's own networks (graph networks on QM9's 11 benchmark targets): a deeper hard-shared "
          "network does better than tensor-factorized sharing of the same parameter count.",
          ("qm9_tensor_mtl", "qm9_single_task"), more_layers_qm9, "notebooks/qm9_tensor_mtl"),
    Claim("l2_vs_covariance", "paul2019journal9",
          "simply measure the L2 distance between the results of each task, which is no better than doing "
          "clustering based on covariances",
          "Clustering tasks by the L2 distance of their outputs is no better than by their covariances.",
          note="no relatedness measure of the book is an L2 distance between task outputs; the chapter "
               "\"Grouping tasks\" clusters tasks by each measure, covariance-based ones among them",
          chapter="notebooks/qm9_grouping"),
    Claim("encoder_swap", "paul2019journal9",
          "calculate the losses for each task when the encoders are swapped out with the encoders from other tasks",
          "Encoder swaps give a 19×19 table of cross-task transfer (the journal did not get it working).",
          ("qm9_relatedness",), encoder_swap, RELATEDNESS_CHAPTER),
    Claim("dft_or_network", "paul2019journal9",
          "Have a program capable of taking an input molecule and predicting the relevant molecular properties, "
          "using a choice of density functional theory or multitask-learned networks.",
          "Goal: one program predicting by DFT or by the network, showing each method's accuracy and speed.",
          ("dft_validation", "qm9_demo_model"), dft_or_network_goal, "notebooks/dft_or_network",
          extra=("dft_threads_benchmark",)),
    Claim("mnist_conv1", "rasmussen2020slides", "80.1 % testing accuracy",
          "One convolution + dense 100, Adam 1e-4 with weight decay 0.1, reaches 80.1 % on MNIST.",
          ("mnist_baselines",), _mnist_baseline("conv1"), "notebooks/mnist_baselines"),
    Claim("mnist_conv2", "rasmussen2020slides", "97.1 % testing accuracy",
          "Two convolutions + pooling, Adam 1e-3 with weight decay 0.1, reaches 97.1 % on MNIST.",
          ("mnist_baselines",), _mnist_baseline("conv2"), "notebooks/mnist_baselines"),
    Claim("tt_compression", "rasmussen2020slides",
          "Compression up to 200.000 times in a dense layer and 7 times in a whole network.",
          "Tensor-train layers compress a dense layer 200,000× and a whole network 7× (Novikov et al., cited).",
          note="the cited paper's networks (ImageNet scale) are not run in the book"),
    Claim("cp_speedup", "rasmussen2020slides", "Speeding-UP CNNs using Fine-Tuned CP-decomposition",
          "A CP-decomposed convolution runs faster than the dense one (Lebedev et al., cited).",
          ("mnist_compression",), cp_speedup, "notebooks/mnist_compression"),
    Claim("cp_regularizes", "rasmussen2020slides", "Regularizing effect on the net improving overall accuracy",
          "CP decomposition with fine-tuning improves the network's accuracy (Lebedev et al., cited).",
          ("mnist_compression",), cp_regularizes, "notebooks/mnist_compression"),
    Claim("soft_lambda", "journal2019soft", "It looks like an optimal value for λ is close to 0.1.",
          "For soft sharing of C_V and U_298, the best penalty weight λ is about 0.1.",
          ("qm9_soft_sharing",), soft_lambda, "notebooks/qm9_soft_sharing"),
    Claim("soft_table", "journal2019soft", "0.1 0.0654 0.0446 0.0207",
          "Of λ = 0.001, 0.01, 0.1, 1, the total loss is lowest at λ = 0.1 (0.0654).",
          ("qm9_soft_sharing",), soft_table, "notebooks/qm9_soft_sharing"),
    Claim("soft_limits", "journal2019soft",
          "In the low λ limit, we expect the network to behave as if it were single-task learning, and in the "
          "large λ limit, we expect the network to behave as if it were hard-parameter sharing.",
          "Small λ behaves as single-task learning, large λ as hard sharing.",
          ("qm9_soft_sharing",), soft_limits, "notebooks/qm9_soft_sharing"),
    Claim("mtl_harm", "journal2019soft",
          "Multitask learning can be harmful if we try to learn simultaneously uncorrelated tasks.",
          "Sharing hurts some tasks, namely uncorrelated ones.",
          ("qm9_hard_sharing", "qm9_single_task"), mtl_harm, "notebooks/qm9_hard_sharing",
          extra=("qm9_relatedness", "qm9_pairs")),
    Claim("pearson", "journal2019soft",
          "The simplest, but least effective solution, is to just calculate Pearson's correlation coefficients, "
          "but that hides the deeper nonlinear relationships between variables.",
          "Pearson correlation of the targets is the least effective measure of task relatedness.",
          ("qm9_relatedness", "qm9_pairs", "qm9_single_task"), pearson, RELATEDNESS_CHAPTER),
    Claim("task_subsets", "journal2019soft", "$2^{19} - 20 = 524268$",
          "There are 524,268 sets of two or more of the 19 tasks.", (), task_subsets,
          "notebooks/qm9_grouping"),
    Claim("feature_selection", "journal2019soft",
          "feature selection would not be helpful for this particular project, because our inputs are already "
          "fairly low dimensional",
          "Feature selection would not help: the molecular inputs are already low-dimensional.",
          note="no experiment of the book selects input features"),
    Claim("dawn_titan", "log2018separable", "`dawn.py` ran in 212 seconds and reached 94% accuracy.",
          "The cifar10-fast script trains to 94 % in 212 s on a Titan X (Pascal).", note=_GPU),
    Claim("dawn_v100", "log2018separable", "it took 223 seconds to run the same 24 epochs",
          "The same 24 epochs take 223 s on a V100.", note=_GPU),
    Claim("separable", "log2018separable",
          "Switched the full convolutions in `conv_bn` for separable convolutions and the network now converges to "
          "92% accuracy in 171 seconds.",
          "Separable convolutions cost 2 points (94 % → 92 %) and train faster.",
          ("cifar_factorized", "cifar_baselines"), separable_vs_dense, "notebooks/cifar_factorized",
          extra=("cifar_fulldata",)),
    Claim("factor2", "log2018separable", "Converged to 81.2% with a compression scaling factor of 2",
          "A rank bottleneck of factor 2 costs about 11 points against the separable network (92 % → 81.2 %).",
          ("cifar_factorized",), factor2_vs_separable, "notebooks/cifar_factorized", extra=("cifar_fulldata",)),
    Claim("wd_factor10", "log2018separable",
          "with the scaling factor set to 10, it converges to about 78.3%. With just the original weight decay it "
          "converges to 77.8%.",
          "At rank factor 10, weight decay scaled by compression beats the usual one (78.3 % vs 77.8 %).",
          ("cifar_factorized",), wd_factor10, "notebooks/cifar_factorized", extra=("cifar_fulldata",)),
    Claim("wd_scaling", "log2018separable", "It does seem to make a difference, and works slightly better.",
          "Weight decay scaled by the compression factor works slightly better.",
          ("cifar_factorized",), wd_scaling, "notebooks/cifar_factorized"),
    Claim("no_overfit", "log2018separable", "Trying the same thing, but disabling the low-rank layers, maybe those "
          "just can't be fit. That worked, was able to get it to overfit.",
          "The low-rank network does not overfit where the dense one does.",
          ("cifar_long",), long_no_overfit, "notebooks/cifar_factorized"),
    Claim("long_overfits", "log2018separable",
          "Changed it to 128 epochs ans we get some overfitting. The train loss ends at 0.04, with test at 0.265.",
          "On a long schedule the low-rank network overfits (train loss 0.04, test 0.265).",
          ("cifar_long",), long_overfits, "notebooks/cifar_factorized"),
    Claim("long_wd", "log2018separable", "enabling the default 5e-4 weight decay, the exact same thing happens.",
          "On the long schedule, weight decay 5e-4 changes nothing (92.7 % against 92.8 %).",
          note="the long-schedule runs use one weight decay"),
    Claim("float32", "log2018separable", "the final test error with a \"normal\" network is 93.5%.",
          "In float32 the normal network reaches 93.5 %, not 94 %.", note=_GPU),
]


# --- the table ---------------------------------------------------------------------------------

def evaluate(claim: Claim, records_by_experiment: dict[str, list[dict]]) -> Verdict:
    """The verdict and measured text of one claim: "not measured" (with the reason) when no
    experiment measures it, one of its experiments is not registered, or its grid is missing
    from ``records_by_experiment`` (complete grids only, :func:`load_records`), or its grid lacks
    the configuration the verdict function compares (a ``KeyError``, or no seeds to pair: e.g.
    the smoke grids); else its verdict function."""
    missing = [e for e in claim.experiments if e not in records_by_experiment or not records_by_experiment[e]]
    if claim.experiments and missing:
        unreg = [e for e in missing if not registered(e)]
        if unreg:
            return NOT_MEASURED, claim.note or f"experiment {', '.join(unreg)} is not registered yet"
        return NOT_MEASURED, f"no complete records of {', '.join(missing)} under this profile"
    if claim.verdict is None:
        return NOT_MEASURED, claim.note
    try:
        verdict, text = claim.verdict(records_by_experiment)
    except KeyError as err:  # the grid is complete but has no such configuration (e.g. smoke)
        return NOT_MEASURED, f"the records hold no {err.args[0]!s}"
    except ValueError as err:
        if not str(err).startswith("no paired values"):
            raise
        return NOT_MEASURED, f"the records hold no pair to compare ({err})"
    if verdict not in VERDICTS:
        raise ValueError(f"claim {claim.id!r} returned the verdict {verdict!r}, not one of {VERDICTS}")
    return verdict, text


def verdicts(records_by_experiment: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per claim of :data:`CLAIMS`: ``claim`` (id), ``source`` (bib key), ``quote`` (the
    journal's words), ``claims`` (in one line), ``measured`` (what the records show), ``verdict``
    (:data:`VERDICTS`), ``chapter`` (document path, "" when none)."""
    rows = []
    for c in CLAIMS:
        verdict, text = evaluate(c, records_by_experiment)
        rows.append({"claim": c.id, "source": c.source, "quote": c.quote, "claims": c.claim, "measured": text,
                     "verdict": verdict, "chapter": c.chapter})
    return pd.DataFrame(rows)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims of :func:`verdicts` ``table`` got each verdict, in :data:`VERDICTS` order."""
    return {v: int((table.verdict == v).sum()) for v in VERDICTS}


def claims_per_journal() -> dict[str, int]:
    """How many claims each journal has, in :data:`JOURNALS` order."""
    return {k: sum(c.source == k for c in CLAIMS) for k in JOURNALS}


def chapter_title(chapter: str) -> str:
    """The title of the notebook chapter ``chapter`` (a document path such as
    ``notebooks/pending/qm9_tensor_mtl``): its first markdown heading, without the ``#``.
    Pending chapters are not in ``_toc.yml``, so the table names them in words instead of
    linking them (a link to a page outside the book breaks the strict build)."""
    import json

    from factorlab.paths import REPO_ROOT

    path = REPO_ROOT / f"{chapter}.ipynb"
    if not path.is_file():
        raise ValueError(f"no chapter notebook {chapter}.ipynb: give a document path under notebooks/")
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return chapter.split("/")[-1]


def html_table(table: pd.DataFrame) -> str:
    """:func:`verdicts` as an HTML table for the chapter: the journal's words (quoted, with the
    journal's label and bib key), what it claims, what the book measured, the verdict and the
    chapter (a link to its page, relative to the page of ``notebooks/claims_revisited``, named by
    its title; a pending chapter by its title only, :func:`chapter_title`)."""
    import html

    cell = "style='white-space:normal; vertical-align:top; text-align:left; font-size:0.85em'"
    head = (f"<table class='claims' style='table-layout:auto; width:100%'><thead><tr><th {cell}>#</th>"
            f"<th {cell}>the journal's words</th><th {cell}>what it claims</th><th {cell}>what the book measured</th>"
            f"<th {cell}>verdict</th><th {cell}>chapter</th></tr></thead><tbody>")
    rows = []
    for i, r in enumerate(table.itertuples(), 1):
        label = JOURNALS[r.source][1]
        # the table is drawn in notebooks/claims_revisited: a chapter notebook is a sibling page
        link = (f"<a href='{r.chapter.removeprefix('notebooks/')}.html'>{html.escape(chapter_title(r.chapter))}</a>"
                if r.chapter.startswith("notebooks/") and "/pending/" not in r.chapter else
                f"“{html.escape(chapter_title(r.chapter))}” (pending)" if "/pending/" in r.chapter else
                html.escape(r.chapter.split("/")[-1]))
        rows.append(f"<tr><td {cell}>{i}</td><td {cell}>“{html.escape(r.quote)}” <small>({html.escape(label)}, "
                    f"<code>{r.source}</code>)</small></td><td {cell}>{html.escape(r.claims)}</td>"
                    f"<td {cell}>{html.escape(r.measured)}</td><td {cell}><b>{r.verdict}</b></td><td {cell}>{link}</td>"
                    "</tr>")
    return head + "".join(rows) + "</tbody></table>"


# --- the journals' text ------------------------------------------------------------------------

def journals_dir() -> Path | None:
    """The folder of the journals: ``journals/`` beside a data mirror of
    ``FACTORLAB_DATA_MIRROR``, else ``../shared/journals`` beside the repository; None when
    neither exists."""
    from factorlab.paths import REPO_ROOT, mirror_dirs

    for d in [m.parent / "journals" for m in mirror_dirs()] + [REPO_ROOT.parent / "shared" / "journals"]:
        if d.is_dir():
            return d
    return None


def normalize(text: str) -> str:
    """``text`` with every run of whitespace as one space (the journals are text extractions
    whose line breaks and table tabs are approximate)."""
    return re.sub(r"\s+", " ", text).strip()


def quote_found(claim: Claim, folder: Path) -> bool:
    """Whether ``claim.quote`` occurs in its journal's text (up to runs of whitespace)."""
    return normalize(claim.quote) in normalize((folder / JOURNALS[claim.source][0]).read_text(encoding="utf-8"))


def glue_values(table: pd.DataFrame, profile: str) -> dict:
    """The chapter's glued values: ``profile``, ``n_claims``, per journal ``n_<bibkey>``, per
    verdict ``n_<verdict>`` (spaces as underscores), the thresholds ``clear_se``,
    ``reproduce_sd``, ``slowdown``, ``overfits``."""
    v = {"profile": profile, "n_claims": len(table)}
    v.update({f"n_{k}": n for k, n in claims_per_journal().items()})
    v.update({f"n_{k.replace(' ', '_')}": n for k, n in verdict_counts(table).items()})
    v.update(clear_se=CLEAR_SE, reproduce_sd=REPRODUCE_SD, slowdown=float(JOURNAL_SLOWDOWN), overfits=float(OVERFITS))
    return v


# VERDICTS, NOT_MEASURED and clear come from factorlab.report.verdicts (import them from there); they
# stay in __all__ because this module's verdicts use them.
__all__ = ["CLAIMS", "Claim", "JOURNALS", "NOT_MEASURED", "VERDICTS", "cached_records", "chapter_title",
           "claim_experiments", "claims_per_journal", "clear", "evaluate", "glue_values", "grid_status", "html_table",
           "journals_dir", "load_records", "normalize", "quote_found", "verdict_counts", "verdicts"]
