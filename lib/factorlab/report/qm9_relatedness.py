r"""Chapter "Which tasks help each other" (``notebooks/qm9_relatedness.ipynb``): the four
task-relatedness measures of experiment ``qm9_relatedness`` (label dependence, gradient cosine,
TAG's lookahead affinity, encoder swap) and, where its runs exist, the task correlation a deep
relationship network learned (experiment ``qm9_tensor_mtl``, :func:`mrn_matrices`), their cost,
how well each predicts the measured pair gains (experiment ``qm9_pairs``, when its records
exist), the journal's claim about
uncorrelated tasks, the 19 x 19 encoder-swap table, and the benchmark frame (experiment
``qm9_weighting`` and ``qm9_soft_sharing``'s λ = ∞ runs against ``qm9_single_task``, beside the
published table of :data:`factorlab.literature.QM9_MTL_PUBLISHED`, cited).

Conventions, stated once:

- Every matrix is ``K x K`` over target names, row ``i`` acting on column ``j``
  (:mod:`factorlab.mtl.relatedness`). The measured pair gain ``G[i, j]`` is the percent by which
  task ``j``'s test MAE falls when trained together with ``i`` in one two-task network
  (:func:`factorlab.mtl.grouping.pair_gain_matrix`; positive: ``i`` helps ``j``), against the
  reference below.
- Each measure is *oriented* so that larger predicts more help (:func:`orient`, the convention
  of :func:`factorlab.mtl.relatedness.affinity`): label
  correlations by their absolute value (a strongly anti-correlated target carries the same
  information), distance correlation, gradient cosine and TAG's affinity as they are, encoder
  swap by ``1 - T`` (``T``: task ``j``'s MAE on ``i``'s frozen encoder over its own; 0 when
  the lent encoder serves ``j`` as well as its own, positive when better), MRN's learned task
  correlation by its absolute value (:func:`mrn_matrices`).
- A measure "predicts" the gains by the Spearman rank correlation of its seed-mean matrix with
  the seed-mean gain matrix over the off-diagonal entries (ordered pairs); its 95 % interval
  is a percentile bootstrap that resamples *unordered task pairs* (both ordered entries of a
  drawn pair together), :data:`N_BOOT` draws from a generator seeded with :data:`BOOT_SEED`.
- A measure's cost is its own seconds plus the training it needs, from the record's timing:
  none for label dependence; the hard-shared network without its probes
  (``hard_network_s`` minus both probes' seconds) for gradient cosine and TAG; the single-task
  stack (``single_stack_s``) for encoder swap; for MRN's correlation (no seconds of its own: it
  is read off the trained prior) the ``qm9_tensor_mtl`` run's single-task stack and fine-tuning
  (``single_s + train_s``) at the chosen λ, not the runs of the other λ that chose it. Mean over
  seeds.
- The single-task reference of every pair gain and Δm is ``qm9_single_task`` (the GINE records of
  the same seed, :func:`~factorlab.experiments.qm9_pairs.reference_from_records`: the experiments' one rule,
  :func:`factorlab.experiments.qm9_pairs.reference_from_records`, which refuses a record whose
  budget differs from the runs compared with it), as in every QM9 chapter, so a run has one Δm in
  the book; the stack ``qm9_relatedness`` trains for encoder swap is checked against it
  (:func:`stack_consistency`). Δm (%) of the benchmark frame is paired per seed; mean ±
  standard error over the seeds that have both (SE is NaN for one seed).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.experiments.qm9_pairs import gains_from_records, reference_from_records
from factorlab.literature import NAVON2022_QM9_STL_MAE, QM9_MTL_BENCHMARK_BUDGET, QM9_MTL_PUBLISHED
from factorlab.mtl import delta_m
from factorlab.mtl.relatedness import Relatedness, affinity
from factorlab.report import mrn_correlation as _mrn
from factorlab.report.formatting import pm
from factorlab.report.qm9 import exact_agreement

#: Each measure of a ``qm9_relatedness`` record, in display order, with its label as an
#: affinity (:func:`factorlab.mtl.relatedness.affinity`: larger predicts more help).
MEASURES: dict[str, str] = {
    "pearson_raw": "|Pearson|, raw",
    "spearman_raw": "|Spearman|, raw",
    "dcor_raw": "distance corr., raw",
    "pearson_residual": "|Pearson|, residual",
    "spearman_residual": "|Spearman|, residual",
    "dcor_residual": "distance corr., residual",
    "gradient_cosine": "gradient cosine",
    "tag_affinity": "TAG lookahead affinity",
    "encoder_swap": "encoder swap (1 − ratio)",
}
#: The one measure that is not in a ``qm9_relatedness`` record: MRN's learned task correlation
#: (experiment ``qm9_tensor_mtl``, :func:`mrn_matrices`), on the ``nash11`` targets only.
MRN_MEASURE = "mrn_correlation"
#: Every measure's label, :data:`MEASURES` and then MRN's.
LABELS: dict[str, str] = {**MEASURES, MRN_MEASURE: "MRN learned task correlation, |ρ|"}
#: Which training each measure needs (for its cost).
NEEDS = {"gradient_cosine": "hard", "tag_affinity": "hard", "encoder_swap": "single"}
#: Bootstrap draws, the generator's seed and the interval's level (%).
N_BOOT = 2000
CI_LEVEL = 95
BOOT_SEED = 0
#: |Pearson| below this counts as "uncorrelated" in the test of the journal's claim.
UNCORRELATED = 0.3
#: The journal's sentence (cite the journal as journal2019soft).
JOURNAL_CLAIM = "multitask learning can be harmful if we try to learn simultaneously uncorrelated tasks"
#: The label measure that tests the claim.
CLAIM_MEASURE = "pearson_raw"


# --- measures -----------------------------------------------------------------------------------

def _records_of(records: list[dict], task_set: str) -> list[dict]:
    return sorted((r for r in records if r["config"]["task_set"] == task_set), key=lambda r: r["config"]["seed"])


def measure_matrices(records: list[dict], task_set: str = "nash11",
                     tensor_records: Sequence[dict] = ()) -> dict[str, dict[int, pd.DataFrame]]:
    """``{measure: {seed: K x K matrix as recorded}}`` from the ``qm9_relatedness`` records of
    ``task_set``, measures in :data:`MEASURES` order (those a record lacks are left out), then,
    for ``nash11`` and where ``tensor_records`` (``qm9_tensor_mtl``) hold MRN runs,
    :data:`MRN_MEASURE` (:func:`mrn_matrices`)."""
    out: dict[str, dict[int, pd.DataFrame]] = {}
    for r in _records_of(records, task_set):
        for name in MEASURES:
            if name in r["metrics"]["measures"]:
                out.setdefault(name, {})[r["config"]["seed"]] = Relatedness.from_record(
                    r["metrics"]["measures"][name]).matrix
    mrn = mrn_matrices(tensor_records) if task_set == "nash11" else {}
    if mrn:
        out[MRN_MEASURE] = mrn
    return out


def mrn_matrices(tensor_records: Sequence[dict]) -> dict[int, pd.DataFrame]:
    r"""``{seed: NASH11 x NASH11 matrix}``: the task correlation a deep relationship network
    (MRN, Long et al. 2017) learned on its heads in each ``qm9_tensor_mtl`` run at the
    λ the tensor chapter chose on validation (:func:`mrn_runs`;
    :func:`factorlab.report.mrn_correlation.mrn_matrices`); {} without MRN runs, so the measure
    is simply absent.

    MRN puts a tensor-normal prior on the task-stacked weights of the layer and learns its task
    covariance ``Σ_T`` with the network; ``C``, ``Σ_T`` scaled to unit diagonal, is the
    correlation of the tasks' weights under that prior. A strong negative entry couples two
    tasks as tightly as a strong positive one (their weights are expected to be opposite), so
    :func:`orient` takes ``|C|``, as it does for label correlations: larger predicts more help.
    Unlike the measures taken before multitask training, ``C`` is learned by a network that
    trained on all 11 tasks together (after a single-task network per task), so it is no cheap
    a-priori measure: its cost is that training (:func:`cost_frame`).
    """
    return _mrn.mrn_matrices(tensor_records)


#: The MRN runs the measure reads: ``qm9_tensor_mtl``'s NASH11 runs at the λ with the lowest
#: seed-mean validation error (:func:`factorlab.report.mrn_correlation.best_mrn_lambda`, the tensor
#: chapter's choice), by seed.
mrn_runs = _mrn.mrn_runs


def orient(name: str, matrix: pd.DataFrame) -> pd.DataFrame:
    """``matrix`` of measure ``name`` (one of :data:`LABELS`) as an affinity, larger predicting
    more help: the book's one convention, :func:`factorlab.mtl.relatedness.affinity`, and ``|C|``
    for MRN's learned correlation (:func:`mrn_matrices`)."""
    if name not in LABELS:
        raise ValueError(f"unknown measure {name!r}: choose one of {', '.join(LABELS)}")
    return matrix.abs() if name == MRN_MEASURE else affinity(name, matrix)


