"""Chapter "Tensor-factorized sharing on QM9" (``notebooks/pending/qm9_tensor_mtl.ipynb``): the GINE encoder shared by DMTRL's LAF / Tucker / TT and deep relationship networks (MRN)
on the 11 benchmark targets, from the records of ``qm9_tensor_mtl``
(:mod:`factorlab.experiments.qm9_tensor_mtl`), beside hard sharing and the best soft sharing of
``qm9_soft_sharing`` (task set ``nash11``).

- Δm (%, :func:`factorlab.mtl.delta_m`, negative: better than single-task) of every run is
  taken against the ``qm9_single_task`` records of the *same seed* holding all 11 targets, the
  book's one single-task reference
  (:func:`factorlab.experiments.qm9_pairs.reference_from_records`, budget-checked against the
  runs compared). Nothing stands in for it: a run whose seed has no such records has no Δm
  (left out of :func:`delta_m_frame`; :func:`missing_reference` says which seeds and how to make
  them), neither the single-task stack the ``qm9_tensor_mtl`` run trained itself (its record's
  ``reference_check`` only says whether that stack reproduced the reference) nor soft sharing's
  λ = 0 run. Summaries are mean ± standard error over seeds (SE: sd / sqrt(n), NaN for one
  seed).
- Hard sharing is ``qm9_soft_sharing``'s λ = ∞ run (equal-weight hard sharing); "best soft
  sharing" its finite λ with the lowest seed-mean validation criterion
  (:func:`factorlab.report.qm9_soft_sharing.best_lambda`), chosen on validation only. MRN's λ is
  chosen the same way (lowest seed-mean ``mean_valid_mae_std``).
- Parameters are the trained network's; seconds the fine-tuning's training steps, and "with
  pretraining" adds the single-task stack's training and the decomposition.
- Learned sharing: per encoder map, the task rank the 10 % decomposition picked, as a share of
  the T tasks (``rank_used``: 1/T shared up to a per-task scale, 1 task-specific); mean over
  seeds.
- MRN's learned task correlation (the heads' ΣT scaled to unit diagonal), mean over seeds, drawn
  in the relatedness chapter's task order (:func:`relatedness_order`: the clustering of the
  measured pair gains) where those records exist, else NASH11's order; how well it predicts
  those gains is the relatedness chapter's computation
  (:func:`factorlab.report.qm9_relatedness.mrn_prediction_text`: Spearman ρ of ``|C|`` with the
  seed-mean gains, bootstrap over task pairs).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.experiments.qm9_common import NASH11
from factorlab.experiments.qm9_pairs import reference_from_records
from factorlab.experiments.qm9_tensor_mtl import FACTORIZED, MRN_LAMBDAS, REL_ERROR
from factorlab.mtl import delta_m
from factorlab.report.formatting import pm
from factorlab.report.provenance import quiet_label, quiet_of, quiet_sentence
# MRN's λ (lowest seed-mean validation error) and the layer whose learned task correlation the
# chapter draws, shared with the relatedness chapter
from factorlab.report.mrn_correlation import CORRELATION_LAYER, best_mrn_lambda, correlation_gap
from factorlab.analysis import paired_difference
from factorlab.report.verdicts import CLEAR_SE, NOT_MEASURED, paired_outcome

#: Above this, every learned task correlation reads as one on a -1..1 colour scale:
#: :func:`correlation_figure` then draws ``1 - C`` on its own scale.
NEAR_ONE = 0.99

#: Row labels of the methods, in display order (MRN rows add their λ).
METHOD_LABEL = {"hard": "hard sharing", "soft": "soft sharing (best λ)", "laf": "DMTRL LAF",
                "tucker": "DMTRL Tucker", "tt": "DMTRL TT", "mrn": "MRN",
                "deep": "deeper hard sharing (Tucker's parameters)",
                "finetune": "single-task, fine-tuned again (control)"}


def _nash11(records: list[dict]) -> list[dict]:
    return [r for r in records if r["config"].get("task_set", "nash11") == "nash11"
            and list(r["config"]["targets"]) == NASH11]


def method_of(record: dict) -> str:
    """A ``qm9_tensor_mtl`` record's row label: the method's, MRN with its λ."""
    c = record["config"]
    return f"MRN λ={c['lam']:g}" if c["method"] == "mrn" else METHOD_LABEL[c["method"]]


def pretrain_s(record: dict) -> float:
    """Seconds a ``qm9_tensor_mtl`` run's method spent before its own training: the single-task
    stack and the decomposition it starts from; 0 for the deeper network, which trains from
    scratch (its run trained the stack only to count the Tucker network's parameters, which is
    no part of its own cost)."""
    t = record["timing"]
    return 0.0 if record["config"]["method"] == "deep" else t["single_s"] + t["factorize_s"]


def runs_frame(tensor_records: list[dict]) -> pd.DataFrame:
    """One row per ``qm9_tensor_mtl`` run: ``method`` (its key), ``label``, ``lam``, ``seed``,
    ``params``, ``single_params``, ``train_s`` (fine-tuning), ``pretrain_s`` (stack +
    decomposition), ``mean_valid_mae_std``, ``reference_equal`` and ``mae_<t>`` per target."""
    rows = []
    for r in tensor_records:
        c, m, t = r["config"], r["metrics"], r["timing"]
        row = {"method": c["method"], "label": method_of(r), "lam": c.get("lam"), "seed": c["seed"],
               "params": r["model"]["params"], "single_params": r["model"]["single_params"],
               "train_s": t["train_s"], "pretrain_s": pretrain_s(r),
               "mean_valid_mae_std": m["mean_valid_mae_std"], "reference_equal": m["reference_check"]["equal"]}
        row.update({f"mae_{k}": v for k, v in m["test_mae"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _soft_rows(soft_records: list[dict]) -> list[tuple[str, dict]]:
    """(label, record) of hard sharing and the best finite λ of ``qm9_soft_sharing`` on nash11."""
    from factorlab.report import qm9_soft_sharing as soft

    recs = [r for r in _nash11(soft_records) if r["config"]["method"] == "l2"]
    out = [(METHOD_LABEL["hard"], r) for r in recs if r["config"]["lam"] == "inf"]
    lam0 = {r["config"]["seed"] for r in recs if r["config"]["lam"] == 0}
    finite = [r for r in recs if r["config"]["lam"] not in (0, "inf")]
    if finite and lam0:
        f = soft.runs_frame([r for r in recs if r["config"]["seed"] in lam0])
        try:
            best = soft.best_lambda(f, "nash11", finite_only=True)
        except ValueError:
            return out
        out += [(METHOD_LABEL["soft"], r) for r in finite if float(r["config"]["lam"]) == best]
    return out


def _compared(tensor_records: list[dict], stl_records: list[dict], soft_records: list[dict] = ()):
    """(label, record, single-task test MAE per target of its seed) of every run
    :func:`delta_m_frame` compares, in its row order (hard and best soft sharing first; MRN only
    at :func:`best_mrn_lambda`; runs whose seed has no reference left out).

    Raises:
        ValueError: a ``qm9_single_task`` record's budget differs from a compared run's.
    """
    soft_rows = _soft_rows(soft_records)
    ref = reference_from_records(stl_records, NASH11, [*tensor_records, *(r for _, r in soft_rows)])
    best = best_mrn_lambda(tensor_records)
    for label, r in soft_rows:
        if r["config"]["seed"] in ref:
            yield label, r, ref[r["config"]["seed"]]
    for r in tensor_records:
        c = r["config"]
        if c["seed"] in ref and not (c["method"] == "mrn" and c["lam"] != best):
            yield method_of(r), r, ref[c["seed"]]


def delta_m_frame(tensor_records: list[dict], stl_records: list[dict], soft_records: list[dict] = ()) -> pd.DataFrame:
    """One row per run and seed with a reference: ``label``, ``seed``, ``delta_m`` (%),
    ``params``, ``train_s`` and ``total_s`` (with pretraining, :func:`pretrain_s`; equal to
    ``train_s`` for hard and soft sharing). MRN only at :func:`best_mrn_lambda`. Runs whose seed
    has no ``qm9_single_task`` reference (module docstring) are left out
    (:func:`missing_reference` names them).

    ``quiet`` (:func:`~factorlab.report.provenance.quiet_of`: whether the run was timed on a
    quiet machine; None where unknown).

    Raises:
        ValueError: a ``qm9_single_task`` record's budget differs from a compared run's.
    """
    rows = []
    for label, r, ref in _compared(tensor_records, stl_records, soft_records):
        soft = label in (METHOD_LABEL["hard"], METHOD_LABEL["soft"])
        rows.append({"label": label, "seed": r["config"]["seed"],
                     "delta_m": 100 * delta_m(r["metrics"]["test_mae"], ref, NASH11),
                     "params": r["model"]["params"], "train_s": r["timing"]["train_s"],
                     "total_s": r["timing"]["train_s"] + (0.0 if soft else pretrain_s(r)), "quiet": quiet_of(r)})
    return pd.DataFrame(rows, columns=["label", "seed", "delta_m", "params", "train_s", "total_s", "quiet"])


def target_frame(tensor_records: list[dict], stl_records: list[dict], soft_records: list[dict] = ()) -> pd.DataFrame:
    """Per compared run (as :func:`delta_m_frame`) and target: ``label``, ``seed``, ``target``
    and ``change``, the test MAE's change against the single-task network of the same seed
    (%; negative: better). Δm is the mean of ``change`` over the targets."""
    rows = [{"label": label, "seed": r["config"]["seed"], "target": t,
             "change": 100 * (r["metrics"]["test_mae"][t] / ref[t] - 1)}
            for label, r, ref in _compared(tensor_records, stl_records, soft_records) for t in NASH11]
    return pd.DataFrame(rows, columns=["label", "seed", "target", "change"])


def _display_order(labels) -> list[str]:
    order = [l for l in METHOD_LABEL.values() if l != "MRN"]
    return sorted(set(labels), key=lambda l: (order.index(l) if l in order else len(order), l))


def delta_m_figure(frame: pd.DataFrame):
    """Δm (%) per method of :func:`delta_m_frame` (display order, top to bottom): one dot per
    seed and the mean ± standard error; the single-task networks at 0 and, where present, the
    fine-tuned control's mean as a dashed line."""
    import matplotlib.pyplot as plt

    labels = _display_order(frame.label)
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 0.45 * len(labels) + 1.0))
    for y, label in enumerate(labels):
        d = frame[frame.label == label].delta_m
        ax.scatter(d, [y] * len(d), s=18, color="0.55", zorder=2, label="a seed" if y == 0 else None)
        ax.errorbar(d.mean(), y, xerr=_se(d) if len(d) > 1 else None, fmt="o", color="C0", ms=6, capsize=3,
                    zorder=3, label="mean ± SE" if y == 0 else None)
    ax.axvline(0, color="k", lw=0.8)
    ctrl = frame[frame.label == METHOD_LABEL["finetune"]].delta_m
    if not ctrl.empty:
        ax.axvline(ctrl.mean(), color="C3", ls="--", lw=1, label="fine-tuned control (mean)")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("Δm against the single-task networks (%)")
    fig.tight_layout()
    plots.legend_below(fig, ax, ncol=3)
    return fig


