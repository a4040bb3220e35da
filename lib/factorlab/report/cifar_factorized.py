"""Chapter "Factorized convolutions in fast CIFAR-10 training" (``notebooks/cifar_factorized.ipynb``):
the dense reference curve (experiment ``cifar_baselines``), the factorized variants
(``cifar_factorized``) against the dense net thinned to their size, weight decay scaled by
compression, the dense net without its identity initialisation (``cifar_init``), the
long-schedule overfitting runs (``cifar_long``), airbench94 itself side by side (benchmark
``cifar_anchor``, ``benchmarks/airbench_anchor.py``) and the channels-last speed-up (benchmark
``memory_format_benchmark``, ``benchmarks/memory_format.py``).

Accuracies are test accuracies in % (points for differences); "sd" is the standard deviation
over seeds, "se" the standard error of a paired mean difference. Verdicts: a paired difference
is "clear" when it exceeds :data:`CLEAR_SE` standard errors; a run "overfits" when its final
clean training loss is below :data:`OVERFITS` of its test loss, "a little" below
:data:`OVERFITS_A_LITTLE`."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.analysis import interpolate_log, paired_difference, pareto_front
from factorlab.report.provenance import devices_of, quiet_counts, quiet_label, quiet_of
from factorlab.report.formatting import pm
from factorlab.report.verdicts import NOT_MEASURED, difference_verdict

#: A paired difference is clear when |mean| exceeds this many standard errors.
CLEAR_SE = 2
#: Final training loss / test loss below which a run overfits, and overfits a little.
OVERFITS, OVERFITS_A_LITTLE = 0.5, 0.85
#: The experiments of the chapter's ``full`` grid, whose GPU time is estimated.
FULL_GRID = ("cifar_baselines", "cifar_factorized", "cifar_long", "cifar_init")


def variant_label(cfg: dict) -> str:
    """A short name of a config's convolution: family and its knobs, e.g.
    ``"separable_lowrank (factor=4)"``."""
    f = cfg.get("factorize") or {}
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(f.items()) if k != "family")
    return cfg["family"] + (f" ({knobs})" if knobs else "")


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run of a CIFAR experiment (``cifar_baselines``, ``cifar_factorized``,
    ``cifar_init``): net, family, variant (:func:`variant_label`), width, wd_mode, seed, test
    accuracy ``acc`` (%), trainable ``params``, ``train_s`` (s) and whole-network
    ``compression``."""
    return pd.DataFrame([{"net": r["config"]["net"], "family": r["config"]["family"],
                          "variant": variant_label(r["config"]), "width": r["config"]["width"],
                          "wd_mode": r["config"]["wd_mode"], "seed": r["config"]["seed"],
                          "acc": 100 * r["metrics"]["test_acc"], "params": r["model"]["params"],
                          "train_s": r["timing"]["train_s"], "compression": r["model"]["compression"]}
                         for r in records])


def dense_curve_at(runs: pd.DataFrame, net: str, params) -> np.ndarray:
    """Mean test accuracy (%) of a dense net of the same size: the curve of ``runs``' ``net``
    (mean over seeds per width) read at ``params`` (interpolated in log parameters; NaN
    outside the widths run)."""
    d = runs[runs.net == net].groupby("width").agg(params=("params", "first"), acc=("acc", "mean"))
    return interpolate_log(d.params, d.acc, params) if len(d) else np.full(len(params), np.nan)


def dense_curve_se_at(runs: pd.DataFrame, net: str, params) -> np.ndarray:
    """The standard error (points) of :func:`dense_curve_at`'s mean at ``params``: per width
    the seeds' standard deviation over the square root of their number, interpolated in log
    parameters like the mean (NaN outside the widths run or with one seed per width)."""
    d = runs[runs.net == net].groupby("width").agg(params=("params", "first"), sd=("acc", "std"),
                                                    n=("seed", "nunique"))
    return interpolate_log(d.params, d.sd / np.sqrt(d.n), params) if len(d) else np.full(len(params), np.nan)


def factorized_points(b: pd.DataFrame, f: pd.DataFrame, ni: pd.DataFrame) -> pd.DataFrame:
    """One point per factorized config (net, family, variant, wd_mode) of :func:`runs_frame`
    ``f``: mean ``acc`` and ``sd`` over seeds (NaN for one), ``seeds``, ``params``, mean
    ``train_s``, ``compression``; ``dense_same_size``, the dense reference ``b`` read at its
    size, ``vs_dense`` = acc − dense_same_size (points) with ``vs_dense_se``, its standard
    error (the factorized mean's and the dense curve's, :func:`dense_curve_se_at`, combined as
    independent: the two are not paired by seed; NaN with one seed), and
    ``dense_random_start``, the identity-free dense net ``ni`` read at its size (all for the
    first point's net)."""
    fm = f.groupby(["net", "family", "variant", "wd_mode"], as_index=False).agg(
        acc=("acc", "mean"), sd=("acc", "std"), seeds=("seed", "nunique"), params=("params", "first"),
        train_s=("train_s", "mean"), compression=("compression", "first"))
    fm["dense_same_size"] = dense_curve_at(b, fm.net.iloc[0], fm.params) if len(fm) else []
    fm["vs_dense"] = fm.acc - fm.dense_same_size
    dense_se = dense_curve_se_at(b, fm.net.iloc[0], fm.params) if len(fm) else []
    fm["vs_dense_se"] = np.sqrt(fm.sd ** 2 / fm.seeds + np.asarray(dense_se, float) ** 2)
    fm["dense_random_start"] = dense_curve_at(ni, fm.net.iloc[0], fm.params) if len(fm) else []
    return fm