def mean_matrix(per_seed: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """The element-wise mean over seeds of ``{seed: matrix}`` (same labels), NaN-aware."""
    if not per_seed:
        raise ValueError("mean_matrix needs at least one seed's matrix")
    frames = list(per_seed.values())
    stack = np.stack([f.to_numpy(float) for f in frames])
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, np.where(finite, stack, 0.0).sum(axis=0) / count, np.nan)
    return pd.DataFrame(mean, index=frames[0].index, columns=frames[0].columns)


def cost_frame(records: list[dict], task_set: str = "nash11", tensor_records: Sequence[dict] = ()) -> pd.DataFrame:
    """Per measure (rows in :data:`LABELS` order): ``own_s`` (the measure's own seconds),
    ``training_s`` (the training it needs, see the module docstring), ``total_s`` and ``seeds``;
    means over the seeds of ``task_set`` (MRN's, from ``tensor_records``' :func:`mrn_runs`, for
    ``nash11`` only)."""
    rows = []
    recs = _records_of(records, task_set)
    for name, label in MEASURES.items():
        own, train = [], []
        for r in recs:
            t = r["timing"]
            if name not in t["measure_s"]:
                continue
            own.append(t["measure_s"][name])
            need = NEEDS.get(name)
            if need == "hard":
                probes = sum(t["measure_s"].get(p, 0.0) for p in ("gradient_cosine", "tag_affinity"))
                train.append(max(t["hard_network_s"] - probes, 0.0))
            elif need == "single":
                train.append(t["single_stack_s"])
            else:
                train.append(0.0)
        if own:
            rows.append({"measure": name, "label": label, "own_s": float(np.mean(own)),
                         "training_s": float(np.mean(train)), "total_s": float(np.mean(own) + np.mean(train)),
                         "seeds": len(own)})
    mrn = [r["timing"]["single_s"] + r["timing"]["train_s"] for r in mrn_runs(tensor_records)] \
        if task_set == "nash11" else []
    if mrn:
        rows.append({"measure": MRN_MEASURE, "label": LABELS[MRN_MEASURE], "own_s": 0.0,
                     "training_s": float(np.mean(mrn)), "total_s": float(np.mean(mrn)), "seeds": len(mrn)})
    return pd.DataFrame(rows, columns=["measure", "label", "own_s", "training_s", "total_s", "seeds"])


# --- measured pair gains --------------------------------------------------------------------------

def single_task_by_seed(records: list[dict], task_set: str = "nash11") -> dict[int, dict[str, float]]:
    """``{seed: {target: test MAE}}`` of the single-task stack each ``qm9_relatedness`` record of
    ``task_set`` trains for encoder swap (``single_test_mae``); compared with the reference by
    :func:`stack_consistency`, never used as the reference itself."""
    return {r["config"]["seed"]: dict(r["metrics"]["single_test_mae"]) for r in _records_of(records, task_set)}


def stack_consistency(rel_records: list[dict], stl_records: list[dict], task_set: str = "nash11") -> dict:
    """Whether the single-task networks ``qm9_relatedness`` trains for encoder swap are the
    reference's (``qm9_single_task``, same seed): ``seeds`` compared, ``identical`` (every test
    MAE equal exactly), ``max_diff_pct`` (largest |difference| in % of the reference) and a
    ``verdict`` sentence ("not measured" without a common seed)."""
    own = single_task_by_seed(rel_records, task_set)
    tasks = sorted({t for m in own.values() for t in m})
    ref = reference_from_records(stl_records, tasks, _records_of(rel_records, task_set))
    out = exact_agreement(own, ref, "the relatedness stack")
    del out["targets"]
    return out


def pair_tasks(pair_records: list[dict]) -> list[str]:
    """The targets the two-target ``qm9_pairs`` records cover, in NASH11 order."""
    from factorlab.experiments.qm9_common import NASH11

    names = {t for r in pair_records if len(r["config"]["targets"]) == 2 for t in r["config"]["targets"]}
    return [t for t in NASH11 if t in names] + sorted(names - set(NASH11))


def gain_matrices(pair_records: list[dict], reference: Mapping[int, Mapping[str, float]],
                  tasks: Sequence[str] | None = None) -> dict[int, pd.DataFrame]:
    """``{seed: G}``: the measured pair gains (%) over ``tasks`` (default :func:`pair_tasks`) of
    every seed that has all their pairs and a single-task ``reference`` (:func:`~factorlab.experiments.qm9_pairs.reference_from_records`)
    with every one of them (:func:`~factorlab.experiments.qm9_pairs.gains_from_records`, as frames)."""
    tasks = list(tasks) if tasks is not None else pair_tasks(pair_records)
    return {seed: pd.DataFrame(g, index=tasks, columns=tasks) for seed, g in gains_from_records(pair_records, reference, tasks).items()}


