"""Chapter "Compressing a trained network" (``notebooks/mnist_compression.ipynb``): the second
convolution of a trained MNIST network decomposed (CP, Tucker-2), fine-tuned and timed, from
the records of the experiment ``mnist_compression``
(:mod:`factorlab.experiments.mnist_compression`).

Accuracies are test accuracies in percent; a speedup is the dense time (or FLOPs) over the
decomposed one, so above 1 means faster; "layer" is the replaced convolution alone, "net" the
whole network.

Two kinds of record (the config's ``path_timing``): before the layers chose their computation
path, a run timed the decomposition's factored sequence of small convolutions alone
(``layer_s`` / ``net_s``); a path-timed run times the path the layer chose by measuring
(``layer_s`` / ``net_s`` then mean that path, named in ``layer_path``), the factored path forced
(``layer_factored_s`` / ``net_factored_s``) and the roofline predictions. In the frames an old
row's ``layer_path`` is "factored" (it was forced) and its factored times are its ``layer_s`` /
``net_s``; its chosen-path and roofline columns are NaN. The path-timing view
(:func:`path_speedup_frame`, :func:`path_table`, :func:`path_figure`,
:func:`path_glue_values`) gives each speed-up as mean ± standard error over seeds, each seed's
ratio paired with the dense timing of the same run."""
from __future__ import annotations

import math

import pandas as pd

from factorlab import plots
from factorlab.report.formatting import pm
from factorlab.report.provenance import devices_of, profile_of, quiet_counts, quiet_label, quiet_of
from factorlab.report.verdicts import clear


def decompositions_frame(records: list[dict]) -> pd.DataFrame:
    """One row per decomposition (method, rank) per run of ``mnist_compression``: the stored
    result row (params, flops, rel_error, times in s, ...) with the accuracies in %, the run's
    seed and baseline accuracy, and the ratios ``layer_speedup``, ``net_speedup`` (measured),
    ``flop_speedup``, ``net_flop_speedup`` (predicted), ``compression`` (dense layer params /
    decomposed), ``layer_share`` (the dense layer's share of the dense net's time) and
    ``quiet`` (whether the run's times were taken on a quiet machine; None: not recorded).

    Path timing (see the module docstring): ``path_timing`` (whether the run timed the layer's
    own choice), ``layer_path`` (the path ``layer_s`` timed: "factored" in older runs),
    ``layer_factored_speedup`` / ``net_factored_speedup`` (the factored path forced; older
    runs: their measured speedups), ``roofline_speedup`` (the roofline bound of the chosen path:
    dense roofline / the path's) and ``factored_roofline_speedup`` (NaN in older runs)."""
    rows = []
    for r in records:
        dense = r["metrics"]["dense_layer"]
        for row in r["metrics"]["results"]:
            timed = "layer_factored_s" in row
            row = {"layer_path": "factored", "layer_factored_s": row["layer_s"], "net_factored_s": row["net_s"],
                   "dense_roofline_s": math.nan, "roofline_s": math.nan, "factored_roofline_s": math.nan, **row}
            rows.append({"seed": r["config"]["seed"], "baseline_acc": 100 * r["metrics"]["baseline_acc"], **row,
                         "quiet": quiet_of(r), "path_timing": timed,
                         "acc_decomposed": 100 * row["acc_decomposed"], "acc_finetuned": 100 * row["acc_finetuned"],
                         "layer_speedup": row["dense_layer_s"] / row["layer_s"],
                         "net_speedup": row["dense_net_s"] / row["net_s"],
                         "layer_factored_speedup": row["dense_layer_s"] / row["layer_factored_s"],
                         "net_factored_speedup": row["dense_net_s"] / row["net_factored_s"],
                         "roofline_speedup": row["dense_roofline_s"] / row["roofline_s"],
                         "factored_roofline_speedup": row["dense_roofline_s"] / row["factored_roofline_s"],
                         "layer_share": row["dense_layer_s"] / row["dense_net_s"],
                         "flop_speedup": dense["flops"] / row["flops"],
                         "net_flop_speedup": dense["net_flops_per_sample"] / row["net_flops_per_sample"],
                         "compression": dense["params"] / row["params"]})
    return pd.DataFrame(rows)