def accuracy_figure(b: pd.DataFrame, f: pd.DataFrame, fm: pd.DataFrame, dataset_variant: str | None):
    """Test accuracy against parameters (left) and training time (right): the dense nets per
    width (mean ± sd over seeds), the factorized points of :func:`factorized_points` (colour:
    family, marker: weight decay) and the Pareto front over the means. Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(plots.FULL_WIDTH, 3.8), sharey=True)
    palette = dict(zip(sorted(f.family.unique()), sns.color_palette("colorblind", f.family.nunique())))
    for ax, x, xlabel in [(axes[0], "params", "trainable parameters"), (axes[1], "train_s", "training time (s, CPU)")]:
        for net, d in b.groupby("net"):
            g = d.groupby("width").agg(x=(x, "mean"), acc=("acc", "mean"), sd=("acc", "std")).reset_index()
            ax.errorbar(g.x, g.acc, yerr=g.sd, fmt="k-" if net == "airbench" else "k--", marker="o", ms=4,
                        label=f"{net}, dense, widths {', '.join(f'{w:g}' for w in g.width)}")
        for (fam, wd), d in fm.groupby(["family", "wd_mode"]):
            ax.errorbar(d[x], d.acc, yerr=d.sd, color=palette[fam], marker="o" if wd == "usual" else "^", ms=5,
                        ls="none", elinewidth=0.8, label=f"{fam}, wd {wd}", zorder=3)
        bm = b.groupby(["net", "width"], as_index=False).agg(acc=("acc", "mean"), params=("params", "first"),
                                                            train_s=("train_s", "mean"))
        front = pareto_front(pd.concat([bm, fm], ignore_index=True), x=x, y="acc")
        ax.plot(front[x], front.acc, color="0.6", lw=1, zorder=1)
        plots.log_axis(ax, "x", counts=(x == "params"), subs=(1.0,) if x == "params" else (1.0, 2.0, 5.0))
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(f"test accuracy (%, {dataset_variant}, lossy)" if dataset_variant else "test accuracy (%)")
    fig.tight_layout()
    plots.legend_below(fig, axes[1], ncol=2)
    return fig


def weight_decay_differences(f: pd.DataFrame) -> pd.DataFrame:
    """Per variant of :func:`runs_frame` ``f``: the paired (by seed) difference scaled − usual
    weight decay, its mean ``mean`` (points), standard error ``se`` (NaN for one pair) and the
    number of pairs ``n``; ``clear`` when ``|mean| > CLEAR_SE · se`` (False without an se)."""
    acc = f.pivot_table(index=["variant", "seed"], columns="wd_mode", values="acc")
    diff = (acc["scaled"] - acc["usual"]).groupby(level="variant")
    out = pd.DataFrame({"mean": diff.mean(), "se": diff.std() / np.sqrt(diff.count()), "n": diff.count()})
    out["clear"] = out["mean"].abs() > CLEAR_SE * out.se  # NaN (one seed) compares False
    return out


def weight_decay_table(f: pd.DataFrame, fm: pd.DataFrame) -> pd.DataFrame:
    """Per variant: parameters, the dense net of the same size, mean ± sd with usual and with
    scaled weight decay, and the paired difference ± its standard error (points)."""
    d = weight_decay_differences(f)
    stats = f.groupby(["variant", "wd_mode"]).acc.agg(["mean", "std"]).unstack("wd_mode")
    params = f.groupby("variant").params.first()
    variants = stats.index
    same = fm.groupby("variant").dense_same_size.first()
    return pd.DataFrame({"variant": variants, "params": params.reindex(variants).map("{:,}".format).to_numpy(),
                         "dense, same size (%)": [f"{v:.1f}" for v in same.reindex(variants)],
                         "usual (%)": [pm(m, s, ".1f") for m, s in zip(stats[("mean", "usual")], stats[("std", "usual")])],
                         "scaled (%)": [pm(m, s, ".1f") for m, s in zip(stats[("mean", "scaled")], stats[("std", "scaled")])],
                         "scaled − usual (points)": [pm(m, s) for m, s in
                                                     zip(d["mean"].reindex(variants), d.se.reindex(variants))]})


def weight_decay_pattern(fm: pd.DataFrame, d_mean: pd.Series) -> str:
    """The sentence on whether the sign of the scaled − usual difference ``d_mean`` (per
    variant) follows the variants' whole-network compression: it does when every variant
    helped by scaling is compressed less than every variant hurt by it."""
    comp = fm.groupby("variant").compression.first()
    up, down = comp[d_mean.reindex(comp.index) > 0], comp[d_mean.reindex(comp.index) < 0]
    if len(up) and len(down) and up.max() < down.min():
        return (f"The sign follows the compression: scaling raised the mean accuracy of every variant compressed "
                f"{up.max():.1f}× or less (whole network) and lowered it for every variant compressed "
                f"{down.min():.1f}× or more, where the multiplied decay is strongest.")
    return "The sign does not follow the compression ratio in a simple way at this budget."


def thin_headline(cmp: pd.DataFrame) -> str:
    """The discussion's first sentence: how many factorized points (rows of
    :func:`factorized_points` with a dense reference) beat the dense net thinned to their size."""
    n_above = int((cmp.vs_dense > 0).sum())
    if n_above == 0:
        return ("Under this budget, factorizing every 3×3 convolution costs more accuracy than thinning the dense "
                "network to the same number of parameters.")
    if n_above == len(cmp):
        return "Under this budget, every factorized variant beats the dense network thinned to its size."
    return (f"Under this budget, factorizing beats thinning the dense network to the same size in {n_above} of "
            f"{len(cmp)} configurations.")


def init_comparison(b: pd.DataFrame, ni: pd.DataFrame) -> pd.DataFrame:
    """Per width of ``cifar_init`` (:func:`runs_frame` ``ni``): params, mean accuracy ``acc`` and
    ``sd`` without the identity start, ``seeds``, ``acc_id``/``sd_id`` of the dense airbench
    net with it (``cifar_baselines``), and the identity − random difference paired by seed
    (``diff``, ``diff_se``, ``pairs``: the same seed gives both the same data order; NaN
    without a pair, SE NaN with one)."""
    air = b[b.net == "airbench"]
    with_id = air.groupby("width").agg(params=("params", "first"), acc=("acc", "mean"), sd=("acc", "std"))
    no_id = ni.groupby("width").agg(params=("params", "first"), acc=("acc", "mean"), sd=("acc", "std"),
                                    seeds=("seed", "nunique"))
    out = no_id.join(with_id[["acc", "sd"]].rename(columns={"acc": "acc_id", "sd": "sd_id"}))
    diffs = []
    for w in out.index:
        a, r = air[air.width == w], ni[ni.width == w]
        try:
            diffs.append(_paired_seeds(a, r))
        except ValueError:  # no seed in both
            diffs.append((math.nan, math.nan, 0))
    out["diff"], out["diff_se"], out["pairs"] = zip(*diffs) if diffs else ([], [], [])
    return out


def init_table(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`init_comparison` formatted: identity start, random start (mean ± sd) and their
    difference paired by seed (points, mean ± standard error; the mean difference of the means
    where no seed pairs up)."""
    diff = [pm(m, se) if n else f"{a - r:+.1f} (unpaired)"
            for m, se, n, a, r in zip(rows["diff"], rows.diff_se, rows.pairs, rows.acc_id, rows.acc)]
    return pd.DataFrame({
        "width": [f"{w:g}" for w in rows.index], "params": rows.params.map("{:,}".format),
        "identity start (%)": [pm(m, s, ".1f") for m, s in zip(rows.acc_id, rows.sd_id)],
        "random start (%)": [pm(m, s, ".1f") for m, s in zip(rows.acc, rows.sd)],
        "identity − random (points, ± SE)": diff, "seeds": rows.seeds})