def chapter_gains(pair_records: list[dict], stl_records: list[dict],
                  task_set: str = "nash11") -> tuple[list[str], dict[int, pd.DataFrame]]:
    """The targets and ``{seed: G}`` the chapter compares the measures with: the targets
    ``qm9_pairs`` covers (:func:`pair_tasks`; those of ``task_set`` without pair records) and
    their :func:`gain_matrices` against :func:`~factorlab.experiments.qm9_pairs.reference_from_records` (budget-checked against the
    pair runs)."""
    from factorlab.experiments.qm9_common import task_set as targets_of

    tasks = pair_tasks(pair_records) or targets_of(task_set)
    return tasks, gain_matrices(pair_records, reference_from_records(stl_records, tasks, pair_records), tasks)


def pair_gain_cost_s(pair_records: list[dict], tasks: Sequence[str]) -> float:
    """Seconds of training and evaluation of every two-target ``qm9_pairs`` run of ``tasks``,
    summed over pairs, mean over seeds (NaN without records)."""
    per_seed: dict[int, float] = {}
    for r in pair_records:
        if len(r["config"]["targets"]) == 2 and set(r["config"]["targets"]) <= set(tasks):
            t = r["timing"]
            per_seed[r["config"]["seed"]] = per_seed.get(r["config"]["seed"], 0.0) + sum(
                float(t.get(k, 0.0)) for k in ("train_s", "eval_s", "test_s"))
    return float(np.mean(list(per_seed.values()))) if per_seed else math.nan


# --- rank correlation with bootstrap over task pairs ------------------------------------------------

def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank(method="average").to_numpy(float)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of two equal-length vectors (average ranks for ties); NaN when either is
    constant or fewer than three values."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        raise ValueError(f"spearman needs vectors of one length, got {x.shape} and {y.shape}")
    if x.size < 3:
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _pair_entries(measure: pd.DataFrame, gains: pd.DataFrame) -> list[tuple[list[float], list[float]]]:
    """Per unordered pair {i, j} (i < j in ``gains``' order), the finite ordered entries
    ``([m_ij, m_ji], [g_ij, g_ji])``."""
    tasks = list(gains.index)
    if list(measure.index) != tasks or list(measure.columns) != tasks:
        measure = measure.reindex(index=tasks, columns=tasks)
    m, g = measure.to_numpy(float), gains.to_numpy(float)
    out = []
    for i in range(len(tasks)):
        for j in range(i + 1, len(tasks)):
            keep = [(a, b) for a, b in ((i, j), (j, i)) if np.isfinite(m[a, b]) and np.isfinite(g[a, b])]
            if keep:
                out.append(([m[a, b] for a, b in keep], [g[a, b] for a, b in keep]))
    return out


def _pair_bootstrap(entries: list, stat, n_boot: int, seed: int) -> tuple[float, float, float]:
    """``stat(entries)`` and its :data:`CI_LEVEL` % percentile bootstrap interval: ``stat`` of
    ``n_boot`` resamples of ``entries`` (one per unordered task pair, drawn with replacement;
    NaN draws dropped). Returns (point, lo, hi); lo and hi NaN without entries or finite draws."""
    point = stat(entries)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot if entries else 0):
        r = stat([entries[k] for k in rng.integers(0, len(entries), size=len(entries))])
        if r == r:
            draws.append(r)
    tail = (100 - CI_LEVEL) / 2
    lo, hi = (np.percentile(draws, [tail, 100 - tail]).tolist() if draws else [math.nan, math.nan])
    return float(point), float(lo), float(hi)


def rank_correlation(measure: pd.DataFrame, gains: pd.DataFrame, n_boot: int = N_BOOT,
                     seed: int = BOOT_SEED) -> dict:
    """Spearman's ρ of ``measure`` with ``gains`` over their off-diagonal entries, with a 95 %
    percentile bootstrap interval over unordered task pairs: ``{"rho", "lo", "hi", "pairs"}``."""
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    entries = _pair_entries(measure, gains)
    rho, lo, hi = _pair_bootstrap(entries, lambda sel: spearman(np.array([v for e in sel for v in e[0]]),
                                                                np.array([v for e in sel for v in e[1]])),
                                  n_boot, seed)
    return {"rho": rho, "lo": lo, "hi": hi, "pairs": len(entries)}


def rank_correlation_difference(a: pd.DataFrame, b: pd.DataFrame, gains: pd.DataFrame, n_boot: int = N_BOOT,
                                seed: int = BOOT_SEED) -> dict:
    """Spearman ρ of measure ``a`` with ``gains`` minus that of measure ``b``, over the ordered
    pairs finite in all three, with a :data:`CI_LEVEL` % percentile bootstrap interval that
    resamples the *same* unordered task pairs for both (paired): ``{"diff", "lo", "hi",
    "pairs", "clear"}``; ``clear`` when the interval excludes 0."""
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    tasks = list(gains.index)
    ma, mb = (m.reindex(index=tasks, columns=tasks).to_numpy(float) for m in (a, b))
    g = gains.to_numpy(float)
    entries = []
    for i in range(len(tasks)):
        for j in range(i + 1, len(tasks)):
            keep = [(x, y) for x, y in ((i, j), (j, i))
                    if np.isfinite(ma[x, y]) and np.isfinite(mb[x, y]) and np.isfinite(g[x, y])]
            if keep:
                entries.append(keep)

    def diff(sel):
        idx = tuple(np.array([e for pair in sel for e in pair]).T) if sel else ((), ())
        return spearman(ma[idx], g[idx]) - spearman(mb[idx], g[idx])

    d, lo, hi = _pair_bootstrap(entries, diff, n_boot, seed)
    return {"diff": d, "lo": lo, "hi": hi, "pairs": len(entries), "clear": bool(lo > 0 or hi < 0)}


