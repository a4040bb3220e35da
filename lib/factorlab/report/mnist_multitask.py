"""Chapter "Tensor-factorized multitask learning" (``notebooks/tensor_mtl.ipynb``):
DMTRL's ten one-vs-all tasks, from the records of the experiment ``mnist_multitask``
(:mod:`factorlab.experiments.mnist_multitask`).

Errors are test errors in percent (per task: the share of test images whose one-vs-all answer
is wrong; ``mean_error`` their mean over the ten tasks). Means over seeds come with their
standard error (SE = sd / sqrt(n), NaN for one seed). Times are seconds of training steps
(evaluation excluded); the *target* of a (training-set size, seed) is the final training loss
(mean over its last epoch, nats) of the single-task networks of that size and seed, and a
run's time (epochs) to target is read from its windowed training loss with
:func:`factorlab.analysis.time_to_target`: censored (a lower bound, its whole training) where
the run never reached it. A DMTRL network's time also exists "with pretraining": the
single-task training and the decomposition it starts from, added to its own time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.analysis import paired_difference, time_to_target
from factorlab.experiments.mnist_multitask import FACTORIZED, METHODS
from factorlab.report.mnist_factorized import JOURNAL_SLOWDOWN, has_curves
from factorlab.report.provenance import quiet_label, quiet_of, quiet_sentence
from factorlab.report.formatting import se_digits
from factorlab.report.verdicts import CLEAR_SE, NOT_MEASURED, count_verdict, paired_outcome

#: Row labels of the methods.
METHOD_LABEL = {"single": "single-task (10 networks)", "hard": "hard sharing", "laf": "DMTRL LAF",
                "tucker": "DMTRL Tucker", "tt": "DMTRL TT", "deep": "deeper hard sharing",
                "single_long": "single-task, 2× epochs"}
#: The journal's sentences the chapter tests (journal 000, Paul, January 2020), as written.
JOURNAL_SLOWER = ("I estimate that the tensor factorization network took 100 times as long to reach the same "
                  "loss as the basic network.")
JOURNAL_LAYERS = "I suspect it would be more productive to simply add more layers to our original networks."


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run: ``method``, ``n_train``, ``seed``, ``epochs``, ``mean_error`` (%),
    ``task_error`` (list, %), ``train_loss`` (final epoch's mean, nats), ``params``, ``flops``
    (per image), ``train_s``, ``pretrain_s`` and ``decompose_s`` (DMTRL's single-task training
    and decomposition, NaN for other methods), ``quiet`` (:func:`quiet_of`)."""
    cols = ["method", "n_train", "seed", "epochs", "mean_error", "task_error", "train_loss", "params", "flops",
            "train_s", "pretrain_s", "decompose_s", "quiet"]
    rows = []
    for r in records:
        c, m, t = r["config"], r["metrics"], r["timing"]
        rows.append({"method": c["method"], "n_train": c["n_train"], "seed": c["seed"], "epochs": c["epochs"],
                     "mean_error": m["mean_error"], "task_error": m["task_error"], "train_loss": m["train_loss"],
                     "params": r["model"]["params"], "flops": r["model"]["flops_per_sample"], "train_s": t["train_s"],
                     "pretrain_s": t.get("pretrain_s", np.nan) if c["method"] in FACTORIZED else np.nan,
                     "decompose_s": t.get("decompose_s", np.nan), "quiet": quiet_of(r)})
    return pd.DataFrame(rows, columns=cols)


def _se(x: pd.Series) -> float:
    return float(x.std(ddof=1) / np.sqrt(x.count())) if x.count() > 1 else float("nan")