def long_key(cfg: dict) -> str:
    """The key of a ``cifar_long`` variant in glue names: ``"dense"`` or ``"f<factor>"``."""
    return "dense" if cfg["family"] == "dense" else f"f{cfg['factorize'].get('factor')}"


def long_figure(long: list[dict]):
    """Clean training loss (solid) and test loss (dashed) per epoch of each ``cifar_long`` run
    (colour: variant, one line per seed; legend under the axes). Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    keys = list(dict.fromkeys(long_key(r["config"]) for r in long))
    colors = dict(zip(keys, sns.color_palette("colorblind", len(keys))))
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH * 0.8, 3.4))
    labelled = set()
    for r in long:
        h, key = r["history"], long_key(r["config"])
        lab = None if key in labelled else variant_label(r["config"])
        labelled.add(key)
        ax.plot(h["epoch"], h["train_eval_loss"], "-", color=colors[key], label=lab, lw=1.2)
        ax.plot(h["epoch"], h["test_loss"], "--", color=colors[key], lw=1.2)
    ax.plot([], [], "-", color="0.3", label="training loss (clean)")
    ax.plot([], [], "--", color="0.3", label="test loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    fig.tight_layout()
    plots.legend_below(fig, ax, ncol=2)
    return fig


def overfit_verdict(ratio: float) -> str:
    """The verdict on a final clean training loss / test loss ``ratio``: "overfits" below
    :data:`OVERFITS`, "overfits a little" below :data:`OVERFITS_A_LITTLE`, else "hardly overfits"."""
    return "overfits" if ratio < OVERFITS else ("overfits a little" if ratio < OVERFITS_A_LITTLE else "hardly overfits")


def long_ratios(long: list[dict]) -> dict[str, list[float]]:
    """Per ``cifar_long`` variant (:func:`long_key`, in record order): each run's final clean
    training loss as a fraction of its final test loss."""
    out: dict[str, list[float]] = {}
    for r in long:
        h = r["history"]
        out.setdefault(long_key(r["config"]), []).append(float(h["train_eval_loss"][-1]) / float(h["test_loss"][-1]))
    return out


def long_values(long: list[dict]) -> dict:
    """The glued values of the ``cifar_long`` runs: ``long_epochs``, ``long_n_train``,
    ``long_seeds`` (runs per variant, the fewest) and per variant (key of :func:`long_key`)
    the mean over its seeds of the final training and test losses (``long_<key>_train`` /
    ``_test``), test accuracy (``_acc``, %) and loss ratio (``_ratio``, with ``_ratio_sd``),
    the :func:`overfit_verdict` of the mean ratio (``_fit``), how many of its ``_n`` runs
    overfit (``_overfit_runs``: ratio below :data:`OVERFITS`), and the conclusion on whether a
    compressed network overfits (``long_conclusion``: in every run of a variant, in some, or
    in none)."""
    v = {"long_epochs": len(long[0]["history"]["epoch"]), "long_n_train": f"{long[0]['metrics']['n_train']:,}"}
    ratios = long_ratios(long)
    v["long_seeds"] = min(len(x) for x in ratios.values())
    for key in ratios:
        runs = [r for r in long if long_key(r["config"]) == key]
        r_ = np.array(ratios[key])
        v.update({f"long_{key}_train": float(np.mean([r["history"]["train_eval_loss"][-1] for r in runs])),
                  f"long_{key}_test": float(np.mean([r["history"]["test_loss"][-1] for r in runs])),
                  f"long_{key}_acc": 100 * float(np.mean([r["metrics"]["test_acc"] for r in runs])),
                  f"long_{key}_ratio": float(r_.mean()),
                  f"long_{key}_ratio_sd": float(r_.std(ddof=1)) if len(r_) > 1 else float("nan"),
                  f"long_{key}_fit": overfit_verdict(float(r_.mean())),
                  f"long_{key}_overfit_runs": int((r_ < OVERFITS).sum()), f"long_{key}_n": int(len(r_))})
    comp = {k: r for k, r in ratios.items() if k != "dense"}
    every = [k for k, r in comp.items() if all(x < OVERFITS for x in r)]
    some = [k for k, r in comp.items() if any(x < OVERFITS for x in r)]
    if every:
        k = every[0]
        runs = f" in every one of its {len(comp[k])} runs" if len(comp[k]) > 1 else ""
        v["long_conclusion"] = (f"A compressed network can overfit: the factor-{k[1:]} variant drives its training "
                                f"loss far below its test loss{runs}")
    elif some:
        k = some[0]
        v["long_conclusion"] = (f"A compressed network overfits in some runs only: the factor-{k[1:]} variant in "
                                f"{v[f'long_{k}_overfit_runs']} of its {len(comp[k])}")
    else:
        v["long_conclusion"] = "Neither compressed network overfits within this budget"
    return v


def anchor_records(store=None, ours_experiment: str = "cifar_baselines") -> list[dict]:
    """The records of the benchmark ``cifar_anchor`` (airbench94 beside our baseline) whose
    side is ``ours_experiment``'s (``cifar_baselines``, the chapter's scale; ``cifar_fulldata``,
    all 50,000 images), from the run store, ``full`` profile first."""
    from factorlab.results import RunStore

    recs = [a for a in (store or RunStore()).records("cifar_anchor")
            if a["config"].get("ours_experiment", "cifar_baselines") == ours_experiment]
    return sorted(recs, key=lambda a: a["config"]["profile"] != "full")


def anchor_quiet(anchor: dict) -> str:
    """Whether a ``cifar_anchor`` record's times were taken on a quiet machine (:func:`quiet_label`):
    seed pair by seed pair where its runs carry their own ``load`` (a comparison that may have
    been measured over several processes, :func:`factorlab.experiments.cifar_anchor.measure`),
    else the record's provenance."""
    runs = anchor["metrics"].get("ours_runs") or []
    if runs and all("load" in r for r in runs):
        return quiet_label([bool(r["load"]["quiet"]) for r in runs])
    return quiet_label(quiet_of(anchor))