def paired_rho_frame(matrices: Mapping[str, Mapping[int, pd.DataFrame]], gains: Mapping[int, pd.DataFrame] | None,
                     reference: str, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Every other measure of ``matrices`` against ``reference``: :func:`rank_correlation_difference`
    of the other's oriented seed-mean matrix minus the reference's (positive: the other predicts
    the seed-mean gains better), one row per other measure with its label (empty without gains
    or without the reference)."""
    cols = ["measure", "label", "diff", "lo", "hi", "pairs", "clear"]
    if not gains or reference not in matrices:
        return pd.DataFrame(columns=cols)
    g = mean_matrix(gains)
    ref = orient(reference, mean_matrix(matrices[reference]))
    rows = [{"measure": name, "label": LABELS[name],
             **rank_correlation_difference(orient(name, mean_matrix(per_seed)), ref, g, n_boot)}
            for name, per_seed in matrices.items() if name != reference]
    return pd.DataFrame(rows, columns=cols)


def group_gain_difference(label_matrix: pd.DataFrame, gains: Mapping[int, pd.DataFrame], n_boot: int = N_BOOT,
                          threshold: float = UNCORRELATED, seed: int = BOOT_SEED) -> dict:
    """The mean seed-mean gain (%) of the ordered pairs with |r| below ``threshold`` minus that
    of the others (``diff``, percentage points), each group's mean (``uncorrelated``,
    ``correlated``), and :data:`CI_LEVEL` % percentile bootstrap intervals of all three that
    resample unordered task pairs (both ordered entries together): ``diff_lo``/``diff_hi``, ``uncorrelated_lo``/``_hi``,
    ``correlated_lo``/``_hi``; ``clear`` when the difference's interval excludes 0. Each ordered
    entry is grouped by its own |r| (as in :func:`uncorrelated_claim`)."""
    g = mean_matrix(gains)
    r = label_matrix.abs().reindex(index=g.index, columns=g.columns).to_numpy(float)
    gv = g.to_numpy(float)
    pairs = []  # per unordered pair, its finite ordered entries as (gain, uncorrelated?)
    for i in range(len(g)):
        for j in range(i + 1, len(g)):
            e = [(gv[x, y], bool(r[x, y] < threshold)) for x, y in ((i, j), (j, i))
                 if np.isfinite(gv[x, y]) and np.isfinite(r[x, y])]
            if e:
                pairs.append(e)

    def stats(sel):
        unc = [v for e in sel for v, u in e if u]
        cor = [v for e in sel for v, u in e if not u]
        mu = float(np.mean(unc)) if unc else math.nan
        mc = float(np.mean(cor)) if cor else math.nan
        return mu, mc, mu - mc

    out = {}
    for k, name in enumerate(("uncorrelated", "correlated", "diff")):  # the same resamples for each (one seed)
        point, lo, hi = _pair_bootstrap(pairs, lambda sel, k=k: stats(sel)[k], n_boot, seed)
        out.update({name: point, f"{name}_lo": lo, f"{name}_hi": hi})
    out["clear"] = bool(out["diff_lo"] > 0 or out["diff_hi"] < 0)
    return out


def noise_ceiling(gains: Mapping[int, pd.DataFrame] | None) -> dict:
    """How well one seed's pair gains predict another's (:func:`factorlab.mtl.grouping.seed_agreement`):
    the mean over pairs of seeds of the Spearman ρ of their gain matrices (off-diagonal
    entries), with the smallest and largest (``{"rho", "lo", "hi", "seed_pairs"}``; NaN with
    fewer than two seeds). No measure can predict the seed-mean gains much better than this."""
    from factorlab.mtl.grouping import seed_agreement

    seeds = sorted(gains or {})
    if len(seeds) < 2:
        return {"rho": math.nan, "lo": math.nan, "hi": math.nan, "seed_pairs": 0}
    first = gains[seeds[0]]
    agree = seed_agreement(np.stack([gains[s].reindex(index=first.index, columns=first.columns).to_numpy(float)
                                     for s in seeds]))
    return {"rho": agree.mean, "lo": float(np.min(agree.rhos)), "hi": float(np.max(agree.rhos)),
            "seed_pairs": len(agree.rhos)}


def prediction_frame(matrices: Mapping[str, Mapping[int, pd.DataFrame]], gains: Mapping[int, pd.DataFrame] | None,
                     costs: pd.DataFrame, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per measure: its cost (``total_s``) and Spearman ρ with the seed-mean gains, with the
    bootstrap interval (NaN while ``gains`` is empty or None)."""
    g = mean_matrix(gains) if gains else None
    rows = []
    for name, per_seed in matrices.items():
        r = (rank_correlation(orient(name, mean_matrix(per_seed)), g, n_boot) if g is not None
             else {"rho": math.nan, "lo": math.nan, "hi": math.nan, "pairs": 0})
        cost = costs.set_index("measure").total_s.get(name, math.nan) if len(costs) else math.nan
        rows.append({"measure": name, "label": LABELS[name], "total_s": float(cost), **r})
    return pd.DataFrame(rows, columns=["measure", "label", "total_s", "rho", "lo", "hi", "pairs"])


def prediction_text(pred: pd.DataFrame, measure: str = MRN_MEASURE) -> str:
    """``measure``'s row of :func:`prediction_frame` as prose: "ρ = +0.42 [+0.10, +0.70] over
    55 task pairs" (the :data:`CI_LEVEL` % bootstrap interval), or "not measured" when the
    measure is absent or has no ρ (no gains)."""
    row = pred[(pred.measure == measure) & (pred.rho == pred.rho)]
    if row.empty:
        return "not measured"
    r = row.iloc[0]
    return f"ρ = {r.rho:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}] over {int(r.pairs)} task pairs"


def mrn_prediction_text(tensor_records: Sequence[dict], pair_records: list[dict], stl_records: list[dict],
                        n_boot: int = N_BOOT) -> str:
    """How well MRN's learned task correlation (:func:`mrn_matrices`) predicts the measured pair
    gains (:func:`chapter_gains`), as this chapter's table computes it: :func:`prediction_text`
    ("not measured" without MRN runs or complete pair gains)."""
    matrices = measure_matrices([], "nash11", tensor_records)
    _, gains = chapter_gains(pair_records, stl_records)
    pred = prediction_frame(matrices, gains, cost_frame([], "nash11", tensor_records), n_boot)
    return prediction_text(pred)