def summary_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (method, rank) of ``mnist_compression``, sorted so: params, compression,
    FLOP speedups, mean relative error and accuracies over seeds, median measured speedups
    (``layer_speedup`` / ``net_speedup``: the path ``layer_s`` timed, see
    :func:`decompositions_frame`; ``layer_factored_speedup`` / ``net_factored_speedup``: the
    factored path) and ``quiet`` (:func:`factorlab.report.provenance.quiet_label` of the runs
    timing them)."""
    frame = decompositions_frame(records)
    frame["quiet"] = frame["quiet"].astype(object)
    return frame.groupby(["method", "rank"], as_index=False).agg(
        params=("params", "first"), compression=("compression", "first"), rel_error=("rel_error", "mean"),
        acc_decomposed=("acc_decomposed", "mean"), acc_finetuned=("acc_finetuned", "mean"),
        flop_speedup=("flop_speedup", "first"), layer_speedup=("layer_speedup", "median"),
        net_flop_speedup=("net_flop_speedup", "first"), net_speedup=("net_speedup", "median"),
        layer_factored_speedup=("layer_factored_speedup", "median"),
        net_factored_speedup=("net_factored_speedup", "median"),
        quiet=("quiet", lambda q: quiet_label(list(q))))


def baseline_accuracy(records: list[dict]) -> float:
    """The trained dense network's test accuracy (%) in ``mnist_compression``, mean over
    decompositions and runs."""
    return float(decompositions_frame(records).baseline_acc.mean())


def figure(records: list[dict]):
    """Figure of ``mnist_compression``: accuracy against the layer's compression as decomposed
    (dashed) and fine-tuned (solid) beside the dense network (left); measured against
    FLOP-predicted speedup of the layer, annotated with the rank (right, log-log)."""
    import matplotlib.pyplot as plt

    g, base = summary_frame(records), baseline_accuracy(records)
    fig, axes = plt.subplots(1, 2, figsize=(plots.FULL_WIDTH, 3.8))
    for k, (method, m) in enumerate(g.groupby("method")):
        m = m.sort_values("compression")
        axes[0].plot(m.compression, m.acc_decomposed, "o--", label=f"{method}, as decomposed")
        axes[0].plot(m.compression, m.acc_finetuned, "o-", label=f"{method}, fine-tuned",
                     color=axes[0].lines[-1].get_color())
        axes[1].plot(m.flop_speedup, m.layer_speedup, "o-", label=method)
        for _, r in m.iterrows():
            axes[1].annotate(f"r={r['rank']}", (r.flop_speedup, r.layer_speedup), fontsize=plots.SMALL,
                             xytext=(-2, 4) if k % 2 else (2, -4), ha="right" if k % 2 else "left",
                             va="bottom" if k % 2 else "top", textcoords="offset points")  # methods' ranks apart
    axes[0].axhline(base, color="k", lw=1, label="trained dense network")
    plots.log_axis(axes[0], "x", counts=False)
    axes[0].set_xlabel("compression of the layer\n(dense params / factorized)")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(max(0, min(g.acc_decomposed.min(), base) - 2), 100)
    axes[0].legend()
    lim = [0.5, max(g.flop_speedup.max(), g.layer_speedup.max()) * 1.3]
    axes[1].plot(lim, lim, color="0.6", lw=1, ls=":", label="measured = predicted")
    plots.log_axis(axes[1], "x", counts=False)
    plots.log_axis(axes[1], "y", counts=False)
    axes[1].set_xlabel("speedup of the layer\npredicted by FLOPs")
    axes[1].set_ylabel("measured speedup of the layer")
    axes[1].legend()
    fig.tight_layout()
    return fig


#: The accuracy columns of :func:`accuracy_frame`, each with ``<name>_se``: the accuracies (%) as
#: decomposed and fine-tuned, what each lost against the trained dense network of the same run
#: (points, paired by seed) and what fine-tuning gained (fine-tuned − decomposed, points).
ACCURACY_COLUMNS = ("acc_decomposed", "acc_finetuned", "lost_decomposed", "lost_finetuned", "ft_gain")


def accuracy_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (method, rank) of ``mnist_compression``, sorted so: ``n`` (runs, one per
    seed) and, as mean and standard error over them (``<name>`` / ``<name>_se``; the SE NaN
    for one run), each of :data:`ACCURACY_COLUMNS`. Every run decomposes its own trained dense
    network, so ``lost_*`` (dense − decomposed network, points) and ``ft_gain`` pair within a
    run, i.e. by seed."""
    f = decompositions_frame(records)
    f = f.assign(lost_decomposed=f.baseline_acc - f.acc_decomposed, lost_finetuned=f.baseline_acc - f.acc_finetuned,
                 ft_gain=f.acc_finetuned - f.acc_decomposed)
    rows = []
    for (method, rank), g in f.groupby(["method", "rank"]):
        row = {"method": method, "rank": rank, "n": int(len(g))}
        for col in ACCURACY_COLUMNS:
            row[col], row[f"{col}_se"] = mean_se(g[col])
        rows.append(row)
    return pd.DataFrame(rows)


