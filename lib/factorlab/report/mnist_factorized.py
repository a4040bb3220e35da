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
from factorlab.report.formatting import pm
from factorlab.report.provenance import devices_of, profile_of, quiet_counts, quiet_label, quiet_of
from factorlab.report.verdicts import NOT_MEASURED, paired_outcome  # NOT_MEASURED: the slowdown without loss curves

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
    the mean over seeds of accuracy (``acc``, with its std ``acc_sd``) and training seconds,
    and the point's parameters, FLOPs, factorized-layer parameters,
    ranks, number of seeds and ``quiet`` (:func:`factorlab.report.provenance.quiet_label` of
    its runs)."""
    runs = runs_frame(records)
    return (runs.groupby(["net", "family", "compression", "width"], dropna=False, as_index=False)
            .agg(acc=("acc", "mean"), acc_sd=("acc", "std"), params=("params", "first"), flops=("flops", "first"),
                 layer_params=("layer_params", "first"), layer_dense_params=("layer_dense_params", "first"),
                 ranks=("ranks", "first"), seeds=("seed", "count"), train_s=("train_s", "mean"),
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
    axes[1].legend(loc="lower right")  # the dense curve climbs through the upper left
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


def point_key(family: str, compression, width) -> str:
    """The key of a point in glue names and :func:`paired_acc`: ``"w<width>"`` for a dense
    network, ``"<family>_<c>"`` (e.g. ``"tt_64"``) for a factorized one."""
    return f"w{int(width)}" if family == "dense" else f"{family}_{compression:g}"


def _acc_by_seed(runs: pd.DataFrame, net: str, key: str) -> pd.Series:
    """Test accuracy (%) of point ``key`` of ``net`` indexed by seed; KeyError naming the key."""
    r = runs[runs.net == net]
    keys = [point_key(f, c, w) for f, c, w in zip(r.family, r.compression, r.width)]
    got = r[[k == key for k in keys]]
    if got.empty:
        raise KeyError(f"no point {key!r} of {net!r}; points: {sorted(set(keys))}")
    return got.set_index("seed")["acc"]


def paired_acc(records: list[dict], net: str, a: str, b: str) -> tuple[float, float, int]:
    """Test accuracy of point ``a`` minus point ``b`` of ``net`` (keys of :func:`point_key`),
    paired by seed: ``(mean, standard error, n)`` in points
    (:func:`factorlab.analysis.paired_difference`; the SE is NaN for one seed)."""
    runs = runs_frame(records)
    return paired_difference(_acc_by_seed(runs, net, a), _acc_by_seed(runs, net, b))


def _outcome(d: float, se: float) -> str:
    """A paired accuracy difference's outcome: "better", "worse", "not clear" or "one seed"."""
    return paired_outcome(d, se, "worse", "better", "not clear", "one seed")


def size_matched_frame(records: list[dict]) -> pd.DataFrame:
    """Every factorized point of ``mnist_factorized`` against the dense networks on either side of
    its size: ``larger`` is the narrowest dense network with at least its parameters (whole
    network), ``smaller`` the widest with fewer. Columns: ``net``, ``family``, ``compression``,
    ``params``, ``acc`` (mean, %), and per side ``<side>_width``, ``<side>_params``,
    ``<side>_diff`` / ``<side>_se`` / ``<side>_n`` (the factorized network minus the dense one,
    paired by seed, points) and ``<side>_outcome`` (:func:`_outcome`); NaN / "" where no dense
    network lies on that side."""
    runs, mean = runs_frame(records), means_frame(records)
    rows = []
    for net in NET_TITLE:
        m = mean[mean.net == net]
        dense = m[m.family == "dense"].sort_values("params")
        for _, p in m[m.family != "dense"].iterrows():
            row = {"net": net, "family": p.family, "compression": p.compression, "params": int(p.params), "acc": p.acc}
            key = point_key(p.family, p.compression, p.width)
            sides = {"larger": dense[dense.params >= p.params].head(1), "smaller": dense[dense.params < p.params].tail(1)}
            for side, d in sides.items():
                if d.empty:
                    row.update({f"{side}_width": np.nan, f"{side}_params": np.nan, f"{side}_diff": np.nan,
                                f"{side}_se": np.nan, f"{side}_n": 0, f"{side}_outcome": ""})
                    continue
                w = d.iloc[0]
                diff, se, n = paired_difference(_acc_by_seed(runs, net, key), _acc_by_seed(runs, net, f"w{int(w.width)}"))
                row.update({f"{side}_width": int(w.width), f"{side}_params": int(w.params), f"{side}_diff": diff,
                            f"{side}_se": se, f"{side}_n": n, f"{side}_outcome": _outcome(diff, se)})
            rows.append(row)
    out = pd.DataFrame(rows)
    out["order"] = [FAMILY_ORDER.index(f) for f in out.family]
    return out.sort_values(["net", "order", "compression"], key=lambda c: c.map(list(NET_TITLE).index)
                           if c.name == "net" else c).drop(columns="order").reset_index(drop=True)


