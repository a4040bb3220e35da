"""Chapter "Hard parameter sharing" (``notebooks/qm9_hard_sharing.ipynb``): one GINE encoder with
a head per target (experiment ``qm9_hard_sharing``, task sets ``all19`` and ``std12``) against
the GINE single-task models of experiment ``qm9_single_task``, target by target and by Δm.

The single-task side is the book's one reference,
:func:`factorlab.experiments.qm9_pairs.reference_from_records`: per seed, the GINE
``qm9_single_task`` records holding every one of their targets, each checked against the shared
runs' budget (:func:`results_frame` refuses a record of another budget and says when no seed
is complete). Relative changes are in % of the single-task MAE (mean over those seeds); Δm per
seed against the single-task run of the same seed where there is one (:func:`delta_m_frame`);
negative means sharing helps. A target is "worse" when its shared MAE is strictly above the
single-task MAE, "better" when strictly below (signs, not clear differences); per target,
:func:`paired_change` pairs each shared run with the single-task run of its seed and calls a
change clear beyond :data:`~factorlab.report.verdicts.CLEAR_SE` standard errors."""
from __future__ import annotations

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.analysis import paired_difference
from factorlab.experiments.qm9_pairs import reference_from_records
from factorlab.mtl import delta_m
from factorlab.report.provenance import devices_of
from factorlab.report.qm9 import TARGET_ORDER, UNITS, mae_frame
from factorlab.report.formatting import pm
from factorlab.report.verdicts import clear

#: The task sets of ``qm9_hard_sharing`` in display order, with their figure labels.
TASK_SETS = {"all19": "shared, 19 targets", "std12": "shared, 12 targets"}


def results_frame(records: list[dict], stl_records: list[dict]) -> pd.DataFrame:
    """One row per run and target of the ``qm9_hard_sharing`` ``records`` (see
    :func:`factorlab.report.qm9.mae_frame`) and per seed and target of the single-task reference
    (:func:`~factorlab.experiments.qm9_pairs.reference_from_records` of the GINE
    ``qm9_single_task`` ``stl_records`` over all their targets): setting ("single-task" or the
    task set), seed, target and test MAE.

    Raises:
        ValueError: a single-task record's budget differs from a shared run's of its seed, or
            no seed of ``stl_records`` holds every one of their targets (no reference).
    """
    tasks = list(dict.fromkeys(t for r in stl_records if r["config"].get("model", "gine") == "gine"
                               for t in r["config"]["targets"]))
    ref = reference_from_records(stl_records, tasks, records)
    if not ref:
        have = (f"no seed of the GINE qm9_single_task records holds all their {len(tasks)} targets" if tasks
                else "no GINE qm9_single_task record")
        raise ValueError(f"the single-task reference is missing ({have}): "
                         "run `python -m factorlab run qm9_single_task`")
    single = pd.DataFrame([{"setting": "single-task", "seed": seed, "target": t, "mae": mae}
                           for seed, maes in ref.items() for t, mae in maes.items()])
    return pd.concat([mae_frame(records)[["setting", "seed", "target", "mae"]], single], ignore_index=True)


def single_task_mae(res: pd.DataFrame) -> pd.Series:
    """The single-task test MAE per target of :func:`results_frame`: mean over the seeds."""
    return res[res.setting == "single-task"].groupby("target").mae.mean()


def task_sets(res: pd.DataFrame) -> list[str]:
    """The task sets of :data:`TASK_SETS` that :func:`results_frame` has runs of, in order."""
    return [s for s in TASK_SETS if s in set(res.setting)]


def relative_change(res: pd.DataFrame) -> dict[str, pd.Series]:
    """Per task set, the change of the mean (over seeds) shared-model test MAE against the
    single-task MAE, in % per target (negative: sharing helps)."""
    stl = single_task_mae(res)
    rel = {}
    for s in task_sets(res):
        mean = res[res.setting == s].pivot(index="target", columns="seed", values="mae").mean(axis=1)
        rel[s] = 100 * (mean - stl.reindex(mean.index)) / stl.reindex(mean.index)
    return rel