def anchor_table(anchor: list[dict]) -> pd.DataFrame:
    """Per ``cifar_anchor`` record and method (airbench94's package, ours): scale, device,
    seeds, median time per run (s), test accuracy (%, mean ± sd, TTA 2) and ``quiet`` (whether
    the record's times were taken on a quiet machine: yes / no / unknown)."""
    rows = []
    for a in anchor:
        m, cfg = a["metrics"], a["config"]
        where = a["timing"]["device_name"] if cfg["device"] == "cuda" else f"CPU, {a['timing']['threads']} threads, fp32"
        scale = (f"{cfg['profile']}: {m['n_train']:,} training images, {cfg['ours_recipe']['epochs']:g} epochs, "
                 f"batch {cfg['ours_recipe']['batch_size']}, channels {'/'.join(map(str, a['model']['channels']))}")
        for name, s, n in (("airbench94 (its package)", m["airbench"], m["n_airbench"]),
                           (f"ours ({cfg.get('ours_experiment', 'cifar_baselines')})", m["ours"], m["n_ours"])):
            rows.append({"scale": scale, "device": where, "method": name, "seeds": n,
                         "time per run, median (s)": f"{s['time_s_median']:.1f}",
                         "test accuracy (%, TTA 2)": f"{100 * s['acc_mean']:.2f} ± {100 * s['acc_std']:.2f}",
                         "quiet": anchor_quiet(a)})
    return pd.DataFrame(rows)


def anchor_summary(anchor: list[dict]) -> str:
    """Markdown list: per ``cifar_anchor`` record the accuracy difference ours − airbench94 ±
    its standard error and the time ratio (on a GPU with the 1.2× target's verdict), and that
    the GPU comparison is not run yet where no record is from CUDA."""
    lines = []
    for a in anchor:
        m, cfg = a["metrics"], a["config"]
        acc = f"accuracy ours − airbench94 {100 * m['acc_diff']:+.2f} ± {100 * m['acc_diff_se']:.2f} points (standard error)"
        if cfg["device"] == "cuda":
            lines.append(f"- **{cfg['profile']}, GPU**: time ratio ours / airbench94 **{m['ratio']:.2f}×** (target ≤ "
                         f"{m['target_ratio']:g}×: {'met' if m['time_ok'] else 'not met'}); {acc}; the target "
                         f"{'is met' if m['target_met'] else 'is not met'}.")
        else:
            lines.append(f"- **{cfg['profile']}, CPU**: {acc}; time ratio ours / airbench94 {m['ratio']:.2f}× (median "
                         "times; no verdict on the GPU target).")
    if not any(a["config"]["device"] == "cuda" for a in anchor):
        lines.append("- **full, GPU: not run yet.** airbench94's published recipe trains only on a CUDA GPU (fp16, CUDA "
                     "events), and no GPU has been lent to this project so far; `benchmarks/README.md` gives the one "
                     "prepared command for the next session that has one.")
    return "\n".join(lines)


def anchor_values(anchor: list[dict]) -> dict:
    """The glued values of the ``cpu`` ``cifar_anchor`` record (none without one): the accuracy
    difference ours − airbench94 and its standard error (points), seeds, time ratio, our
    accuracy, and the verdict: the same accuracy when |difference| ≤ :data:`CLEAR_SE` standard
    errors, else more or less accurate; also the package version run (``anchor_cpu_version``),
    the time target on a GPU (``anchor_target_ratio``) and ``anchor_cpu_quiet`` (whether the
    times were taken on a quiet machine: yes / no / unknown)."""
    cpu = next((a for a in anchor if a["config"]["profile"] == "cpu"), None)
    if cpu is None:
        return {}
    ma = cpu["metrics"]
    same = abs(ma["acc_diff"]) <= CLEAR_SE * ma["acc_diff_se"]
    return {"anchor_cpu_diff": f"{100 * ma['acc_diff']:+.2f}", "anchor_cpu_se": f"{100 * ma['acc_diff_se']:.2f}",
            "anchor_cpu_seeds": ma["n_ours"], "anchor_cpu_ratio": f"{ma['ratio']:.2f}",
            "anchor_cpu_acc": f"{100 * ma['ours']['acc_mean']:.1f}",
            "anchor_cpu_verdict": "reaches airbench94's accuracy" if same else
            ("is more accurate than airbench94" if ma["acc_diff"] > 0 else "falls short of airbench94's accuracy"),
            "anchor_cpu_noise": "inside twice its standard error" if same else "more than twice its standard error",
            "anchor_cpu_version": str(cpu["config"]["airbench_version"]),
            "anchor_target_ratio": float(cpu["config"]["target_ratio"]), "anchor_cpu_quiet": anchor_quiet(cpu)}


def published_table() -> pd.DataFrame:
    """The recipes' published numbers (:data:`factorlab.literature.CIFAR_PUBLISHED`: cited, not
    measured)."""
    from factorlab.literature import CIFAR_PUBLISHED

    return pd.DataFrame([{"recipe": e["recipe"], "test accuracy (%)": f"{e['test_acc_pct']:.2f}",
                          "time per run (s)": f"{e['time_s']:g}", "hardware": e["hardware"],
                          "epochs": f"{e['epochs']:g}", "where it is printed": e["where"]} for e in CIFAR_PUBLISHED])


def memory_format_records(store=None) -> list[dict]:
    """The ``cpu`` records of the benchmark ``memory_format_benchmark`` (a training step of every
    cpu-grid net in NCHW and channels-last), from the run store. The chapter cites the ``cpu``
    measurement whichever profile it shows."""
    from factorlab.results import RunStore

    return [r for r in (store or RunStore()).records("memory_format_benchmark") if r["config"]["profile"] == "cpu"]


def full_grid_minutes() -> float:
    """The estimated GPU minutes of the chapter's ``full`` grids
    (:func:`factorlab.experiments.cifar_common.estimate_grid_seconds` over :data:`FULL_GRID`)."""
    from factorlab.experiments import cifar_common, get_experiment

    return sum(cifar_common.estimate_grid_seconds(get_experiment(e).grid("full")) for e in FULL_GRID) / 60