def results_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of ``mnist_compression``: one row per (method, rank) by compression,
    formatted: parameters, compression, relative error of W (mean over runs), the runs
    (``seeds``), the accuracies as decomposed and fine-tuned (%, mean ± SE over the runs),
    the fine-tuned network against the trained dense one of the same run (points, paired by
    seed, mean ± SE) and the speed-ups the FLOP counts predict (exact: the same in every run).
    Measured times are not in this table: :func:`path_table` gives them as mean ± SE over the
    seeds, with the machine's quiet flag."""
    tab = summary_frame(records).merge(accuracy_frame(records), on=["method", "rank"], suffixes=("", "_acc"))
    tab = tab.sort_values(["method", "compression"])

    def cell(col: str, fmt: str):
        return [pm(m, se, fmt) for m, se in zip(tab[col], tab[f"{col}_se"])]

    return pd.DataFrame({
        "method": tab.method, "rank": tab["rank"].astype(str), "layer params": tab.params.map("{:,}".format),
        "compression": tab.compression.map("{:.1f}×".format), "rel. error of W": tab.rel_error.map("{:.3f}".format),
        "seeds": tab.n.astype(int),
        "acc. decomposed (%, mean ± SE)": cell("acc_decomposed", ".2f"),
        "acc. fine-tuned (%, mean ± SE)": cell("acc_finetuned", ".2f"),
        "fine-tuned − dense (points, paired ± SE)": [pm(0.0 - m, se, "+.2f") for m, se in  # 0.0 - m: never "-0.00"
                                                     zip(tab.lost_finetuned, tab.lost_finetuned_se)],
        "layer speedup: FLOPs": tab.flop_speedup.map("{:.1f}×".format),
        "network: FLOPs": tab.net_flop_speedup.map("{:.2f}×".format),
    }).reset_index(drop=True)