def _diff_cell(diff: float, se: float, outcome: str) -> str:
    """``"+2.47 ± 0.12, better"``: a paired difference in points with its outcome (the SE left
    out for one seed, the outcome for "one seed" and "")."""
    word = "" if outcome in ("one seed", "") else f", {outcome}"
    return f"{pm(diff, se, '+.2f')}{word}"


def size_matched_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of :func:`size_matched_frame`: per factorized point (``network``,
    ``point``), its parameters and accuracy, then for the dense network just larger and just
    smaller than it its width and parameters (``larger dense: width (params)`` / ``smaller
    dense: ...``; "none")
    and the factorized network's accuracy minus its (``vs larger (points)`` / ``vs smaller
    (points)``: mean ± SE over the paired seeds, with the outcome)."""
    f = size_matched_frame(records)
    rows = []
    for r in f.itertuples():
        row = {"network": NET_TITLE[r.net], "point": f"{r.family} {r.compression:g}×", "params": f"{r.params:,}",
               "acc. (%)": f"{r.acc:.2f}"}
        for side in ("larger", "smaller"):
            w = getattr(r, f"{side}_width")
            row[f"{side} dense: width (params)"] = ("none" if w != w else
                                                    f"{int(w)} ({int(getattr(r, f'{side}_params')):,})")
            row[f"vs {side} (points)"] = ("" if w != w else _diff_cell(
                getattr(r, f"{side}_diff"), getattr(r, f"{side}_se"), getattr(r, f"{side}_outcome")))
        rows.append(row)
    return pd.DataFrame(rows)


def size_matched_values(records: list[dict]) -> dict:
    """Glued counts of :func:`size_matched_frame`, per net (out of :func:`glue_values`'
    ``n_fac_<net>`` factorized points): ``n_beat_larger_<net>`` (clearly more accurate than the dense network just larger than
    them), ``n_lose_larger_<net>`` (clearly less accurate than it), ``n_lose_smaller_<net>``
    (clearly less accurate even than the dense network just smaller), the same four per tested
    compression (``n_fac_<net>_<c>``, ``n_beat_larger_<net>_<c>``, ...) and, per point,
    ``vs_larger_<net>_<key>`` / ``vs_smaller_<net>_<key>`` (the difference as text, "+2.47 ±
    0.12 points", or "none"; the seeds are the chapter's ``n_seeds``) with ``vs_larger_width_<net>_<key>`` /
    ``vs_smaller_width_<net>_<key>`` (that dense network's width, 0 where none)."""
    f, values = size_matched_frame(records), {}
    for net, g in f.groupby("net", sort=False):
        values[f"n_beat_larger_{net}"] = int((g.larger_outcome == "better").sum())
        values[f"n_lose_larger_{net}"] = int((g.larger_outcome == "worse").sum())
        values[f"n_lose_smaller_{net}"] = int((g.smaller_outcome == "worse").sum())
        for c, at in g.groupby("compression"):
            values[f"n_fac_{net}_{c:g}"] = int(len(at))
            values[f"n_beat_larger_{net}_{c:g}"] = int((at.larger_outcome == "better").sum())
            values[f"n_lose_larger_{net}_{c:g}"] = int((at.larger_outcome == "worse").sum())
            values[f"n_lose_smaller_{net}_{c:g}"] = int((at.smaller_outcome == "worse").sum())
        for r in g.itertuples():
            key = point_key(r.family, r.compression, None)
            for side in ("larger", "smaller"):
                w = getattr(r, f"{side}_width")
                values[f"vs_{side}_width_{net}_{key}"] = 0 if w != w else int(w)
                values[f"vs_{side}_{net}_{key}"] = ("none" if w != w else
                                                    pm(getattr(r, f"{side}_diff"), getattr(r, f"{side}_se"), "+.2f")
                                                    + " points")
    return values


def within_outcome(diff: float, se: float) -> str:
    """A paired difference to the full dense network (points) against the tolerance: "clearly
    within" (above ``-TOLERANCE`` by more than :data:`~factorlab.report.verdicts.CLEAR_SE`
    standard errors), "clearly outside", "not clear", or "one seed"."""
    return paired_outcome(diff + TOLERANCE, se, "clearly outside", "clearly within", "not clear", "one seed")


#: Marks a compression within the tolerance by its mean accuracy only: its paired difference to
#: the full dense network is not clearly within (:func:`within_outcome`).
MEAN_ONLY = "mean only"
#: How prose names each family.
FAMILY_PROSE = {"lowrank": "low-rank", "cp": "CP", "tucker": "Tucker", "tt": "TT", "separable": "separable"}


def _mean_only(cell: str, outcome: str) -> str:
    """``cell`` as it is where ``outcome`` is "clearly within", else with :data:`MEAN_ONLY`
    ("3× (mean only)"; "2.4× (whole net; mean only)")."""
    if outcome == "clearly within":
        return cell
    return f"{cell[:-1]}; {MEAN_ONLY})" if cell.endswith(")") else f"{cell} ({MEAN_ONLY})"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def within_lists(within: list[tuple[str, str, str, str]]) -> tuple[str, str]:
    """From ``(family, ratio, paired difference text, outcome)`` of the families whose mean
    accuracy is within the tolerance at ``ratio``: ``(clear, mean_only)``, two phrases for
    prose. ``clear``: the ratios clearly within, each with its families ("3× for low-rank, CP
    and Tucker", ratios apart by "; "); ``mean_only``: the others, each with its difference and outcome ("3× for
    separable (-0.19 ± 0.16 points, not clear)"); "none" where a list is empty."""
    clear: dict[str, list[str]] = {}
    for family, c, _, outcome in within:
        if outcome == "clearly within":
            clear.setdefault(c, []).append(FAMILY_PROSE.get(family, family))
    mean_only = [f"{c} for {FAMILY_PROSE.get(family, family)} ({d}, {outcome})"
                 for family, c, d, outcome in within if outcome != "clearly within"]
    return ("; ".join(f"{c} for {_and(f)}" for c, f in clear.items()) if clear else "none",
            _and(mean_only) if mean_only else "none")


def tolerance_table(records: list[dict]) -> tuple[pd.DataFrame, dict]:
    """Compression within :data:`TOLERANCE` of the full dense network, from ``mnist_factorized``:
    ``(table, values)``. Per net, each family's largest tested compression whose mean accuracy
    stays within the tolerance ("none" if none does; then the row shows its smallest tested
    compression), then the narrowest dense network that does, with its whole-network parameter
    ratio; each row with its difference to the full dense network paired by seed and
    :func:`within_outcome`. The column "largest c within 0.5 pt" is by the mean; a ratio whose
    paired difference is not *clearly* within the tolerance reads :data:`MEAN_ONLY` after it.
    ``values`` (glued): ``c05_<net>_<family>`` (e.g. ``"16×"`` or
    ``"none"``, by the mean), ``d05_<net>_<family>`` (the paired difference there as text,
    "-0.28 ± 0.05 points"; at the smallest compression for "none"), ``o05_<net>_<family>`` (its
    outcome), ``within05_clear_<net>`` / ``within05_mean_<net>`` (:func:`within_lists`: the
    families clearly within at their ratio, and those within by the mean only, with their
    paired difference and outcome; "none" where empty), ``narrow_<net>`` (its width),
    ``narrow_ratio_<net>``, ``d05_<net>_dense`` / ``o05_<net>_dense`` (the narrow network's)
    and ``tolerance`` (:data:`TOLERANCE`, points)."""
    runs, mean, reference = runs_frame(records), means_frame(records), reference_accuracy(records)
    rows, values = [], {}
    for net in NET_TITLE:
        fac = runs[(runs.net == net) & (runs.family != "dense")]
        if fac.empty and not (runs.net == net).any():
            continue
        full = f"w{NETS[net]['full_width']}"
        best = largest_compression_within(fac, reference[net], TOLERANCE)
        best = best.iloc[np.argsort([FAMILY_ORDER.index(f) for f in best.family], kind="stable")]
        within = []
        for _, b in best.iterrows():
            none = np.isnan(b.compression)
            at = fac[fac.family == b.family].compression.min() if none else b.compression
            got = mean[(mean.net == net) & (mean.family == b.family) & (mean.compression == at)].iloc[0]
            d, se, n = paired_acc(records, net, point_key(b.family, at, None), full)
            c = "none" if none else f"{b.compression:g}×"
            if not none:
                within.append((b.family, c, pm(d, se, "+.2f") + " points", within_outcome(d, se)))
            rows.append({"network": NET_TITLE[net], "family": b.family,
                         "largest c within 0.5 pt": _mean_only(c, within_outcome(d, se)) if not none else c,
                         "shown at": f"{at:g}×", "network params there": f"{int(got.params):,}",
                         "acc. there (%)": f"{got.acc:.2f}", "vs full dense (points)": _diff_cell(d, se, ""),
                         "against the tolerance": within_outcome(d, se)})
            values[f"c05_{net}_{b.family}"] = c
            values[f"d05_{net}_{b.family}"] = pm(d, se, "+.2f") + " points"
            values[f"o05_{net}_{b.family}"] = within_outcome(d, se)
        values[f"within05_clear_{net}"], values[f"within05_mean_{net}"] = within_lists(within)
        dense = mean[(mean.net == net) & (mean.family == "dense")]
        ok = dense[dense.acc >= reference[net] - TOLERANCE].sort_values("params")
        full_params = float(dense[dense.width == NETS[net]["full_width"]].params.iloc[0])
        narrow = ok.iloc[0]
        d, se, n = paired_acc(records, net, f"w{int(narrow.width)}", full)
        rows.append({"network": NET_TITLE[net], "family": f"dense, width {int(narrow.width)}",
                     "largest c within 0.5 pt": _mean_only(f"{full_params / narrow.params:.1f}× (whole net)",
                                                           within_outcome(d, se)),
                     "shown at": f"width {int(narrow.width)}",
                     "network params there": f"{int(narrow.params):,}", "acc. there (%)": f"{narrow.acc:.2f}",
                     "vs full dense (points)": _diff_cell(d, se, ""), "against the tolerance": within_outcome(d, se)})
        values[f"narrow_{net}"] = int(narrow.width)
        values[f"narrow_ratio_{net}"] = float(full_params / narrow.params)
        values[f"d05_{net}_dense"] = pm(d, se, "+.2f") + " points"
        values[f"o05_{net}_dense"] = within_outcome(d, se)
    values["tolerance"] = TOLERANCE
    return pd.DataFrame(rows), values


def epoch_time_table(records: list[dict]) -> pd.DataFrame:
    """What an epoch costs in ``mnist_factorized``, per net and factorized point (by family,
    compression) and the full dense network last: seconds of training per epoch (mean over
    seeds), that time relative to the full dense network's, and ``quiet`` (whether the point's
    times were taken on a quiet machine: yes / no / unknown, for records before the load was
    recorded; :func:`factorlab.report.provenance.quiet_label`)."""
    runs, mean = runs_frame(records), means_frame(records)
    rows = []
    for net in NET_TITLE:
        m = mean[mean.net == net]
        if m.empty:
            continue
        ref = _full_dense(mean, net)
        epochs = runs[(runs.net == net)].epochs.iloc[0]
        m = m[m.family != "dense"].assign(order=lambda f: [FAMILY_ORDER.index(x) for x in f.family])
        for _, r in m.sort_values(["order", "compression"]).iterrows():
            rows.append({"network": NET_TITLE[net], "point": f"{r.family} {r.compression:g}×",
                         "s / epoch": f"{r.train_s / epochs:.1f}",
                         "epoch time vs dense": f"{r.train_s / ref.train_s:.2f}×", "quiet": r.quiet})
        rows.append({"network": NET_TITLE[net], "point": "dense (full width)", "s / epoch": f"{ref.train_s / epochs:.1f}",
                     "epoch time vs dense": "1.00×", "quiet": ref.quiet})
    return pd.DataFrame(rows)


def glue_values(records: list[dict]) -> dict:
    """The chapter's glued values from ``mnist_factorized`` (besides :func:`tolerance_table`'s,
    :func:`size_matched_values`' and :func:`journal_verdict`'s), in glue order: ``profile``,
    ``n_runs``, ``n_seeds``, ``devices``; per net: ``epochs_<net>``, ``ref_<net>`` (full dense
    accuracy, %), ``n_fac_<net>`` (factorized points), ``epoch_ratio_max_<net>`` (the largest
    epoch time over the full dense network's), ``ref_params_<net>``; and per point
    (``<net>_w<width>`` for dense, ``<net>_<family>_<c>`` otherwise): ``acc_`` (mean, %),
    ``params_`` and ``epoch_ratio_`` (epoch time vs dense), and for factorized points
    ``ranks_`` (the layers' ranks, "a and b") and ``rank_`` (the first layer's rank where it is
    one number). Also: ``n_quiet`` / ``n_not_quiet`` / ``n_load_unknown`` (runs whose times
    were taken on a quiet machine, a busy one, or before the load was recorded);
    ``hidden_share_mlp`` (% of the full MLP's parameters in the factorized layers);
    ``layer_dense_params_conv2`` (the dense convolution that is factorized); per net and tested
    compression ``params_min_<net>_<c>`` / ``params_max_<net>_<c>`` (whole-network parameters
    over the families there), ``acc_min_<net>_<c>`` / ``acc_max_<net>_<c>`` (mean accuracy,
    %) with ``acc_min_family_<net>_<c>`` / ``acc_max_family_<net>_<c>`` (whose), and
    ``params_min_fac_<net>`` (the smallest factorized network); ``full_epochs_<net>`` and
    ``full_seeds`` (the ``full`` profile's budget)."""
    runs, mean, reference = runs_frame(records), means_frame(records), reference_accuracy(records)
    values = {"profile": profile_of(records), "n_runs": len(records), "n_seeds": int(runs.seed.nunique()),
              "devices": devices_of(records)}
    quiet = quiet_counts(records)
    values.update(n_quiet=quiet["quiet"], n_not_quiet=quiet["not_quiet"], n_load_unknown=quiet["unknown"])
    values["full_seeds"] = len(BUDGETS["full"]["seeds"])
    for net in NET_TITLE:
        if not (runs.net == net).any():
            continue
        values[f"epochs_{net}"] = int(runs[runs.net == net].epochs.iloc[0])
        values[f"ref_{net}"] = reference[net]
        m = mean[(mean.net == net) & (mean.family != "dense")]
        ref = _full_dense(mean, net)
        values[f"n_fac_{net}"] = int(len(m))
        values[f"epoch_ratio_max_{net}"] = float((m.train_s / ref.train_s).max())
        values[f"ref_params_{net}"] = int(ref.params)
        values[f"full_epochs_{net}"] = int(BUDGETS["full"]["epochs"][net])
        if len(m):
            values[f"params_min_fac_{net}"] = int(m.params.min())
            values[f"layer_dense_params_{net}"] = int(m.layer_dense_params.iloc[0])
            values[f"hidden_share_{net}"] = float(100 * m.layer_dense_params.iloc[0] / ref.params)
        for c, at in m.groupby("compression"):
            values[f"params_min_{net}_{c:g}"] = int(at.params.min())
            values[f"params_max_{net}_{c:g}"] = int(at.params.max())
            lo, hi = at.loc[at.acc.idxmin()], at.loc[at.acc.idxmax()]
            values[f"acc_min_{net}_{c:g}"], values[f"acc_min_family_{net}_{c:g}"] = float(lo.acc), str(lo.family)
            values[f"acc_max_{net}_{c:g}"], values[f"acc_max_family_{net}_{c:g}"] = float(hi.acc), str(hi.family)
        for _, r in mean[mean.net == net].iterrows():
            key = f"{net}_{point_key(r.family, r.compression, r.width)}"
            values[f"acc_{key}"] = float(r.acc)
            values[f"params_{key}"] = int(r.params)
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


def slowdown_wide_table(records: list[dict], net: str) -> pd.DataFrame:
    """:func:`slowdown_table` for one net (a key of :data:`NET_TITLE`) with its targets side by
    side: one row per point, and per target (``"<target> (<loss>)"``) the time to target vs the
    dense network and the runs that never reached it. Empty when no record has curves."""
    t = slowdown_table(records)
    t = t[t.network == NET_TITLE[net]]
    if t.empty:
        return pd.DataFrame(columns=["point"])
    out = pd.DataFrame({"point": list(dict.fromkeys(t.point))})
    for target, g in t.groupby("target", sort=False):
        g = g.set_index("point")
        out[f"{target}: time vs dense"] = out.point.map(g["time to target vs dense"])
        out[f"{target}: never reached"] = out.point.map(g["never reached"])
    return out


def journal_verdict(records: list[dict]) -> dict:
    """The journal's "100 times as long to reach the same loss" against the factorized points
    (narrower dense networks are not "tensor factorization networks"), per net and target:
    ``slower_100_<net>_<target>`` points whose slowdown (a lower bound where censored) is at
    least :data:`JOURNAL_SLOWDOWN`; ``faster_100_<net>_<target>`` points measured below it
    (exact, or an upper bound); ``open_100_<net>_<target>`` points censored below it (only
    "at least" is known); ``n_points_<net>_<target>``; ``max_ratio_<net>_<target>`` (largest
    geometric-mean slowdown) with ``max_bound_<net>_<target>`` (its bound sign),
    ``max_point_<net>_<target>`` (whose, "cp 4×"), ``max_range_<net>_<target>`` (its seeds'
    range, "8.6–16.5") and ``max_epochs_ratio_<net>_<target>`` (the epochs it ran to the target
    over the dense network's, geometric mean over seeds; a lower bound where censored) and
    ``max_epoch_cost_<net>_<target>`` (its epoch time over the dense network's);
    ``median_ratio_<net>_<target>`` (over the points); ``n_seeds_<net>_<target>``;
    ``ref_epochs_<net>_<target>`` (the epochs the full dense network ran to the target, mean
    over its seeds);
    ``n_censored_<net>_<target>`` (points whose slowdown is only a lower bound);
    ``target_<net>_<target>`` (nats). Also ``journal_sentence``, ``journal_slowdown``
    (:data:`JOURNAL_SLOWDOWN`) and ``slowdown_measured`` (True, or :data:`NOT_MEASURED` when no
    record has curves: then only these three)."""
    s, ttt = slowdown_frame(records), time_to_target_frame(records)
    values: dict = {"journal_sentence": JOURNAL_SENTENCE, "journal_slowdown": JOURNAL_SLOWDOWN,
                    "slowdown_measured": True if len(s) else NOT_MEASURED}
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
        values[f"max_point_{key}"] = f"{top.family} {top.compression:g}×"
        values[f"max_range_{key}"] = f"{top.ratio_lo:.1f}–{top.ratio_hi:.1f}"
        values[f"max_epochs_ratio_{key}"] = _epochs_ratio(ttt, net, target, top.family, top.compression)
        values[f"max_epoch_cost_{key}"] = _epoch_cost(records, net, top.family, top.compression)
        values[f"median_ratio_{key}"] = float(g.ratio.median())
        values[f"n_censored_{key}"] = int(lower.sum())
        values[f"n_seeds_{key}"] = int(g.n.max())
        ref = ttt[(ttt.net == net) & (ttt.target == target) & (ttt.family == "dense")
                  & (ttt.width == NETS[net]["full_width"])]
        values[f"ref_epochs_{key}"] = float(ref.epochs.mean())
    return values


def _epoch_cost(records: list[dict], net: str, family: str, compression: float) -> float:
    """Mean training seconds (``timing.train_s``) of point (``family``, ``compression``) of
    ``net`` over the full dense network's (the same epochs: what one epoch costs relative to a
    dense one)."""
    def mean_s(match) -> float:
        return float(np.mean([r["timing"]["train_s"] for r in records if r["config"]["net"] == net and match(r["config"])]))

    point = mean_s(lambda c: c["family"] == family and c["compression"] == compression)
    return point / mean_s(_is_full_dense)


def _epochs_ratio(ttt: pd.DataFrame, net: str, target: str, family: str, compression: float) -> float:
    """Geometric mean over the paired seeds of the epochs point (``family``, ``compression``)
    of ``net`` ran to ``target`` (:func:`time_to_target_frame`) over the full dense network's."""
    g = ttt[(ttt.net == net) & (ttt.target == target)]
    ref = g[(g.family == "dense") & (g.width == NETS[net]["full_width"])].set_index("seed").epochs
    p = g[(g.family == family) & (g.compression == compression)].set_index("seed").epochs
    seeds = sorted(set(p.index) & set(ref.index))
    return float(np.exp(np.mean(np.log(p[seeds] / ref[seeds]))))
