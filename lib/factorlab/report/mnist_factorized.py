"""Chapter "Factorized layers on MNIST" (``notebooks/mnist_factorized.ipynb``): networks with
factorized layers against narrower dense networks, from the records of the experiment
``mnist_factorized`` (:mod:`factorlab.experiments.mnist_factorized`).

Accuracies are test accuracies in percent after the last epoch; parameters count the whole
network unless a name says "layer"; times are seconds of training steps; a time to target is
the training time until the training loss first reaches the experiment's target."""
from __future__ import annotations

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.analysis import (factorized_runs_frame, first_window_reaching, largest_compression_within,
                                paired_difference, pareto_front, time_to_target)
from factorlab.experiments.mnist_factorized import BUDGETS, NETS
from factorlab.report.provenance import devices_of, profile_of, quiet_counts, quiet_label, quiet_of
from factorlab.report.verdicts import NOT_MEASURED  # what the slowdown values say where no record has loss curves

#: Families in the order of figures and tables.
FAMILY_ORDER = ["lowrank", "cp", "tucker", "tt", "separable"]
#: Panel and table titles of the two networks, in chapter order.
NET_TITLE = {"mlp": "MLP 784-512-512-10", "conv2": "2 conv + pooling"}
#: Tolerance of "within half a point" of the full-width dense network (accuracy points).
TOLERANCE = 0.5


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run of ``mnist_factorized`` (:func:`factorlab.analysis.factorized_runs_frame`),
    with ``quiet``: whether its time was taken on a quiet machine (None: not recorded)."""
    runs = factorized_runs_frame(records)
    runs["quiet"] = pd.Series([quiet_of(r) for r in records], index=runs.index, dtype=object)
    return runs


def means_frame(records: list[dict]) -> pd.DataFrame:
    """One row per point of ``mnist_factorized`` (net, family, compression, width; sorted so):
    the mean over seeds of accuracy (``acc``, with its std ``acc_sd``), training seconds, time
    and epochs to the target, and the point's parameters, FLOPs, factorized-layer parameters,
    ranks, number of seeds and ``quiet`` (:func:`factorlab.report.provenance.quiet_label` of
    its runs)."""
    runs = runs_frame(records)
    return (runs.groupby(["net", "family", "compression", "width"], dropna=False, as_index=False)
            .agg(acc=("acc", "mean"), acc_sd=("acc", "std"), params=("params", "first"), flops=("flops", "first"),
                 layer_params=("layer_params", "first"), layer_dense_params=("layer_dense_params", "first"),
                 ranks=("ranks", "first"), seeds=("seed", "count"), train_s=("train_s", "mean"),
                 time_to_target_s=("time_to_target_s", "mean"), epochs_to_target=("epochs_to_target", "mean"),
                 quiet=("quiet", lambda q: quiet_label(list(q)))))


def _full_dense(mean: pd.DataFrame, net: str) -> pd.Series:
    """The full-width dense network's row of ``mean`` for ``net``."""
    return mean[(mean.net == net) & (mean.family == "dense") & (mean.width == NETS[net]["full_width"])].iloc[0]


def reference_accuracy(records: list[dict]) -> dict[str, float]:
    """Per net of ``mnist_factorized``: the full-width dense network's mean test accuracy (%)."""
    mean = means_frame(records)
    return {net: float(_full_dense(mean, net)["acc"]) for net in mean.net.unique()}


