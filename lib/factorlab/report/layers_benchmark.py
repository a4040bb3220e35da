"""Chapter "Speed of the factorized layers" (``notebooks/layers_benchmark.ipynb``): forward +
backward times of every factorized layer against the dense layer and TensorLy-Torch, from the
one record of the benchmark ``layers_benchmark``
(:mod:`factorlab.experiments.layers_benchmark`).

Times are seconds in the frames and milliseconds in the table; a ratio "a/b" above 1 means a
takes longer than b; "predicted" is the ratio of forward FLOPs, ours / dense."""
from __future__ import annotations

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.experiments import run_experiment
from factorlab.experiments.layers_benchmark import NAME, summarize
from factorlab.report.provenance import quiet_label, quiet_of
from factorlab.results import provenance_table

#: Families in the figure's colour order.
FAMILIES = ["lowrank", "cp", "tucker", "tt", "separable"]
#: Marker of each batch size in the figure.
MARKERS = {1: "o", 32: "s", 256: "^"}
#: Dense time (s) from which a row counts as FLOP-bound (the median of measured/predicted).
FLOP_BOUND_S = 1e-3


def load_record(profile: str, device: str = "auto") -> dict:
    """The record of ``layers_benchmark`` under ``profile`` (measured now only if missing, on
    the profile's device: ``run_experiment(NAME, profile)``)."""
    return run_experiment(NAME, profile, device)[0]


def measurements_frame(record: dict) -> pd.DataFrame:
    """One row per (layer configuration, batch) of a ``layers_benchmark`` record, with the
    ratio columns of :func:`factorlab.experiments.layers_benchmark.summarize` (``ours/dense``,
    ``measured/predicted``, ``tltorch_<impl>/ours``, ``tltorch_best/ours``)."""
    return summarize(record["metrics"]["rows"])[0]


def targets(record: dict) -> dict[str, tuple[int, int]]:
    """The three targets of ``layers_benchmark`` as ``{target: (rows meeting it, rows it
    applies to)}``, recomputed from the record's rows by
    :func:`factorlab.experiments.layers_benchmark.summarize` (in the order it defines them)."""
    return summarize(record["metrics"]["rows"])[1]


def targets_table(record: dict) -> pd.DataFrame:
    """:func:`targets` as a table: target, "m of n"."""
    return pd.DataFrame([{"target": k, "rows meeting it": f"{m} of {n}"} for k, (m, n) in targets(record).items()])