def target_figure(tf: pd.DataFrame):
    """Heat map of :func:`target_frame`'s ``change`` (mean over seeds, %), methods (display
    order) x targets, annotated; blue: better than the single-task network."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    m = tf.groupby(["label", "target"]).change.mean().unstack("target")
    m = m.loc[_display_order(m.index), [t for t in NASH11 if t in m.columns]]
    lim = float(np.nanmax(np.abs(m.to_numpy()))) if m.size else 1.0
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 0.42 * len(m) + 1.6))
    sns.heatmap(m, cmap="RdBu_r", center=0, vmin=-lim, vmax=lim, annot=m.round(0) + 0.0, fmt=".0f",  # no "-0"
                annot_kws={"size": plots.SMALL}, cbar_kws={"label": "test MAE change (%)"}, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def missing_reference(tensor_records: list[dict], stl_records: list[dict], soft_records: list[dict] = ()) -> str:
    """One sentence naming the seeds of the ``qm9_tensor_mtl`` and nash11 ``qm9_soft_sharing``
    runs that have no ``qm9_single_task`` reference of all 11 targets (so no Δm) and the command
    that makes it; "" when every seed has one."""
    ref = reference_from_records(stl_records, NASH11)
    runs = [*tensor_records, *_nash11(soft_records)]
    seeds = sorted({r["config"]["seed"] for r in runs} - set(ref))
    if not seeds:
        return ""
    profiles = sorted({r["config"]["profile"] for r in runs if "profile" in r["config"]})
    flag = f" --profile {profiles[0]}" if len(profiles) == 1 else ""
    return (f"no Δm for seed(s) {', '.join(map(str, seeds))}: their qm9_single_task reference of the "
            f"{len(NASH11)} targets is missing (run `python -m factorlab run qm9_single_task{flag}`)")


def _se(x: pd.Series) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def summary_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method (display order): ``n_seeds``, ``delta_m`` mean and ``delta_m_se``, mean
    ``params``, ``train_s`` and ``total_s``, and ``quiet``
    (:func:`~factorlab.report.provenance.quiet_label` of its runs' timings)."""
    rows = []
    for label in _display_order(frame.label):
        g = frame[frame.label == label]
        flags = list(g.quiet) if "quiet" in g else [None] * len(g)
        rows.append({"label": label, "n_seeds": len(g), "delta_m": g.delta_m.mean(), "delta_m_se": _se(g.delta_m),
                     "params": g.params.mean(), "train_s": g.train_s.mean(), "total_s": g.total_s.mean(),
                     "quiet": quiet_label([None if f is None or f != f else bool(f) for f in flags])})
    return pd.DataFrame(rows, columns=["label", "n_seeds", "delta_m", "delta_m_se", "params", "train_s", "total_s",
                                       "quiet"])


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary_frame` formatted for the chapter: Δm as mean ± SE over seeds, and beside
    the seconds whether they were timed on a quiet machine."""
    s = summary_frame(frame)
    return pd.DataFrame({"method": s.label, "seeds": s.n_seeds,
                         "Δm (%), mean ± SE": [pm(m, e, "+.1f") for m, e in zip(s.delta_m, s.delta_m_se)],
                         "parameters": [f"{p:,.0f}" for p in s.params],
                         "training (s)": [f"{t:.3g}" for t in s.train_s],
                         "with pretraining (s)": [f"{t:.3g}" for t in s.total_s],
                         "timed on a quiet machine": s.quiet})


def layer_key(name: str) -> tuple:
    """Sort key putting encoder map names in module order (``encoder.node_in``, then per
    convolution ``nn.0``, ``nn.2``, ``lin``), whatever order a record's JSON keeps them in."""
    parts = name.split(".")
    if len(parts) >= 4 and parts[1] == "convs" and parts[2].isdigit():
        rest = ".".join(parts[3:])
        return (1, int(parts[2]), {"nn.0": 0, "nn.2": 1, "lin": 2}.get(rest, 3), rest)
    return (0 if name == "encoder.node_in" else 2, 0, 0, name)


def sharing_frame(tensor_records: list[dict]) -> pd.DataFrame:
    """Per factorized method and encoder map (module order): mean over seeds of ``task_rank``,
    ``rank_used`` (task rank / T), ``init_rel_error`` and ``effective_rank`` (after fine-tuning;
    NaN where a record lacks it)."""
    rows = []
    for r in tensor_records:
        if r["config"]["method"] not in FACTORIZED:
            continue
        for k, (name, s) in enumerate(sorted(r["model"]["sharing"].items(), key=lambda kv: layer_key(kv[0]))):
            rows.append({"label": method_of(r), "order": k, "layer": name, "seed": r["config"]["seed"],
                         "task_rank": s["task_rank"], "rank_used": s["rank_used"],
                         "init_rel_error": s["init_rel_error"],
                         "effective_rank": s.get("effective_rank", math.nan)})
    cols = ["task_rank", "rank_used", "init_rel_error", "effective_rank"]
    f = pd.DataFrame(rows, columns=["label", "order", "layer", "seed", *cols])
    if f.empty:
        return f.drop(columns=["order", "seed"])
    return (f.groupby(["label", "order", "layer"], sort=False)[cols].mean()
            .reset_index().drop(columns="order"))


def sharing_table(tensor_records: list[dict]) -> pd.DataFrame:
    """:func:`sharing_frame` as layers x methods: the rank share kept (``task rank / T``) and,
    in parentheses where recorded, the effective task rank after fine-tuning."""
    f = sharing_frame(tensor_records)
    if f.empty:
        return pd.DataFrame()
    f = f.assign(cell=[f"{r:.2f}" + (f" ({e:.1f})" if e == e else "") for r, e in zip(f.rank_used, f.effective_rank)])
    t = f.pivot(index="layer", columns="label", values="cell")
    return t.loc[list(dict.fromkeys(f.layer)), list(dict.fromkeys(f.label))]


def sharing_summary(tensor_records: list[dict]) -> dict:
    """The learned sharing in a few values (``qm9_`` glue): the encoder map with the lowest and
    the highest rank share kept, averaged over the factorized methods (``most_shared`` /
    ``least_shared``: its name and the methods' range, e.g. ``encoder.convs.0.lin (0.09 to
    0.41)``), and the range of the effective task rank after fine-tuning over every method and
    map (``eff_rank_range``, ``1.0 to 2.8``); "not measured" without factorized runs."""
    f = sharing_frame(tensor_records)
    keys = ("qm9_most_shared", "qm9_least_shared", "qm9_eff_rank_range")
    if f.empty:
        return dict.fromkeys(keys, NOT_MEASURED)
    by_layer = f.groupby("layer", sort=False).rank_used
    mean = by_layer.mean()

    def span(layer: str) -> str:
        return f"{layer} ({by_layer.get_group(layer).min():.2f} to {by_layer.get_group(layer).max():.2f})"

    eff = f.effective_rank.dropna()
    return {"qm9_most_shared": span(mean.idxmin()), "qm9_least_shared": span(mean.idxmax()),
            "qm9_eff_rank_range": NOT_MEASURED if eff.empty else f"{eff.min():.1f} to {eff.max():.1f}"}


def task_correlation(tensor_records: list[dict], lam: float | None = None,
                     layer: str = CORRELATION_LAYER) -> pd.DataFrame | None:
    """MRN's learned task correlation of ``layer`` at ``lam`` (default :func:`best_mrn_lambda`),
    mean over seeds, NASH11 x NASH11; None without MRN runs."""
    lam = best_mrn_lambda(tensor_records) if lam is None else lam
    mats = [np.asarray(r["metrics"]["task_correlation"][layer], float) for r in tensor_records
            if r["config"]["method"] == "mrn" and r["config"]["lam"] == lam]
    if not mats:
        return None
    return pd.DataFrame(np.mean(mats, axis=0), index=NASH11, columns=NASH11)


def relatedness_order(pair_records: list[dict], stl_records: list[dict]) -> list[str] | None:
    """The relatedness chapter's task order: :func:`factorlab.report.qm9_relatedness.cluster_order`
    of the seed-mean measured pair gains over NASH11; None while no seed has every pair."""
    from factorlab.report import qm9_relatedness as rel

    gains = rel.gain_matrices(pair_records, reference_from_records(stl_records, NASH11, pair_records), NASH11)
    return rel.cluster_order(rel.mean_matrix(gains)) if gains else None


def correlation_figure(corr: pd.DataFrame, order: list[str] | None = None):
    """Heatmap of a task correlation matrix in ``order`` (default: its own): diverging, -1..1; or,
    when every off-diagonal entry is above :data:`NEAR_ONE` (a -1..1 scale would show one flat
    colour), ``1 - C`` off the diagonal on its own scale, in units of its largest power of ten
    (smaller: more correlated; the diagonal left blank). Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = list(order) if order is not None else list(corr.index)
    c = corr.loc[order, order]
    diag = np.eye(len(c), dtype=bool)
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 0.9 * plots.FULL_WIDTH))
    off = c.to_numpy()[~diag]
    if off.size and off.min() > NEAR_ONE:
        gap = 1.0 - c
        exp = int(math.floor(math.log10(max(float(gap.to_numpy()[~diag].max()), 1e-300))))
        sns.heatmap(gap / 10.0 ** exp, mask=diag, cmap="viridis", square=True, ax=ax, xticklabels=True,
                    yticklabels=True, cbar_kws={"label": f"1 − learned task correlation (× 1e{exp})"})
        ax.grid(False)  # the theme's grid would cross the blank diagonal
    else:
        sns.heatmap(c, cmap="RdBu_r", vmin=-1, vmax=1, center=0, square=True, ax=ax,
                    xticklabels=True, yticklabels=True, cbar_kws={"label": "learned task correlation"})
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def paired_delta_m(frame: pd.DataFrame, label: str, other: str) -> tuple[float, float, int] | None:
    """Method ``label``'s Δm minus ``other``'s, paired by seed over the seeds both have in
    ``frame`` (:func:`delta_m_frame`): (mean in points of Δm, its standard error, NaN for one
    seed, number of seeds), or None when either has no row or no seed is common."""
    a = frame[frame.label == label].set_index("seed").delta_m
    b = frame[frame.label == other].set_index("seed").delta_m
    if a.empty or b.empty or not set(a.index) & set(b.index):
        return None
    return paired_difference(a, b)


def beats_verdict(frame: pd.DataFrame, label: str, other: str) -> str:
    """Whether method ``label``'s Δm is clearly below ``other``'s, paired by seed
    (:func:`paired_delta_m`, :func:`factorlab.report.verdicts.paired_outcome`): "lower",
    "higher", "within noise", "too few seeds" (one common seed: no standard error), or "not
    measured" when either has no row."""
    diff = paired_delta_m(frame, label, other)
    if diff is None:
        return NOT_MEASURED
    return paired_outcome(diff[0], diff[1], "lower", "higher", "within noise", "too few seeds")


def paired_text(frame: pd.DataFrame, label: str, other: str, with_n: bool = False) -> str:
    """:func:`paired_delta_m` as text, ``-1.5 ± 0.2 points`` (the SE left out for one seed;
    ``with_n``: ``-1.5 ± 0.2 points, n = 3``), or "not measured"."""
    diff = paired_delta_m(frame, label, other)
    if diff is None:
        return NOT_MEASURED
    return pm(diff[0], diff[1], "+.1f") + " points" + (f", n = {diff[2]}" if with_n else "")


def glue_values(profile: str, tensor_records: list[dict], stl_records: list[dict],
                soft_records: list[dict] = (), pair_records: list[dict] = ()) -> dict:
    """Every value the QM9 part glues (``qm9_`` prefix): the decomposition's relative error, the
    number of targets, MRN's λ grid, seeds, references checked, the best MRN
    λ, Δm of each method (text, mean ± SE or "not measured") and its mean parameter count
    (``qm9_params_<method>``; ``qm9_params_single``: the single-task networks together), the seeds without a single-task
    reference (``qm9_reference_missing``: :func:`missing_reference`, "" when none), the
    verdicts (paired by seed) of each DMTRL method, MRN and the deeper network against hard
    sharing, of each DMTRL method and MRN against the ``finetune`` control
    (``qm9_<method>_vs_finetune``: "lower" means the sharing beat a second training budget
    without it; ``qm9_<method>_vs_finetune_diff``: the paired difference, :func:`paired_text`;
    ``qm9_n_beat_finetune`` / ``qm9_n_lose_finetune`` of ``qm9_n_shared_methods``: how many
    of those measured are clearly lower / higher), and of
    Tucker against the deeper hard-shared network of its parameter count
    (``qm9_tucker_vs_deep``: "lower" means tensor factorization beat adding layers), each with
    its paired difference and seed count (``qm9_<method>_vs_hard_diff``,
    ``qm9_tucker_vs_deep_diff``: :func:`paired_text` ``with_n``), whether the compared runs were
    timed on a quiet machine (``qm9_time_quiet``,
    :func:`~factorlab.report.provenance.quiet_sentence`), the threshold of a clear difference
    (``qm9_clear_se``, :data:`~factorlab.report.verdicts.CLEAR_SE`), the learned
    sharing (:func:`sharing_summary`), and how well
    MRN's learned task correlation predicts the measured pair gains of ``pair_records``
    (``qm9_pairs``; ``qm9_mrn_gain_rho``:
    :func:`factorlab.report.qm9_relatedness.mrn_prediction_text`, "not measured" without either)."""
    from factorlab.report.qm9_relatedness import mrn_prediction_text

    frame = delta_m_frame(tensor_records, stl_records, soft_records) if tensor_records or soft_records else \
        pd.DataFrame(columns=["label", "seed", "delta_m", "params", "train_s", "total_s"])
    summary = summary_frame(frame)
    checks = [r["metrics"]["reference_check"]["equal"] for r in tensor_records]
    best = best_mrn_lambda(tensor_records)
    out = {"qm9_profile": profile, "qm9_rel_error": REL_ERROR, "qm9_n_targets": len(NASH11),
           "qm9_mrn_lambdas": ", ".join(f"{lam:g}" for lam in MRN_LAMBDAS),
           "qm9_n_seeds": len({r["config"]["seed"] for r in tensor_records}),
           "qm9_reference_checked": sum(c is not None for c in checks),
           "qm9_reference_equal": sum(c is True for c in checks),
           "qm9_mrn_lambda": NOT_MEASURED if best is None else f"{best:g}",
           "qm9_reference_missing": missing_reference(tensor_records, stl_records, soft_records)}
    for key, label in METHOD_LABEL.items():
        row = summary[summary.label == (f"MRN λ={best:g}" if key == "mrn" and best is not None else label)]
        out[f"qm9_dm_{key}"] = NOT_MEASURED if row.empty else pm(float(row.delta_m.iloc[0]),
                                                                   float(row.delta_m_se.iloc[0]), "+.1f") + " %"
        out[f"qm9_params_{key}"] = NOT_MEASURED if row.empty else f"{float(row.params.iloc[0]):,.0f}"
    single = [r["model"]["single_params"] for r in tensor_records]
    out["qm9_params_single"] = f"{np.mean(single):,.0f}" if single else NOT_MEASURED
    for key in (*FACTORIZED, "mrn", "deep"):
        label = f"MRN λ={best:g}" if key == "mrn" and best is not None else METHOD_LABEL[key]
        out[f"qm9_{key}_vs_hard"] = beats_verdict(frame, label, METHOD_LABEL["hard"])
        out[f"qm9_{key}_vs_hard_diff"] = paired_text(frame, label, METHOD_LABEL["hard"], with_n=True)
        if key != "deep":  # the control for the second training budget the fine-tuned methods get
            out[f"qm9_{key}_vs_finetune"] = beats_verdict(frame, label, METHOD_LABEL["finetune"])
            out[f"qm9_{key}_vs_finetune_diff"] = paired_text(frame, label, METHOD_LABEL["finetune"])
    shared = [k for k in (*FACTORIZED, "mrn") if out[f"qm9_{k}_vs_finetune"] != NOT_MEASURED]
    out["qm9_n_shared_methods"] = len(shared)
    out["qm9_n_beat_finetune"] = sum(out[f"qm9_{k}_vs_finetune"] == "lower" for k in shared)
    out["qm9_n_lose_finetune"] = sum(out[f"qm9_{k}_vs_finetune"] == "higher" for k in shared)
    # the journal's "simply add more layers": Tucker against the deeper network of its size
    out["qm9_tucker_vs_deep"] = beats_verdict(frame, METHOD_LABEL["tucker"], METHOD_LABEL["deep"])
    out["qm9_tucker_vs_deep_diff"] = paired_text(frame, METHOD_LABEL["tucker"], METHOD_LABEL["deep"], with_n=True)
    timed = [r for _, r, _ in _compared(tensor_records, stl_records, soft_records)] if len(frame) else []
    out["qm9_clear_se"] = CLEAR_SE
    out["qm9_time_quiet"] = quiet_sentence(timed, "runs timed") if timed else NOT_MEASURED
    out.update(sharing_summary(tensor_records))
    out["qm9_mrn_corr_gap"] = correlation_gap(tensor_records)
    out["qm9_mrn_gain_rho"] = mrn_prediction_text(tensor_records, list(pair_records), stl_records)
    return out


__all__ = ["METHOD_LABEL", "NEAR_ONE", "beats_verdict", "best_mrn_lambda", "correlation_figure", "delta_m_figure",
           "delta_m_frame", "glue_values", "layer_key", "method_of", "missing_reference", "paired_delta_m",
           "paired_text", "pretrain_s", "relatedness_order", "runs_frame", "sharing_frame", "sharing_summary",
           "sharing_table", "summary_frame", "summary_table", "target_figure", "target_frame", "task_correlation"]