def glue_values(profile: str, base: list[dict], fact: list[dict], long: list[dict], init: list[dict],
                anchor: list[dict], mf: list[dict]) -> dict:
    """Every value the chapter glues, by name, from the records of ``cifar_baselines``
    (``base``), ``cifar_factorized``, ``cifar_long``, ``cifar_init``, ``cifar_anchor`` and the
    ``cpu`` ``memory_format_benchmark`` (``mf``): the set-up, the factorized points against the
    dense reference (``n_below_dense`` of ``n_vs_dense`` by the means, ``n_below_dense_clear``
    by more than :data:`CLEAR_SE` standard errors), the weight-decay verdicts
    (``n_scaled_better``; ``n_clear``: beyond :data:`CLEAR_SE` standard errors), the
    initialisation comparison, the channels-last speed-up, the ``full`` grid's GPU minutes,
    :func:`long_values` and :func:`anchor_values`; the overfitting thresholds
    (``overfits_ratio``, ``overfits_little_ratio``); whether the timed runs were taken on a quiet
    machine (``n_timed``, ``n_quiet``, ``n_not_quiet``, ``n_load_unknown`` over the
    baseline, factorized, long and initialisation runs; ``mf_quiet`` for the memory-format
    benchmark)."""
    b, f, ni = runs_frame(base), runs_frame(fact), runs_frame(init)
    fm = factorized_points(b, f, ni)
    best_fm = fm.loc[fm.acc.idxmax()]
    ref = b[(b.net == f.net.iloc[0]) & (b.width == f.width.iloc[0])]
    v = {"profile": profile, "devices": devices_of(base + fact + long),
         "variant": base[0]["config"]["dataset_variant"],
         "n_train": f"{base[0]['metrics']['n_train']:,}",  # config says None for "all of the source"
         "n_test": f"{base[0]['metrics']['n_test']:,}", "fact_net": f.net.iloc[0], "fact_width": f"{f.width.iloc[0]:g}",
         "ref_acc": float(ref.acc.mean()), "ref_params": f"{int(ref.params.iloc[0]):,}",
         "fact_seeds": int(f.seed.nunique()), "fact_best": float(fm.acc.max()),
         "fact_best_what": f"{best_fm.variant}, weight decay {best_fm.wd_mode}", "fact_worst": float(fm.acc.min()),
         "fact_max_params": f"{int(f.params.max()):,}"}
    d = weight_decay_differences(f)
    v.update({"n_scaled_better": int((d["mean"] > 0).sum()), "n_pairs": int(d["mean"].notna().sum()),
              "n_clear": int(d.clear.sum()), "n_clear_better": int((d.clear & (d["mean"] > 0)).sum()),
              "wd_pattern": weight_decay_pattern(fm, d["mean"])})
    cmp = fm.dropna(subset=["vs_dense"])
    best = cmp.loc[cmp.vs_dense.idxmax()] if len(cmp) else None
    v.update({"thin_headline": thin_headline(cmp), "n_vs_dense": len(cmp),
              "n_below_dense": int((cmp.vs_dense < 0).sum()),
              "n_below_dense_clear": int((cmp.vs_dense < -CLEAR_SE * cmp.vs_dense_se).sum()),
              "vs_dense_best": f"{best.vs_dense:+.1f}" if best is not None else "n/a",
              "vs_dense_best_what": f"{best.variant}, weight decay {best.wd_mode}" if best is not None else "n/a",
              "vs_dense_worst": f"{cmp.vs_dense.min():+.1f}" if len(cmp) else "n/a",
              "full_minutes": f"{full_grid_minutes():.0f}"})
    fact_w = float(f.width.iloc[0])
    rows = init_comparison(b, ni)
    drop = (rows.acc_id - rows.acc).dropna()
    thin = drop.drop(index=fact_w, errors="ignore")
    rnd = fm.dropna(subset=["dense_random_start"])
    margin = rnd.acc - rnd.dense_random_start
    v.update({"init_change_fact": f"{-drop.get(fact_w, float('nan')):+.1f}",
              "init_change_thin": " and ".join(f"{-x:+.1f}" for x in thin) if len(thin) else "n/a",
              "init_thin_widths": " and ".join(f"{w:g}" for w in thin.index) if len(thin) else "n/a",
              "n_cmp_random": len(rnd), "n_beat_random": int((rnd.acc > rnd.dense_random_start).sum()),
              "random_margin": f"{margin.min():+.1f} to {margin.max():+.1f}" if len(rnd) else "n/a"})
    if mf:
        v.update({"mf_min": f"{mf[0]['metrics']['speedup_min']:.1f}", "mf_max": f"{mf[0]['metrics']['speedup_max']:.1f}",
                  "mf_n": mf[0]["metrics"]["n"], "mf_quiet": quiet_label(quiet_of(mf[0]))})
    quiet = quiet_counts(base + fact + long + init)
    v.update({"n_timed": quiet["n"], "n_quiet": quiet["quiet"], "n_not_quiet": quiet["not_quiet"],
              "n_load_unknown": quiet["unknown"], "overfits_ratio": OVERFITS,
              "overfits_little_ratio": OVERFITS_A_LITTLE})
    v.update(long_values(long))
    v.update(anchor_values(anchor))
    return v


# --------------------------------------------------------------------------- all 50,000 images

#: The experiment of the journal's comparison points on the whole training set.
FULLDATA = "cifar_fulldata"
#: What a value of the full-data comparison reads without its records.
NOT_MEASURED_TEXT = "not measured"


#: The research log's test accuracies (%, cited, not measured: cifar10-fast's ResNet on a GPU,
#: canonical CIFAR-10) by :data:`factorlab.experiments.cifar_fulldata.VARIANTS` name: 94 %
#: dense, 92 % separable, 81.2 % factor 2 (usual weight decay), 78.3 % / 77.8 % factor 10
#: scaled / usual; the variants it gives no number for (factor 2 with scaled weight decay, the
#: tensor train) are absent. The same numbers as :mod:`factorlab.report.claims`' constants
#: (a test checks it; claims imports this module, so this module cannot import claims).
JOURNAL_ACCURACIES: dict[str, float] = {"dense": 94.0, "separable": 92.0, "lowrank2_usual": 81.2,
                                        "lowrank10_scaled": 78.3, "lowrank10_usual": 77.8}


def journal_accuracies() -> dict[str, float]:
    """A copy of :data:`JOURNAL_ACCURACIES` (cited, %)."""
    return dict(JOURNAL_ACCURACIES)


#: The differences the research log reports, as (name, variant a, variant b): a − b in points.
FULLDATA_DIFFERENCES = (("separable − dense", "separable", "dense"),
                        ("rank factor 2 − separable", "lowrank2_usual", "separable"),
                        ("factor 10: scaled − usual weight decay", "lowrank10_scaled", "lowrank10_usual"))


def fulldata_records(profile: str, store=None) -> tuple[list[dict], bool]:
    """The stored records of ``cifar_fulldata``'s ``profile`` grid (grid order) and whether it
    is complete (:func:`factorlab.report.store.stored_records`: never trains)."""
    from factorlab.experiments.cifar_fulldata import grid
    from factorlab.report.store import stored_records

    return stored_records(grid(profile), store)


def fulldata_frame(records: list[dict]) -> pd.DataFrame:
    """:func:`runs_frame` of ``cifar_fulldata`` records with each run's variant name
    (``name``, from :data:`~factorlab.experiments.cifar_fulldata.VARIANTS`)."""
    from factorlab.experiments.cifar_fulldata import variant_name

    f = runs_frame(records)
    f.insert(0, "name", [variant_name(r["config"]) for r in records])
    f["quiet"] = [quiet_of(r) for r in records]
    return f