def prediction_table(pred: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """:func:`prediction_frame` with :func:`cost_frame`, formatted: seconds to three significant
    digits, ρ and its interval to two decimals ("not measured" without gains)."""
    c = costs.set_index("measure")
    rho = ["not measured" if r != r else f"{r:+.2f} [{lo:+.2f}, {hi:+.2f}]"
           for r, lo, hi in zip(pred.rho, pred.lo, pred.hi)]
    return pd.DataFrame({
        "measure": pred.label,
        "own (s)": [f"{c.own_s.get(m, math.nan):.3g}" for m in pred.measure],
        "training it needs (s)": [f"{c.training_s.get(m, math.nan):.3g}" for m in pred.measure],
        "total (s)": [f"{v:.3g}" for v in pred.total_s],
        "Spearman ρ with the pair gains [95 % CI]": rho})


# --- the journal's claim -----------------------------------------------------------------------------

def uncorrelated_claim(label_matrix: pd.DataFrame | None, gains: Mapping[int, pd.DataFrame] | None,
                       n_boot: int = N_BOOT, threshold: float = UNCORRELATED) -> dict:
    """Does |label correlation| predict the pair gain, and are uncorrelated pairs harmful?

    ``label_matrix``: the seed-mean Pearson matrix of the raw training labels (signed);
    ``gains``: ``{seed: G}``. Returns ``verdict`` (a sentence starting "supported",
    "not supported", "contradicted" or "not measured"), ``rho``/``lo``/``hi`` (Spearman of
    |r| with G), the mean gain (%) of ordered pairs with |r| below ``threshold``
    (``gain_uncorrelated``) and at or above it (``gain_correlated``), their counts, and the
    share of harmful (negative-gain) entries in each group (``harm_uncorrelated``,
    ``harm_correlated``, fractions). "supported": ρ's interval lies above 0, the uncorrelated
    pairs lose on average and the correlated ones do not; "partly supported": the same, except
    that the correlated pairs lose on average too (the claim's contrast, that correlated tasks
    are safe to learn together, fails); "contradicted": ρ's interval lies below 0; otherwise
    "not supported"."""
    nan = math.nan
    out = {"rho": nan, "lo": nan, "hi": nan, "gain_uncorrelated": nan, "gain_correlated": nan,
           "n_uncorrelated": 0, "n_correlated": 0, "harm_uncorrelated": nan, "harm_correlated": nan,
           "threshold": threshold}
    if label_matrix is None:
        return {**out, "verdict": "not measured: no qm9_relatedness records (the label correlations)"}
    if not gains:
        return {**out, "verdict": "not measured: no complete qm9_pairs seed (the measured pair gains)"}
    g = mean_matrix(gains)
    r = label_matrix.abs().reindex(index=g.index, columns=g.columns).to_numpy(float)
    gv = g.to_numpy(float)
    off = ~np.eye(len(g), dtype=bool) & np.isfinite(r) & np.isfinite(gv)
    unc, cor = off & (r < threshold), off & (r >= threshold)
    out.update(rank_correlation(label_matrix.abs(), g, n_boot))
    out.update(gain_uncorrelated=float(gv[unc].mean()) if unc.any() else nan,
               gain_correlated=float(gv[cor].mean()) if cor.any() else nan,
               n_uncorrelated=int(unc.sum()), n_correlated=int(cor.sum()),
               harm_uncorrelated=float((gv[unc] < 0).mean()) if unc.any() else nan,
               harm_correlated=float((gv[cor] < 0).mean()) if cor.any() else nan)
    rho, lo, hi = out["rho"], out["lo"], out["hi"]
    stats = (f"Spearman ρ of |r| with the gain {rho:+.2f} [{lo:+.2f}, {hi:+.2f}] over {out['pairs']} pairs; "
             f"pairs with |r| < {threshold:g} gain {out['gain_uncorrelated']:+.1f} % on average "
             f"({out['n_uncorrelated']} ordered pairs, {out['harm_uncorrelated']:.0%} of them losing), the others "
             f"{out['gain_correlated']:+.1f} % ({out['n_correlated']}, {out['harm_correlated']:.0%} losing)")
    if lo > 0 and out["gain_uncorrelated"] < 0 and out["gain_correlated"] < 0:
        head = ("partly supported: the more correlated the labels, the more the pair gains, and uncorrelated "
                "pairs lose, but correlated pairs lose on average too")
    elif lo > 0 and out["gain_uncorrelated"] < 0:
        head = "supported: the more correlated the labels, the more the pair gains, and uncorrelated pairs lose"
    elif hi < 0:
        head = "contradicted: the more correlated the labels, the *less* the pair gains"
    else:
        head = "not supported: label correlation does not clearly predict the pair gain"
    return {**out, "verdict": f"{head} ({stats})."}


#: The other journal sentence the chapter tests (journal2019soft, cited).
PEARSON_CLAIM = ("the simplest, but least effective solution, is to just calculate Pearson's correlation "
                 "coefficients")


def pearson_verdict(pred: pd.DataFrame, measure: str = CLAIM_MEASURE, paired: pd.DataFrame | None = None) -> str:
    """The journal's "Pearson's correlation is the least effective" against :func:`prediction_frame`:
    "not measured" while no ρ exists; "supported" when |Pearson| on the raw labels has the
    lowest ρ of all measures (and "clearly" when the best measure's interval lies wholly above
    Pearson's); otherwise "not supported", naming how many measures have a lower ρ (point
    estimates). With ``paired`` (:func:`paired_rho_frame` against ``measure``) it also says how
    many of those are clearly lower (paired bootstrap interval of the difference below 0) and
    how many measures are clearly higher."""
    ok = pred[pred.rho == pred.rho].set_index("measure")
    if measure not in ok.index or len(ok) < 2:
        return "not measured: no rank correlation with measured pair gains yet"
    p, best = ok.loc[measure], ok.loc[ok.rho.idxmax()]
    worse = ok[ok.rho < p.rho]
    stats = f"ρ = {p.rho:+.2f} [{p.lo:+.2f}, {p.hi:+.2f}]; best {best.label}: {best.rho:+.2f} [{best.lo:+.2f}, {best.hi:+.2f}]"
    if worse.empty:
        how = "clearly " if best.lo > p.hi else ""
        return f"supported{', ' + how.strip() if how else ''}: |Pearson| predicts the pair gains worst ({stats})."
    if paired is None:
        return (f"not supported: {len(worse)} of {len(ok) - 1} other measures predict the pair gains worse than "
                f"|Pearson| ({stats}).")
    pr = paired[paired.measure.isin(ok.index)]
    lower = int((pr.clear & (pr["diff"] < 0)).sum())
    higher = int((pr.clear & (pr["diff"] > 0)).sum())
    return (f"not supported: {len(worse)} of {len(ok) - 1} other measures have a lower ρ than |Pearson| "
            f"(point estimates), {lower} of them clearly (the paired bootstrap interval of the difference in ρ "
            f"below 0), and {higher} a clearly higher ρ ({stats}).")


# --- figures ----------------------------------------------------------------------------------------

def cluster_order(matrix: pd.DataFrame) -> list[str]:
    """Labels of a square matrix in the leaf order of average-linkage clustering of each task's
    row and column (how its encoder serves the others, how the others' serve it; NaN as 0)."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    m = matrix.to_numpy(float)
    m = np.where(np.isfinite(m), m, 0.0)
    if len(m) < 3:
        return list(matrix.index)
    features = np.hstack([m, m.T])
    return [matrix.index[k] for k in leaves_list(linkage(features, method="average"))]


def encoder_swap_figure(per_seed: Mapping[int, pd.DataFrame]):
    """The encoder-swap table (mean over seeds) as a heatmap of log2 of the transfer ratio ``T``
    (row: encoder lent, column: task measured; blue below 0: the lent encoder serves the task
    better than its own model), rows and columns in :func:`cluster_order`. Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    t = mean_matrix(per_seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        logt = np.log2(t)
    order = cluster_order(logt)
    logt = logt.loc[order, order]
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 0.9 * plots.FULL_WIDTH))
    lim = float(np.nanmax(np.abs(logt.to_numpy()))) if np.isfinite(logt.to_numpy()).any() else 1.0
    sns.heatmap(logt, cmap="RdBu_r", center=0, vmin=-lim, vmax=lim, square=True, ax=ax,
                xticklabels=True, yticklabels=True,
                cbar_kws={"label": "log2 (MAE on lent encoder / own MAE)", "shrink": 0.8})
    ax.set_xlabel("task measured (fresh head)")
    ax.set_ylabel("encoder lent by")
    fig.tight_layout()
    return fig


