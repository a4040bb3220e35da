"""Chapter "Compressing a trained network" (``notebooks/mnist_compression.ipynb``): the second
convolution of a trained MNIST network decomposed (CP, Tucker-2), fine-tuned and timed, from
the records of the experiment ``mnist_compression``
(:mod:`factorlab.experiments.mnist_compression`).

Accuracies are test accuracies in percent; a speedup is the dense time (or FLOPs) over the
decomposed one, so above 1 means faster; "layer" is the replaced convolution alone, "net" the
whole network."""
from __future__ import annotations

import pandas as pd

from factorlab import plots
from factorlab.report.provenance import devices_of, profile_of, quiet_counts, quiet_label, quiet_of


def decompositions_frame(records: list[dict]) -> pd.DataFrame:
    """One row per decomposition (method, rank) per run of ``mnist_compression``: the stored
    result row (params, flops, rel_error, times in s, ...) with the accuracies in %, the run's
    seed and baseline accuracy, and the ratios ``layer_speedup``, ``net_speedup`` (measured),
    ``flop_speedup``, ``net_flop_speedup`` (predicted), ``compression`` (dense layer params /
    decomposed), ``layer_share`` (the dense layer's share of the dense net's time) and
    ``quiet`` (whether the run's times were taken on a quiet machine; None: not recorded)."""
    rows = []
    for r in records:
        dense = r["metrics"]["dense_layer"]
        for row in r["metrics"]["results"]:
            rows.append({"seed": r["config"]["seed"], "baseline_acc": 100 * r["metrics"]["baseline_acc"], **row,
                         "quiet": quiet_of(r),
                         "acc_decomposed": 100 * row["acc_decomposed"], "acc_finetuned": 100 * row["acc_finetuned"],
                         "layer_speedup": row["dense_layer_s"] / row["layer_s"],
                         "net_speedup": row["dense_net_s"] / row["net_s"],
                         "layer_share": row["dense_layer_s"] / row["dense_net_s"],
                         "flop_speedup": dense["flops"] / row["flops"],
                         "net_flop_speedup": dense["net_flops_per_sample"] / row["net_flops_per_sample"],
                         "compression": dense["params"] / row["params"]})
    return pd.DataFrame(rows)


def summary_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (method, rank) of ``mnist_compression``, sorted so: params, compression,
    FLOP speedups, mean relative error and accuracies over seeds, median measured speedups and
    ``quiet`` (:func:`factorlab.report.provenance.quiet_label` of the runs timing them)."""
    frame = decompositions_frame(records)
    frame["quiet"] = frame["quiet"].astype(object)
    return frame.groupby(["method", "rank"], as_index=False).agg(
        params=("params", "first"), compression=("compression", "first"), rel_error=("rel_error", "mean"),
        acc_decomposed=("acc_decomposed", "mean"), acc_finetuned=("acc_finetuned", "mean"),
        flop_speedup=("flop_speedup", "first"), layer_speedup=("layer_speedup", "median"),
        net_flop_speedup=("net_flop_speedup", "first"), net_speedup=("net_speedup", "median"),
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


def results_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of ``mnist_compression``: one row per (method, rank) by compression,
    formatted: parameters, compression, relative error of W, accuracies, speedups, and whether
    the times were taken on a quiet machine (``quiet``: yes / no / unknown / "k of n")."""
    tab = summary_frame(records).sort_values(["method", "compression"]).copy()
    return pd.DataFrame({
        "method": tab.method, "rank": tab["rank"].astype(str), "layer params": tab.params.map("{:,}".format),
        "compression": tab.compression.map("{:.1f}×".format), "rel. error of W": tab.rel_error.map("{:.3f}".format),
        "acc. decomposed (%)": tab.acc_decomposed.map("{:.2f}".format),
        "acc. fine-tuned (%)": tab.acc_finetuned.map("{:.2f}".format),
        "layer speedup: FLOPs": tab.flop_speedup.map("{:.1f}×".format),
        "layer speedup: measured": tab.layer_speedup.map("{:.2f}×".format),
        "network: FLOPs": tab.net_flop_speedup.map("{:.2f}×".format),
        "network: measured": tab.net_speedup.map("{:.2f}×".format),
        "quiet": tab.quiet,
    })


def glue_values(records: list[dict]) -> dict:
    """Every value the chapter glues, from ``mnist_compression`` (one profile), in glue order:
    ``profile``, ``n_runs``, ``devices``; the first run's ``epochs``, ``ft_epochs``, ``batch``
    (timing batch) and ``repeats``; ``base_acc`` (%); per (method, rank)
    ``<method>_<rank>_<column>`` for the accuracies, compression, speedups and relative error;
    ``eff_min`` / ``eff_max`` (measured over predicted layer speedup), ``net_speedup_max``, the
    fastest layer (``layer_speedup_max``, ``_what``, ``_flops``), ``n_variants``,
    ``n_layer_faster`` / ``n_net_faster`` (speedup above 1), ``layer_share_pct`` (median share
    of the dense layer in the dense net's time, %), ``net_bound`` (Amdahl: 1 / (1 - share)) and
    ``net_flop_speedup_max``; the replaced dense layer's ``layer_params`` and
    ``layer_flops_pct`` (% of the dense net's FLOPs); ``n_quiet`` / ``n_not_quiet`` /
    ``n_load_unknown`` (runs whose times were taken on a quiet machine, a busy one, or before
    the load was recorded)."""
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
    return values