def fulldata_table(records: list[dict], profile: str) -> pd.DataFrame:
    """Per width and variant of ``cifar_fulldata``'s ``profile`` grid (grid order): trainable
    parameters, seeds recorded, our test accuracy (%, TTA 2, mean ± sd over seeds), ours −
    dense (points, paired by seed, ± its standard error), the research log's accuracy (cited;
    "—" where it gives none), the training time per run (minutes, mean over seeds) and whether
    those runs had the machine to themselves (:func:`~factorlab.report.provenance.quiet_label`).
    A row without records reads :data:`NOT_MEASURED_TEXT` in "ours (%)" and "—" in the other
    measured columns (so the table stays narrow while the grid fills)."""
    from factorlab.experiments.cifar_fulldata import grid, variant_name

    journal = journal_accuracies()
    f = fulldata_frame(records) if records else None
    rows, seen = [], set()
    for cfg in grid(profile):
        key = (cfg["width"], variant_name(cfg))
        if key in seen:
            continue
        seen.add(key)
        d = f[(f.width == key[0]) & (f.name == key[1])] if f is not None else pd.DataFrame()
        dense = f[(f.width == key[0]) & (f.name == "dense")] if f is not None else pd.DataFrame()
        ours, vs_dense, params, minutes, quiet = NOT_MEASURED_TEXT, "—", "—", "—", "—"
        if len(d):
            ours, params = pm(d.acc.mean(), d.acc.std(), ".1f"), f"{int(d.params.iloc[0]):,}"
            minutes, quiet = f"{d.train_s.mean() / 60:.1f}", quiet_label(list(d.quiet))
            if key[1] == "dense":
                vs_dense = "—"
            elif len(dense) and set(d.seed) & set(dense.seed):
                m, se, _ = _paired_seeds(d, dense)
                vs_dense = pm(m, se)
        rows.append({"width": f"{key[0]:g}", "variant": key[1], "params": params, "seeds": int(d.seed.nunique())
                     if len(d) else 0, "ours (%)": ours, "ours − dense (points)": vs_dense,
                     "research log (%, cited)": f"{journal[key[1]]:.1f}" if key[1] in journal else "—",
                     "training (min)": minutes, "quiet": quiet})
    return pd.DataFrame(rows)


