"""Chapter "Grouping tasks" (``notebooks/qm9_grouping.ipynb``): Δm against the number of
networks for the partitions of the 11 benchmark targets chosen by the measured pair gains (the
oracle) and by each relatedness measure, exact and clustered, from the records of
``qm9_single_task`` (the single-task reference), ``qm9_pairs`` (pairs), ``qm9_grouping`` (groups
of three to ten) and ``qm9_soft_sharing`` (its ``lam = "inf"`` ``nash11`` runs: the group of all
11, :func:`factorlab.experiments.qm9_grouping.whole_set_configs`); the pair-based prediction of
each group's per-task error against what the group reached; the noise ceiling of the pair
gains; and the aim's verdict.

- A grouping's per-task test MAE in a seed is that of the network holding the task: a group
  of three or more (``group_records``), a pair from ``qm9_pairs``, a singleton its
  ``qm9_single_task`` record. Its Δm (%, :func:`factorlab.mtl.grouping.grouping_delta_m`) is
  taken against the ``qm9_single_task`` records of the *same seed*
  (:func:`factorlab.experiments.qm9_pairs.reference_from_records`, which checks the budgets
  agree), so it is paired by construction, and every chapter takes Δm and pair gains against
  the same single-task networks; it is summarised over seeds as mean ± standard error
  (sd / sqrt(n)).
- The partitions (:func:`factorlab.experiments.qm9_grouping.chosen_partitions`) are chosen on
  validation pair gains; every evaluation here is on the test split.
- The prediction of a group (Standley et al. 2020's higher-order approximation,
  :func:`factorlab.mtl.grouping.predicted_gains`, mean over partners) uses the *test* pair
  gains of the same seed, so that predicted and reached gains are the same kind of quantity.
- The aim (:func:`aim_verdict`): a grouping with Δm < 0 in every seed, with fewer networks
  than tasks (k < T), under the same budget.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.mtl.grouping import Partition, grouping_delta_m, predicted_gains, seed_agreement
from factorlab.report.provenance import devices_of, profile_of
from factorlab.report.formatting import pm

#: The width (in networks) over which :func:`curve_figure` spreads its lines around each k.
JITTER = 0.3
#: The label of each search in tables and legends.
SEARCH_LABELS = {"exact": "best partition", "cluster": "clustering", "weighting": "loss weighting, one network"}


#: Display names of the sources that are not relatedness measures.
SOURCE_LABELS = {"oracle": "oracle (pair gains)", "uncertainty": "uncertainty weighting", "famo": "FAMO"}


def source_label(source: str) -> str:
    """A source's name for tables and legends: a relatedness measure's label
    (:data:`factorlab.report.qm9_relatedness.LABELS`), :data:`SOURCE_LABELS`, else itself."""
    from factorlab.report.qm9_relatedness import LABELS

    return LABELS.get(source, SOURCE_LABELS.get(source, source))


def _source_rank(source: str, search: str) -> int:
    """Row order of the tables: the oracle, the measures, the one-network weightings, single-task."""
    return 0 if source == "oracle" else 3 if source == "single-task" else 2 if search == "weighting" else 1


def tasks_of(pair_records: list[dict]) -> list[str]:
    """The tasks of the ``qm9_pairs`` records (every target of their pairs), in NASH11 order
    (ValueError when there is none)."""
    from factorlab.experiments.qm9_common import NASH11

    names = {t for r in pair_records for t in r["config"]["targets"]}
    if not names:
        raise ValueError("no qm9_pairs record: the tasks of the grouping are those of its pairs")
    return [t for t in NASH11 if t in names] + sorted(names - set(NASH11))


def group_errors(pair_records: list[dict], group_records: list[dict], split: str = "test", *,
                 single_records: list[dict], also_compared: list[dict] = ()
                 ) -> dict[int, dict[tuple[str, ...], dict[str, float]]]:
    """Per seed, per network (tuple of targets), each member's MAE on ``split``: every network
    of ``group_records`` and ``pair_records``, and each task's singleton from the
    ``qm9_single_task`` records ``single_records`` of that seed
    (:func:`~factorlab.experiments.qm9_pairs.reference_from_records`; seeds whose reference lacks
    a task of :func:`tasks_of` get no singletons).

    Raises:
        ValueError: a ``single_records`` config differs from the budget of a pair, group or
            ``also_compared`` run (further runs taken against the same reference) of its seed.
    """
    from factorlab.experiments.qm9_pairs import reference_from_records

    out: dict[int, dict[tuple[str, ...], dict[str, float]]] = {}
    runs = [*pair_records, *group_records, *also_compared]
    for seed, single in reference_from_records(single_records, tasks_of(pair_records), runs, split).items():
        out.setdefault(seed, {}).update({(t,): {t: mae} for t, mae in single.items()})
    for r in [*pair_records, *group_records]:
        mae, targets, seed = r["metrics"][f"{split}_mae"], r["config"]["targets"], r["config"]["seed"]
        out.setdefault(seed, {})[tuple(targets)] = {t: mae[t] for t in targets}
    return out


def single_mae(errors: dict[tuple[str, ...], dict[str, float]]) -> dict[str, float]:
    """The single-task MAE of each task, from one seed of :func:`group_errors`."""
    return {g[0]: e[g[0]] for g, e in errors.items() if len(g) == 1}


def curve_frame(chosen: dict[tuple[str, str, int], Partition], pair_records: list[dict],
                group_records: list[dict], weighting_records: list[dict] = (), *,
                single_records: list[dict]) -> pd.DataFrame:
    """One row per chosen partition and seed whose networks all have records: ``source``,
    ``search``, ``k`` (networks), ``seed``, ``groups`` (text), ``delta_m`` (% against the same
    seed's ``qm9_single_task`` records, ``single_records``); plus single-task training itself
    (``source="single-task"``, ``k = T``, Δm 0) per seed, and each one-network run of
    ``weighting_records`` (``qm9_weighting``: uncertainty weighting, FAMO) at ``k = 1`` with
    ``search="weighting"`` and ``source`` its weighting, paired with the same seed's reference."""
    tasks = tasks_of(pair_records)
    errors = group_errors(pair_records, group_records, single_records=single_records, also_compared=weighting_records)
    rows = []
    for seed, nets in sorted(errors.items()):
        single = single_mae(nets)
        if set(single) != set(tasks):
            continue
        rows.append({"source": "single-task", "search": "none", "k": len(tasks), "seed": seed,
                     "groups": " | ".join(tasks), "delta_m": 0.0})
        for r in weighting_records:
            if r["config"]["seed"] == seed and set(tasks) <= set(r["metrics"]["test_mae"]):
                whole = (tuple(tasks),)
                rows.append({"source": r["config"]["weighting"], "search": "weighting", "k": 1, "seed": seed,
                             "groups": ",".join(tasks),
                             "delta_m": grouping_delta_m({whole[0]: r["metrics"]["test_mae"]}, single, tasks)})
        for (source, search, k), part in chosen.items():
            names = [tuple(g) for g in part.names(tasks)]
            if any(g not in nets for g in names):
                continue
            rows.append({"source": source, "search": search, "k": k, "seed": seed,
                         "groups": " | ".join(",".join(g) for g in names),
                         "delta_m": grouping_delta_m({g: nets[g] for g in names}, single, tasks)})
    return pd.DataFrame(rows, columns=["source", "search", "k", "seed", "groups", "delta_m"])


def curve_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Per (source, search, k): ``n`` seeds, Δm ``dm`` (mean) and ``dm_se`` (sd / sqrt(n), NaN
    for one seed), ``dm_max`` (the worst seed) and ``groups`` (the partition of the first seed)."""
    rows = []
    for (source, search, k), g in curve.groupby(["source", "search", "k"], sort=True):
        n = len(g)
        rows.append({"source": source, "search": search, "k": int(k), "n": n, "dm": g.delta_m.mean(),
                     "dm_se": g.delta_m.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan,
                     "dm_max": g.delta_m.max(), "groups": g.groups.iloc[0]})
    return pd.DataFrame(rows, columns=["source", "search", "k", "n", "dm", "dm_se", "dm_max", "groups"])


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`curve_summary` formatted: source, search, networks, seeds, Δm (%, mean ± SE), worst
    seed, groups."""
    return pd.DataFrame({"source": summary.source.map(source_label),
                         "search": summary.search.map(lambda s: SEARCH_LABELS.get(s, "")),
                         "networks": summary.k, "seeds": summary.n,
                         "Δm (%)": [pm(m, s) for m, s in zip(summary.dm, summary.dm_se)],
                         "worst seed (%)": summary.dm_max.map(lambda v: f"{v:+.1f}"), "groups": summary.groups})


#: Short names of the searches in :func:`pivot_table`.
SEARCH_SHORT = {"exact": "exact", "cluster": "clustered", "weighting": "one network"}


def pivot_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`curve_summary` as one row per source and search (the one-network loss weightings
    included; single-task training, Δm = 0 by definition, left out) and one column per number
    of networks: the mean Δm (%) over seeds, one decimal, "·" where that source has no
    partition into that many networks. The compact view of the curve, narrow enough for the
    book's column; :func:`summary_table` holds each cell's standard error, worst seed and groups."""
    summary = summary[summary.source != "single-task"]
    summary = summary.assign(rank=[_source_rank(a, b) for a, b in zip(summary.source, summary.search)])
    summary = summary.sort_values(["rank", "source", "search"], kind="stable")
    label = [f"{source_label(src)}, {SEARCH_SHORT[se]}" if se in SEARCH_SHORT else source_label(src)
             for src, se in zip(summary.source, summary.search)]
    frame = summary.assign(row=label)
    order = list(dict.fromkeys(label))
    wide = frame.pivot_table(index="row", columns="k", values="dm", aggfunc="first").reindex(order)
    wide = wide.reindex(columns=sorted(wide.columns))
    out = wide.apply(lambda col: col.map(lambda v: "·" if v != v else f"{v:+.1f}"))
    out.columns = [str(k) for k in out.columns]
    return out.reset_index().rename(columns={"row": "source, search (Δm %; networks →)"})


def aim_verdict(curve: pd.DataFrame, n_seeds: int) -> dict:
    """The aim: a grouping with Δm < 0 in every one of ``n_seeds`` seeds and fewer networks than
    tasks. Distinct partitions count once, whichever sources chose them; one-network loss
    weightings (``search="weighting"``) are not groupings and are left out. Returns ``verdict``
    ("reached", "not reached", "not measured": no partition into fewer than T networks with all
    seeds recorded), ``n_candidates`` (such partitions), ``n_reaching`` (those below 0 in every
    seed), ``best`` (the candidate with the lowest mean Δm, its groups; "none"), ``best_k``,
    ``best_by`` (the sources that chose it), ``best_dm``, ``best_max`` (its worst seed), ``text``."""
    empty = {"verdict": "not measured", "n_candidates": 0, "n_reaching": 0, "best": "none", "best_k": 0,
             "best_by": "none", "best_dm": math.nan, "best_max": math.nan}
    if curve.empty:
        return {**empty, "text": "Not measured: no grouping has records in every seed yet."}
    t = int(curve[curve.source == "single-task"].k.max())
    cand = curve[(curve.source != "single-task") & (curve.search != "weighting") & (curve.k < t)]
    full = cand.groupby(["k", "groups"]).filter(lambda g: g.seed.nunique() == n_seeds)
    if full.empty:
        return {**empty, "text": f"Not measured: no grouping into fewer than {t} networks has records in all "
                                 f"{n_seeds} seeds yet."}
    per = full.drop_duplicates(["k", "groups", "seed"])
    stats = per.groupby(["k", "groups"]).delta_m.agg(["mean", "max"]).sort_values(["mean", "max"], kind="stable")
    reaching = stats[stats["max"] < 0]
    (k, groups), best = stats.index[0], stats.iloc[0]
    by = ", ".join(sorted({f"{r.source} ({SEARCH_LABELS.get(r.search, r.search)})"
                           for r in full[(full.k == k) & (full.groups == groups)].itertuples()}))
    text = (f"{len(reaching)} of {len(stats)} distinct groupings into fewer than {t} networks have Δm < 0 in every "
            f"one of {n_seeds} seeds; the lowest mean Δm, {best['mean']:+.1f} % (worst seed {best['max']:+.1f} %), "
            f"is that of {groups} (k = {k}), chosen by {by}.")
    return {"verdict": "reached" if len(reaching) else "not reached", "n_candidates": int(len(stats)),
            "n_reaching": int(len(reaching)), "best": groups, "best_k": int(k), "best_by": by,
            "best_dm": float(best["mean"]), "best_max": float(best["max"]), "text": text}


def prediction_frame(pair_records: list[dict], group_records: list[dict], *,
                     single_records: list[dict]) -> pd.DataFrame:
    """One row per trained group of three or more, seed and member task: ``group``, ``size``,
    ``seed``, ``task``, ``predicted`` (% gain over single-task from the same seed's test pair
    gains, Standley et al.'s mean), ``actual`` (% gain the group reached), ``predicted_max``
    (the best-partner reading); single-task MAEs from the ``qm9_single_task`` records
    ``single_records``."""
    from factorlab.mtl.grouping import pair_gain_matrix

    tasks = tasks_of(pair_records)
    errors = group_errors(pair_records, [], single_records=single_records, also_compared=group_records)
    rows = []
    for r in group_records:
        seed, group = r["config"]["seed"], list(r["config"]["targets"])
        nets = errors.get(seed, {})
        single = single_mae(nets)
        try:
            g = pair_gain_matrix({k: v for k, v in nets.items() if len(k) == 2}, single, tasks)
        except ValueError:
            continue  # this seed's pairs are incomplete
        idx = [tasks.index(t) for t in group]
        pred, pmax = predicted_gains(g, idx, "mean"), predicted_gains(g, idx, "max")
        for t, p, pm in zip(group, pred, pmax):
            actual = 100.0 * (single[t] - r["metrics"]["test_mae"][t]) / single[t]
            rows.append({"group": ",".join(group), "size": len(group), "seed": seed, "task": t,
                         "predicted": float(p), "predicted_max": float(pm), "actual": actual})
    return pd.DataFrame(rows, columns=["group", "size", "seed", "task", "predicted", "predicted_max", "actual"])


def prediction_agreement(pred: pd.DataFrame) -> dict:
    """How well the pair-based prediction matches the groups: ``n`` (task-in-group-seed rows),
    ``spearman`` and ``pearson`` between predicted and actual gain, ``mae_pp`` (mean absolute
    error, percentage points), ``bias_pp`` (mean actual − predicted); NaN without rows."""
    if len(pred) < 2:
        return {"n": int(len(pred)), "spearman": math.nan, "pearson": math.nan, "mae_pp": math.nan,
                "bias_pp": math.nan}
    d = pred.actual - pred.predicted
    return {"n": int(len(pred)), "spearman": float(pred.predicted.corr(pred.actual, method="spearman")),
            "pearson": float(pred.predicted.corr(pred.actual)), "mae_pp": float(d.abs().mean()),
            "bias_pp": float(d.mean())}


def test_gains(pair_records: list[dict], *, single_records: list[dict]) -> list[np.ndarray]:
    """The test pair gains of every seed with all pairs and their single-task references
    (:func:`factorlab.experiments.qm9_pairs.gains_from_records`: ``G[i, j]``, % by which task j's error
    falls beside task i), each [T, T] over :func:`tasks_of`, in seed order."""
    from factorlab.experiments.qm9_pairs import gains_from_records, reference_from_records

    if not pair_records:
        return []
    tasks = tasks_of(pair_records)
    return list(gains_from_records(pair_records, reference_from_records(single_records, tasks, pair_records), tasks).values())


def per_task_frame(pair_records: list[dict], *, single_records: list[dict]) -> pd.DataFrame:
    """Why groups lose, target by target, from the test pair gains (mean over seeds, SE over
    seeds): per target j, its mean gain over all partners, its best partner i (the largest
    ``G[i, j]``), that gain, what j's presence costs that partner (``G[j, i]``) and their sum
    (the pair's total gain, which a partition into networks adds up). Empty without a seed."""
    gains = test_gains(pair_records, single_records=single_records)
    cols = ["target", "mean gain (%)", "best partner", "gain beside it (%)", "partner's gain (%)", "pair total (%)"]
    if not gains:
        return pd.DataFrame(columns=cols)
    stack, tasks = np.stack(gains), tasks_of(pair_records)
    mean = stack.mean(axis=0)  # the diagonal is NaN in every seed
    se = (np.std(stack, axis=0, ddof=1) / math.sqrt(len(stack))) if len(stack) > 1 else np.full(mean.shape, math.nan)
    rows = []
    for j, t in enumerate(tasks):
        col = mean[:, j].copy()
        col[j] = -np.inf
        i = int(np.argmax(col))
        rows.append([t, f"{float(np.nanmean(np.delete(mean[:, j], j))):+.1f}", tasks[i],
                     pm(mean[i, j], se[i, j]), pm(mean[j, i], se[j, i]), f"{mean[i, j] + mean[j, i]:+.1f}"])
    return pd.DataFrame(rows, columns=cols)


def mutual_pairs(pair_records: list[dict], *, single_records: list[dict]) -> dict:
    """Pairs whose two targets both gain (seed-mean test gains): ``n_mutual`` of ``n_unordered_pairs``,
    and ``n_positive_total``, the pairs whose summed gain is positive (those a partition could
    use to beat single-task training)."""
    gains = test_gains(pair_records, single_records=single_records)
    if not gains:
        return {"n_mutual": 0, "n_positive_total": 0, "n_unordered_pairs": 0}
    mean = np.stack(gains).mean(axis=0)
    iu = np.triu_indices(len(mean), 1)
    a, b = mean[iu], mean.T[iu]
    return {"n_mutual": int(((a > 0) & (b > 0)).sum()), "n_positive_total": int((a + b > 0).sum()),
            "n_unordered_pairs": int(len(a))}


def noise_ceiling(pair_records: list[dict], *, single_records: list[dict]) -> dict:
    """The noise ceiling of the test pair gains (:func:`factorlab.mtl.grouping.seed_agreement`,
    against the ``qm9_single_task`` records ``single_records``): ``n_seeds`` (complete seeds),
    ``mean`` and ``rhos`` (Spearman between every two seeds; NaN / [] with fewer than two
    complete seeds)."""
    gains = test_gains(pair_records, single_records=single_records)
    if len(gains) < 2:
        return {"n_seeds": len(gains), "mean": math.nan, "rhos": []}
    agree = seed_agreement(np.stack(gains))
    return {"n_seeds": len(gains), "mean": agree.mean, "rhos": agree.rhos}


def curve_figure(summary: pd.DataFrame):
    """Δm (%) against the number of networks: one line per source (solid: best partition,
    dashed: clustering), one-network loss weightings as diamonds at k = 1, error bars ± one
    standard error over seeds, the lines spread over
    :data:`JITTER` networks around each k so that equal partitions do not hide each other;
    single-task at k = T and the zero line for reference."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    sources = [s for s in summary[~summary.search.isin(["none", "weighting"])].source.unique()]
    others = [s for s in sources if s != "oracle"]
    colours = dict(zip(others, sns.color_palette("colorblind", max(len(others), 1))))
    colours["oracle"] = "black"  # the ground truth stands out from the measures
    lines = [(source, search) for source in sources for search in ("exact", "cluster")]
    for n, (source, search) in enumerate(lines):
        g = summary[(summary.source == source) & (summary.search == search)].sort_values("k")
        if g.empty:
            continue
        shift = JITTER * (n - (len(lines) - 1) / 2) / max(len(lines) - 1, 1)  # side by side, not on top
        ax.errorbar(g.k + shift, g.dm, yerr=g.dm_se.fillna(0.0), ls="-" if search == "exact" else "--",
                    marker="o" if search == "exact" else "s", ms=4, capsize=2, color=colours.get(source),
                    label=f"{source_label(source)}, {SEARCH_LABELS[search]}")
    for n, row in enumerate(summary[summary.search == "weighting"].itertuples()):
        ax.errorbar([row.k], [row.dm], yerr=[0.0 if row.dm_se != row.dm_se else row.dm_se], marker="D",
                    ls="none", capsize=2, color="0.3" if n == 0 else "0.6", label=f"{source_label(row.source)} (one network)")
    single = summary[summary.source == "single-task"]
    if not single.empty:
        ax.plot(single.k, single.dm, "k*", ms=10, label="single-task")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("networks (k)")
    ax.set_ylabel("Δm against single-task (%)")
    fig.tight_layout()
    plots.legend_below(fig, ax, ncol=2)
    return fig


def prediction_figure(pred: pd.DataFrame):
    """Actual against predicted per-task gain (%) of every trained group, one point per task,
    group and seed, coloured by group size, with the identity line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for size, g in pred.groupby("size"):
        ax.scatter(g.predicted, g.actual, s=14, label=f"{size} tasks")
    lo = min(pred.predicted.min(), pred.actual.min(), 0.0) if len(pred) else -1.0
    hi = max(pred.predicted.max(), pred.actual.max(), 0.0) if len(pred) else 1.0
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set_xlabel("predicted gain from pairs (%)")
    ax.set_ylabel("gain reached in the group (%)")
    if len(pred):
        ax.legend(title="group size")
    fig.tight_layout()
    return fig


def glue_values(pair_records: list[dict], group_records: list[dict], chosen: dict, n_seeds: int,
                weighting_records: list[dict] = (), *, single_records: list[dict]) -> dict:
    """Every value the chapter glues: ``profile``, ``devices``, ``n_tasks``, ``n_pairs`` (pair
    runs), ``n_groups`` (``qm9_grouping`` runs among ``group_records``), ``n_reused`` (the others:
    the all-11 runs of ``qm9_soft_sharing``), ``n_single`` (``qm9_single_task`` records of the
    reference), ``n_partitions`` (chosen partitions), ``n_sources``;
    the aim (``aim_verdict``, ``aim_text``, ``aim_best``, ``aim_best_k``, ``aim_best_dm``, ``aim_best_max``,
    ``aim_n_reaching``, ``aim_n_candidates``); the noise ceiling (``ceiling_rho``,
    ``ceiling_seeds``); the prediction (``pred_n``, ``pred_spearman``, ``pred_mae_pp``,
    ``pred_bias_pp``); the pairs whose targets both gain (``n_mutual``), whose summed gain is
    positive (``n_positive_total``) of ``n_unordered_pairs`` (:func:`mutual_pairs`); the oracle's best partition's Δm at each of its k (``dm_oracle_k<k>``)
    and each one-network weighting's (``dm_weighting_<name>``)."""
    records = [*single_records, *pair_records, *group_records]
    curve = curve_frame(chosen, pair_records, group_records, weighting_records, single_records=single_records)
    aim = aim_verdict(curve, n_seeds)
    ceil = noise_ceiling(pair_records, single_records=single_records)
    pred = prediction_agreement(prediction_frame(pair_records, group_records, single_records=single_records))
    own = sum(r["config"]["experiment"] == "qm9_grouping" for r in group_records)
    out = {"profile": profile_of(records), "devices": devices_of(records), "n_tasks": len(tasks_of(pair_records)),
           "n_pairs": len(pair_records), "n_groups": own, "n_reused": len(group_records) - own,
           "n_single": len(single_records),
           "n_partitions": len(chosen), "n_sources": len({s for s, _, _ in chosen}),
           "aim_verdict": aim["verdict"], "aim_text": aim["text"], "aim_best": aim["best"], "aim_best_k": aim["best_k"],
           "aim_best_dm": aim["best_dm"], "aim_best_max": aim["best_max"], "aim_n_reaching": aim["n_reaching"],
           "aim_n_candidates": aim["n_candidates"], "ceiling_rho": ceil["mean"], "ceiling_seeds": ceil["n_seeds"],
           "pred_n": pred["n"], "pred_spearman": pred["spearman"], "pred_mae_pp": pred["mae_pp"],
           "pred_bias_pp": pred["bias_pp"],
           **mutual_pairs(pair_records, single_records=single_records)}
    summary = curve_summary(curve)
    for row in summary[(summary.source == "oracle") & (summary.search == "exact")].itertuples():
        out[f"dm_oracle_k{row.k}"] = float(row.dm)
    for row in summary[summary.search == "weighting"].itertuples():
        out[f"dm_weighting_{row.source}"] = float(row.dm)
    return out