def glue_values(records: list[dict]) -> dict:
    """Every value the chapter glues, from ``mnist_compression`` (one profile), in glue order:
    ``profile``, ``n_runs``, ``devices``; the first run's ``epochs``, ``ft_epochs``, ``batch``
    (timing batch) and ``repeats``; ``base_acc`` (%); per (method, rank)
    ``<method>_<rank>_<column>`` for the accuracies, compression, speedups (of the path
    ``layer_s`` timed: the factored one in older runs, the layer's choice in path-timed runs;
    see :func:`path_glue_values` for both) and relative error;
    ``eff_min`` / ``eff_max`` (measured over predicted layer speedup), ``net_speedup_max``, the
    fastest layer (``layer_speedup_max``, ``_what``, ``_flops``), ``n_variants``,
    ``n_layer_faster`` / ``n_net_faster`` (speedup above 1), ``layer_share_pct`` (median share
    of the dense layer in the dense net's time, %), ``net_bound`` (Amdahl: 1 / (1 - share)) and
    ``net_flop_speedup_max``; the replaced dense layer's ``layer_params`` and
    ``layer_flops_pct`` (% of the dense net's FLOPs); ``n_quiet`` / ``n_not_quiet`` /
    ``n_load_unknown`` (runs whose times were taken on a quiet machine, a busy one, or before
    the load was recorded); from :func:`accuracy_frame`, ``n_seeds`` (the fewest runs of a
    decomposition) and per (method, rank) ``<method>_<rank>_<column>_mean`` /
    ``..._se`` for each of :data:`ACCURACY_COLUMNS` (% and points, mean ± SE over the runs)
    and ``<method>_<rank>_recovered_pct`` (the share of the accuracy lost by decomposing that
    fine-tuning won back, %, of the means; NaN where nothing was lost)."""
    res, g, cfg = decompositions_frame(records), summary_frame(records), records[0]["config"]
    values = {"profile": profile_of(records), "n_runs": len(records), "devices": devices_of(records),
              "epochs": int(cfg["epochs"]), "ft_epochs": int(cfg["finetune_epochs"]),
              "batch": int(cfg["timing_batch"]), "repeats": int(cfg["timing_repeats"]),
              "base_acc": baseline_accuracy(records)}
    for (method, rank), r in g.set_index(["method", "rank"]).iterrows():
        for col in ["acc_decomposed", "acc_finetuned", "compression", "flop_speedup", "layer_speedup", "net_speedup",
                    "rel_error"]:
            values[f"{method}_{rank}_{col}"] = float(r[col])
    eff = g.layer_speedup / g.flop_speedup
    values["eff_min"] = float(eff.min())
    values["eff_max"] = float(eff.max())
    values["net_speedup_max"] = float(g.net_speedup.max())
    best = g.loc[g.layer_speedup.idxmax()]
    values["layer_speedup_max"] = float(best.layer_speedup)
    values["layer_speedup_max_what"] = f"{best.method} at rank {best['rank']}"
    values["layer_speedup_max_flops"] = float(best.flop_speedup)
    values["n_variants"] = int(len(g))
    values["n_layer_faster"] = int((g.layer_speedup > 1).sum())
    values["n_net_faster"] = int((g.net_speedup > 1).sum())
    share = float(res.layer_share.median())
    values["layer_share_pct"] = 100 * share
    # a share >= 1 is a timing artefact (the layer timed alone on a loaded machine took longer
    # than the whole net): no Amdahl bound then
    values["net_bound"] = 1 / (1 - share) if share < 1 else float("inf")
    values["net_flop_speedup_max"] = float(g.net_flop_speedup.max())
    dense = records[0]["metrics"]["dense_layer"]
    values["layer_params"] = int(dense["params"])
    values["layer_flops_pct"] = 100 * dense["flops"] / dense["net_flops_per_sample"]
    quiet = quiet_counts(records)
    values.update(n_quiet=quiet["quiet"], n_not_quiet=quiet["not_quiet"], n_load_unknown=quiet["unknown"])
    acc = accuracy_frame(records)
    values["n_seeds"] = int(acc.n.min())
    for r in acc.itertuples():
        for col in ACCURACY_COLUMNS:
            values[f"{r.method}_{r.rank}_{col}_mean"] = float(getattr(r, col))
            values[f"{r.method}_{r.rank}_{col}_se"] = float(getattr(r, f"{col}_se"))
        lost = r.lost_decomposed
        values[f"{r.method}_{r.rank}_recovered_pct"] = (100 * r.ft_gain / lost) if lost > 0 else float("nan")
    return values


# -- path timing: the layer's own (measured) path choice against the roofline ------------

#: Speed-ups of :func:`path_speedup_frame`, each as ``<name>`` (mean over seeds) and
#: ``<name>_se`` (standard error; NaN for one seed): the chosen path's and the factored path's
#: (layer, network) and the roofline bounds of both.
PATH_SPEEDUPS = ("layer_speedup", "net_speedup", "layer_factored_speedup", "net_factored_speedup",
                 "roofline_speedup", "factored_roofline_speedup")