def accuracy_figure(records: list[dict]):
    """Figure of ``mnist_factorized``: accuracy against parameters, one panel per net; dots
    are factorized networks (colour: family; each compression c labelled once, beside its most
    accurate point, since the families' points of one c lie close together), the black line the narrower
    dense networks, the grey band the full dense network ± :data:`TOLERANCE`, the dashed
    line the Pareto frontier of all points."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    mean, reference = means_frame(records), reference_accuracy(records)
    palette = dict(zip(FAMILY_ORDER, sns.color_palette("colorblind", len(FAMILY_ORDER))))
    fig, axes = plt.subplots(1, 2, figsize=(plots.FULL_WIDTH, 4.0))
    for ax, net in zip(axes, ["mlp", "conv2"]):
        m = mean[mean.net == net]
        dense = m[m.family == "dense"].sort_values("params")
        ax.axhspan(reference[net] - TOLERANCE, reference[net] + TOLERANCE, color="0.85", zorder=0)
        ax.plot(dense["params"], dense["acc"], "k-o", ms=4, label="dense, narrower")
        for fam in FAMILY_ORDER:
            f = m[m.family == fam]
            if len(f):
                ax.scatter(f["params"], f["acc"], color=palette[fam], s=30, label=fam, zorder=3)
        for c, f in m[m.family != "dense"].groupby("compression"):
            top = f.loc[f["acc"].idxmax()]
            ax.annotate(f"{c:g}×", (top.params, top.acc), fontsize=plots.SMALL, xytext=(0, 5),
                        textcoords="offset points", ha="center", va="bottom")
        front = pareto_front(m, "params", "acc")
        ax.step(front["params"], front["acc"], "--", where="post", color="0.3", lw=1, label="Pareto frontier")
        plots.log_axis(ax, "x")
        ax.set_xlabel("trainable parameters (whole network)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(NET_TITLE[net])
        lo = max(m["acc"].min() - 1, reference[net] - 15)
        ax.set_ylim(lo, min(100, reference[net] + 1))
    axes[0].legend(loc="lower right")
    axes[1].legend(loc="upper left")
    fig.tight_layout()
    return fig


def points_table(records: list[dict], net: str) -> pd.DataFrame:
    """Every point of ``net`` in ``mnist_factorized`` (dense by decreasing width, then each
    family by compression): ranks, factorized-layer and network parameters, test accuracy
    (mean ± std over seeds, %) and its difference to the full dense network (points)."""
    runs, mean, reference = runs_frame(records), means_frame(records), reference_accuracy(records)
    m = mean[mean.net == net].copy()
    m["order"] = [-1 if f == "dense" else FAMILY_ORDER.index(f) for f in m.family]
    m = m.sort_values(["order", "compression", "width"], ascending=[True, True, False])
    rows = []
    for _, r in m.iterrows():
        g = runs[(runs.net == net) & (runs.family == r.family)
                 & (runs.compression.fillna(-1) == (r.compression if r.family != "dense" else -1))
                 & (runs.width.fillna(-1) == (r.width if r.family == "dense" else -1))]
        rows.append({
            "family": r.family if r.family != "dense" else f"dense, width {int(r.width)}",
            "c": "" if r.family == "dense" else f"{r.compression:g}×",
            "ranks": r.ranks,
            "factorized layers: params": ("" if r.family == "dense"
                                          else f"{int(r.layer_params):,} / {int(r.layer_dense_params):,}"),
            "network params": f"{int(r.params):,}",
            "test acc. (%)": plots.mean_std(g["acc"], 2),
            "vs full dense": f"{r.acc - reference[net]:+.2f}",
        })
    return pd.DataFrame(rows)


def tolerance_table(records: list[dict]) -> tuple[pd.DataFrame, dict]:
    """Compression within :data:`TOLERANCE` of the full dense network, from ``mnist_factorized``:
    ``(table, values)``. Per net, each family's largest tested compression whose mean accuracy
    stays within the tolerance ("none" if none does), then the narrowest dense network that
    does, with its whole-network parameter ratio. ``values`` (glued): ``c05_<net>_<family>``
    (e.g. ``"16×"`` or ``"none"``), ``narrow_<net>`` (its width), ``narrow_ratio_<net>`` and
    ``tolerance`` (:data:`TOLERANCE`, points)."""
    runs, mean, reference = runs_frame(records), means_frame(records), reference_accuracy(records)
    rows, values = [], {}
    for net in ["mlp", "conv2"]:
        fac = runs[(runs.net == net) & (runs.family != "dense")]
        best = largest_compression_within(fac, reference[net], TOLERANCE)
        for _, b in best.iterrows():
            got = mean[(mean.net == net) & (mean.family == b.family) & (mean.compression == b.compression)]
            c = "none" if np.isnan(b.compression) else f"{b.compression:g}×"
            rows.append({"network": NET_TITLE[net], "family": b.family, "largest c within 0.5 pt": c,
                         "network params there": "" if got.empty else f"{int(got.params.iloc[0]):,}",
                         "acc. there (%)": "" if got.empty else f"{got.acc.iloc[0]:.2f}"})
            values[f"c05_{net}_{b.family}"] = c
        dense = mean[(mean.net == net) & (mean.family == "dense")]
        ok = dense[dense.acc >= reference[net] - TOLERANCE].sort_values("params")
        full_params = float(dense[dense.width == NETS[net]["full_width"]].params.iloc[0])
        narrow = ok.iloc[0]
        rows.append({"network": NET_TITLE[net], "family": f"dense, width {int(narrow.width)}",
                     "largest c within 0.5 pt": f"{full_params / narrow.params:.1f}× (whole net)",
                     "network params there": f"{int(narrow.params):,}", "acc. there (%)": f"{narrow.acc:.2f}"})
        values[f"narrow_{net}"] = int(narrow.width)
        values[f"narrow_ratio_{net}"] = float(full_params / narrow.params)
    values["tolerance"] = TOLERANCE
    return pd.DataFrame(rows), values


def time_to_target_table(records: list[dict]) -> pd.DataFrame:
    """Time to the target training loss in ``mnist_factorized``, per net and factorized point
    (by family, compression) and the full dense network last: seconds per epoch, epoch time
    and time to target relative to the full dense network, epochs to target ("not reached"
    when the target was not hit within the budget) and ``quiet`` (whether the point's times
    were taken on a quiet machine: yes / no / unknown, for records before the load was recorded)."""
    runs, mean = runs_frame(records), means_frame(records)
    rows = []
    for net in ["mlp", "conv2"]:
        m = mean[mean.net == net]
        ref = _full_dense(mean, net)
        epochs = runs[(runs.net == net)].epochs.iloc[0]
        for _, r in m[m.family != "dense"].sort_values(["family", "compression"]).iterrows():
            reached = not np.isnan(r.time_to_target_s)
            rows.append({"network": NET_TITLE[net], "family": r.family, "c": f"{r.compression:g}×",
                         "s / epoch": f"{r.train_s / epochs:.1f}",
                         "epoch time vs dense": f"{r.train_s / ref.train_s:.2f}×",
                         "epochs to target": f"{r.epochs_to_target:.1f}" if reached else "not reached",
                         "time to target vs dense": (f"{r.time_to_target_s / ref.time_to_target_s:.2f}×" if reached
                                                     else "not reached"), "quiet": r.quiet})
        rows.append({"network": NET_TITLE[net], "family": "dense (full width)", "c": "1×",
                     "s / epoch": f"{ref.train_s / epochs:.1f}", "epoch time vs dense": "1.00×",
                     "epochs to target": f"{ref.epochs_to_target:.1f}", "time to target vs dense": "1.00×",
                     "quiet": ref.quiet})
    return pd.DataFrame(rows)


def glue_values(records: list[dict]) -> dict:
    """The chapter's glued values from ``mnist_factorized`` (besides :func:`tolerance_table`'s),
    in glue order: ``profile``, ``n_runs``, ``n_seeds``, ``devices``; per net: ``epochs_<net>``,
    ``ref_<net>`` (full dense accuracy, %), ``target_<net>`` (target training loss),
    ``ttt_max_<net>`` / ``ttt_median_<net>`` (time to target of the factorized points over the
    full dense network's), ``ttt_missed_<net>`` (factorized points that miss the target),
    ``n_fac_<net>``, ``epoch_ratio_max_<net>``, ``ref_params_<net>``, ``ref_ttt_<net>`` (s),
    ``ref_ept_<net>`` (epochs); and per point (``<net>_w<width>`` for dense,
    ``<net>_<family>_<c>`` otherwise): ``acc_``, ``params_``, ``ttt_`` (time to target vs
    dense), ``ept_`` (epochs to target) and ``epoch_ratio_`` (epoch time vs dense), and for
    factorized points ``ranks_`` (the layers' ranks, "a and b") and ``rank_`` (the first
    layer's rank where it is one number). Also: ``n_quiet`` / ``n_not_quiet`` /
    ``n_load_unknown`` (runs whose times were taken on a quiet machine, a busy one, or before
    the load was recorded); ``hidden_share_mlp`` (% of the full MLP's parameters in the
    factorized layers); ``layer_dense_params_conv2`` (the dense convolution that is
    factorized); per net and tested compression ``params_min_<net>_<c>`` /
    ``params_max_<net>_<c>`` (whole-network parameters over the families there) and
    ``params_min_fac_<net>`` (the smallest factorized network); ``full_epochs_<net>`` and
    ``full_seeds`` (the ``full`` profile's budget)."""
    runs, mean, reference = runs_frame(records), means_frame(records), reference_accuracy(records)
    values = {"profile": profile_of(records), "n_runs": len(records), "n_seeds": int(runs.seed.nunique()),
              "devices": devices_of(records)}
    quiet = quiet_counts(records)
    values.update(n_quiet=quiet["quiet"], n_not_quiet=quiet["not_quiet"], n_load_unknown=quiet["unknown"])
    values["full_seeds"] = len(BUDGETS["full"]["seeds"])
    for net in ["mlp", "conv2"]:
        values[f"epochs_{net}"] = int(runs[runs.net == net].epochs.iloc[0])
        values[f"ref_{net}"] = reference[net]
        values[f"target_{net}"] = float(runs[runs.net == net].target_loss.iloc[0])
        m = mean[(mean.net == net) & (mean.family != "dense")]
        ref = _full_dense(mean, net)
        ratio = m.time_to_target_s / ref.time_to_target_s
        values[f"ttt_max_{net}"] = float(ratio.max())
        values[f"ttt_median_{net}"] = float(ratio.median())
        values[f"ttt_missed_{net}"] = int(ratio.isna().sum())
        values[f"n_fac_{net}"] = int(len(m))
        values[f"epoch_ratio_max_{net}"] = float((m.train_s / ref.train_s).max())
        values[f"ref_params_{net}"] = int(ref.params)
        values[f"ref_ttt_{net}"] = float(ref.time_to_target_s)
        values[f"ref_ept_{net}"] = float(ref.epochs_to_target)
        values[f"full_epochs_{net}"] = int(BUDGETS["full"]["epochs"][net])
        if len(m):
            values[f"params_min_fac_{net}"] = int(m.params.min())
            values[f"layer_dense_params_{net}"] = int(m.layer_dense_params.iloc[0])
            values[f"hidden_share_{net}"] = float(100 * m.layer_dense_params.iloc[0] / ref.params)
        for c, at in m.groupby("compression"):
            values[f"params_min_{net}_{c:g}"] = int(at.params.min())
            values[f"params_max_{net}_{c:g}"] = int(at.params.max())
        for _, r in mean[mean.net == net].iterrows():
            key = f"{net}_w{int(r.width)}" if r.family == "dense" else f"{net}_{r.family}_{r.compression:g}"
            values[f"acc_{key}"] = float(r.acc)
            values[f"params_{key}"] = int(r.params)
            values[f"ttt_{key}"] = float(r.time_to_target_s / ref.time_to_target_s)
            values[f"ept_{key}"] = float(r.epochs_to_target)
            values[f"epoch_ratio_{key}"] = float(r.train_s / ref.train_s)
            if r.family != "dense":
                ranks = str(r.ranks).split("; ")
                values[f"ranks_{key}"] = " and ".join(ranks)
                if ranks[0].isdigit():
                    values[f"rank_{key}"] = int(ranks[0])
    return values


# --- The journal's "100 times as long to reach the same loss", from the windowed loss curves ---

#: The claim tested (journal 000, Paul, January 2020), as written.
JOURNAL_SENTENCE = ("I estimate that the tensor factorization network took 100 times as long to reach the same "
                    "loss as the basic network.")
#: The slowdown the journal names.
JOURNAL_SLOWDOWN = 100.0
#: The lenient target training loss per net (nats): the target the experiment watches in training.
LENIENT_TARGET = {net: float(spec["target_loss"]) for net, spec in NETS.items()}
#: The two targets, in table order: the full dense network's own final training loss, and the lenient one.
TARGETS = ("final", "lenient")


def has_curves(record: dict) -> bool:
    """Whether ``record`` holds the windowed training-loss curve (``history["window_loss"]`` and
    ``["window_s"]``, recorded by :func:`factorlab.train.fit_classifier` since the curves were
    added; older records have only per-epoch losses)."""
    h = record.get("history") or {}
    return bool(h.get("window_loss")) and len(h.get("window_s") or []) == len(h["window_loss"])


def _is_full_dense(cfg: dict) -> bool:
    return cfg["family"] == "dense" and cfg["width"] == NETS[cfg["net"]]["full_width"]


def loss_targets(records: list[dict]) -> dict[str, dict[str, float]]:
    """Per net with curves: ``{"final": the full-width dense network's final training loss
    (metrics ``train_loss``: the mean over its last epoch, nats; mean over its seeds),
    "lenient": LENIENT_TARGET[net]}``. Nets without a full dense run with curves are left out."""
    finals: dict[str, list[float]] = {}
    for r in records:
        if has_curves(r) and _is_full_dense(r["config"]):
            finals.setdefault(r["config"]["net"], []).append(float(r["metrics"]["train_loss"]))
    return {net: {"final": float(np.mean(v)), "lenient": LENIENT_TARGET[net]} for net, v in finals.items()}


def time_to_target_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run with loss curves and target of :func:`loss_targets`: ``net``, ``family``,
    ``compression``, ``width``, ``seed``, ``target`` (``final`` / ``lenient``), ``target_loss``
    (nats), ``time_s`` (training seconds to the first window at or below the target; when
    never reached, the run's whole training time ``train_s``), ``censored`` (True: never
    reached, the time to target is at least ``time_s``), ``epochs`` (fractional epochs there;
    the epochs run when censored). Empty (with these columns) when no record has curves."""
    cols = ["net", "family", "compression", "width", "seed", "target", "target_loss", "time_s", "censored", "epochs"]
    targets, rows = loss_targets(records), []
    for r in records:
        c, h = r["config"], r["history"]
        if not has_curves(r) or c["net"] not in targets:
            continue
        loss = [np.nan if v is None else v for v in h["window_loss"]]
        for name in TARGETS:
            t = targets[c["net"]][name]
            seconds, censored = time_to_target(loss, h["window_s"], t, total_s=r["timing"]["train_s"])
            k = first_window_reaching(loss, t)
            epochs = float(h["epoch"][-1]) if k is None else float(h["window_epoch"][k])
            rows.append({"net": c["net"], "family": c["family"], "compression": c["compression"], "width": c["width"],
                         "seed": c["seed"], "target": name, "target_loss": t, "time_s": seconds,
                         "censored": censored, "epochs": epochs})
    return pd.DataFrame(rows, columns=cols)


def _bound(point_censored: bool, ref_censored: bool) -> str:
    """What a ratio of times is: exact ``=``, a lower bound ``≥`` (the point never reached the
    target), an upper bound ``≤`` (the reference never did) or unknown ``?`` (neither did)."""
    return {(False, False): "=", (True, False): "≥", (False, True): "≤", (True, True): "?"}[(point_censored, ref_censored)]


def slowdown_frame(records: list[dict]) -> pd.DataFrame:
    """Slowdown of every point against the full-width dense network of the same net, target
    and seed: one row per (net, target, point); ``ratio`` is the geometric mean over the paired
    seeds of time to target / the dense network's, ``ratio_lo`` / ``ratio_hi`` its smallest and
    largest seed, ``log_se`` the standard error of the mean log ratio
    (:func:`factorlab.analysis.paired_difference` of log times; NaN for one seed), ``n`` the
    paired seeds, ``n_censored`` the point's runs that never reached the target, ``bound``
    (:func:`_bound` over the seeds: ``≥`` when any of the point's runs is censored and no
    reference run is, so that the ratio is a lower bound), ``target_loss``. The full dense
    network itself is left out. Empty when no record has curves."""
    cols = ["net", "target", "target_loss", "family", "compression", "width", "ratio", "ratio_lo", "ratio_hi",
            "log_se", "n", "n_censored", "bound"]
    ttt = time_to_target_frame(records)
    if ttt.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (net, target), g in ttt.groupby(["net", "target"], sort=False):
        full = NETS[net]["full_width"]
        is_ref = (g.family == "dense") & (g.width == full)
        ref = g[is_ref].set_index("seed")
        for (family, comp, width), p in g[~is_ref].groupby(["family", "compression", "width"], dropna=False, sort=False):
            p = p.set_index("seed")
            seeds = sorted(set(p.index) & set(ref.index))
            if not seeds:
                continue
            mean_log, se, n = paired_difference(np.log(p.time_s[seeds]), np.log(ref.time_s[seeds]))
            ratios = p.time_s[seeds] / ref.time_s[seeds]
            bounds = {_bound(bool(p.censored[s]), bool(ref.censored[s])) for s in seeds}
            bound = "=" if bounds == {"="} else next(iter(bounds - {"="})) if len(bounds - {"="}) == 1 else "?"
            rows.append({"net": net, "target": target, "target_loss": float(g.target_loss.iloc[0]), "family": family,
                         "compression": comp, "width": width, "ratio": float(np.exp(mean_log)),
                         "ratio_lo": float(ratios.min()), "ratio_hi": float(ratios.max()), "log_se": se, "n": n,
                         "n_censored": int(p.censored[seeds].sum()), "bound": bound})
    return pd.DataFrame(rows, columns=cols)


def _ratio_text(row) -> str:
    """``"≥ 2.3× (2.1–2.6, n = 3)"``: the bound sign unless exact, the geometric-mean ratio, its
    range over seeds and the seeds."""
    sign = "" if row.bound == "=" else f"{row.bound} "
    spread = f"{row.ratio_lo:.2f}–{row.ratio_hi:.2f}, " if row.n > 1 else ""
    return f"{sign}{row.ratio:.2f}× ({spread}n = {row.n})"


def slowdown_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of :func:`slowdown_frame`: per net, target and point (factorized by
    family and compression, then the narrower dense networks by decreasing width), the time to target
    relative to the full dense network with its bound, seed range and n, and the point's runs
    that never reached the target (censored at their whole training time). Empty when no
    record has curves (then the chapter says :data:`NOT_MEASURED`)."""
    s = slowdown_frame(records)
    if s.empty:
        return pd.DataFrame(columns=["network", "target", "point", "time to target vs dense", "never reached"])
    s = s.assign(net_order=[list(NET_TITLE).index(n) for n in s.net], target_order=[TARGETS.index(t) for t in s.target],
                 order=[len(FAMILY_ORDER) if f == "dense" else FAMILY_ORDER.index(f) for f in s.family])
    s = s.sort_values(["net_order", "target_order", "order", "compression", "width"],
                      ascending=[True, True, True, True, False])
    rows = [{"network": NET_TITLE[r.net], "target": f"{r.target} ({r.target_loss:.3f})",
             "point": f"dense, width {int(r.width)}" if r.family == "dense" else f"{r.family} {r.compression:g}×",
             "time to target vs dense": _ratio_text(r), "never reached": f"{r.n_censored} of {r.n}"}
            for r in s.itertuples()]
    return pd.DataFrame(rows)


def journal_verdict(records: list[dict]) -> dict:
    """The journal's "100 times as long to reach the same loss" against the factorized points
    (narrower dense networks are not "tensor factorization networks"), per net and target:
    ``slower_100_<net>_<target>`` points whose slowdown (a lower bound where censored) is at
    least :data:`JOURNAL_SLOWDOWN`; ``faster_100_<net>_<target>`` points measured below it
    (exact, or an upper bound); ``open_100_<net>_<target>`` points censored below it (only
    "at least" is known); ``n_points_<net>_<target>``; ``max_ratio_<net>_<target>`` (largest
    geometric-mean slowdown) and ``max_bound_<net>_<target>`` (its bound sign);
    ``n_censored_<net>_<target>`` (points whose slowdown is only a lower bound);
    ``target_<net>_<target>`` (nats). Also ``journal_sentence`` and ``slowdown_measured`` (True, or :data:`NOT_MEASURED`
    when no record has curves: then only these two)."""
    s = slowdown_frame(records)
    values: dict = {"journal_sentence": JOURNAL_SENTENCE, "slowdown_measured": True if len(s) else NOT_MEASURED}
    fac = s[s.family != "dense"]
    for (net, target), g in fac.groupby(["net", "target"], sort=False):
        key = f"{net}_{target}"
        lower = g.bound == "≥"
        values[f"target_{key}"] = float(g.target_loss.iloc[0])
        values[f"n_points_{key}"] = int(len(g))
        values[f"slower_100_{key}"] = int(((g.ratio >= JOURNAL_SLOWDOWN) & g.bound.isin(["=", "≥"])).sum())
        values[f"faster_100_{key}"] = int(((g.ratio < JOURNAL_SLOWDOWN) & g.bound.isin(["=", "≤"])).sum())
        values[f"open_100_{key}"] = int(len(g)) - values[f"slower_100_{key}"] - values[f"faster_100_{key}"]
        top = g.loc[g.ratio.idxmax()]
        values[f"max_ratio_{key}"] = float(top.ratio)
        values[f"max_bound_{key}"] = str(top.bound)
        values[f"n_censored_{key}"] = int(lower.sum())
    return values