def rank_matrix(matrix: pd.DataFrame) -> pd.DataFrame:
    """The off-diagonal entries of ``matrix`` as ranks scaled to [0, 1] (0: lowest; ties share
    the mean rank; diagonal and NaN stay NaN): what a rank correlation sees of a measure."""
    m = matrix.to_numpy(float).copy()
    np.fill_diagonal(m, np.nan)
    keep = np.isfinite(m)
    out = np.full(m.shape, np.nan)
    if keep.sum() > 1:
        r = _ranks(m[keep])
        out[keep] = (r - 1) / (keep.sum() - 1)
    elif keep.any():
        out[keep] = 0.5
    return pd.DataFrame(out, index=matrix.index, columns=matrix.columns)


def measures_figure(matrices: Mapping[str, Mapping[int, pd.DataFrame]]):
    """One heatmap per measure (mean over seeds, oriented as :func:`orient`, shown as
    :func:`rank_matrix`: one shared colour scale, low to high relatedness), rows and columns in
    the order of the first measure's clustering; target names on the outer panels only.
    Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = list(matrices)
    cols = 3
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(plots.FULL_WIDTH, 2.45 * rows + 0.7), squeeze=False,
                             sharex=True, sharey=True)
    order = None
    for k, (ax, name) in enumerate(zip(axes.flat, names)):
        m = rank_matrix(orient(name, mean_matrix(matrices[name])))
        order = order or cluster_order(m.fillna(0.5))
        sns.heatmap(m.loc[order, order], cmap="viridis", vmin=0, vmax=1, ax=ax, square=True, cbar=False,
                    xticklabels=True, yticklabels=True)
        ax.set_title(LABELS[name], fontsize=plots.SMALL, pad=3)
        ax.tick_params(labelsize=plots.SMALL, length=0)
        ax.set_xlabel("")
        ax.set_ylabel("")
        if k % cols:
            ax.tick_params(labelleft=False)
        if k < len(names) - cols:
            ax.tick_params(labelbottom=False)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout(w_pad=0.2, h_pad=1.8, rect=(0, 0.08, 1, 1))
    cax = fig.add_axes([0.3, 0.045, 0.4, 0.016])
    fig.colorbar(axes.flat[0].collections[0], cax=cax, orientation="horizontal",
                 label="rank within the measure (low → high relatedness)")
    return fig


#: Marker of each measure family in :func:`prediction_figure`: labels raw, labels residual,
#: measures that need training.
FAMILY_MARKERS = {"raw": "o", "residual": "s", "trained": "D"}


def _family(measure: str) -> str:
    return "raw" if measure.endswith("_raw") else "residual" if measure.endswith("_residual") else "trained"


def prediction_figure(pred: pd.DataFrame):
    """Spearman ρ with its bootstrap interval against the measure's total cost (log seconds),
    one colour per measure and one marker per family (circles: labels, raw; squares: labels,
    residual; diamonds: measures that need training), named in a legend below (the label
    measures cost a fraction of a second each and would overlap as annotations). Returns the
    Figure (empty axes with a note while the gains are not measured)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 3.4))
    ok = pred[pred.rho == pred.rho]
    if ok.empty:
        ax.text(0.5, 0.5, "pair gains not measured yet", ha="center", va="center", transform=ax.transAxes)
    else:
        colours = sns.color_palette("colorblind", len(ok))
        for colour, (_, r) in zip(colours, ok.iterrows()):
            ax.errorbar([max(r.total_s, 1e-3)], [r.rho], yerr=[[r.rho - r.lo], [r.hi - r.rho]],
                        fmt=FAMILY_MARKERS[_family(r.measure)], ms=6, capsize=3, color=colour, label=r.label)
        ax.set_xscale("log")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("cost (s, incl. the training it needs)")
    ax.set_ylabel("Spearman ρ with pair gains")
    fig.tight_layout()
    if not ok.empty:
        plots.legend_below(fig, ax, ncol=3)
    return fig


# --- the benchmark frame --------------------------------------------------------------------------

def benchmark_frame(weighting_records: list[dict], equal_records: list[dict], stl_records: list[dict],
                    tasks: Sequence[str]) -> pd.DataFrame:
    """One row per method and seed: Δm (%) of the hard-shared run against the single-task MAEs
    of the same seed over ``tasks`` (:func:`~factorlab.experiments.qm9_pairs.reference_from_records`, ``qm9_single_task``), and how
    many targets are worse. Methods: ``equal``
    (``equal_records``: ``qm9_soft_sharing`` λ = ∞ on nash11) and each ``weighting`` of
    ``weighting_records``; runs whose seed has no single-task reference are left out."""
    runs = [("equal", r) for r in equal_records] + [(r["config"]["weighting"], r) for r in weighting_records]
    stl = reference_from_records(stl_records, tasks, [r for _, r in runs])
    rows = []
    for method, r in runs:
        seed = r["config"]["seed"]
        if seed not in stl:
            continue
        mtl = {t: r["metrics"]["test_mae"][t] for t in tasks}
        rows.append({"method": method, "seed": seed, "delta_m": 100 * delta_m(mtl, stl[seed], tasks),
                     "worse": int(sum(mtl[t] > stl[seed][t] for t in tasks))})
    return pd.DataFrame(rows, columns=["method", "seed", "delta_m", "worse"])


def benchmark_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`benchmark_frame` per method: seeds, mean Δm, its standard error (NaN for one seed)
    and the mean number of worse targets."""
    g = frame.groupby("method", sort=False)
    out = g.agg(seeds=("seed", "count"), mean=("delta_m", "mean"), sd=("delta_m", "std"),
                worse=("worse", "mean")).reset_index()
    out["se"] = out.sd / np.sqrt(out.seeds)
    return out[["method", "seeds", "mean", "se", "worse"]]


#: Our methods' labels in the benchmark table.
OUR_LABELS = {"equal": "equal weighting (LS)", "uncertainty": "uncertainty weighting (UW)", "famo": "FAMO"}


def our_setting(records: list[dict]) -> str:
    """A one-line description of the benchmark-frame runs' budget, from their first config
    (model, layers x width, training molecules, epochs, schedule); "" without records."""
    if not records:
        return ""
    c = records[0]["config"]
    n = f"{c['n_train']:,}" if c.get("n_train") else "all"
    return (f"{c['model'].upper()} {c['model_kwargs']['layers']}x{c['model_kwargs']['hidden']}, {n} train, "
            f"{c['epochs']} epochs ({c['schedule']})")


def published_setting() -> str:
    """The published benchmark's budget in the form of :func:`our_setting` (cited)."""
    b = QM9_MTL_BENCHMARK_BUDGET
    return f"MPNN (Gilmer et al.) + set2set, {b['n_train']:,} train, {b['epochs']} epochs (plateau)"