#: The eval-mode promise of issue 19: a factorized layer in inference is never slower than the
#: dense one, within this fraction.
NEVER_SLOWER_TOLERANCE = 0.05


#: Kinds of path a layer can choose (:func:`path_kind`), in glue order.
PATH_KINDS = ("factored", "partial", "rebuilt", "mixed")


def path_kind(label: str) -> str:
    """The kind of a :func:`path_speedup_frame` ``layer_path`` label: "factored" (the factored
    sequence, in either memory format), "rebuilt" (the rebuilt dense weight: one convolution),
    "partial" (some factors merged: CP's ``depthwise``, Tucker's ``merge_in`` / ``merge_out``),
    or "mixed" when seeds chose paths of different kinds."""
    kinds = set()
    for part in label.split(", "):
        name = part.split(" ×")[0].removesuffix("_cl")
        kinds.add("factored" if name == "factored" else "rebuilt" if name == "dense" else "partial")
    return kinds.pop() if len(kinds) == 1 else "mixed"


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(n)) of ``values``, NaNs
    dropped; (NaN, NaN) for none, SE NaN for one."""
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan


def _paths_label(paths) -> str:
    """The chosen paths of one variant over seeds: ``"dense"`` when all agree, else
    ``"dense ×2, factored ×1"`` (most frequent first, then by name)."""
    counts = pd.Series(list(paths)).value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{p} ×{n}" for p, n in items)


def path_speedup_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (method, rank) of ``mnist_compression``, sorted so: ``n_seeds`` (runs),
    ``n_path_timed`` (of them, runs that timed the layer's own choice), ``layer_path`` (the
    chosen paths, :func:`_paths_label`; older runs: "factored", forced), FLOPs speedup and
    compression, each of :data:`PATH_SPEEDUPS` as mean and standard error over seeds (each
    seed's ratio against the dense timing of its own run; the chosen-path and roofline columns
    over path-timed runs only, NaN without any), ``roofline_efficiency`` (the chosen path's mean
    layer speedup over its mean roofline bound) and ``quiet``."""
    frame = decompositions_frame(records)
    out = []
    for (method, rank), g in frame.groupby(["method", "rank"], sort=True):
        timed = g[g.path_timing]
        row = {"method": method, "rank": rank, "n_seeds": len(g), "n_path_timed": len(timed),
               "layer_path": _paths_label(timed.layer_path if len(timed) else g.layer_path),
               "flop_speedup": float(g.flop_speedup.iloc[0]), "compression": float(g.compression.iloc[0])}
        for col in PATH_SPEEDUPS:
            source = g if col in ("layer_factored_speedup", "net_factored_speedup") else timed
            row[col], row[f"{col}_se"] = mean_se(source[col])
        row["roofline_efficiency"] = row["layer_speedup"] / row["roofline_speedup"]
        row["quiet"] = quiet_label(list(g.quiet.astype(object)))
        out.append(row)
    return pd.DataFrame(out)


def _pm(mean: float, se: float) -> str:
    """``"1.23 ± 0.04×"`` (:func:`factorlab.report.formatting.pm`; the SE left out when NaN,
    one seed), "–" without a mean."""
    return "–" if mean != mean else pm(mean, se, ".2f") + "×"


def path_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's path-timing table of ``mnist_compression``: one row per (method, rank) by
    compression, formatted: seeds, the path the layer chose, the layer's measured speedup with
    that path and with the factored path forced (mean ± SE over seeds), the roofline bound of
    each path and the FLOP prediction, the network's measured speedups, and ``quiet``."""
    t = path_speedup_frame(records).sort_values(["method", "compression"])
    pm = {c: [_pm(m, s) for m, s in zip(t[c], t[f"{c}_se"])] for c in PATH_SPEEDUPS}
    return pd.DataFrame({
        "method": t.method.values, "rank": t["rank"].astype(str).values, "seeds": t.n_seeds.values,
        "chosen path": t.layer_path.values,
        "layer: chosen": pm["layer_speedup"], "layer: factored": pm["layer_factored_speedup"],
        "roofline: chosen": pm["roofline_speedup"], "roofline: factored": pm["factored_roofline_speedup"],
        "FLOPs": t.flop_speedup.map("{:.1f}×".format).values,
        "network: chosen": pm["net_speedup"], "network: factored": pm["net_factored_speedup"],
        "quiet": t.quiet.values,
    })