def fulldata_figure(records: list[dict]):
    """Test accuracy (%) of each ``cifar_fulldata`` variant (x, in
    :data:`~factorlab.experiments.cifar_fulldata.VARIANTS` order): one small dot per run, a
    line for the mean over seeds per width (width 1/2 and 1 side by side), and the research
    log's accuracy (cited: a ResNet on canonical CIFAR-10, on a GPU) as an open diamond where
    it gives one. Returns the Figure (None without records)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from factorlab.experiments.cifar_fulldata import VARIANTS

    if not records:
        return None
    f = fulldata_frame(records)
    names = [n for n, _, _ in VARIANTS]
    widths = sorted(f.width.unique())
    colors = dict(zip(widths, sns.color_palette("colorblind", len(widths))))
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 3.6))
    step, labelled = 0.8 / len(widths), set()
    for j, w in enumerate(widths):
        fw = f[f.width == w]
        for i, name in enumerate(names):
            d = fw[fw.name == name]
            if not len(d):
                continue
            x = i - 0.4 + step * (j + 0.5)
            label = None if w in labelled else f"ours, width {w:g}: mean over seeds (line), each run (dot)"
            labelled.add(w)
            ax.hlines(d.acc.mean(), x - step * 0.4, x + step * 0.4, color=colors[w], lw=2.5, label=label)
            ax.plot(np.full(len(d), x), d.acc, "o", color=colors[w], ms=3.5, alpha=0.8)
    journal = journal_accuracies()
    xs = [i for i, n in enumerate(names) if n in journal]
    ax.plot(xs, [journal[names[i]] for i in xs], "D", mfc="none", mec="0.15", ms=7,
            label="research log (cited: ResNet, canonical CIFAR-10, GPU)")
    lo = min(f.acc.min(), min(journal.values())) - 3
    ax.set_ylim(max(0.0, lo), 100)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("_", "\n") for n in names])
    ax.set_ylabel("test accuracy (%)")
    fig.tight_layout()
    plots.legend_below(fig, ax, ncol=2)
    return fig


def _paired_seeds(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float, int]:
    """Mean, standard error and count of the seed-paired differences of ``acc`` (a − b)."""
    return paired_difference(a.set_index("seed").acc, b.set_index("seed").acc)


def fulldata_differences(records: list[dict], width: float = 0.5) -> pd.DataFrame:
    """The research log's three differences (:data:`FULLDATA_DIFFERENCES`) at ``width``: ours
    (points, paired by seed: ``mean``, ``se``, ``n`` pairs; NaN without records of both), the
    log's (``journal``, from :func:`journal_accuracies`) and the verdict
    (:func:`factorlab.report.verdicts.difference_verdict`; "not measured" without pairs)."""
    journal = journal_accuracies()
    f = fulldata_frame(records) if records else None
    rows = []
    for what, a, b in FULLDATA_DIFFERENCES:
        m = se = math.nan
        n = 0
        if f is not None:
            da, db = (f[(f.width == width) & (f.name == v)] for v in (a, b))
            if len(da) and len(db) and set(da.seed) & set(db.seed):
                m, se, n = _paired_seeds(da, db)
        rows.append({"difference": what, "mean": m, "se": se, "n": n, "journal": journal[a] - journal[b],
                     "verdict": difference_verdict(m, se, journal[a] - journal[b]) if n else NOT_MEASURED})
    return pd.DataFrame(rows)


def fulldata_values(records: list[dict], profile: str) -> dict:
    """The glued values of the full-data comparison (all strings; each reads
    :data:`NOT_MEASURED_TEXT` without its records): ``fulldata_status`` (a sentence: runs
    recorded of the grid), ``fulldata_runs`` / ``fulldata_grid_runs``, ``fulldata_n_train``,
    ``fulldata_epochs``, ``fulldata_batch`` (the recipe's), ``fulldata_factors`` (the low-rank
    variants' rank factors, "2 and 10"); per width ``w`` (``half``, ``one``) and variant ``v`` of
    :data:`~factorlab.experiments.cifar_fulldata.VARIANTS` ``fulldata_<w>_<v>`` (test accuracy %,
    mean ± sd); per difference ``i`` of :data:`FULLDATA_DIFFERENCES` at width 1/2
    ``fulldata_diff<i>`` (ours ± se, points), ``fulldata_diff<i>_journal`` (the log's, cited) and
    ``fulldata_diff<i>_verdict``; the log's accuracies ``journal_<v>`` (cited);
    ``fulldata_minutes``, the shortest and longest training of a recorded run ("6 to 35", in
    minutes: the timing's ``train_s``, quiet or not); ``fulldata_one_summary``
    (:func:`fulldata_width_summary` at width 1)."""
    from factorlab.experiments.cifar_fulldata import VARIANTS, grid as fulldata_grid

    grid = fulldata_grid(profile)
    v = {"fulldata_runs": str(len(records)), "fulldata_grid_runs": str(len(grid)),
         "fulldata_epochs": f"{grid[0]['recipe']['epochs']:g}", "fulldata_batch": str(grid[0]["recipe"]["batch_size"]),
         "fulldata_factors": " and ".join(str(k) for k in sorted({spec["factor"] for _, spec, _ in VARIANTS
                                                                   if spec and "factor" in spec}))}
    v["fulldata_status"] = (f"not measured: no records of {FULLDATA} under the {profile} profile yet (0 of "
                            f"{len(grid)} runs)" if not records else
                            f"{len(records)} of {len(grid)} runs of {FULLDATA} under the {profile} profile recorded")
    v["fulldata_n_train"] = f"{records[0]['metrics']['n_train']:,}" if records else NOT_MEASURED_TEXT
    f = fulldata_frame(records) if records else None
    v["fulldata_minutes"] = (f"{f.train_s.min() / 60:.0f} to {f.train_s.max() / 60:.0f}" if f is not None
                             else NOT_MEASURED_TEXT)
    for w_key, width in (("half", 0.5), ("one", 1.0)):
        for name, _, _ in VARIANTS:
            d = f[(f.width == width) & (f.name == name)] if f is not None else pd.DataFrame()
            v[f"fulldata_{w_key}_{name}"] = pm(d.acc.mean(), d.acc.std(), ".1f") if len(d) else NOT_MEASURED_TEXT
    for i, row in fulldata_differences(records).iterrows():
        v[f"fulldata_diff{i}"] = pm(row["mean"], row.se) if row.n else NOT_MEASURED_TEXT
        v[f"fulldata_diff{i}_journal"] = f"{row.journal:+.1f}"
        v[f"fulldata_diff{i}_verdict"] = row.verdict
    v.update({f"journal_{k}": f"{a:.1f}" for k, a in journal_accuracies().items()})
    v["fulldata_levels"] = fulldata_levels(f)
    v["fulldata_summary"] = fulldata_summary(records, v["fulldata_status"])
    v["fulldata_one_summary"] = fulldata_width_summary(records, 1.0) or "Not measured yet at width 1."
    v["fulldata_collapse"] = fulldata_collapse_sentence(records) or "No run with scaled weight decay is recorded yet."
    return v


#: A run "learns nothing" when its final test accuracy (%) is within this many points of chance
#: (100 / classes: a constant prediction).
CHANCE_POINTS = 1.0


def compression_ratios(cfg: dict) -> list[float]:
    """The compression ratio of each compressed module of ``cfg``'s network (built untrained,
    :func:`factorlab.train.optim.compressed_modules`: the factor its weight decay is multiplied
    by under ``wd_mode="scaled"``)."""
    from factorlab.experiments.cifar_common import build_model
    from factorlab.train.optim import compressed_modules

    return [float(m.compression()) for _, m in compressed_modules(build_model(cfg))]


def fulldata_collapse(records: list[dict], classes: int = 10) -> dict | None:
    """What the ``cifar_fulldata`` runs with scaled weight decay show (None without such runs):
    ``n`` runs, ``at_chance`` of them within :data:`CHANCE_POINTS` of chance, their final
    training losses (``loss_min``, ``loss_max``; ``uniform_loss`` = ln ``classes``, a uniform
    guess), ``lr_wd`` (%: the recipe's peak learning rate × weight decay, the share of each
    weight that decay removes per step at the peak, as airbench applies it), per rank factor
    ``factors[f] = (lowest, highest compression ratio, lowest, highest shrink % per step)`` of
    the compressed layers under scaled decay, and ``steps`` of training (None where the record
    does not say)."""
    runs = [r for r in records if r["config"]["wd_mode"] == "scaled"]
    if not runs:
        return None
    chance = 100.0 / classes
    flat = [r for r in runs if abs(100 * r["metrics"]["test_acc"] - chance) <= CHANCE_POINTS]
    recipe = runs[0]["config"]["recipe"]
    lr_wd = 100 * recipe["lr"] * recipe["weight_decay"]
    factors = {}
    for r in runs:
        f = r["config"]["factorize"].get("factor")
        if f not in factors:
            c = compression_ratios(r["config"])
            factors[f] = (min(c), max(c), lr_wd * min(c), lr_wd * max(c))
    losses = [r["metrics"]["train_loss"] for r in flat] or [math.nan]
    return {"n": len(runs), "at_chance": len(flat), "chance": chance, "loss_min": min(losses),
            "loss_max": max(losses), "uniform_loss": math.log(classes), "lr_wd": lr_wd,
            "factors": dict(sorted(factors.items())), "steps": runs[0]["timing"].get("steps")}


def subset_collapse_values(fact: list[dict], classes: int = 10) -> dict:
    """The subset grid's (``cifar_factorized``) runs with scaled weight decay, for the contrast
    with :func:`fulldata_collapse`: ``subset_steps`` (training steps of a run, text; the
    distinct counts joined), ``subset_n_scaled``, ``subset_at_chance`` (within
    :data:`CHANCE_POINTS` of chance) and ``subset_min_scaled`` (% , the lowest test accuracy)."""
    runs = [r for r in fact if r["config"]["wd_mode"] == "scaled"]
    accs = [100 * r["metrics"]["test_acc"] for r in runs]
    steps = sorted({int(r["timing"]["steps"]) for r in runs if r["timing"].get("steps")})
    return {"subset_steps": ", ".join(map(str, steps)) or NOT_MEASURED_TEXT, "subset_n_scaled": len(runs),
            "subset_at_chance": sum(abs(a - 100 / classes) <= CHANCE_POINTS for a in accs),
            "subset_min_scaled": f"{min(accs):.1f}" if accs else NOT_MEASURED_TEXT}


def fulldata_collapse_sentence(records: list[dict]) -> str:
    """:func:`fulldata_collapse` in words (plain text, for glue); empty without scaled runs."""
    c = fulldata_collapse(records)
    if c is None:
        return ""
    per = "; ".join(f"at rank factor {f} the compressed layers' ratios are {lo:.1f}-{hi:.1f}, so each step takes "
                    f"{s_lo:.1f}-{s_hi:.1f} % of their weights" for f, (lo, hi, s_lo, s_hi) in c["factors"].items())
    head = (f"{c['at_chance']} of the {c['n']} runs with weight decay scaled by compression end at chance "
            f"({c['chance']:.0f} % test accuracy, a constant answer)")
    if c["at_chance"]:
        head += (f", their final training loss {c['loss_min']:.2f}-{c['loss_max']:.2f} against "
                 f"{c['uniform_loss']:.2f} for a uniform guess")
    return (f"{head}. The recipe's weight decay pulls each weight toward zero by {c['lr_wd']:.2f} % of its value "
            f"per step at the peak learning rate (before momentum); scaling it by a layer's compression ratio "
            f"multiplies that: {per}" + (f", over {c['steps']} steps." if c["steps"] else "."))


def fulldata_summary(records: list[dict], status: str, width: float = 0.5) -> str:
    """One sentence (plain text, for glue) on the research log's three differences measured on
    the whole training set at ``width`` (:func:`fulldata_differences`): each measured one as
    ours ± SE with the seed pairs, the log's value and the verdict, then those not measured
    yet; ``status`` (the grid's runs recorded) when none is measured."""
    d = fulldata_differences(records, width)
    done = [f"{r.difference} {pm(r['mean'], r.se)} points over {int(r.n)} seed pair{'s' if r.n > 1 else ''} "
            f"(the research log: {r.journal:+.1f}; {r.verdict})" for _, r in d.iterrows() if r.n]
    missing = [r.difference for _, r in d.iterrows() if not r.n]
    if not done:
        return f"On the whole training set nothing is measured yet ({status})."
    text = f"On the whole training set at width {width:g}: " + "; ".join(done) + "."
    return text + (f" Not measured yet: {', '.join(missing)}." if missing else "")


def fulldata_width_summary(records: list[dict], width: float = 1.0) -> str:
    """One sentence (plain text, for glue) on the whole-training-set runs at ``width``: the dense
    network's accuracy beside the research log's, and the log's three differences as ours (mean,
    ± SE where more than one seed pairs) beside the log's. With one seed pair there is no
    standard error and so no verdict, which the sentence says; "" without any record at ``width``."""
    f = fulldata_frame(records) if records else None
    if f is None or not (f.width == width).any():
        return ""
    dense = f[(f.width == width) & (f.name == "dense")]
    d = fulldata_differences(records, width)
    parts = [f"{r.difference} {pm(r['mean'], r.se)} points (the research log: {r.journal:+.1f})"
             for _, r in d.iterrows() if r.n]
    pairs = int(d.n.max()) if len(d) else 0
    text = f"At width {width:g}"
    text += ", with one seed (no spread, so no verdict)" if pairs <= 1 else f", over {pairs} seed pairs"
    if len(dense):
        text += (f", the dense network reaches {dense.acc.mean():.1f} % (the research log: "
                 f"{journal_accuracies()['dense']:.1f} % for its ResNet)")
    return text + (": " + "; ".join(parts) + "." if parts else ".")


#: How :func:`fulldata_levels` names each variant of ``cifar_fulldata`` but the dense one.
LEVEL_NAMES = {"separable": "separable convolutions", "lowrank2_usual": "rank factor 2 with the usual weight decay",
               "lowrank2_scaled": "rank factor 2 with scaled weight decay",
               "lowrank10_usual": "rank factor 10 with the usual weight decay",
               "lowrank10_scaled": "rank factor 10 with scaled weight decay", "tt": "the tensor train"}


def fulldata_levels(f: pd.DataFrame | None, width: float = 0.5) -> str:
    """One sentence (plain text, for glue): the mean test accuracy of each factorized variant at
    ``width`` (``f``: :func:`fulldata_frame`; None without records), then the variants not
    measured yet."""
    done, missing = [], []
    for name, label in LEVEL_NAMES.items():
        d = f[(f.width == width) & (f.name == name)] if f is not None else pd.DataFrame()
        if len(d):
            done.append(f"{label} {d.acc.mean():.1f} % ({len(d)} seed{'s' if len(d) > 1 else ''})")
        else:
            missing.append(label)
    text = ("The factorized variants reach: " + "; ".join(done) + ".") if done else ""
    if missing:
        text += (" " if text else "") + "Not measured yet: " + ", ".join(missing) + "."
    return text


def fulldata_anchor_values(anchor: list[dict]) -> dict:
    """The glued values of airbench94 beside ``cifar_fulldata``'s dense width-1/2 net
    (``cifar_anchor`` records of :func:`anchor_records` with ``ours_experiment="cifar_fulldata"``):
    :func:`anchor_values`' keys with the prefix ``fulldata_anchor_`` for ``anchor_cpu_``, all as
    strings; each reads :data:`NOT_MEASURED_TEXT` without the record."""
    got = anchor_values(anchor)
    keys = ("diff", "se", "seeds", "ratio", "acc", "verdict", "noise", "version", "quiet")
    return {f"fulldata_anchor_{k}": str(got[f"anchor_cpu_{k}"]) if got else NOT_MEASURED_TEXT for k in keys}


def fulldata_differences_table(records: list[dict], width: float = 0.5) -> pd.DataFrame:
    """:func:`fulldata_differences` for display: the difference, ours (points, mean ± standard
    error of the seed-paired differences, or :data:`NOT_MEASURED_TEXT`), the seed pairs, the
    research log's (cited) and the verdict."""
    d = fulldata_differences(records, width)
    return pd.DataFrame({"difference": d.difference,
                         "ours (points)": [pm(m, se) if n else NOT_MEASURED_TEXT for m, se, n in zip(d["mean"], d.se, d.n)],
                         "seed pairs": d.n, "research log (points, cited)": [f"{j:+.1f}" for j in d.journal],
                         "verdict": d.verdict})


def fulldata_anchor_sentence(anchor: list[dict]) -> str:
    """One sentence on airbench94 run beside ``cifar_fulldata``'s dense width-1/2 network
    (``cifar_anchor`` records with ``ours_experiment="cifar_fulldata"``, :func:`anchor_records`):
    the accuracy difference with its standard error and seeds, the verdict, the time ratio and
    whether the machine was quiet; without a record, that it has not been run and the command."""
    v = fulldata_anchor_values(anchor)
    if v["fulldata_anchor_diff"] == NOT_MEASURED_TEXT:
        return ("airbench94 itself has not been run beside this grid yet (`python benchmarks/airbench_anchor.py "
                "--profile cpu --ours cifar_fulldata --record`): not measured.")
    return (f"Beside airbench94 itself, run from its package (version {v['fulldata_anchor_version']}) on the same "
            f"images, our dense network at width 1/2 {v['fulldata_anchor_verdict']} (ours − airbench94 "
            f"{v['fulldata_anchor_diff']} ± {v['fulldata_anchor_se']} points, {v['fulldata_anchor_seeds']} seeds each, "
            f"{v['fulldata_anchor_noise']}) and takes {v['fulldata_anchor_ratio']} times its time per run "
            f"(quiet machine: {v['fulldata_anchor_quiet']}).")
