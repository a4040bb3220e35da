"""Chapter "Speed of the factorized layers" (``notebooks/layers_benchmark.ipynb``): forward +
backward times of every factorized layer against the dense layer and TensorLy-Torch, from the
one record of the benchmark ``layers_benchmark``
(:mod:`factorlab.experiments.layers_benchmark`).

Times are seconds in the frames and milliseconds in the table; a ratio "a/b" above 1 means a
takes longer than b; "predicted" is the ratio of forward FLOPs, ours / dense.

The roofline view (:func:`roofline_frame`, :func:`roofline_table`, :func:`roofline_figure`,
:func:`goals_table`, :func:`roofline_glue_values`; :func:`load_before_record`) reads a record measured with the config's
``roofline`` on and refuses older records with a ValueError."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.experiments import run_experiment
from factorlab.experiments.layers_benchmark import EVAL_TOLERANCE, GOALS, IMPLEMENTATIONS, NAME, summarize
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


# -- the roofline view (issue 19, item 3) -----------------------------------------------------
#
# A record measured with the config's ``roofline`` on holds, per row, every candidate path timed
# and the autotuned one's FLOPs, bytes and predictions (forward + backward counted as
# ``FWD_BWD_PASSES`` forward passes, per-call overheads left out), eval-mode times, the machine's
# peak and bandwidth, and ``metrics["goals"]`` (:func:`factorlab.experiments.layers_benchmark.
# roofline_goals`). Records from before the roofline view have none of it: the functions below
# refuse them with a ValueError naming the command that measures one.

#: Row fields every roofline row has (written by ``layers_benchmark.roofline_cells``).
ROOFLINE_FIELDS = ("tuned_path", "ours_tuned_s", "roofline_s", "flop_only_s", "bound", "roofline_ratio",
                   "dense_roofline_s", "dense_bound", "dense_eval_s", "ours_eval_s", "eval_path", "peak_flops",
                   "bandwidth")
#: Colour order of the bounds in the roofline figure.
BOUNDS = ["compute", "memory"]
#: Marker of each layer kind in the roofline figure.
KIND_MARKERS = {"linear": "o", "conv": "s"}


def check_roofline(record: dict) -> None:
    """Raise ValueError unless ``record`` is a ``layers_benchmark`` record measured with the
    roofline view (config ``roofline`` on, ``metrics["goals"]`` and :data:`ROOFLINE_FIELDS`
    in every row)."""
    key = record.get("key", "?")
    if record.get("config", {}).get("experiment", NAME) != NAME:
        raise ValueError(f"record {key} is a {record['config']['experiment']!r} record, not {NAME!r}")
    rows = record.get("metrics", {}).get("rows") or []
    ok = (bool(record["config"].get("roofline")) and isinstance(record["metrics"].get("goals"), dict) and rows
          and all(all(f in r for f in ROOFLINE_FIELDS) for r in rows))
    if not ok:
        raise ValueError(f"{NAME} record {key} has no roofline view (measured before it existed): re-measure with "
                         f"`python benchmarks/layers.py --record` (quiet CPU: `OMP_NUM_THREADS=1 .venv/bin/python "
                         f"benchmarks/layers.py --threads 1 --record`)")


def load_before_record(profile: str, store=None) -> dict | None:
    """The stored ``layers_benchmark`` record of ``profile`` measured without the roofline view
    (``make_config(profile, roofline=False)``: the committed record from before it, the
    "before" of :func:`roofline_glue_values`), or None if the store (default: the run store)
    has none. Never measures."""
    from factorlab.experiments.layers_benchmark import make_config
    from factorlab.results import RunStore

    return (store if store is not None else RunStore()).get(make_config(profile, roofline=False).to_dict())


def roofline_frame(record: dict) -> pd.DataFrame:
    """One row per (layer configuration, batch) of a roofline record: ``layer`` ("kind
    shape"), ``kind``, ``family``, ``shape``, ``compression``, ``rank``, ``batch``; ``path``
    (the cost model's choice) and ``tuned_path`` (autotuned); forward + backward seconds
    ``measured_s`` (the tuned path), ``roofline_s`` (max(FLOPs / peak, bytes / bandwidth)
    summed over its calls), ``flop_only_s`` (FLOPs / peak), ``model_s`` (the cost model's
    path); ``bound`` (compute / memory, the tuned path); ``flops`` and ``bytes`` of it
    (forward + backward); ``intensity`` (FLOP / byte); ``measured/roofline`` and
    ``measured/FLOP-only`` (ratios of seconds); the dense layer's ``dense_s`` (measured),
    ``dense_roofline_s``, ``dense_bound`` and ``dense/roofline``; eval mode (no autograd):
    ``dense_eval_s``, ``eval_s`` (autotuned, rebuilt weight cached), ``eval_path`` and
    ``eval ours/dense``; ``tltorch_factorized/tuned``, ``tltorch_reconstructed/tuned`` and
    ``tltorch_best/tuned`` (TensorLy-Torch's time over the tuned path's; NaN without a peer)."""
    check_roofline(record)
    df = measurements_frame(record)
    out = pd.DataFrame({
        "layer": df["kind"] + " " + df["shape"], "kind": df["kind"], "family": df.family, "shape": df["shape"],
        "compression": df.compression, "rank": df["rank"], "batch": df.batch, "path": df.path,
        "tuned_path": df.tuned_path, "measured_s": df.ours_tuned_s, "roofline_s": df.roofline_s,
        "flop_only_s": df.flop_only_s, "model_s": df.ours_s, "bound": df.bound, "flops": df.flops,
        "bytes": df["bytes"], "intensity": df.flops / df["bytes"],
        "measured/roofline": df.ours_tuned_s / df.roofline_s, "measured/FLOP-only": df.ours_tuned_s / df.flop_only_s,
        "dense_s": df.dense_s, "dense_roofline_s": df.dense_roofline_s, "dense_bound": df.dense_bound,
        "dense/roofline": df.dense_s / df.dense_roofline_s, "dense_eval_s": df.dense_eval_s,
        "eval_s": df.ours_eval_s, "eval_path": df.eval_path, "eval ours/dense": df.ours_eval_s / df.dense_eval_s,
    })
    for impl in IMPLEMENTATIONS:
        out[f"tltorch_{impl}/tuned"] = df[f"tltorch_{impl}_s"] / df.ours_tuned_s
    out["tltorch_best/tuned"] = out[[f"tltorch_{impl}/tuned" for impl in IMPLEMENTATIONS]].min(axis=1)
    return out


def roofline_table(record: dict) -> pd.DataFrame:
    """:func:`roofline_frame` for display: times in ms (3 decimals), ratios with 2, the paths
    and bounds; empty cells where a value does not apply."""
    t = roofline_frame(record)
    ms, x = _blank_nan("{:.3f}"), _blank_nan("{:.2f}")
    return pd.DataFrame({
        "layer": t.layer, "family": t.family,
        "c": t.compression.map(lambda v: "" if v is None or v != v else f"{v:g}×"), "rank": t["rank"],
        "batch": t.batch, "tuned path": t.tuned_path, "bound": t.bound,
        "measured ms": (1e3 * t.measured_s).map(ms), "roofline ms": (1e3 * t.roofline_s).map(ms),
        "FLOP-only ms": (1e3 * t.flop_only_s).map(ms), "measured / roofline": t["measured/roofline"].map(x),
        "dense ms": (1e3 * t.dense_s).map(ms), "dense roofline ms": (1e3 * t.dense_roofline_s).map(ms),
        "eval ours / dense": t["eval ours/dense"].map(x),
    })


def _goal_status(met) -> str:
    return "not measured" if met is None else "met" if met else "not met"


def _peer_implementations(record: dict) -> int:
    """How many TensorLy-Torch implementations the record timed (the peer goal's count)."""
    df = measurements_frame(record)
    return sum(int(df[f"tltorch_{impl}_s"].notna().any()) for impl in IMPLEMENTATIONS)


def goals_table(record: dict) -> pd.DataFrame:
    """The three goals of the roofline view as stored in ``metrics["goals"]``, in the order of
    :data:`factorlab.experiments.layers_benchmark.GOALS`: goal, status (met / not met / not
    measured), "met in" ("m of n rows"; the peer goal: implementations whose median TensorLy-Torch
    / ours reaches 2, of those timed, and the rows with a peer) and the stored detail."""
    check_roofline(record)
    goals = record["metrics"]["goals"]
    missing = [g for g in GOALS if g not in goals]
    if missing:
        raise ValueError(f"record {record.get('key', '?')} lacks the goal(s) {missing}; expected {list(GOALS)}")
    rows = []
    for k, name in enumerate(GOALS):
        g = goals[name]
        count = (f"{g['rows_met']} of {g['rows']} rows" if k < 2 else
                 f"{g['rows_met']} of {_peer_implementations(record)} implementations ({g['rows']} rows)")
        rows.append({"goal": name, "status": _goal_status(g["met"]), "met in": count, "detail": g["detail"]})
    return pd.DataFrame(rows)


def _medians(record: dict, ours: str) -> dict:
    """The issue's headline medians of a record (roofline view or not), ``ours`` the column of
    our time (``ours_s``: the automatic forward; ``ours_tuned_s``: autotuned): ``ours_dense``
    (ours / dense, every row), ``mp`` (ours / dense over the FLOP ratio, rows where dense takes
    at least :data:`FLOP_BOUND_S`) and the rows of it within 1.5 (``mp_within`` of ``mp_n``),
    ``peer`` (TensorLy-Torch's faster implementation / ours, rows with a peer), ``peer_fact``,
    ``peer_reco`` (each implementation / ours); NaN where nothing applies."""
    df = measurements_frame(record)
    od = df[ours] / df.dense_s
    mp = (od / df.flop_ratio)[df.dense_s >= FLOP_BOUND_S]
    peers = {impl: (df[f"tltorch_{impl}_s"] / df[ours]).dropna() for impl in IMPLEMENTATIONS}
    best = (df[[f"tltorch_{impl}_s" for impl in IMPLEMENTATIONS]].min(axis=1) / df[ours]).dropna()
    return {"ours_dense": float(od.median()), "mp": float(mp.median()), "mp_within": int((mp <= 1.5).sum()),
            "mp_n": int(len(mp)), "peer": float(best.median()) if len(best) else float("nan"),
            "peer_fact": float(peers["factorized"].median()) if len(peers["factorized"]) else float("nan"),
            "peer_reco": float(peers["reconstructed"].median()) if len(peers["reconstructed"]) else float("nan")}


def roofline_glue_values(record: dict, before: dict | None = None) -> dict:
    """Every value the roofline section glues, from a roofline record, in glue order:

    - the machine: ``peak_gflops`` (GFLOP/s of a large GEMM), ``bandwidth_gbs`` (GB/s of a
      large copy), ``ridge`` (their ratio, FLOP per byte: a path with fewer is memory-bound);
    - ``rows``; ``memory_bound`` / ``compute_bound`` (rows whose tuned path is), and
      ``dense_memory_bound``;
    - ``roofline_median`` / ``roofline_max`` (measured / roofline, every row),
      ``roofline_compute_median`` (compute-bound rows; NaN if none), ``flop_only_median``
      (measured / FLOP-only), ``dense_roofline_median`` (the dense layer's measured / roofline);
    - ``goal1`` .. ``goal3``: status text (met / not met / not measured) and ``goal<k>_count``
      (:func:`goals_table`'s "met in");
    - ``goals_met`` (a phrase: "none of the three goals is met", "one of the three goals is
      met", ...);
    - ``eval_median`` / ``eval_max`` (eval mode, ours autotuned / dense) and ``eval_within``
      (rows within the 5 % of the eval goal), and where the record has them the values of
      :func:`dispatch_values` (the rows over it, and the layer's dispatch) and of
      :func:`control_values` (the dense layer's own copy against it);
    - this record's headline medians (:func:`_medians`) under ``after_`` (the automatic
      forward, cost model: ``after_ours_dense``, ``after_mp``, ``after_mp_within``,
      ``after_mp_n``, ``after_peer``, ``after_peer_fact``, ``after_peer_reco``) and ``tuned_``
      (autotuned); the peer values are NaN where TensorLy-Torch was not installed;
    - with ``before`` (an older ``layers_benchmark`` record, e.g. the committed one from before
      the roofline view), the same medians of it under ``before_`` (its automatic forward), and
      each record's provenance beside them (:func:`record_flag`): ``before_flag`` /
      ``after_flag`` (a phrase), ``before_quiet`` / ``after_quiet`` (yes / no / unknown) and
      ``before_dirty`` / ``after_dirty`` (whether it was measured from uncommitted code); and
      ``before_after_change`` ("smaller", "larger" or "unchanged": the median ours / dense
      time after against before, to two decimals).
    """
    check_roofline(record)
    t = roofline_frame(record)
    first = record["metrics"]["rows"][0]
    v = {"peak_gflops": float(first["peak_flops"]) / 1e9, "bandwidth_gbs": float(first["bandwidth"]) / 1e9,
         "ridge": float(first["peak_flops"]) / float(first["bandwidth"]), "rows": int(len(t)),
         "memory_bound": int((t.bound == "memory").sum()), "compute_bound": int((t.bound == "compute").sum()),
         "dense_memory_bound": int((t.dense_bound == "memory").sum()),
         "roofline_median": float(t["measured/roofline"].median()), "roofline_max": float(t["measured/roofline"].max()),
         "roofline_compute_median": float(t.loc[t.bound == "compute", "measured/roofline"].median()),
         "flop_only_median": float(t["measured/FLOP-only"].median()),
         "dense_roofline_median": float(t["dense/roofline"].median())}
    goals = goals_table(record)
    for k, (status, count) in enumerate(zip(goals.status, goals["met in"]), start=1):
        v[f"goal{k}"] = status
        v[f"goal{k}_count"] = count
    met = sum(status == "met" for status in goals.status)
    v["goals_met"] = ("none of the three goals is met" if met == 0 else
                      "every goal is met" if met == len(goals) else
                      f"{_COUNT_WORDS[met]} of the three goals {'is' if met == 1 else 'are'} met")
    ev = t["eval ours/dense"]
    v.update({"eval_median": float(ev.median()), "eval_max": float(ev.max()),
              "eval_within": int((ev <= EVAL_TOLERANCE).sum())})
    v.update(dispatch_values(record))
    v.update(control_values(record))
    v.update({f"after_{k}": x for k, x in _medians(record, "ours_s").items()})
    v.update({f"tuned_{k}": x for k, x in _medians(record, "ours_tuned_s").items()})
    if before is not None:
        if before.get("config", {}).get("experiment") != NAME:
            raise ValueError(f"before must be a {NAME!r} record, got {before.get('config', {}).get('experiment')!r}")
        v.update({f"before_{k}": x for k, x in _medians(before, "ours_s").items()})
        for name, r in (("before", before), ("after", record)):
            v[f"{name}_flag"] = record_flag(r)
            v[f"{name}_quiet"] = quiet_label(quiet_of(r))
            v[f"{name}_dirty"] = bool((r.get("provenance") or {}).get("git_dirty"))
        a, b = round(v["after_ours_dense"], 2), round(v["before_ours_dense"], 2)
        v["before_after_change"] = "smaller" if a < b else "larger" if a > b else "unchanged"
    return v


#: How :func:`record_flag` names a record's machine, by its quiet label.
_MACHINE = {"yes": "a quiet machine", "no": "a busy machine", "unknown": "a machine whose load was not recorded"}


def record_flag(record: dict) -> str:
    """Where one ``layers_benchmark`` record was measured, as a phrase for prose: "one run (record
    0123abcd) on a quiet machine, from commit abcdef0123" (a busy machine / a machine whose load
    was not recorded, :func:`~factorlab.report.provenance.quiet_of`; "with uncommitted changes"
    where the tree was dirty, so the code is not pinned)."""
    prov = record.get("provenance") or {}
    q = quiet_label(quiet_of(record))
    commit = (prov.get("git_commit") or "unknown")[:10]
    dirty = " with uncommitted changes" if prov.get("git_dirty") else ""
    return f"one run (record {str(record.get('key', '?'))[:8]}) on {_MACHINE.get(q, q)}, from commit {commit}{dirty}"


_COUNT_WORDS = {1: "one", 2: "two"}


def control_values(record: dict) -> dict:
    """The eval goal's control, from a record whose rows time a copy of the dense layer in the
    same rounds (``dense_copy_eval_s``): ``control_within`` (rows where the copy is within the
    goal's 5 % of the dense layer), ``control_rows`` (rows), ``control_median`` /
    ``control_max`` (copy / dense), ``control_over_batch1`` (rows over it at batch 1) and
    ``control_sentence`` (these in words: whether the timing resolves the 5 %). Empty for
    records without it."""
    rows = [r for r in record["metrics"]["rows"] if r.get("dense_copy_eval_s") is not None]
    if not rows:
        return {}
    df = pd.DataFrame(rows)
    ratio = df.dense_copy_eval_s / df.dense_eval_s
    v = {"control_within": int((ratio <= EVAL_TOLERANCE).sum()), "control_rows": int(len(df)),
         "control_median": float(ratio.median()), "control_max": float(ratio.max()),
         "control_over_batch1": int(((ratio > EVAL_TOLERANCE) & (df.batch == 1)).sum())}
    head = "A copy of the dense layer, timed in the same rounds as a control, is"
    if v["control_within"] == v["control_rows"]:
        v["control_sentence"] = (f"{head} within 5 % of the dense layer in every row (copy / dense at most "
                                 f"{v['control_max']:.2f}): the timing resolves the goal's tolerance.")
    else:
        misses = v["control_rows"] - v["control_within"]
        ours = int((df.ours_eval_s / df.dense_eval_s > EVAL_TOLERANCE).sum())
        v["control_sentence"] = (
            f"{head} itself more than 5 % slower than the dense layer in {misses} of the {v['control_rows']} rows "
            f"(copy / dense up to {v['control_max']:.2f}; {v['control_over_batch1']} of them at batch 1). Two "
            "copies of one layer differ only in where their weights lie in memory, so timing noise alone puts "
            f"that many rows over the tolerance, against {ours} for the factorized layers.")
    return v


def dispatch_values(record: dict) -> dict:
    """What separates the eval-mode rows over the 5 % of the eval goal from the dense layer,
    from a record whose rows time the chosen path's kernels alone (``ours_eval_kernel_s``,
    interleaved eval timing): ``eval_over`` (rows over it), ``eval_over_batch1`` (of them at
    batch 1), ``eval_over_us`` (their median excess over the dense layer, µs),
    ``eval_over_dense_us`` (the largest dense eval time among them, µs), ``dispatch_us``
    (median over the rows of the smallest batch of the layer's forward minus its kernels, µs:
    the Python dispatch; at larger batches it drowns in the kernels' run-to-run spread),
    ``dense_dispatch_us`` (the same for the dense module: its ``Module.__call__``) and
    ``kernel_within`` (rows whose kernels alone are within the 5 % of the dense layer's
    kernels alone; of its forward in records without them) and ``eval_cause`` (a phrase: whether
    every miss is the Python around the kernels). Empty for records without kernel timings."""
    rows = [r for r in record["metrics"]["rows"] if r.get("ours_eval_kernel_s") is not None]
    if not rows:
        return {}
    df = pd.DataFrame(rows)
    ratio = df.ours_eval_s / df.dense_eval_s
    over = df[ratio > EVAL_TOLERANCE]
    b1 = df[df.batch == df.batch.min()]  # the smallest batch: kernels of tens of µs, dispatch measurable
    us = 1e6
    out = {"eval_over": int(len(over)), "eval_over_batch1": int((over.batch == 1).sum()),
            "eval_over_us": float(((over.ours_eval_s - over.dense_eval_s) * us).median()) if len(over) else 0.0,
            "eval_over_dense_us": float(over.dense_eval_s.max() * us) if len(over) else 0.0,
            "dispatch_us": float(((b1.ours_eval_s - b1.ours_eval_kernel_s) * us).median()),
            "dense_dispatch_us": float(((b1.dense_eval_s - b1.dense_eval_kernel_s) * us).median())
            if "dense_eval_kernel_s" in b1 else math.nan,
            "kernel_within": int((df.ours_eval_kernel_s / df.get("dense_eval_kernel_s", df.dense_eval_s)
                                  <= EVAL_TOLERANCE).sum())}
    slow = len(df) - out["kernel_within"]
    out["eval_cause"] = ("every miss is the Python around the kernels, not their arithmetic" if slow == 0 else
                         f"{slow} of the {len(df)} rows miss it in their kernels too, not only in the Python "
                         "around them")
    return out


def roofline_figure(record: dict):
    """Figure of the roofline view: measured forward + backward time (ms) of each row's tuned
    path against its roofline prediction (left) and against the FLOP-only prediction (right),
    log-log with the same limits; colour = the tuned path's bound (compute / memory), marker =
    layer kind; the dense layers in grey; y = x solid, the band up to 1.5x shaded."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    t = roofline_frame(record)
    ms = 1e3
    fig, axes = plt.subplots(1, 2, figsize=(plots.FULL_WIDTH, 3.8), sharex=True, sharey=True)
    palette = dict(zip(BOUNDS, sns.color_palette("colorblind", len(BOUNDS))))
    values = [t.measured_s, t.roofline_s, t.flop_only_s, t.dense_s, t.dense_roofline_s]
    lo = min(float(s.min()) for s in values) * ms / 1.5
    hi = max(float(s.max()) for s in values) * ms * 1.5
    for ax, col, name in zip(axes, ["roofline_s", "flop_only_s"], ["roofline", "FLOPs alone"]):
        ax.fill_between([lo, hi], [lo, hi], [1.5 * lo, 1.5 * hi], color="0.85", lw=0, label="within 1.5x")
        ax.plot([lo, hi], [lo, hi], "-", color="0.4", lw=1, label="measured = predicted")
        if col == "roofline_s":
            ax.scatter(ms * t.dense_roofline_s, ms * t.dense_s, marker="x", color="0.55", s=20, lw=1,
                       label="dense layer")
        d = t.assign(x=ms * t[col], y=ms * t.measured_s)
        sns.scatterplot(data=d, x="x", y="y", hue="bound", hue_order=BOUNDS, palette=palette, style="kind",
                        style_order=list(KIND_MARKERS), markers=KIND_MARKERS, s=40, ax=ax, legend=(col == "roofline_s"))
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        plots.log_axis_auto(ax, "x")
        plots.log_axis_auto(ax, "y")
        ax.set_xlabel(f"predicted by {name} (ms)")
        ax.set_ylabel("measured forward + backward (ms)")
        ax.set_title(f"against the {name}" if col == "roofline_s" else f"against {name}")
    fig.tight_layout()
    plots.legend_below(fig, axes[0], ncol=4)
    return fig