def path_figure(records: list[dict]):
    """Figure of the path timing of ``mnist_compression``: the layer's measured speedup
    against its roofline bound (dense roofline / the path's), for the path it chose and for the
    factored path, mean ± SE over seeds, log-log with the line measured = bound (left); the
    network's measured speedup per variant with both paths (right). ValueError when no record
    timed the layer's own path choice (``path_timing``)."""
    import matplotlib.pyplot as plt

    g = path_speedup_frame(records)
    if not (g.n_path_timed > 0).any():
        raise ValueError("no mnist_compression record has path timing (config path_timing): run the path-timed "
                         "grid (experiments.mnist_compression.CPU_PATH_TIMING) first")
    g = g[g.n_path_timed > 0].sort_values(["method", "compression"])
    fig, axes = plt.subplots(1, 2, figsize=(plots.FULL_WIDTH, 3.8))
    for k, (method, m) in enumerate(g.groupby("method")):
        color = f"C{k}"  # one colour per method; filled: the chosen path, open: the factored one
        for col, bound, fill, what in [("layer_speedup", "roofline_speedup", color, "chosen path"),
                                       ("layer_factored_speedup", "factored_roofline_speedup", "none", "factored")]:
            axes[0].errorbar(m[bound], m[col], xerr=m[f"{bound}_se"].fillna(0), yerr=m[f"{col}_se"].fillna(0),
                             fmt="o", color=color, mfc=fill, label=f"{method}, {what}", capsize=2)
    lim = [min(0.5, g[["layer_speedup", "layer_factored_speedup"]].min().min() / 1.3),
           max(g[["roofline_speedup", "factored_roofline_speedup", "layer_speedup"]].max().max() * 1.3, 2.0)]
    axes[0].plot(lim, lim, color="0.6", lw=1, ls=":", label="measured = roofline bound")
    axes[0].axhline(1, color="k", lw=0.8)
    plots.log_axis(axes[0], "x", counts=False)
    plots.log_axis(axes[0], "y", counts=False)
    axes[0].set_xlabel("roofline bound of the layer's speedup\n(dense roofline / path's)")
    axes[0].set_ylabel("measured speedup of the layer")
    axes[0].legend(fontsize=plots.SMALL)
    labels = [f"{m} {r}" for m, r in zip(g.method, g["rank"])]
    x = range(len(g))
    for dx, col, fill, what in [(-0.15, "net_speedup", "k", "chosen path"), (0.15, "net_factored_speedup", "none",
                                                                              "factored")]:
        axes[1].errorbar([i + dx for i in x], g[col], yerr=g[f"{col}_se"].fillna(0), fmt="o", color="k", mfc=fill,
                         capsize=2, label=what)
    axes[1].axhline(1, color="k", lw=0.8)
    axes[1].set_xticks(list(x), labels, rotation=45, ha="right")
    axes[1].set_ylabel("measured speedup of the network")
    axes[1].legend(fontsize=plots.SMALL)
    fig.tight_layout()
    return fig


