r"""Chapter "Soft parameter sharing" (``notebooks/qm9_soft_sharing.ipynb``): the L2 path from
single-task networks (λ = 0) to hard sharing (λ = ∞) and cross-stitch units beside it, from the
records of the experiment ``qm9_soft_sharing`` (:mod:`factorlab.experiments.qm9_soft_sharing`),
with the journal's table (cited, bib key ``journal2019soft``) beside ours.

Both endpoints are trained *in this experiment*: the λ = 0 run of a task set and seed is the
single-task stack of that task set (one GINE per target, no penalty term), the λ = ∞ run is the
hard-sharing model (one encoder, a head per target). So every comparison here pairs runs of the
same task set and seed.

- Δm (%, :func:`factorlab.mtl.delta_m`) of a run is taken against the test MAEs of the λ = 0 run
  of the *same* task set and seed, so Δm is itself a paired, per-seed quantity (0 at λ = 0 by
  construction); it is summarised as mean ± sd over seeds. Negative: better than single-task.
- Paired differences (:func:`factorlab.analysis.paired_difference`, by seed) give the standard
  errors of Δm against λ = 0 and against λ = ∞ at each λ, and of the validation criterion
  between two λ.
- λ is chosen on the validation split only: the λ with the lowest seed-mean of the run's mean
  standardized validation MAE (``mean_valid_mae_std``); per target, the λ with the lowest
  seed-mean validation MAE of that target.
- Distances between task weights are the record's per-layer ``distance`` after the last epoch
  (``sqrt(mean_{i<j} ‖θ_i − θ_j‖²) / sqrt(mean_i ‖θ_i‖²)``); 0 by construction at λ = ∞.
- λ is the journal's own, unnormalised weight (:mod:`factorlab.mtl.soft`): the penalty is
  ``λ Σ_l Σ_{i<j} ‖θ_i − θ_j‖²`` beside a data loss of one standardized MSE per task; ``λ N``
  (``N``: constrained parameters of one member, ``constrained_params``) is its per-parameter
  reading. The journal's data term is a sum of squared errors whose count and target scaling it
  does not state, so its λ matches ours only up to that factor.
- The journal's quantities (standardized MSE per target and their sum) are ours on the **test**
  split, in units of each target's training variance.

Thresholds, stated once: a paired difference is *clear* when its mean exceeds :data:`CLEAR_SE`
standard errors (as in the methods chapter); the journal's λ (:data:`JOURNAL_LAMBDA`) is
*within noise of the best* when its paired validation gap to the best λ is at most
:data:`CLEAR_SE` standard errors."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.analysis import paired_difference
from factorlab.experiments.qm9_pairs import reference_from_records
from factorlab.experiments.qm9_soft_sharing import TASK_SETS as TARGETS_OF
from factorlab.experiments.qm9_soft_sharing import lam_value
from factorlab.mtl import delta_m
from factorlab.report.provenance import devices_of, profile_of
from factorlab.report.formatting import pm
from factorlab.report.qm9 import UNITS, agreement_summary, exact_agreement

#: A paired difference is clear beyond this many standard errors.
CLEAR_SE = 2
#: The journal's "optimal value for λ is close to 0.1" (its unnormalised λ_J), on its pair.
JOURNAL_LAMBDA = 0.1
#: The task set the journal trained (heat capacity and internal energy at 298 K).
JOURNAL_TASK_SET = "cv_u"
#: The journal's table (cited, one run per λ, split and target scaling not stated): λ_J, total
#: loss, C_V loss, U_298 loss.
JOURNAL_TABLE: list[tuple[float, float, float, float]] = [
    (0.001, 0.0915, 0.0568, 0.0346),
    (0.01, 0.1059, 0.0793, 0.0265),
    (0.1, 0.0654, 0.0446, 0.0207),
    (1.0, 0.0895, 0.0507, 0.0388),
]
#: The task sets in display order, with their figure labels.
TASK_SETS = {"cv_u": "Cv and U (the journal's pair)", "nash11": "11 targets (Nash-MTL set)"}
#: Decades between the finite λ and the endpoint markers on the λ axis of the figures.
ENDPOINT_GAP = 1.5
#: Linear range (±%) of the symmetric-log axis of the per-target figure.
TARGET_LINTHRESH = 10.0


# --- λ as numbers, labels and glue names -------------------------------------------------------

def lam_label(lam: float) -> str:
    """A λ for tables and prose: ``"0"``, ``"0.01"``, ``"∞"``; ``"cross-stitch"`` for NaN."""
    if lam != lam:
        return "cross-stitch"
    return "∞" if math.isinf(lam) else f"{lam:g}"


def lam_key(lam: float) -> str:
    """A λ inside a glue name: ``0``, ``0p01``, ``1em05``, ``100``, ``inf``; ``cs`` for NaN."""
    if lam != lam:
        return "cs"
    return "inf" if math.isinf(lam) else f"{lam:g}".replace(".", "p").replace("-", "m")


def _finite(lams) -> list[float]:
    return sorted(x for x in lams if x == x and 0 < x < math.inf)


def lam_positions(lams) -> dict:
    """Where each λ of ``lams`` sits on the figures' log x axis: a finite λ > 0 at itself, λ = 0
    :data:`ENDPOINT_GAP` decades left of the smallest finite λ, ∞ as far right of the largest,
    and ``"cross-stitch"`` as far again to the right."""
    fin = _finite(lams) or [1.0]
    lo, hi, gap = fin[0], fin[-1], 10 ** ENDPOINT_GAP
    pos = {x: x for x in fin}
    pos[0.0], pos[math.inf], pos["cross-stitch"] = lo / gap, hi * gap, hi * gap ** 2
    return pos


# --- frames ------------------------------------------------------------------------------------

def _last_distances(record: dict) -> dict[str, float]:
    """Per encoder layer, in module order (the record's ``penalty_layers`` where it has them),
    the distance after the last epoch."""
    hist = record["history"]["distance"]
    order = [x for x in record.get("model", {}).get("penalty_layers", []) if x in hist]
    return {layer: float(hist[layer][-1]) for layer in order + sorted(set(hist) - set(order))}


def _last_train_mse(record: dict) -> float:
    """Mean over targets of the last epoch's standardized training MSE (NaN without it)."""
    per = (record.get("history") or {}).get("train_mse") or {}
    return float(np.mean([v[-1] for v in per.values()])) if per else math.nan


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run of ``qm9_soft_sharing``: ``key``, ``method`` (``l2``, ``cross_stitch``),
    ``task_set``, ``lam`` (float, ``inf`` for hard sharing, NaN for cross-stitch), ``setting``
    (:func:`lam_label`), ``seed``, ``n_targets``, ``N`` (constrained parameters per member),
    ``mean_valid_mae_std``, ``valid_loss_total`` and ``test_loss_total`` (standardized MSE summed
    over targets), ``distance`` (mean over layers after the last epoch), ``delta_m`` (%, against
    the λ = 0 run of the same task set and seed) and, per target ``t`` of the run,
    ``mae_<t>`` (test MAE, target units), ``valid_mae_<t>`` and ``loss_<t>`` (test
    standardized MSE); NaN for targets not in the run's set. In record order."""
    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        lam = lam_value(c["lam"]) if c["method"] == "l2" else math.nan
        dist = _last_distances(r)
        row = {"key": r.get("key"), "method": c["method"], "task_set": c["task_set"], "lam": lam,
               "setting": lam_label(lam), "seed": c["seed"], "n_targets": len(c["targets"]),
               "N": m["constrained_params"], "mean_valid_mae_std": m["mean_valid_mae_std"],
               "valid_loss_total": m["valid_loss_std_total"], "test_loss_total": m["test_loss_std_total"],
               "distance": float(np.mean(list(dist.values()))) if dist else math.nan,
               "train_mse": _last_train_mse(r)}
        for t in c["targets"]:
            row[f"mae_{t}"] = m["test_mae"][t]
            row[f"valid_mae_{t}"] = m["valid_mae"][t]
            row[f"loss_{t}"] = m["test_loss_std"][t]
        rows.append(row)
    f = pd.DataFrame(rows)
    f["delta_m"] = _delta_m(f, records)
    return f


def _reference(records: list[dict]) -> dict[tuple[str, int], dict]:
    """The λ = 0 record of each (task set, seed)."""
    return {(r["config"]["task_set"], r["config"]["seed"]): r for r in records
            if r["config"]["method"] == "l2" and r["config"]["lam"] == 0}


def _delta_m(f: pd.DataFrame, records: list[dict]) -> list[float]:
    ref = _reference(records)
    out = []
    for r in records:
        c = r["config"]
        stl = ref.get((c["task_set"], c["seed"]))
        if stl is None:
            raise ValueError(f"no λ = 0 (single-task) run of task set {c['task_set']!r} and seed {c['seed']} "
                             "to take Δm against; run the experiment's whole grid")
        out.append(100 * delta_m(r["metrics"]["test_mae"], stl["metrics"]["test_mae"]))
    return out


def target_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run and target: ``method``, ``task_set``, ``lam``, ``setting``, ``seed``,
    ``target``, ``mae`` (test, target units), ``valid_mae``, ``loss`` and ``valid_loss``
    (standardized MSE, test and validation) and ``rel`` (%, test MAE against the λ = 0 run of
    the same task set and seed; negative: better than single-task)."""
    ref = _reference(records)
    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        lam = lam_value(c["lam"]) if c["method"] == "l2" else math.nan
        stl = ref.get((c["task_set"], c["seed"]))
        for t in c["targets"]:
            base = stl["metrics"]["test_mae"][t] if stl else math.nan
            rows.append({"method": c["method"], "task_set": c["task_set"], "lam": lam, "setting": lam_label(lam),
                         "seed": c["seed"], "target": t, "mae": m["test_mae"][t], "valid_mae": m["valid_mae"][t],
                         "loss": m["test_loss_std"][t], "valid_loss": m["valid_loss_std"][t],
                         "rel": 100 * (m["test_mae"][t] - base) / base})
    return pd.DataFrame(rows)


def distance_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run and encoder layer: ``method``, ``task_set``, ``lam``, ``setting``,
    ``seed``, ``layer`` (without the ``encoder.`` prefix) and ``distance`` after the last epoch."""
    rows = []
    for r in records:
        c = r["config"]
        lam = lam_value(c["lam"]) if c["method"] == "l2" else math.nan
        for layer, d in _last_distances(r).items():
            rows.append({"method": c["method"], "task_set": c["task_set"], "lam": lam, "setting": lam_label(lam),
                         "seed": c["seed"], "layer": layer.removeprefix("encoder."), "distance": d})
    return pd.DataFrame(rows)


def task_sets(f: pd.DataFrame) -> list[str]:
    """The task sets of :data:`TASK_SETS` that ``f`` has runs of, in order."""
    return [s for s in TASK_SETS if s in set(f.task_set)]


def _settings(f: pd.DataFrame, task_set: str) -> list[float]:
    """The λ of the L2 runs of ``task_set`` in ``f``, ascending (∞ last), then NaN for
    cross-stitch when it has runs."""
    g = f[f.task_set == task_set]
    lams = sorted(set(g[g.method == "l2"].lam))
    return lams + ([math.nan] if (g.method == "cross_stitch").any() else [])


def _rows(f: pd.DataFrame, task_set: str, lam: float) -> pd.DataFrame:
    g = f[f.task_set == task_set]
    return g[g.method == "cross_stitch"] if lam != lam else g[(g.method == "l2") & (g.lam == lam)]


def _by_seed(f: pd.DataFrame, task_set: str, lam: float, col: str) -> pd.Series:
    return _rows(f, task_set, lam).set_index("seed")[col]


def summary_frame(f: pd.DataFrame) -> pd.DataFrame:
    """One row per task set and setting of :func:`runs_frame` ``f`` (the L2 path by λ, then
    cross-stitch): ``n`` seeds; Δm ``dm`` and ``dm_sd`` (%, mean and sd over seeds; sd NaN for
    one seed); the paired differences of Δm against λ = 0 (``vs0``, ``vs0_se``) and against
    λ = ∞ (``vsinf``, ``vsinf_se``) with their pair counts, and whether each is clearly
    negative (``beats0``, ``beatsinf``: mean < 0 and |mean| > :data:`CLEAR_SE` · se; False
    without an se) and ``beats_both`` (both), ``beats_both_mean`` (both means < 0);
    ``valid`` (seed-mean ``mean_valid_mae_std``), ``test_loss`` and ``test_loss_sd`` (summed
    standardized test MSE), ``distance`` (seed mean)."""
    rows = []
    for s in task_sets(f):
        for lam in _settings(f, s):
            g = _rows(f, s, lam)
            dm = g.set_index("seed").delta_m
            row = {"task_set": s, "method": g.method.iloc[0], "lam": lam, "setting": lam_label(lam), "n": len(g),
                   "dm": dm.mean(), "dm_sd": dm.std(ddof=1) if len(g) > 1 else math.nan,
                   "valid": g.mean_valid_mae_std.mean(), "test_loss": g.test_loss_total.mean(),
                   "test_loss_sd": g.test_loss_total.std(ddof=1) if len(g) > 1 else math.nan,
                   "distance": g.distance.mean()}
            for name, ref in (("vs0", 0.0), ("vsinf", math.inf)):
                other = _by_seed(f, s, ref, "delta_m")
                if other.empty:
                    row[name], row[f"{name}_se"], row[f"{name}_n"] = math.nan, math.nan, 0
                else:
                    row[name], row[f"{name}_se"], row[f"{name}_n"] = paired_difference(dm, other)
            row["beats0"] = clearly_negative(row["vs0"], row["vs0_se"])
            row["beatsinf"] = clearly_negative(row["vsinf"], row["vsinf_se"])
            row["beats_both"] = row["beats0"] and row["beatsinf"]
            row["beats_both_mean"] = bool(row["vs0"] < 0 and row["vsinf"] < 0)
            rows.append(row)
    return pd.DataFrame(rows)


def single_task_agreement(records: list[dict], stl_records: list[dict]) -> dict:
    """Whether the λ = 0 runs (the single-task stacks this chapter's Δm is taken against) are
    the book's single-task reference: their test MAEs against
    :func:`factorlab.experiments.qm9_pairs.reference_from_records` of the ``qm9_single_task``
    records ``stl_records``, budget-checked against them, seed by seed, over every task set
    (:func:`factorlab.report.qm9.exact_agreement`: ``seeds``, ``targets``, ``identical``,
    ``max_diff_pct``, ``verdict``)."""
    zero = [r for r in records if r["config"]["method"] == "l2" and lam_value(r["config"]["lam"]) == 0]
    parts = []
    for ts in sorted({r["config"]["task_set"] for r in zero}):
        runs = [r for r in zero if r["config"]["task_set"] == ts]
        own = {r["config"]["seed"]: dict(r["metrics"]["test_mae"]) for r in runs}
        ref = reference_from_records(stl_records, sorted({t for m in own.values() for t in m}), runs)
        own = {seed: m for seed, m in own.items() if seed in ref}  # the seeds compared
        parts.append((own, exact_agreement(own, ref, "the λ = 0 runs")))
    compared = [(own, a) for own, a in parts if a["seeds"]]
    if not compared:
        return exact_agreement({}, {}, "the λ = 0 runs")
    seeds = {s for own, _ in compared for s in own}
    targets = len({t for own, _ in compared for m in own.values() for t in m})
    return agreement_summary(all(a["identical"] for _, a in parts), max(a["max_diff_pct"] for _, a in compared),
                             len(seeds), targets, "the λ = 0 runs")


def endpoint_gap(f: pd.DataFrame, task_set: str) -> dict:
    """How the largest finite λ of :func:`runs_frame` ``f`` compares with hard sharing (λ = ∞),
    which it approaches in the limit, paired by seed: ``lam`` (that λ), ``dm``, ``dm_se``,
    ``n`` (its Δm minus hard sharing's, percentage points), ``train_pct``, ``train_pct_se``
    (its final training MSE relative to hard sharing's, % above it) and ``distance`` (its
    seed-mean distance between the task networks). A positive ``train_pct`` with a distance
    near zero says the networks are tied in all but name yet fit the training data worse:
    the penalty slows optimisation rather than limiting what the tied networks can fit."""
    g = f[(f.task_set == task_set) & (f.method == "l2")]
    lam = max(_finite(set(g.lam)))
    inf = _by_seed(f, task_set, math.inf, "delta_m")
    if inf.empty:
        return {"lam": lam, "dm": math.nan, "dm_se": math.nan, "n": 0, "train_pct": math.nan,
                "train_pct_se": math.nan, "distance": float(_rows(f, task_set, lam).distance.mean())}
    dm, dm_se, n = paired_difference(_by_seed(f, task_set, lam, "delta_m"), inf)
    ratio = 100 * (_by_seed(f, task_set, lam, "train_mse") / _by_seed(f, task_set, math.inf, "train_mse") - 1)
    ratio = ratio.dropna()
    return {"lam": lam, "dm": dm, "dm_se": dm_se, "n": n, "train_pct": float(ratio.mean()),
            "train_pct_se": float(ratio.std(ddof=1) / math.sqrt(len(ratio))) if len(ratio) > 1 else math.nan,
            "distance": float(_rows(f, task_set, lam).distance.mean())}


def clearly_negative(mean: float, se: float) -> bool:
    """Whether a paired difference is clearly below 0: ``mean < 0`` and ``|mean| > CLEAR_SE ·
    se`` (False when ``se`` is NaN, e.g. one seed)."""
    return bool(mean == mean and se == se and mean < 0 and abs(mean) > CLEAR_SE * se)


def summary_table(f: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary_frame` formatted for the chapter: task set, setting, seeds, Δm (mean ± sd,
    %), the paired differences against λ = 0 and λ = ∞ (mean ± SE, points of Δm; a ✓ when
    clearly negative), the validation criterion and the distance."""
    s = summary_frame(f)
    return pd.DataFrame({
        "task set": s.task_set, "λ": s.setting, "seeds": s.n,
        "Δm (%), mean ± sd": [pm(m, d, "+.1f") for m, d in zip(s.dm, s.dm_sd)],
        "vs λ = 0, ± SE": [pm(m, e, "+.1f") + (" ✓" if b else "") for m, e, b in zip(s.vs0, s.vs0_se, s.beats0)],
        "vs λ = ∞, ± SE": [pm(m, e, "+.1f") + (" ✓" if b else "") for m, e, b in
                           zip(s.vsinf, s.vsinf_se, s.beatsinf)],
        "mean std. valid MAE": s.valid.map("{:.4f}".format),
        "distance": s.distance.map("{:.3g}".format)})


# --- choosing λ on the validation split -------------------------------------------------------

def validation_curve(f: pd.DataFrame, task_set: str) -> pd.Series:
    """The seed-mean ``mean_valid_mae_std`` of each λ of the L2 path of ``task_set``, by λ."""
    g = f[(f.task_set == task_set) & (f.method == "l2")]
    return g.groupby("lam").mean_valid_mae_std.mean().sort_index()


def best_lambda(f: pd.DataFrame, task_set: str, finite_only: bool = False) -> float:
    """The λ of the L2 path of ``task_set`` with the lowest :func:`validation_curve` (the
    smallest such λ on a tie); ``finite_only`` leaves out both endpoints. ValueError when there
    is none."""
    curve = validation_curve(f, task_set)
    if finite_only:
        curve = curve[(curve.index > 0) & (curve.index < math.inf)]
    if curve.empty:
        raise ValueError(f"no {'finite ' if finite_only else ''}λ of task set {task_set!r} to choose from")
    return float(curve.idxmin())


def per_task_best_lambda(t: pd.DataFrame, task_set: str) -> pd.DataFrame:
    """Per target of ``task_set`` in :func:`target_frame` ``t``: the λ of the L2 path with the
    lowest seed-mean validation MAE of that target (``best``, and ``setting`` its label), that
    MAE, and the seed-mean validation MAEs at λ = 0 and λ = ∞ (target units)."""
    g = t[(t.task_set == task_set) & (t.method == "l2")]
    curves = g.groupby(["target", "lam"]).valid_mae.mean().unstack("lam")
    order = [x for x in TARGETS_OF[task_set] if x in curves.index]
    curves = curves.loc[order]
    best = curves.idxmin(axis=1)
    return pd.DataFrame({"target": order, "unit": [UNITS[x] for x in order], "best": best.to_numpy(),
                         "setting": best.map(lam_label).to_numpy(), "valid_mae": curves.min(axis=1).to_numpy(),
                         "valid_mae_0": curves.get(0.0, pd.Series(math.nan, index=order)).to_numpy(),
                         "valid_mae_inf": curves.get(math.inf, pd.Series(math.nan, index=order)).to_numpy()})


def per_task_table(t: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_task_best_lambda` of every task set of :func:`target_frame` ``t``, formatted:
    task set, target, unit, the best λ on validation, and the seed-mean validation MAE there,
    at λ = 0 and at λ = ∞ (4 significant digits)."""
    parts = []
    for ts in task_sets(t):
        p = per_task_best_lambda(t, ts)
        parts.append(pd.DataFrame({"task set": ts, "target": p.target, "unit": p.unit, "best λ (valid)": p.setting,
                                   "valid MAE at best": p.valid_mae.map("{:.4g}".format),
                                   "at λ = 0": p.valid_mae_0.map("{:.4g}".format),
                                   "at λ = ∞": p.valid_mae_inf.map("{:.4g}".format)}))
    return pd.concat(parts, ignore_index=True)


def journal_lambda_verdict(f: pd.DataFrame, task_set: str = JOURNAL_TASK_SET) -> dict:
    """The verdict on the journal's "λ ≈ 0.1" for ``task_set``, on the validation split:

    - ``best``: :func:`best_lambda` (the whole path), ``best_finite`` (endpoints left out);
    - ``is_journal``: whether ``best`` is :data:`JOURNAL_LAMBDA`;
    - ``gap``, ``gap_se``, ``gap_n``: the paired (by seed) difference of ``mean_valid_mae_std``
      at :data:`JOURNAL_LAMBDA` minus at ``best`` (0 when they are the same λ; NaN when
      :data:`JOURNAL_LAMBDA` was not trained);
    - ``within``: ``"yes"`` when ``gap <= CLEAR_SE · gap_se`` (or ``best`` is the journal's λ),
      ``"no"`` when beyond, ``"undetermined"`` without a standard error (one seed),
      ``"not trained"`` when the path lacks :data:`JOURNAL_LAMBDA`;
    - ``N`` (constrained parameters of one member), ``best_pp`` = ``best · N`` (the
      per-parameter reading of our best λ; inf for ∞) and ``journal_pp`` = ``JOURNAL_LAMBDA ·
      N`` (the per-parameter reading of the journal's value, in our network);
    - ``text``: one sentence saying all this."""
    curve = validation_curve(f, task_set)
    best, best_finite = best_lambda(f, task_set), best_lambda(f, task_set, finite_only=True)
    g = f[f.task_set == task_set]
    n_param = int(g.N.iloc[0])
    out = {"best": best, "best_finite": best_finite, "is_journal": bool(best == JOURNAL_LAMBDA), "N": n_param,
           "best_pp": best * n_param, "journal_pp": JOURNAL_LAMBDA * n_param}
    if JOURNAL_LAMBDA not in curve.index:
        out.update(gap=math.nan, gap_se=math.nan, gap_n=0, within="not trained")
    elif best == JOURNAL_LAMBDA:
        out.update(gap=0.0, gap_se=0.0, gap_n=int((g.lam == best).sum()), within="yes")
    else:
        gap, se, n = paired_difference(_by_seed(f, task_set, JOURNAL_LAMBDA, "mean_valid_mae_std"),
                                       _by_seed(f, task_set, best, "mean_valid_mae_std"))
        within = "undetermined" if se != se else ("yes" if gap <= CLEAR_SE * se else "no")
        out.update(gap=gap, gap_se=se, gap_n=n, within=within)
    out["text"] = _journal_text(out, TASK_SETS.get(task_set, task_set))
    return out


def _journal_text(v: dict, what: str) -> str:
    best = lam_label(v["best"])
    head = f"On the validation split the best λ for {what} is {best}"
    if v["best"] not in (0.0, math.inf):
        head += f" (per constrained parameter λ N = {v['best_pp']:,.4g}, with N = {v['N']:,})"
    if v["within"] == "not trained":
        return f"{head}; λ = {JOURNAL_LAMBDA:g} was not trained under this profile."
    if v["is_journal"]:
        return f"{head}: the journal's value."
    gap = f"{v['gap']:.2g} ± {v['gap_se']:.2g} (SE, {v['gap_n']} seeds)" if v["gap_se"] == v["gap_se"] else \
        f"{v['gap']:.2g} ({v['gap_n']} seed, no standard error)"
    verdict = {"yes": f"within {CLEAR_SE} standard errors of the best", "no": f"more than {CLEAR_SE} standard "
               "errors worse than the best", "undetermined": "not comparable without a standard error"}[v["within"]]
    return (f"{head}, not {JOURNAL_LAMBDA:g}; λ = {JOURNAL_LAMBDA:g} is {verdict} (its mean standardized "
            f"validation MAE is higher by {gap}).")


def beats_both_verdict(f: pd.DataFrame, task_set: str) -> dict:
    """Whether a finite λ of ``task_set`` beats both single-task (λ = 0) and hard sharing
    (λ = ∞) on Δm, from :func:`summary_frame`: ``clear`` (the finite λ labels that are clearly
    better than both, beyond :data:`CLEAR_SE` paired standard errors), ``mean_only`` (better
    than both in the mean, not clearly), ``n_finite``, the same for cross-stitch
    (``cross_stitch``: ``"clearly"``, ``"in the mean only"``, ``"no"``, or ``"not run"``) and
    ``verdict``: ``"clearly"`` when some finite λ is clearly better than both, ``"in the mean
    only"`` when some is better in the mean only, ``"no"`` otherwise."""
    s = summary_frame(f)
    s = s[s.task_set == task_set]
    fin = s[(s.method == "l2") & (s.lam > 0) & (s.lam < math.inf)]
    clear = [lam_label(x) for x in fin[fin.beats_both].lam]
    mean_only = [lam_label(x) for x in fin[fin.beats_both_mean & ~fin.beats_both].lam]
    cs = s[s.method == "cross_stitch"]

    def word(rows):
        if rows.empty:
            return "not run"
        return "clearly" if rows.beats_both.any() else ("in the mean only" if rows.beats_both_mean.any() else "no")
    return {"clear": clear, "mean_only": mean_only, "n_finite": len(fin), "verdict": word(fin),
            "cross_stitch": word(cs)}


# --- the journal's quantities -----------------------------------------------------------------

def journal_table() -> pd.DataFrame:
    """The journal's table (``journal2019soft``) as printed (cited; one run per λ; split and target
    scaling not stated): its λ_J and total, C_V and U_298 losses."""
    return pd.DataFrame(JOURNAL_TABLE, columns=["λ_J (journal)", "total loss", "C_V loss", "U_298 loss"])


def journal_quantities(f: pd.DataFrame, task_set: str = JOURNAL_TASK_SET) -> pd.DataFrame:
    """Our counterpart of :func:`journal_table` for ``task_set``, per setting of the L2 path
    and cross-stitch: λ (the journal's unnormalised form), λ N (its per-parameter reading), seeds, the
    summed and per-target standardized MSE on the **test** split and the test MAE in the
    targets' units, each as mean ± sd over seeds (3 significant digits)."""
    targets = TARGETS_OF[task_set]
    rows = []
    for lam in _settings(f, task_set):
        g = _rows(f, task_set, lam)
        n_param = g.N.iloc[0]
        row = {"λ (ours)": lam_label(lam), "λ N": "" if lam != lam else
               ("∞" if math.isinf(lam) else f"{lam * n_param:.3g}"), "seeds": len(g),
               "total loss (test)": plots.mean_std(g.test_loss_total, 3).replace("nan", "")}
        for t in targets:
            row[f"{t} loss (test)"] = _g3(g[f"loss_{t}"])
        for t in targets:
            row[f"{t} MAE ({UNITS[t]})"] = _g3(g[f"mae_{t}"])
        rows.append(row)
    return pd.DataFrame(rows)


def _g3(v: pd.Series) -> str:
    """``"m ± s"`` with 3 significant digits (``"m"`` for one value)."""
    v = v.astype(float)
    return f"{v.mean():.3g}" + (f" ± {v.std(ddof=1):.2g}" if len(v) > 1 else "")


# --- figures ----------------------------------------------------------------------------------

def _lam_axis(ax, pos: dict, with_cs: bool = False, every: int = 1) -> None:
    """Log x axis with ticks at the finite λ (powers of ten as 10^k; with ``every`` > 1 only
    every ``every``-th is labelled, the largest always, for narrow panels, where "∞" loses its
    "hard" so that it does not run into "cross-stitch"), "0" and "∞" at the
    endpoints, break marks between, and "cross-stitch" further right when ``with_cs``."""
    fin = sorted(k for k in pos if isinstance(k, float) and 0 < k < math.inf)
    ax.set_xscale("log")
    ticks = [pos[0.0]] + fin + [pos[math.inf]] + ([pos["cross-stitch"]] if with_cs else [])

    def label(i: int, x: float) -> str:
        if (len(fin) - 1 - i) % every:
            return ""
        return f"$10^{{{round(math.log10(x))}}}$" if math.log10(x) == round(math.log10(x)) else f"{x:g}"

    labels = (["0\nsingle-task"] + [label(i, x) for i, x in enumerate(fin)]
              + ["∞\nhard" if every == 1 else "∞"] + (["cross-\nstitch"] if with_cs else []))
    ax.set_xticks(ticks, labels, fontsize=plots.SMALL)
    ax.minorticks_off()
    gap = 10 ** (ENDPOINT_GAP / 2)
    for x in ([fin[0] / gap, fin[-1] * gap] if fin else []):
        ax.text(x, 0.0, "//", transform=ax.get_xaxis_transform(), ha="center", va="center", fontsize=plots.SMALL,
                clip_on=False, bbox={"fc": "white", "ec": "none", "pad": 0.5})
    if with_cs:
        ax.axvline(math.sqrt(pos[math.inf] * pos["cross-stitch"]), color="0.6", lw=0.8, ls=":")
    ax.set_xlim(pos[0.0] / 10 ** (ENDPOINT_GAP / 2),
                (pos["cross-stitch"] if with_cs else pos[math.inf]) * 10 ** (ENDPOINT_GAP / 2))
    ax.set_xlabel("λ (log scale; the endpoints lie off the scale)")


def _path(ax, x: np.ndarray, lams: list[float], mean: np.ndarray, sd: np.ndarray, color, label: str) -> None:
    """A path of means with a ±sd band over the finite λ, dashed links to the endpoints and
    error bars on them."""
    inner = np.array([0 < v < math.inf for v in lams])
    ax.plot(x[inner], mean[inner], "o-", color=color, ms=4, label=label)
    if np.isfinite(sd[inner]).any():
        ax.fill_between(x[inner], (mean - sd)[inner], (mean + sd)[inner], color=color, alpha=0.2, lw=0)
    for end in np.flatnonzero(~inner):
        near = np.flatnonzero(inner)
        if near.size:
            k = near[0] if lams[end] == 0 else near[-1]
            ax.plot([x[end], x[k]], [mean[end], mean[k]], ls="--", lw=0.8, color=color)
        ax.errorbar(x[end], mean[end], yerr=None if not np.isfinite(sd[end]) else sd[end], fmt="s", ms=6,
                    color=color, capsize=3)


def lambda_path_figure(f: pd.DataFrame):
    """Δm (%) against λ, one line per task set: mean over seeds with a ±sd band over the finite
    λ, the endpoints λ = 0 (single-task, Δm = 0 by construction) and λ = ∞ (hard sharing) as
    square markers beyond the axis breaks, and cross-stitch as a horizontal dotted line with a
    ±sd band in the task set's colour. Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    s = summary_frame(f)
    l2 = s[s.method == "l2"]
    pos = lam_positions(set(l2.lam))
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 3.6))
    colors = dict(zip(TASK_SETS, sns.color_palette("colorblind", len(TASK_SETS))))
    for ts in task_sets(f):
        g = l2[l2.task_set == ts]
        lams = list(g.lam)
        _path(ax, np.array([pos[v] for v in lams]), lams, g.dm.to_numpy(), g.dm_sd.to_numpy(), colors[ts],
              f"L2 path, {TASK_SETS[ts]}")
        cs = s[(s.task_set == ts) & (s.method == "cross_stitch")]
        if not cs.empty:
            m, sd = float(cs.dm.iloc[0]), float(cs.dm_sd.iloc[0])
            ax.axhline(m, color=colors[ts], ls=":", lw=1.2, label=f"cross-stitch, {TASK_SETS[ts]}")
            if sd == sd:
                ax.axhspan(m - sd, m + sd, color=colors[ts], alpha=0.08, lw=0)
    ax.axhline(0, color="k", lw=0.8)
    _lam_axis(ax, pos)
    ax.set_ylabel("Δm vs single-task (%)")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def _symlog_y(ax) -> None:
    """Symmetric-log y axis, linear within ±:data:`TARGET_LINTHRESH`, ticks at 1, 2, 5 × 10^k
    labelled as plain signed numbers."""
    from matplotlib.ticker import FuncFormatter, SymmetricalLogLocator

    ax.set_yscale("symlog", linthresh=TARGET_LINTHRESH)
    ax.yaxis.set_major_locator(SymmetricalLogLocator(base=10, linthresh=TARGET_LINTHRESH, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p=None: f"{y:+g}" if y else "0"))


def _task_set_panels(frame: pd.DataFrame):
    """A figure with one panel per task set of ``frame`` (shared y axis): ``(fig, [(ax, task set)])``."""
    import matplotlib.pyplot as plt

    sets = task_sets(frame)
    fig, axes = plt.subplots(1, len(sets), figsize=(plots.FULL_WIDTH, 3.8), squeeze=False, sharey=True)
    return fig, list(zip(axes[0], sets))


def _curves_over_lambda(ax, means: pd.DataFrame, value: str, palette: dict, pos: dict) -> None:
    """One line per key of ``palette`` (its colour): ``means.loc[key]`` (rows per setting, columns
    ``value`` and ``lam``, NaN for cross-stitch) as ``value`` along the λ path at the positions
    ``pos`` (:func:`lam_positions`), cross-stitch as a diamond at ``pos["cross-stitch"]``; then the
    λ axis with cross-stitch (:func:`_lam_axis`), and ``ax``'s x label."""
    for key, color in palette.items():
        r = means.loc[key]
        path, cs = r[r.lam == r.lam].sort_values("lam"), r[r.lam != r.lam]
        ax.plot([pos[v] for v in path.lam], path[value], "o-", ms=3, lw=1, color=color, label=key)
        if len(cs):
            ax.plot(pos["cross-stitch"], cs[value].iloc[0], "D", ms=4, color=color)
    _lam_axis(ax, pos, with_cs=True, every=2)
    ax.set_xlabel("λ")


def target_curves_figure(t: pd.DataFrame):
    """Per task set a panel: per target, the test MAE relative to the λ = 0 run of the same seed
    (%, mean over seeds) against λ, endpoints beyond the axis breaks and cross-stitch as a
    marker further right; symmetric-log y axis, linear within ±:data:`TARGET_LINTHRESH` %; each
    panel's legend under it. Returns the Figure."""
    import seaborn as sns

    fig, panels = _task_set_panels(t)
    for ax, ts in panels:
        g = t[t.task_set == ts]
        rel = g.groupby(["target", "setting"], sort=False).agg(rel=("rel", "mean"), lam=("lam", "first"))
        targets = [x for x in TARGETS_OF[ts] if x in set(g.target)]
        palette = dict(zip(targets, sns.color_palette("tab20" if len(targets) > 10 else "colorblind",
                                                      len(targets))))
        _symlog_y(ax)  # before the λ axis, which turns minor ticks off
        _curves_over_lambda(ax, rel, "rel", palette, lam_positions(set(g[g.method == "l2"].lam)))
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(TASK_SETS[ts])
    panels[0][0].set_ylabel("test MAE vs λ = 0 (%)")
    fig.tight_layout()
    for ax, _ in panels:  # each panel's targets under it (inside, 11 of them hid the curves)
        plots.legend_below(fig, ax, ncol=3 if len(ax.get_legend_handles_labels()[1]) > 6 else 2, under=[ax])
    return fig


def distance_figure(d: pd.DataFrame):
    """Per task set a panel: the distance between the task networks' weights after training,
    per encoder layer (mean over seeds; one line per layer, coloured by depth) against λ on log
    axes; λ = ∞ is left out (0 by construction: one tied encoder) and cross-stitch is a marker
    per layer to the right. Returns the Figure."""
    import seaborn as sns

    fig, panels = _task_set_panels(d)
    for ax, ts in panels:
        g = d[(d.task_set == ts) & ~((d.method == "l2") & (d.lam == math.inf))]
        layers = list(dict.fromkeys(g.layer))
        pos = lam_positions(set(d[(d.task_set == ts) & (d.method == "l2")].lam))
        m = g.groupby(["layer", "setting"], sort=False).agg(distance=("distance", "mean"), lam=("lam", "first"))
        _curves_over_lambda(ax, m, "distance", dict(zip(layers, sns.color_palette("viridis", len(layers)))), pos)
        plots.log_axis(ax, "y", counts=False, subs=(1.0,))
        ax.text(pos[math.inf], 0.5, "0 by\nconstruction", transform=ax.get_xaxis_transform(), ha="center",
                va="center", fontsize=plots.SMALL, color="0.4", rotation=90)
        ax.set_title(TASK_SETS[ts])
    panels[0][0].set_ylabel("‖θ_i − θ_j‖ / ‖θ‖ after training")
    fig.tight_layout()
    plots.legend_below(fig, panels[-1][0], ncol=4)
    return fig


# --- glued values -----------------------------------------------------------------------------

def glue_values(records: list[dict], stl_records: list[dict] | None = None) -> dict:
    """Every value the chapter glues, by name (plain float, int or str), from the
    ``qm9_soft_sharing`` records:

    - set-up: ``profile``, ``n_runs``, ``devices``, ``seeds``, ``n_seeds``, ``epochs``,
      ``n_train`` (thousands-separated), ``layers``, ``hidden``, ``n_lams`` (finite λ of the
      path), ``lam_min``, ``lam_max`` (labels), the thresholds ``clear_se`` and
      ``journal_lambda``;
    - per task set ``s``: ``n_targets_<s>``, ``N_<s>`` (constrained parameters of one member,
      thousands-separated); Δm mean and sd (%) at λ = ∞ ``dm_inf_<s>``, ``dm_inf_<s>_sd``, for
      cross-stitch ``dm_cs_<s>``, ``dm_cs_<s>_sd``, at the λ chosen among the finite ones on
      validation ``dm_chosen_<s>``, ``dm_chosen_<s>_sd`` with its paired differences against
      λ = 0 and ∞ and their SEs (``chosen_vs0_<s>``, ``chosen_vs0_<s>_se``, ``chosen_vsinf_<s>``,
      ``chosen_vsinf_<s>_se``) and whether each is clear (``chosen_beats0_<s>``,
      ``chosen_beatsinf_<s>``: "yes"/"no"); the lowest mean Δm of a finite λ ``dm_min_<s>`` and
      its λ ``dm_min_lam_<s>``; the chosen λ (``best_lam_<s>`` over the whole path,
      ``best_finite_lam_<s>``: labels; ``best_finite_lam_pp_<s>`` = λ N); the verdict
      ``beats_both_<s>`` ("clearly", "in the mean only", "no") with ``n_beats_both_clear_<s>``,
      ``n_beats_both_mean_<s>`` (counts of finite λ), ``n_finite_<s>``, ``beats_both_lams_<s>``
      (labels, "none") and ``cs_beats_both_<s>``; per target best λ counts
      ``n_best_zero_<s>``, ``n_best_finite_<s>``, ``n_best_inf_<s>`` and the labels
      ``best_lam_<s>_<t>``; the seed-mean distance (mean over layers) at λ = 0
      ``dist0_<s>``, at the chosen finite λ ``dist_chosen_<s>`` and for cross-stitch
      ``dist_cs_<s>``; the largest finite λ against hard sharing (:func:`endpoint_gap`):
      ``gap_lam_<s>`` (label), ``gap_dm_<s>`` and ``gap_dm_<s>_se`` (paired Δm difference,
      points), ``gap_train_pct_<s>`` and ``gap_train_pct_<s>_se`` (final training MSE above
      hard sharing's, %), ``gap_dist_<s>``;
    - the journal verdict: ``journal_best_is`` ("yes"/"no"), ``journal_within`` ("yes", "no",
      "undetermined", "not trained"), ``journal_gap``, ``journal_gap_se`` (NaN where not
      defined), ``journal_verdict`` (a sentence), ``journal_pp`` (0.1 · N: the journal's value
      read per constrained parameter of our network);
    - the journal's table (cited): ``journal_best_lam_J`` (its lowest total loss's λ_J),
      ``journal_best_total``, ``journal_worst_total``, ``journal_span_pct`` (worst / best − 1, %);
    - ours on the journal's pair at the chosen finite λ, test split: ``ours_total``,
      ``ours_loss_<t>``, ``ours_mae_<t>`` (seed means) and ``ours_U_share_pct`` (U's share of
      the total standardized loss, %), and ``ours_total_cv_pct``: the median over the λ of the
      path of sd/mean of the total loss over seeds (%; NaN for one seed);
    - with ``stl_records`` (``qm9_single_task``), :func:`single_task_agreement`:
      ``stl_agreement`` (its verdict sentence), ``stl_identical`` ("yes"/"no"),
      ``stl_max_diff_pct``, ``stl_seeds``, ``stl_targets``."""
    f, t, d = runs_frame(records), target_frame(records), distance_frame(records)
    cfg = records[0]["config"]
    seeds = sorted({r["config"]["seed"] for r in records})
    fin = _finite(set(f[f.method == "l2"].lam))
    v: dict = {"profile": profile_of(records), "n_runs": len(records), "devices": devices_of(records),
               "seeds": ", ".join(str(s) for s in seeds), "n_seeds": len(seeds), "epochs": cfg["epochs"],
               "n_train": f"{records[0]['model']['n_train']:,}", "layers": cfg["model_kwargs"]["layers"],
               "hidden": cfg["model_kwargs"]["hidden"], "n_lams": len(fin), "lam_min": lam_label(fin[0]),
               "lam_max": lam_label(fin[-1]), "clear_se": CLEAR_SE, "journal_lambda": JOURNAL_LAMBDA}
    s = summary_frame(f)
    for ts in task_sets(f):
        st = s[s.task_set == ts].set_index("setting")
        v[f"n_targets_{ts}"] = len(TARGETS_OF[ts])
        v[f"N_{ts}"] = f"{int(f[f.task_set == ts].N.iloc[0]):,}"
        for name, label in (("inf", "∞"), ("cs", "cross-stitch")):
            v[f"dm_{name}_{ts}"] = float(st.loc[label, "dm"]) if label in st.index else math.nan
            v[f"dm_{name}_{ts}_sd"] = _sd(st.loc[label, "dm_sd"]) if label in st.index else math.nan
        best, chosen = best_lambda(f, ts), best_lambda(f, ts, finite_only=True)
        row = st.loc[lam_label(chosen)]
        v.update({f"best_lam_{ts}": lam_label(best), f"best_finite_lam_{ts}": lam_label(chosen),
                  f"best_finite_lam_pp_{ts}": chosen * int(f[f.task_set == ts].N.iloc[0]),
                  f"dm_chosen_{ts}": float(row.dm), f"dm_chosen_{ts}_sd": _sd(row.dm_sd),
                  f"chosen_vs0_{ts}": float(row.vs0), f"chosen_vs0_{ts}_se": float(row.vs0_se),
                  f"chosen_vsinf_{ts}": float(row.vsinf), f"chosen_vsinf_{ts}_se": float(row.vsinf_se),
                  f"chosen_beats0_{ts}": "yes" if row.beats0 else "no",
                  f"chosen_beatsinf_{ts}": "yes" if row.beatsinf else "no",
                  f"dist0_{ts}": float(st.loc["0", "distance"]), f"dist_chosen_{ts}": float(row.distance),
                  f"dist_cs_{ts}": float(st.loc["cross-stitch", "distance"]) if "cross-stitch" in st.index
                  else math.nan})
        path = s[(s.task_set == ts) & (s.method == "l2") & (s.lam > 0) & (s.lam < math.inf)]
        low = path.loc[path.dm.idxmin()]
        v[f"dm_min_{ts}"], v[f"dm_min_lam_{ts}"] = float(low.dm), low.setting
        bb = beats_both_verdict(f, ts)
        v.update({f"beats_both_{ts}": bb["verdict"], f"n_beats_both_clear_{ts}": len(bb["clear"]),
                  f"n_beats_both_mean_{ts}": len(bb["clear"]) + len(bb["mean_only"]),
                  f"n_finite_{ts}": bb["n_finite"], f"beats_both_lams_{ts}": ", ".join(bb["clear"]) or "none",
                  f"cs_beats_both_{ts}": bb["cross_stitch"]})
        gap = endpoint_gap(f, ts)
        v.update({f"gap_lam_{ts}": lam_label(gap["lam"]), f"gap_dm_{ts}": float(gap["dm"]),
                  f"gap_dm_{ts}_se": _sd(gap["dm_se"]), f"gap_train_pct_{ts}": float(gap["train_pct"]),
                  f"gap_train_pct_{ts}_se": _sd(gap["train_pct_se"]), f"gap_dist_{ts}": float(gap["distance"])})
        per = per_task_best_lambda(t, ts)
        v[f"n_best_zero_{ts}"] = int((per.best == 0).sum())
        v[f"n_best_inf_{ts}"] = int((per.best == math.inf).sum())
        v[f"n_best_finite_{ts}"] = int(len(per) - v[f"n_best_zero_{ts}"] - v[f"n_best_inf_{ts}"])
        for _, r in per.iterrows():
            v[f"best_lam_{ts}_{r.target}"] = r.setting
    if JOURNAL_TASK_SET in task_sets(f):
        jv = journal_lambda_verdict(f)
        v.update({"journal_best_is": "yes" if jv["is_journal"] else "no", "journal_within": jv["within"],
                  "journal_gap": float(jv["gap"]), "journal_gap_se": float(jv["gap_se"]),
                  "journal_verdict": jv["text"], "journal_pp": float(jv["journal_pp"])})
        chosen = best_lambda(f, JOURNAL_TASK_SET, finite_only=True)
        g = _rows(f, JOURNAL_TASK_SET, chosen)
        v["ours_total"] = float(g.test_loss_total.mean())
        for tg in TARGETS_OF[JOURNAL_TASK_SET]:
            v[f"ours_loss_{tg}"] = float(g[f"loss_{tg}"].mean())
            v[f"ours_mae_{tg}"] = float(g[f"mae_{tg}"].mean())
        v["ours_U_share_pct"] = 100 * v["ours_loss_U"] / v["ours_total"]
        st = s[(s.task_set == JOURNAL_TASK_SET) & (s.method == "l2")]
        v["ours_total_cv_pct"] = float((100 * st.test_loss_sd / st.test_loss).median())
    if stl_records is not None:
        a = single_task_agreement(records, stl_records)
        v.update({"stl_agreement": a["verdict"], "stl_identical": "yes" if a["identical"] else "no",
                  "stl_max_diff_pct": float(a["max_diff_pct"]), "stl_seeds": a["seeds"], "stl_targets": a["targets"]})
    jt = journal_table()
    best_row, worst_row = jt.loc[jt["total loss"].idxmin()], jt.loc[jt["total loss"].idxmax()]
    v.update({"journal_best_lam_J": float(best_row["λ_J (journal)"]),
              "journal_best_total": float(best_row["total loss"]),
              "journal_worst_total": float(worst_row["total loss"]),
              "journal_span_pct": float(100 * (worst_row["total loss"] / best_row["total loss"] - 1))})
    return v


def _sd(x) -> float:
    """An sd for glue: 0.0 where undefined (one seed), as the other QM9 chapters glue it."""
    x = float(x)
    return 0.0 if x != x else x