def means_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (method, n_train), methods in :data:`METHODS` order: mean test error with
    its SE over seeds (``error``, ``error_se``), ``seeds``, mean ``params``, ``train_s``."""
    runs = runs_frame(records)
    if runs.empty:
        return pd.DataFrame(columns=["method", "n_train", "error", "error_se", "seeds", "params", "train_s"])
    out = runs.groupby(["method", "n_train"], as_index=False).agg(
        error=("mean_error", "mean"), error_se=("mean_error", _se), seeds=("seed", "count"),
        params=("params", "mean"), train_s=("train_s", "mean"))
    out["order"] = [METHODS.index(m) for m in out.method]
    return out.sort_values(["order", "n_train"]).drop(columns="order").reset_index(drop=True)


def error_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table: per method, one column per training-set size with mean error ±
    SE (%, seeds in brackets), and the parameters (the mean over sizes and seeds, rounded)."""
    mean = means_frame(records)
    if mean.empty:
        return pd.DataFrame(columns=["method", "parameters"])
    rows = []
    for method, g in mean.groupby("method", sort=False):
        row = {"method": METHOD_LABEL[method]}
        for r in g.itertuples():
            se = "" if r.error_se != r.error_se else f" ± {r.error_se:.2f}"
            row[f"error (%), {int(r.n_train):,} images"] = f"{r.error:.2f}{se} (n = {r.seeds})"
        row["parameters"] = plots.human_count(float(g.params.mean()))
        rows.append(row)
    return pd.DataFrame(rows)