def figure(record: dict):
    """Figure of ``layers_benchmark``: measured time ratio ours / dense against the FLOP
    prediction, linear and convolution layers side by side (log-log, the diagonal dotted and
    the dense time as a line at 1)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = measurements_frame(record)
    fig, axes = plt.subplots(1, 2, figsize=(plots.FULL_WIDTH, 4.0), sharey=True)
    palette = dict(zip(FAMILIES, sns.color_palette("colorblind", len(FAMILIES))))
    for ax, kind in zip(axes, ["linear", "conv"]):
        d = df[df.kind == kind]
        sns.scatterplot(data=d, x="flop_ratio", y="ours/dense", hue="family", hue_order=FAMILIES, palette=palette,
                        style="batch", markers=MARKERS, s=45, ax=ax, legend=(kind == "conv"))
        lo = min(df.flop_ratio.min(), df["ours/dense"].min()) / 1.5
        hi = max(df.flop_ratio.max(), df["ours/dense"].max()) * 1.5
        ax.plot([lo, hi], [lo, hi], ":", color="0.5", lw=1)
        ax.axhline(1, color="k", lw=0.8)
        plots.log_axis(ax, "x", counts=False, subs=(1.0,))
        plots.log_axis(ax, "y", counts=False, subs=(1.0,))
        ax.set_xlabel("predicted: FLOPs ours / dense")
        ax.set_ylabel("measured: time ours / dense")
        ax.set_title(f"{kind} layers")
    fig.tight_layout()
    plots.legend_below(fig, axes[1], ncol=4)
    return fig


def _blank_nan(fmt: str):
    """A formatter printing ``fmt`` and an empty string for NaN."""
    return lambda v: "" if v != v else fmt.format(v)


def measurements_table(record: dict) -> pd.DataFrame:
    """The chapter's table of ``layers_benchmark``, one row per measurement: layer, family, c,
    rank, batch, dense and our times (ms), ratios, TensorLy-Torch over ours, the path the FLOP
    rule picks and both convolution paths timed (ms); empty cells where a value does not apply."""
    t = measurements_frame(record)
    t["c"] = t.compression.map(lambda v: "" if v != v or v is None else f"{v:g}×")
    return pd.DataFrame({
        "layer": t["kind"] + " " + t["shape"], "family": t["family"], "c": t["c"], "rank": t["rank"], "batch": t.batch,
        "dense ms": (1e3 * t.dense_s).map("{:.3f}".format), "ours ms": (1e3 * t.ours_s).map("{:.3f}".format),
        "ours / dense": t["ours/dense"].map("{:.2f}".format), "predicted": t.flop_ratio.map("{:.2f}".format),
        "tltorch f / ours": t["tltorch_factorized/ours"].map(_blank_nan("{:.2f}")),
        "tltorch r / ours": t["tltorch_reconstructed/ours"].map(_blank_nan("{:.2f}")),
        "path": t.get("path", pd.Series([""] * len(t))).fillna(""),
        "factored ms": (1e3 * t.get("ours_factored_s", pd.Series([np.nan] * len(t)))).map(_blank_nan("{:.3f}")),
        "rebuilt ms": (1e3 * t.get("ours_dense_s", pd.Series([np.nan] * len(t)))).map(_blank_nan("{:.3f}")),
    })


def provenance_frame(record: dict) -> pd.DataFrame:
    """The record's provenance row (:func:`factorlab.results.provenance_table`), rounded to 1
    decimal, with ``quiet``: whether the machine was quiet while it measured (yes / no /
    unknown for a record from before the load was recorded)."""
    return provenance_table([record]).round(1).assign(quiet=quiet_label(quiet_of(record)))


def glue_values(record: dict) -> dict:
    """Every value the chapter glues, from the ``layers_benchmark`` record, in glue order:
    ``profile``, ``devices``, ``threads``, ``tltorch`` (version); ``path_agree`` /
    ``path_total`` (convolution rows whose FLOP-rule path is the faster measured one);
    ``peer_median`` / ``_min`` / ``_max`` (TensorLy-Torch's faster implementation over ours);
    ``faster_<kind>`` / ``rows_<kind>`` (rows with ours/dense below 1); ``t<k>_met`` /
    ``t<k>_n`` for the three :func:`targets`; ``mp_median`` (measured/predicted where dense
    takes at least :data:`FLOP_BOUND_S`); ``reco_median`` / ``fact_median``; the low-rank
    linear layer's best and worst ours/dense at batch > 1 (``lr_lin_*``); the 64-channel
    convolutions at 16x (or the plain separable) at batch < 256 (``bigconv_*``); the TT
    convolution's factored over rebuilt time (``tt_fact_over_reb_*``), CP's at 4x and batch
    256 (``cp256_fact_over_reb``); the CP linear layer's ranks at 4x (``cp_lin_rank``) and its
    smallest FLOP ratio (``cp_lin_pred_min``); ``quiet`` (yes / no / unknown: whether the
    machine was quiet while the record was measured)."""
    df = measurements_frame(record)
    values = {"profile": record["config"]["profile"], "devices": record["provenance"]["device"],
              "threads": int(record["timing"]["threads"]), "tltorch": str(record["metrics"]["tltorch"])}
    conv = df[df.kind == "conv"]
    if "ours_factored_s" in conv:
        faster = np.where(conv.ours_factored_s <= conv.ours_dense_s, "factored", "dense")
        values["path_agree"] = int((conv.path == faster).sum())
        values["path_total"] = int(len(conv))
    peer = df[["tltorch_factorized_s", "tltorch_reconstructed_s"]].min(axis=1) / df.ours_s
    values["peer_median"] = float(peer.median())
    values["peer_min"] = float(peer.min())
    values["peer_max"] = float(peer.max())
    for kind in ["linear", "conv"]:
        d = df[df.kind == kind]
        values[f"faster_{kind}"] = int((d["ours/dense"] < 1).sum())
        values[f"rows_{kind}"] = int(len(d))
    for k, (name, (met, n)) in enumerate(targets(record).items(), start=1):
        values[f"t{k}_met"] = met
        values[f"t{k}_n"] = n
    values["mp_median"] = float(df.loc[df.dense_s >= FLOP_BOUND_S, "measured/predicted"].median())
    values["reco_median"] = float(df["tltorch_reconstructed/ours"].median())
    values["fact_median"] = float(df["tltorch_factorized/ours"].median())
    lr = df[(df.kind == "linear") & (df.family == "lowrank") & (df.batch > 1)]
    values["lr_lin_best"] = float(lr["ours/dense"].min())
    values["lr_lin_worst"] = float(lr["ours/dense"].max())
    big = df[(df.kind == "conv") & df["shape"].str.startswith("64")
             & df.family.isin(["lowrank", "cp", "tucker", "separable"])
             & ((df.compression == 16) | df.compression.isna()) & (df.batch < 256)]
    values["bigconv_best"] = float(big["ours/dense"].min())
    values["bigconv_worst"] = float(big["ours/dense"].max())
    tt = conv[conv.family == "tt"]
    values["tt_fact_over_reb_min"] = float((tt.ours_factored_s / tt.ours_dense_s).min())
    values["tt_fact_over_reb_max"] = float((tt.ours_factored_s / tt.ours_dense_s).max())
    cp256 = conv[(conv.family == "cp") & (conv.compression == 4) & (conv.batch == 256)]
    values["cp256_fact_over_reb"] = float((cp256.ours_factored_s / cp256.ours_dense_s).max())
    cpl = df[(df.kind == "linear") & (df.family == "cp") & (df.compression == 4)]
    values["cp_lin_rank"] = ", ".join(sorted(set(cpl["rank"])))
    values["cp_lin_pred_min"] = float(cpl.flop_ratio.min())
    values["quiet"] = quiet_label(quiet_of(record))
    return values