def paired_change(res: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per task set, one row per target: the paired differences shared minus single-task test
    MAE of the same seed, in % of the single-task MAE (mean over seeds), so that ``mean``
    equals :func:`relative_change` where every seed pairs; ``se`` (NaN for one pair), ``n``
    (pairs; 0 and NaNs where no seed pairs) and ``clear``
    (:func:`factorlab.report.verdicts.clear`)."""
    stl = single_task_mae(res)
    single = res[res.setting == "single-task"].pivot(index="target", columns="seed", values="mae")
    out = {}
    for s in task_sets(res):
        shared = res[res.setting == s].pivot(index="target", columns="seed", values="mae")
        rows = []
        for t in shared.index:
            if t not in single.index:
                continue
            try:
                mean, se, n = paired_difference(shared.loc[t], single.loc[t])
            except ValueError:  # no seed of the shared runs has a single-task run
                mean, se, n = np.nan, np.nan, 0
            rows.append({"target": t, "mean": 100 * mean / stl[t], "se": 100 * se / stl[t], "n": n,
                         "clear": clear(mean, se)})
        out[s] = pd.DataFrame(rows).set_index("target")
    return out


def target_table(res: pd.DataFrame) -> pd.DataFrame:
    """The chapter's target-by-target table: unit, single-task MAE and, per task set, the
    shared model's MAE (mean over seeds), its change (%) and the standard error of that change
    over the paired seeds (:func:`paired_change`), formatted (4 significant digits, changes
    signed with one decimal, SE with one decimal; empty where a target is not in the set)."""
    stl = single_task_mae(res)
    rel = relative_change(res)
    paired = paired_change(res)
    table = pd.DataFrame({"target": TARGET_ORDER, "unit": [UNITS[t] for t in TARGET_ORDER]})
    table["single-task MAE"] = table.target.map(stl)
    for s in task_sets(res):
        mean = res[res.setting == s].pivot(index="target", columns="seed", values="mae").mean(axis=1)
        table[f"{s} MAE"] = table.target.map(mean)
        table[f"{s} change (%)"] = table.target.map(rel[s])
        table[f"{s} SE (paired, %)"] = table.target.map(paired[s].se)
    for col in table.columns[2:]:
        table[col] = table[col].map(lambda v: "" if v != v else (f"{v:+.1f}" if "change" in col else
                                                                  f"{v:.1f}" if "SE" in col else f"{v:.4g}"))
    return table


def change_figure(res: pd.DataFrame):
    """Bars of :func:`relative_change` per target, one colour per task set, on a symmetric log
    scale (linear within ±20 %). Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    rel, sets = relative_change(res), task_sets(res)
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 3.4))
    width = 0.8 / max(1, len(sets))
    colors = dict(zip(TASK_SETS, sns.color_palette("colorblind", 2)))
    for k, s in enumerate(sets):
        v = rel[s].reindex(TARGET_ORDER)
        x = np.arange(len(TARGET_ORDER)) + (k - (len(sets) - 1) / 2) * width
        ax.bar(x, v.to_numpy(), width, color=colors[s], label=TASK_SETS[s])
    ax.axhline(0, color="k", lw=1)
    ax.set_yscale("symlog", linthresh=20)  # linear within ±20 %, logarithmic beyond (one target is far out)
    ax.set_xticks(np.arange(len(TARGET_ORDER)), TARGET_ORDER, rotation=45, ha="right")
    ax.set_ylabel("MAE change vs single-task (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def delta_m_frame(res: pd.DataFrame) -> pd.DataFrame:
    """One row per task set and seed: Δm (%) of the shared model against the single-task MAE
    (:func:`factorlab.mtl.delta_m`), the number of targets and how many are worse. The
    reference is the single-task reference of the *same seed* (the single-task rows of
    :func:`results_frame`) when it exists (``paired`` True: a paired difference), otherwise the
    single-task mean over seeds."""
    mean = single_task_mae(res).to_dict()
    stl = res[res.setting == "single-task"]
    by_seed = {int(seed): dict(zip(g.target, g.mae)) for seed, g in stl.groupby("seed")}
    rows = []
    for s in task_sets(res):
        for seed, g in res[res.setting == s].groupby("seed"):
            mtl = dict(zip(g.target, g.mae))
            stl = by_seed.get(int(seed), mean)
            rows.append({"task set": s, "seed": seed, "delta_m": 100 * delta_m(mtl, stl),
                         "targets": len(mtl), "worse": int(sum(mtl[t] > stl[t] for t in mtl)),
                         "paired": int(seed) in by_seed})
    return pd.DataFrame(rows)


def delta_m_summary(res: pd.DataFrame) -> pd.DataFrame:
    """:func:`delta_m_frame` per task set: targets, seeds, how many are paired with their
    single-task seed, mean, standard deviation and standard error (sd / sqrt(seeds)) of Δm
    over seeds (NaN for one seed) and the mean number of targets worse than single-task."""
    out = delta_m_frame(res).groupby("task set", sort=False).agg(
        targets=("targets", "first"), seeds=("seed", "count"), paired=("paired", "sum"), mean=("delta_m", "mean"),
        sd=("delta_m", "std"), worse=("worse", "mean")).reset_index()
    out["se"] = out.sd / np.sqrt(out.seeds)
    return out


def pairing_phrase(summary: pd.DataFrame) -> str:
    """How Δm's reference was taken, as a sentence fragment for the chapter."""
    if (summary.paired == summary.seeds).all():
        return ("each seed's shared model is compared with the single-task models of the same seed "
                "(paired differences), so the ± is the standard error of a paired mean")
    if (summary.paired == 0).all():
        return ("the single-task side has no seed of its own to pair with, so each seed is compared with "
                "the single-task mean and the single-task seed-to-seed spread (not measured) adds to the "
                "uncertainty of Δm")
    return ("some seeds are paired with their single-task seed and the others compared with the "
            "single-task mean over seeds")


def delta_m_table(res: pd.DataFrame) -> pd.DataFrame:
    """:func:`delta_m_summary` formatted: Δm as "+m ± se" (one decimal; the standard error over
    seeds, as the chapter's prose), and how many seeds are paired with their single-task seed."""
    summary = delta_m_summary(res)
    return pd.DataFrame({
        "task set": summary["task set"], "targets": summary.targets, "seeds": summary.seeds,
        "paired with single-task seed": summary.paired.astype(int),
        "Δm (%), mean ± SE": [pm(m, s) for m, s in zip(summary["mean"], summary.se)],
        "targets worse than single-task (mean over seeds)": summary.worse.map("{:.1f}".format)})


def glue_values(profile: str, records: list[dict], stl_records: list[dict]) -> dict:
    """Every value the chapter glues, by name, from the ``qm9_hard_sharing`` ``records`` and
    the GINE ``qm9_single_task`` ``stl_records``: the set-up (counts as thousands-separated
    strings), per task set ``s`` Δm mean, sd and se (%; 0 for one seed) ``dm_<s>``,
    ``dm_<s>_sd``, ``dm_<s>_se``, how Δm was paired (``pairing``, :func:`pairing_phrase`), the
    single-task seeds ``n_stl_seeds``, the mean number of worse targets ``worse_<s>``, the number of better targets
    ``n_better_<s>`` of ``n_<s>`` (signs of the mean changes), the number of targets clearly
    worse and clearly better by :func:`paired_change` (``clear_worse_<s>``,
    ``clear_better_<s>``), the best and worst target and change, the best change's paired
    SE and whether it is clear (``best_<s>_se``, ``best_<s>_clear``: "clear" or "not
    clear"), and every target's change ``rel_<s>_<t>`` (%)."""
    res = results_frame(records, stl_records)
    cfg = records[0]["config"]
    seeds = sorted({r["config"]["seed"] for r in records})
    v = {"profile": profile, "n_runs": len(records), "devices": devices_of(records),
         "layers": cfg["model_kwargs"]["layers"], "hidden": cfg["model_kwargs"]["hidden"], "epochs": cfg["epochs"],
         "n_train": f"{records[0]['model']['n_train']:,}", "seeds": ", ".join(str(s) for s in seeds),
         "params_all19": f"{next(r['model']['params'] for r in records if r['config']['task_set'] == 'all19'):,}",
         "params_stl_total": f"{19 * stl_records[0]['model']['params_per_member']:,}", "n_seeds": len(seeds)}
    summary = delta_m_summary(res)
    v["pairing"] = pairing_phrase(summary)
    v["n_stl_seeds"] = res[res.setting == "single-task"].seed.nunique()
    for _, row in summary.iterrows():
        s = row["task set"]
        v[f"dm_{s}"] = float(row["mean"])
        v[f"dm_{s}_sd"] = float(row.sd) if row.sd == row.sd else 0.0
        v[f"dm_{s}_se"] = float(row.se) if row.se == row.se else 0.0
        v[f"worse_{s}"] = float(row.worse)
    paired = paired_change(res)
    for s, change in relative_change(res).items():
        change = change.dropna()
        p = paired[s]
        best_se = float(p.se.get(change.idxmin(), np.nan))
        v.update({f"n_better_{s}": int((change < 0).sum()), f"n_{s}": int(len(change)),
                  f"best_{s}": change.idxmin(), f"best_{s}_pct": float(change.min()),
                  f"worst_{s}": change.idxmax(), f"worst_{s}_pct": float(change.max()),
                  f"clear_worse_{s}": int((p.clear & (p["mean"] > 0)).sum()),
                  f"clear_better_{s}": int((p.clear & (p["mean"] < 0)).sum()),
                  f"best_{s}_se": best_se if best_se == best_se else 0.0,
                  f"best_{s}_clear": "clear" if bool(p.clear.get(change.idxmin(), False)) else "not clear"})
        for t, p in change.items():
            v[f"rel_{s}_{t}"] = float(p)
    return v