def error_figure(records: list[dict]):
    """Mean test error (%) against training-set size (log axis), one line per method, error bars
    ± SE over seeds. Returns the figure."""
    import matplotlib.pyplot as plt

    mean = means_frame(records)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for method, g in mean.groupby("method", sort=False):
        ax.errorbar(g.n_train, g.error, yerr=g.error_se.fillna(0), marker="o", capsize=3, label=METHOD_LABEL[method])
    ax.set_xscale("log")
    sizes = sorted(mean.n_train.unique())
    ax.set_xticks(sizes, [f"{int(n):,}" for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("mean one-vs-all test error (%)")
    plots.legend_below(fig, ax, ncol=3)
    return fig


def sharing_table(records: list[dict]) -> pd.DataFrame:
    """The learned sharing of the DMTRL networks: per method, training-set size and layer
    (conv1, conv2, fc1, head), the ranks picked at initialisation (of the first seed), the
    task-mode rank, and the entropy effective rank of the task-mode unfolding (1: one weight
    shared up to scale, ten: unrelated) at initialisation and after training, means over seeds."""
    rows = []
    for r in records:
        c, m = r["config"], r["model"]
        if c["method"] not in FACTORIZED or "sharing_final" not in m:
            continue
        for init, final in zip(m["sharing_init"], m["sharing_final"]):
            rows.append({"method": c["method"], "n_train": c["n_train"], "seed": c["seed"], "layer": init["name"],
                         "ranks": str(tuple(init["ranks"])), "task rank": init["task_rank"],
                         "eff_init": init["effective_rank"], "eff_final": final["effective_rank"]})
    cols = ["method", "training images", "layer", "ranks", "task rank", "effective rank at init", "after training"]
    if not rows:
        return pd.DataFrame(columns=cols)
    f = pd.DataFrame(rows)
    out = f.groupby(["method", "n_train", "layer"], sort=False, as_index=False).agg(
        ranks=("ranks", "first"), task_rank=("task rank", "mean"), eff_init=("eff_init", "mean"),
        eff_final=("eff_final", "mean"))
    out = out.round({"task_rank": 1, "eff_init": 2, "eff_final": 2})
    out["method"] = out.method.map(METHOD_LABEL)
    out["n_train"] = [f"{int(n):,}" for n in out.n_train]
    out.columns = cols
    return out


def sharing_summary(records: list[dict]) -> dict:
    """The learned sharing in a sentence's terms: the entropy effective rank of each layer's
    task-mode unfolding after training, mean over the DMTRL methods, sizes and seeds
    (``by_layer``: "conv1 1.1, conv2 2.7, ..." in layer order), and the layers with the lowest
    (``most_shared``) and highest (``least_shared``) mean; "not measured" without DMTRL records."""
    rows = [(final["name"], final["effective_rank"]) for r in records if r["config"]["method"] in FACTORIZED
            for final in r["model"].get("sharing_final", [])]
    if not rows:
        return {"by_layer": NOT_MEASURED, "most_shared": NOT_MEASURED, "least_shared": NOT_MEASURED}
    mean = pd.DataFrame(rows, columns=["layer", "rank"]).groupby("layer", sort=False)["rank"].mean()
    return {"by_layer": ", ".join(f"{layer} {v:.1f}" for layer, v in mean.items()),
            "most_shared": str(mean.idxmin()), "least_shared": str(mean.idxmax())}


# --- time and epochs to the single-task networks' final training loss ------------------------

def targets(records: list[dict]) -> dict[tuple[int, int], float]:
    """(n_train, seed) -> the single-task networks' final training loss (nats) of that size and
    seed, for every ``single`` record."""
    return {(r["config"]["n_train"], r["config"]["seed"]): float(r["metrics"]["train_loss"])
            for r in records if r["config"]["method"] == "single"}


def time_to_target_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run with loss curves whose size and seed have a target (:func:`targets`),
    the single-task run included: ``method``, ``n_train``, ``seed``, ``target_loss``,
    ``time_s`` (training seconds to the first window at or below the target, or the whole
    training when never reached), ``epochs`` (fractional epochs there, or all epochs run),
    ``censored`` (never reached: both are lower bounds), ``with_pretrain_s`` (``time_s`` plus,
    for DMTRL, the single-task training and the decomposition it started from), ``quiet``
    (:func:`~factorlab.report.provenance.quiet_of`: whether its time was taken on a quiet
    machine; None where unknown)."""
    cols = ["method", "n_train", "seed", "target_loss", "time_s", "epochs", "censored", "with_pretrain_s", "quiet"]
    tgt, rows = targets(records), []
    for r in records:
        c, h = r["config"], r["history"]
        key = (c["n_train"], c["seed"])
        if key not in tgt or not has_curves(r):
            continue
        loss = [np.nan if v is None else v for v in h["window_loss"]]
        seconds, censored = time_to_target(loss, h["window_s"], tgt[key], total_s=r["timing"]["train_s"])
        epochs, _ = time_to_target(loss, h["window_epoch"], tgt[key], total_s=float(r["timing"]["epochs_run"]))
        extra = r["timing"].get("pretrain_s", 0.0) + r["timing"].get("decompose_s", 0.0) \
            if c["method"] in FACTORIZED else 0.0
        rows.append({"method": c["method"], "n_train": c["n_train"], "seed": c["seed"], "target_loss": tgt[key],
                     "time_s": seconds, "epochs": epochs, "censored": censored, "with_pretrain_s": seconds + extra,
                     "quiet": quiet_of(r)})
    return pd.DataFrame(rows, columns=cols)


def _bound(point_censored: bool, ref_censored: bool) -> str:
    """``=`` exact, ``≥`` lower bound (the run never reached the target), ``≤`` upper bound
    (the reference never did), ``?`` neither did."""
    return {(False, False): "=", (True, False): "≥", (False, True): "≤", (True, True): "?"}[(point_censored, ref_censored)]


def slowdown_frame(records: list[dict]) -> pd.DataFrame:
    """Per (method, n_train), against the single-task networks of the same size and seed: the
    geometric mean over paired seeds of time-to-target ratios (``ratio``; ``ratio_pretrain``
    with DMTRL's pretraining counted), of epoch ratios (``epoch_ratio``), ``n`` seeds,
    ``n_censored`` (the method's runs that never reached the target), ``bound``
    (:func:`_bound` over the seeds; one mixed set gives ``?``), the smallest and largest
    time ratio of one seed (``ratio_min``, ``ratio_max``) and ``quiet``
    (:func:`~factorlab.report.provenance.quiet_label` of the method's and the single-task
    runs of those seeds)."""
    cols = ["method", "n_train", "ratio", "ratio_pretrain", "epoch_ratio", "n", "n_censored", "bound",
            "ratio_min", "ratio_max", "quiet"]
    ttt = time_to_target_frame(records)
    rows = []
    for n_train, g in ttt.groupby("n_train"):
        ref = g[g.method == "single"].set_index("seed")
        for method in METHODS[1:]:
            p = g[g.method == method].set_index("seed")
            seeds = sorted(set(p.index) & set(ref.index))
            if not seeds:
                continue
            geo = lambda a, b: float(np.exp(np.mean(np.log(a[seeds].to_numpy() / b[seeds].to_numpy()))))  # noqa: E731
            bounds = {_bound(bool(p.censored[s]), bool(ref.censored[s])) for s in seeds}
            bound = "=" if bounds == {"="} else (next(iter(bounds - {"="})) if len(bounds - {"="}) == 1 else "?")
            rows.append({"method": method, "n_train": n_train, "ratio": geo(p.time_s, ref.time_s),
                         "ratio_pretrain": geo(p.with_pretrain_s, ref.time_s), "epoch_ratio": geo(p.epochs, ref.epochs),
                         "n": len(seeds), "n_censored": int(p.censored[seeds].sum()), "bound": bound,
                         "ratio_min": float((p.time_s[seeds] / ref.time_s[seeds]).min()),
                         "ratio_max": float((p.time_s[seeds] / ref.time_s[seeds]).max()),
                         "quiet": quiet_label([p.quiet[s] for s in seeds] + [ref.quiet[s] for s in seeds])})
    return pd.DataFrame(rows, columns=cols)


def slowdown_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of :func:`slowdown_frame`: time and epochs to the single-task final
    loss relative to the single-task networks, the bound sign where censored, the range of the
    time ratio over seeds (with the row's bound sign), how many runs never reached it, and whether the runs timed were
    quiet (:func:`~factorlab.report.provenance.quiet_label`)."""
    s = slowdown_frame(records)
    rows = []
    for r in s.itertuples():
        sign = "" if r.bound == "=" else f"{r.bound} "
        rows.append({"method": METHOD_LABEL[r.method], "training images": f"{int(r.n_train):,}",
                     "time vs single-task": f"{sign}{r.ratio:.2f}×",
                     "with pretraining": f"{sign}{r.ratio_pretrain:.2f}×" if r.method in FACTORIZED else "",
                     "time, range over seeds": f"{sign}{r.ratio_min:.2f}–{r.ratio_max:.2f}×",
                     "epochs vs single-task": f"{sign}{r.epoch_ratio:.2f}×", "never reached": f"{r.n_censored} of {r.n}",
                     "quiet machine": r.quiet})
    return pd.DataFrame(rows, columns=["method", "training images", "time vs single-task", "time, range over seeds",
                                       "with pretraining", "epochs vs single-task", "never reached", "quiet machine"])


def slower_verdict(records: list[dict]) -> dict:
    """The journal's "100 times as long to reach the same loss" on the DMTRL points (method x
    size), with pretraining counted (the cost of a DMTRL network as the paper builds it):
    ``slower`` points at least :data:`JOURNAL_SLOWDOWN` times slower (exact or a lower bound),
    ``faster`` points measured below it (exact or an upper bound), ``open`` the rest,
    ``n_points``; the slowest point (by time, pretraining counted): ``max_method``,
    ``max_n_train``, ``max_ratio`` (time, pretraining counted), ``max_epoch_ratio`` (epochs of
    its own training) and ``max_bound`` (:func:`_bound`); ``n_runs`` DMTRL runs paired
    with a single-task run, ``censored_runs`` of them that never reached the target; and
    ``verdict`` ("reproduced" when every point is that much slower, "partly" when some are,
    "not reproduced" when none is and some are measured faster, else :data:`NOT_MEASURED`)."""
    s = slowdown_frame(records)
    s = s[s.method.isin(FACTORIZED)]
    if s.empty:
        return {"verdict": NOT_MEASURED, "n_points": 0, "slower": 0, "faster": 0, "open": 0, "max_ratio": float("nan"),
                "max_epoch_ratio": float("nan"), "max_bound": "?", "max_method": "", "max_n_train": 0, "n_runs": 0,
                "censored_runs": 0}
    slower = int(((s.ratio_pretrain >= JOURNAL_SLOWDOWN) & s.bound.isin(["=", "≥"])).sum())
    faster = int(((s.ratio_pretrain < JOURNAL_SLOWDOWN) & s.bound.isin(["=", "≤"])).sum())
    n = int(len(s))
    verdict = "reproduced" if slower == n else "partly" if slower else "not reproduced" if faster else NOT_MEASURED
    top = s.loc[s.ratio_pretrain.idxmax()]
    return {"verdict": verdict, "n_points": n, "slower": slower, "faster": faster, "open": n - slower - faster,
            "max_ratio": float(top.ratio_pretrain), "max_epoch_ratio": float(top.epoch_ratio),
            "max_bound": str(top.bound), "max_method": str(top.method), "max_n_train": int(top.n_train),
            "n_runs": int(s.n.sum()), "censored_runs": int(s.n_censored.sum())}


def deeper_frame(records: list[dict]) -> pd.DataFrame:
    """Per (n_train, DMTRL method): the paired difference over seeds of mean test error, deeper
    hard sharing minus the DMTRL network (``diff``, points; negative: deeper is better), its
    ``se``, ``n``, the two networks' mean parameters, and ``outcome``: "deeper better" /
    "DMTRL better" when the difference exceeds ``CLEAR_SE`` standard errors, "no clear
    difference" otherwise, "one seed" when there is no standard error."""
    cols = ["n_train", "method", "diff", "se", "n", "deep_params", "params", "outcome"]
    runs = runs_frame(records)
    rows = []
    for n_train, g in runs.groupby("n_train"):
        deep = g[g.method == "deep"].set_index("seed")
        for method in FACTORIZED:
            p = g[g.method == method].set_index("seed")
            if deep.empty or p.empty or not set(deep.index) & set(p.index):
                continue
            d, se, n = paired_difference(deep.mean_error, p.mean_error)
            outcome = paired_outcome(d, se, "deeper better", "DMTRL better", "no clear difference", "one seed")
            rows.append({"n_train": n_train, "method": method, "diff": d, "se": se, "n": n,
                         "deep_params": float(deep.params.mean()), "params": float(p.params.mean()), "outcome": outcome})
    return pd.DataFrame(rows, columns=cols)


def against_frame(records: list[dict], reference: str) -> pd.DataFrame:
    """Per (n_train, method other than ``reference``), methods in :data:`METHODS` order: the
    paired difference over seeds of mean test error, the method minus ``reference`` (``diff``,
    points; negative: the method is better), its ``se`` and ``n``, and ``outcome``: "better" /
    "worse" when the difference exceeds ``CLEAR_SE`` standard errors, "no clear difference"
    otherwise, "one seed" without a standard error.

    Raises:
        ValueError: ``reference`` is not one of :data:`METHODS`.
    """
    if reference not in METHODS:
        raise ValueError(f"reference must be one of {METHODS}, got {reference!r}")
    cols = ["n_train", "method", "diff", "se", "n", "outcome"]
    runs = runs_frame(records)
    rows = []
    for n_train, g in runs.groupby("n_train"):
        ref = g[g.method == reference].set_index("seed").mean_error
        for method in METHODS:
            p = g[g.method == method].set_index("seed").mean_error
            if method == reference or ref.empty or p.empty or not set(ref.index) & set(p.index):
                continue
            d, se, n = paired_difference(p, ref)
            outcome = paired_outcome(d, se, "better", "worse", "no clear difference", "one seed")
            rows.append({"n_train": int(n_train), "method": method, "diff": d, "se": se, "n": n, "outcome": outcome})
    return pd.DataFrame(rows, columns=cols)


def _diff_text(row) -> str:
    """``+0.12 ± 0.05 worse``: the difference, its SE and the outcome where it is clear (nothing
    for "no clear difference")."""
    digits = se_digits(row["se"])
    word = {"better": " better", "worse": " worse", "one seed": " (one seed)"}.get(row["outcome"], "")
    return f"{row['diff']:+.{digits}f} ± {row['se']:.{digits}f}{word}"


def against_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of :func:`against_frame`: one row per method and training-set size,
    the paired difference in points ± SE, with its outcome where it is clear, against the single-task networks and
    against the single-task networks trained for twice the epochs (``single_long``, the
    control for DMTRL's extra training) and against hard sharing (empty where the method is
    the reference); no row for the
    single-task networks (hard sharing's row holds that comparison)."""
    frames = {"vs single-task": against_frame(records, "single"),
              "vs single-task, 2× epochs": against_frame(records, "single_long"),
              "vs hard sharing": against_frame(records, "hard")}
    sizes = sorted({int(n) for f in frames.values() for n in f.n_train})
    rows = []
    for method in METHODS[1:]:  # the single-task networks are the first reference
        for n in sizes:
            row = {"method": METHOD_LABEL[method], "training images": f"{n:,}"}
            for col, f in frames.items():
                hit = f[(f.method == method) & (f.n_train == n)]
                row[col] = "" if hit.empty else _diff_text(hit.iloc[0])
            if any(row[col] for col in frames):
                rows.append(row)
    return pd.DataFrame(rows)


def dmtrl_summary(records: list[dict]) -> dict:
    """What the chapter and the conclusions say of DMTRL's error, from :func:`against_frame`:
    over the (size, DMTRL method) points with a standard error, how many are clearly better
    than the single-task networks (``better_single``) and than hard sharing (``better_hard``),
    clearly worse than single-task (``worse_single``), of ``n_points``; against the
    single-task networks trained twice as long (``single_long``) the same counts
    (``better_long``, ``worse_long`` of ``n_points_long``: 0 until those runs exist); and per size the best
    DMTRL method against the single-task networks as text (``best_by_size``: "Tucker at 1,000
    images: -0.30 ± 0.05 points; ..."; "not measured" without such points)."""
    def points(reference: str) -> pd.DataFrame:
        f = against_frame(records, reference)
        return f[f.method.isin(FACTORIZED) & (f.outcome != "one seed")]

    s, h, long_ = points("single"), points("hard"), points("single_long")
    parts = []
    for n_train, g in s.groupby("n_train"):
        b = g.loc[g["diff"].idxmin()]
        parts.append(f"{METHOD_LABEL[b.method].removeprefix('DMTRL ')} at {int(n_train):,} images, "
                     f"{b['diff']:+.2f} ± {b.se:.2f} points (n = {int(b.n)})")
    return {"n_points": int(len(s)), "better_single": int((s.outcome == "better").sum()),
            "worse_single": int((s.outcome == "worse").sum()), "better_hard": int((h.outcome == "better").sum()),
            "n_points_hard": int(len(h)), "better_long": int((long_.outcome == "better").sum()),
            "worse_long": int((long_.outcome == "worse").sum()), "n_points_long": int(len(long_)),
            "best_by_size": "; ".join(parts) if parts else NOT_MEASURED}


def deeper_verdict(records: list[dict]) -> dict:
    """The journal's "more productive to simply add more layers": over the (size, DMTRL
    method) pairs of :func:`deeper_frame` with at least two seeds, ``not_worse`` counts those
    where the deeper hard-shared network is not clearly worse; ``verdict`` by
    :func:`factorlab.report.verdicts.count_verdict` ("not measured" without such pairs)."""
    f = deeper_frame(records)
    f = f[f.outcome != "one seed"]
    n = int(len(f))
    k = int((f.outcome != "DMTRL better").sum()) if n else 0
    return {"verdict": count_verdict(k, n), "not_worse": k, "n_pairs": n,
            "deeper_better": int((f.outcome == "deeper better").sum()) if n else 0}


def pretrain_mismatches(records: list[dict]) -> int:
    """DMTRL runs whose single-task networks (retrained or kept, ``pretrain_train_loss``) did
    not end at the final training loss of the ``single`` record of their size and seed: 0 when
    every DMTRL network started from the networks that record describes."""
    tgt = targets(records)
    return sum(1 for r in records if r["config"]["method"] in FACTORIZED
               and (r["config"]["n_train"], r["config"]["seed"]) in tgt
               and r["timing"].get("pretrain_train_loss") != tgt[(r["config"]["n_train"], r["config"]["seed"])])


def glue_values(records: list[dict]) -> dict:
    """Every value the chapter's MNIST prose glues: the two verdicts and their counts, the
    journal's sentences, the slowdown threshold, CLEAR_SE, the sizes and seeds, the initial
    decompositions' relative error (NaN without DMTRL records), :func:`dmtrl_summary`
    (``dmtrl_*``), :func:`sharing_summary` (``rank_by_layer``, ``most_shared``,
    ``least_shared``), how the single-task networks
    were initialised (``single_init``),
    :func:`pretrain_mismatches` and whether the runs of the time-to-target table were timed on a
    quiet machine (``ttt_quiet``, :func:`~factorlab.report.provenance.quiet_sentence`)."""
    s, d, m, sh = slower_verdict(records), deeper_verdict(records), dmtrl_summary(records), sharing_summary(records)
    runs = runs_frame(records)
    sizes = [f"{int(n):,}" for n in sorted(runs.n_train.unique())] if len(runs) else []
    timed = [r for r in records if has_curves(r) and (r["config"]["n_train"], r["config"]["seed"]) in targets(records)]
    return {"ttt_quiet": quiet_sentence(timed, "runs timed") if timed else NOT_MEASURED,
            "journal_slower": JOURNAL_SLOWER, "journal_layers": JOURNAL_LAYERS, "slowdown": JOURNAL_SLOWDOWN,
            "clear_se": CLEAR_SE, "slower_verdict": s["verdict"], "slower_points": s["slower"],
            "faster_points": s["faster"], "open_points": s["open"], "n_points": s["n_points"],
            "max_ratio": s["max_ratio"], "deeper_verdict": d["verdict"], "deeper_not_worse": d["not_worse"],
            "deeper_better": d["deeper_better"], "deeper_pairs": d["n_pairs"],
            "sizes": (", ".join(sizes[:-1]) + " and " + sizes[-1] if len(sizes) > 1 else sizes[0]) if sizes else NOT_MEASURED,
            "dmtrl_points": m["n_points"], "dmtrl_better_single": m["better_single"],
            "dmtrl_worse_single": m["worse_single"], "dmtrl_better_hard": m["better_hard"],
            "dmtrl_points_hard": m["n_points_hard"], "dmtrl_best": m["best_by_size"],
            "dmtrl_better_long": m["better_long"], "dmtrl_worse_long": m["worse_long"],
            "dmtrl_points_long": m["n_points_long"], "rank_by_layer": sh["by_layer"],
            "most_shared": sh["most_shared"], "least_shared": sh["least_shared"],
            "n_seeds": int(runs.seed.nunique()) if len(runs) else 0, "pretrain_mismatches": pretrain_mismatches(records),
            "single_init": next((str(r["config"].get("single_init", "independent")) for r in records
                                 if r["config"]["method"] == "single"), NOT_MEASURED),
            "rel_error": next((float(r["config"]["rel_error"]) for r in records
                               if r["config"]["method"] in FACTORIZED), float("nan"))}