#: The Δm column of :func:`benchmark_table`, saying what its ± is.
BENCH_DM = "Δm (%): ours mean ± SE over seeds; cited as published"


def benchmark_table(summary: pd.DataFrame, setting: str = "") -> pd.DataFrame:
    """Our Δm (mean ± SE, measured, budget ``setting``: :func:`our_setting`) beside the
    published ones (cited, with whether each was verified): method, Δm (:data:`BENCH_DM`),
    source, setting."""
    ours = pd.DataFrame({
        "method": summary.method.map(OUR_LABELS),
        BENCH_DM: [pm(m, s) for m, s in zip(summary["mean"], summary.se)],
        "source": [f"measured here, {n} seed(s)" for n in summary.seeds],
        "setting": setting})
    cited = pd.DataFrame({
        "method": [r["method"] for r in QM9_MTL_PUBLISHED],
        BENCH_DM: [f"{r['delta_m_pct']:+.1f}" for r in QM9_MTL_PUBLISHED],
        "source": [f"cited: {r['cite']}" + (" (verified)" if r["verified"] else " (not verified)")
                   for r in QM9_MTL_PUBLISHED],
        "setting": published_setting()})
    return pd.concat([ours, cited], ignore_index=True)


def benchmark_unit(target: str) -> tuple[str, float]:
    """The benchmark's unit of ``target`` and the factor from ours: energies (eV) in meV, the
    others as in :data:`factorlab.report.qm9.UNITS`."""
    from factorlab.report.qm9 import UNITS

    unit = UNITS[target]
    return ("meV", 1000.0) if unit == "eV" else (unit, 1.0)


def benchmark_target_table(weighting_records: list[dict], equal_records: list[dict], stl_records: list[dict],
                           tasks: Sequence[str]) -> pd.DataFrame:
    """Per target of ``tasks``, in the benchmark's units (:func:`benchmark_unit`): our single-task
    test MAE and each method's (means over the seeds the records have; single-task over the seeds
    that have every target), beside Navon et al.'s single-task MAE (cited,
    :data:`factorlab.literature.NAVON2022_QM9_STL_MAE`); three significant digits, whole
    numbers from 100 on."""
    runs = [("equal", r) for r in equal_records] + [(r["config"]["weighting"], r) for r in weighting_records]
    stl = reference_from_records(stl_records, tasks, [r for _, r in runs])
    cols: dict[str, dict[str, float]] = {}
    if stl:
        cols["single-task (ours)"] = {t: float(np.mean([m[t] for m in stl.values()])) for t in tasks}
    for method in OUR_LABELS:
        got = [r["metrics"]["test_mae"] for m, r in runs if m == method]
        if got:
            cols[f"{OUR_LABELS[method]} (ours)"] = {t: float(np.mean([g[t] for g in got])) for t in tasks}
    table = pd.DataFrame({"target": list(tasks), "unit": [benchmark_unit(t)[0] for t in tasks]})
    for name, maes in cols.items():
        table[name] = [_sig3(maes[t] * benchmark_unit(t)[1]) for t in tasks]
    table["single-task (Navon et al., cited)"] = [_sig3(NAVON2022_QM9_STL_MAE[t]) for t in tasks]
    return table