def path_glue_values(records: list[dict]) -> dict:
    """The path-timing values the chapter glues, from the path-timed runs of
    ``mnist_compression`` (ValueError without any): ``path_n_runs`` (path-timed runs),
    ``path_n_seeds`` (seeds per variant, the fewest), ``peak_gflops`` and ``bandwidth_gbs``
    (the machine's measured peak GFLOP/s and bandwidth GB/s, mean over runs); per (method,
    rank) ``path_<method>_<rank>_path`` and, for each of :data:`PATH_SPEEDUPS`,
    ``path_<method>_<rank>_<name>`` and ``..._se`` (the prefix keeps them apart from
    :func:`glue_values`' per-variant keys); over variants ``path_n_variants``,
    ``n_chose_<kind>`` for each of :data:`PATH_KINDS` (:func:`path_kind` of the variant's
    chosen paths), ``n_chosen_faster`` / ``n_factored_faster`` (mean layer speedup above 1),
    ``n_chosen_clearly_faster`` / ``n_factored_clearly_faster`` / ``n_net_chosen_clearly_faster``
    (the layer's, or the network's, speedup above 1 by more than
    :data:`~factorlab.report.verdicts.CLEAR_SE` standard errors),
    ``n_never_slower`` (chosen path's mean layer speedup at least 1 / (1 +
    :data:`NEVER_SLOWER_TOLERANCE`)), ``chosen_speedup_max`` with ``_what`` and ``_se`` and
    its ``_bound`` (roofline) and ``_flops``, ``roofline_speedup_max`` and ``_what``
    (the largest bound of a chosen path), ``roofline_eff_min`` / ``roofline_eff_max``
    (measured over bound, chosen path), ``net_chosen_speedup_max`` and ``_what``,
    ``net_factored_speedup_max``, ``n_net_chosen_faster``."""
    timed = [r for r in records if all("layer_factored_s" in row for row in r["metrics"]["results"])]
    if not timed:
        raise ValueError("no mnist_compression record has path timing (config path_timing): run the path-timed "
                         "grid (experiments.mnist_compression.CPU_PATH_TIMING) first")
    g = path_speedup_frame(timed)
    machines = [r["metrics"]["machine"] for r in timed]
    values = {"path_n_runs": len(timed), "path_n_seeds": int(g.n_seeds.min()),
              "peak_gflops": sum(m["peak_flops"] for m in machines) / len(machines) / 1e9,
              "bandwidth_gbs": sum(m["bandwidth"] for m in machines) / len(machines) / 1e9}
    for _, r in g.iterrows():
        key = f"path_{r['method']}_{r['rank']}"  # "path_": glue_values has <method>_<rank>_layer_speedup
        values[f"{key}_path"] = str(r.layer_path)
        for col in PATH_SPEEDUPS:
            values[f"{key}_{col}"] = float(r[col])
            values[f"{key}_{col}_se"] = float(r[f"{col}_se"])
    values["path_n_variants"] = int(len(g))
    kinds = g.layer_path.map(path_kind)
    for kind in PATH_KINDS:
        values[f"n_chose_{kind}"] = int((kinds == kind).sum())
    values["n_chosen_faster"] = int((g.layer_speedup > 1).sum())
    values["n_factored_faster"] = int((g.layer_factored_speedup > 1).sum())
    for name, col in [("chosen", "layer_speedup"), ("factored", "layer_factored_speedup"), ("net_chosen", "net_speedup")]:
        values[f"n_{name}_clearly_faster"] = int(sum(clear(m - 1, se) and m > 1 for m, se in zip(g[col], g[f"{col}_se"])))
    values["n_never_slower"] = int((g.layer_speedup >= 1 / (1 + NEVER_SLOWER_TOLERANCE)).sum())
    best = g.loc[g.layer_speedup.idxmax()]
    values.update(chosen_speedup_max=float(best.layer_speedup), chosen_speedup_max_se=float(best.layer_speedup_se),
                  chosen_speedup_max_what=f"{best.method} at rank {best['rank']} ({best.layer_path})",
                  chosen_speedup_max_bound=float(best.roofline_speedup),
                  chosen_speedup_max_flops=float(best.flop_speedup))
    top = g.loc[g.roofline_speedup.idxmax()]
    values.update(roofline_speedup_max=float(top.roofline_speedup),
                  roofline_speedup_max_what=f"{top.method} at rank {top['rank']} ({top.layer_path})")
    values["roofline_eff_min"] = float(g.roofline_efficiency.min())
    values["roofline_eff_max"] = float(g.roofline_efficiency.max())
    net = g.loc[g.net_speedup.idxmax()]
    values.update(net_chosen_speedup_max=float(net.net_speedup),
                  net_chosen_speedup_max_what=f"{net.method} at rank {net['rank']}",
                  net_factored_speedup_max=float(g.net_factored_speedup.max()),
                  n_net_chosen_faster=int((g.net_speedup > 1).sum()))
    return values