def _sig3(v: float) -> str:
    """Three significant digits, whole numbers from 100 on (no exponent)."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


# --- glue ---------------------------------------------------------------------------------------------

def glue_values(profile: str, rel_records: list[dict], pair_records: list[dict], weighting_records: list[dict],
                equal_records: list[dict], stl_records: list[dict], task_set: str = "nash11",
                n_boot: int = N_BOOT, tensor_records: Sequence[dict] = ()) -> dict:
    """Every value the chapter glues, by name: the set-up (``profile``, run counts, ``n_tasks``,
    ``seeds``, the interval's level ``ci`` in %, ``n_boot``, the claim's threshold
    ``uncorrelated`` and sentence ``journal_claim``), per measure ``cost_<m>`` (s) and ``rho_<m>``/``lo_<m>``/``hi_<m>`` (NaN while the
    gains are missing; MRN's, :data:`MRN_MEASURE`, only where ``tensor_records`` hold its runs),
    ``mrn_rho`` (:func:`prediction_text` of MRN's row: "not measured" without its runs or the
    gains), ``n_mrn_seeds``, ``mrn_corr_gap`` (how far its learned correlations stay from one,
    :func:`factorlab.report.mrn_correlation.correlation_gap`), ``best_measure`` (label of the highest ρ, MRN included, or "not measured") with its
    ``best_rho``/``best_lo``/``best_hi`` and ``best_cost_s``, the best measure against every other
    (:func:`paired_rho_frame`: ``best_minus_<m>`` with ``_lo``/``_hi``, ``best_n_others``, how many
    it is clearly ahead of ``best_n_clear`` and the labels it is not clearly ahead of
    ``best_not_clear_of``), whether the pair runs' timings were quiet (``pair_cost_quiet``),
    whether the measures' timings were quiet (``cost_quiet``: :func:`~factorlab.report.provenance.quiet_sentence`),
    the relatedness stack against the reference (``stack_verdict``, ``stack_seeds``,
    ``stack_max_diff_pct``: :func:`stack_consistency`),
    ``pairs_measured`` (seeds with every pair of the ``n_pair_tasks`` targets ``qm9_pairs``
    covers, ``n_pairs`` pairs), ``pair_cost_s``, the seed-mean gains' ``n_ordered`` ordered
    pairs, ``n_gaining`` of them above zero, their ``gain_mean`` and ``gain_max`` (%), the seed-to-seed noise ceiling
    ``ceiling_rho``/``ceiling_lo``/``ceiling_hi``/``ceiling_seed_pairs`` (:func:`noise_ceiling`),
    ``pearson_verdict`` and ``pearson_claim`` (:func:`pearson_verdict` over the ``qm9_relatedness``
    measures only, as the claims page judges it), the claim's ``claim_verdict``
    and numbers (``claim_*``, with :func:`group_gain_difference`'s intervals ``claim_diff``,
    ``claim_diff_lo``/``_hi``, ``claim_uncorrelated_lo``/``_hi``, ``claim_correlated_lo``/``_hi`` and
    ``claim_diff_clear``: "clear" or "not clear"), ``swap_tasks`` (size of the all-target encoder-swap table), and
    the benchmark frame ``dm_<method>``/``dm_<method>_se``/``dm_<method>_seeds``, plus the
    published ``pub_equal``, ``pub_uw``, ``pub_famo``, ``pub_best`` (lowest cited Δm) and
    ``pub_best_method``; the two budgets ``our_n_train``/``our_epochs`` (from the benchmark-frame
    records) and ``pub_n_train``/``pub_epochs`` (cited)."""
    from factorlab.experiments.qm9_common import task_set as targets_of

    tasks = targets_of(task_set)
    matrices = measure_matrices(rel_records, task_set, tensor_records)
    costs = cost_frame(rel_records, task_set, tensor_records)
    gtasks, gains = chapter_gains(pair_records, stl_records, task_set)
    pred = prediction_frame(matrices, gains, costs, n_boot)
    v: dict = {"profile": profile, "n_rel_runs": len(rel_records), "n_tasks": len(tasks),
               "seeds": ", ".join(str(s) for s in sorted({r["config"]["seed"] for r in rel_records})),
               "pairs_measured": len(gains), "n_pairs": len(gtasks) * (len(gtasks) - 1) // 2,
               "n_pair_tasks": len(gtasks),
               "pair_cost_s": pair_gain_cost_s(pair_records, gtasks), "n_measures": len(matrices),
               "ci": CI_LEVEL, "n_boot": n_boot, "uncorrelated": UNCORRELATED, "journal_claim": JOURNAL_CLAIM}
    for _, r in pred.iterrows():
        v.update({f"cost_{r.measure}": r.total_s, f"rho_{r.measure}": r.rho, f"lo_{r.measure}": r.lo,
                  f"hi_{r.measure}": r.hi})
    from factorlab.report.provenance import quiet_sentence

    v["pair_cost_quiet"] = quiet_sentence([r for r in pair_records if len(r["config"]["targets"]) == 2
                                           and set(r["config"]["targets"]) <= set(gtasks)], "records timed")
    ok = pred[pred.rho == pred.rho]
    v["best_measure"] = ok.loc[ok.rho.idxmax(), "label"] if len(ok) else "not measured"
    ahead = (paired_rho_frame(matrices, gains, ok.loc[ok.rho.idxmax(), "measure"], n_boot) if len(ok)
             else paired_rho_frame({}, None, ""))
    ahead = ahead[ahead.measure.isin(set(ok.measure))]
    # ahead.diff is other minus best: the best is clearly ahead where the interval lies below 0
    clearly = ahead[ahead.clear & (ahead["diff"] < 0)]
    v.update(best_n_others=len(ahead), best_n_clear=len(clearly),
             best_not_clear_of="; ".join(ahead[~ahead.measure.isin(clearly.measure)].label) or "none")
    for _, r in ahead.iterrows():
        v.update({f"best_minus_{r.measure}": -r["diff"], f"best_minus_{r.measure}_lo": -r.hi,
                  f"best_minus_{r.measure}_hi": -r.lo})
    best = ok.loc[ok.rho.idxmax()] if len(ok) else None
    v.update({f"best_{k}": float(best[c]) if best is not None else math.nan
              for k, c in (("rho", "rho"), ("lo", "lo"), ("hi", "hi"), ("cost_s", "total_s"))})
    v["mrn_rho"] = prediction_text(pred)
    mrn = mrn_runs(tensor_records) if task_set == "nash11" else []
    v["n_mrn_seeds"] = len(mrn)
    v["mrn_corr_gap"] = _mrn.correlation_gap(mrn)  # "not measured" without MRN runs
    v["cost_quiet"] = quiet_sentence(_records_of(rel_records, task_set) + mrn, "records timed")
    stack = stack_consistency(rel_records, stl_records, task_set)
    v.update(stack_verdict=stack["verdict"], stack_seeds=stack["seeds"], stack_max_diff_pct=stack["max_diff_pct"])
    g = mean_matrix(gains).to_numpy(float) if gains else np.full((0, 0), np.nan)
    off = g[~np.eye(len(g), dtype=bool)] if len(g) else np.array([])
    v.update(n_ordered=int(np.isfinite(off).sum()), n_gaining=int((off > 0).sum()),
             gain_mean=float(np.nanmean(off)) if np.isfinite(off).any() else math.nan,
             gain_max=float(np.nanmax(off)) if np.isfinite(off).any() else math.nan)
    ceiling = noise_ceiling(gains)
    v.update(ceiling_rho=ceiling["rho"], ceiling_lo=ceiling["lo"], ceiling_hi=ceiling["hi"],
             ceiling_seed_pairs=ceiling["seed_pairs"])
    rel_only = {k: m for k, m in matrices.items() if k != MRN_MEASURE}
    v["pearson_verdict"] = pearson_verdict(pred[pred.measure != MRN_MEASURE],
                                           paired=paired_rho_frame(rel_only, gains, CLAIM_MEASURE, n_boot))
    v["pearson_claim"] = PEARSON_CLAIM
    label = mean_matrix(matrices[CLAIM_MEASURE]) if CLAIM_MEASURE in matrices else None
    claim = uncorrelated_claim(label, gains, n_boot)
    v["claim_verdict"] = claim["verdict"]
    v.update({f"claim_{k}": claim[k] for k in ("rho", "lo", "hi", "gain_uncorrelated", "gain_correlated",
                                                "n_uncorrelated", "n_correlated", "threshold")})
    groups = (group_gain_difference(label, gains, n_boot) if label is not None and gains
              else {k: math.nan for k in ("diff", "diff_lo", "diff_hi", "uncorrelated_lo", "uncorrelated_hi",
                                          "correlated_lo", "correlated_hi")} | {"clear": False})
    v.update({f"claim_{k}": groups[k] for k in ("diff", "diff_lo", "diff_hi", "uncorrelated_lo",
                                                 "uncorrelated_hi", "correlated_lo", "correlated_hi")})
    v["claim_diff_clear"] = "clear" if groups["clear"] else "not clear"
    swap19 = measure_matrices(rel_records, "all19").get("encoder_swap", {})
    v["swap_tasks"] = len(mean_matrix(swap19)) if swap19 else 0
    summary = benchmark_summary(benchmark_frame(weighting_records, equal_records, stl_records, tasks))
    for method in OUR_LABELS:
        row = summary[summary.method == method]
        v[f"dm_{method}"] = float(row["mean"].iloc[0]) if len(row) else math.nan
        v[f"dm_{method}_se"] = float(row.se.iloc[0]) if len(row) else math.nan
        v[f"dm_{method}_seeds"] = int(row.seeds.iloc[0]) if len(row) else 0
    pub = {r["method"]: r["delta_m_pct"] for r in QM9_MTL_PUBLISHED}
    v.update(pub_equal=pub["equal weighting (LS)"], pub_uw=pub["uncertainty weighting (UW)"], pub_famo=pub["FAMO"])
    runs = weighting_records + equal_records
    cfg = runs[0]["config"] if runs else {}
    v.update(our_n_train=f"{cfg['n_train']:,}" if cfg.get("n_train") else "all", our_epochs=cfg.get("epochs", 0),
             pub_n_train=f"{QM9_MTL_BENCHMARK_BUDGET['n_train']:,}", pub_epochs=QM9_MTL_BENCHMARK_BUDGET["epochs"])
    best = min(QM9_MTL_PUBLISHED, key=lambda r: r["delta_m_pct"])
    v.update(pub_best=best["delta_m_pct"], pub_best_method=best["method"])
    return v
