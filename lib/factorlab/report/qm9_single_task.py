"""Chapter "QM9 and single-task baselines" (``notebooks/qm9_single_task.ipynb``): the dataset's
statistics (experiment ``qm9_dataset``), the on-device loader against PyTorch Geometric's
collation (benchmark ``qm9_loader_benchmark``, ``benchmarks/qm9_loader.py``) and one GINE per
target (experiment ``qm9_single_task``), with chemical-accuracy ratios beside the cited ones
of Gilmer et al. (2017).

MAEs are in each target's own unit (:data:`factorlab.report.qm9.UNITS`); a "ratio" is test MAE
/ the cited chemical accuracy, below 1 chemically accurate."""
from __future__ import annotations

import numpy as np
import pandas as pd

from factorlab import literature, plots
from factorlab.data.qm9 import HARTREE_TO_EV, TARGETS
from factorlab.mtl import CHEMICAL_ACCURACY
from factorlab.report.provenance import devices_of, quiet_label, quiet_of
from factorlab.report.qm9 import TARGET_ORDER, mae_frame
from factorlab.report.formatting import pm

#: The benchmark whose record times the loader.
LOADER_BENCHMARK = "qm9_loader_benchmark"
#: The cited models of Gilmer et al. (2017) set beside ours, with their figure markers.
CITED_MODELS = (("GC", "s"), ("enn-s2s", "D"))
#: Groups of targets that are nearly the same quantity: the four total energies, the four
#: atomization energies.
TOTAL_ENERGIES = ("U0", "U", "H", "G")
ATOMIZATION_ENERGIES = ("U0_atom", "U_atom", "H_atom", "G_atom")


def loader_record(profile: str, device: str = "auto", store=None) -> dict:
    """The record of the benchmark ``qm9_loader_benchmark`` under ``profile`` (on the device
    its profile names), from the run store or measured now if missing
    (``run_experiment("qm9_loader_benchmark", profile)``)."""
    from factorlab.experiments import run_experiment

    return run_experiment(LOADER_BENCHMARK, profile, device, store=store)[0]


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per single-task model (run and target) of ``qm9_single_task`` records: see
    :func:`factorlab.report.qm9.mae_frame`."""
    return mae_frame(records)


def gine_record(records: list[dict]) -> dict:
    """The first ``qm9_single_task`` record of the GINE model (its config and ``model`` block
    describe the chapter's network)."""
    return next(r for r in records if r["config"]["model"] == "gine")


def targets_table(dataset: dict) -> pd.DataFrame:
    """The targets of a ``qm9_dataset`` record: name, unit, meaning and the training split's
    mean, std, min and max (in the target's unit, as strings with 4 significant digits)."""
    st = dataset["metrics"]["targets"]
    tt = pd.DataFrame([{"target": t.name, "unit": t.unit, "meaning": t.description, "mean": st[t.name]["mean"],
                        "std": st[t.name]["std"], "min": st[t.name]["min"], "max": st[t.name]["max"]} for t in TARGETS])
    return tt.assign(**{c: tt[c].map(lambda v: f"{v:.4g}") for c in ["mean", "std", "min", "max"]})


def loader_table(loader: dict) -> pd.DataFrame:
    """The ``qm9_loader_benchmark`` record as a table: one epoch's seconds with our on-device
    gather and with PyG's DataLoader, and their ratio, for iterating the batches alone and for
    a training epoch, and ``quiet``: whether the record was measured on a quiet machine (yes /
    no / unknown for records from before the load was recorded)."""
    lm = loader["metrics"]
    quiet = quiet_label(quiet_of(loader))
    return pd.DataFrame([{"phase": {"load": "iterate batches only", "train": "training epoch"}[ph],
                          "ours (s)": f"{lm[f'ours_{ph}_s']:.3f}", "PyG DataLoader (s)": f"{lm[f'pyg_{ph}_s']:.3f}",
                          "PyG / ours": f"{lm[f'{ph}_ratio']:.2f}×", "quiet": quiet} for ph in ("load", "train")])


def per_target(runs: pd.DataFrame) -> pd.DataFrame:
    """The GINE rows of :func:`runs_frame` per target, in :data:`TARGETS` order: mean test
    MAE over seeds ``mae`` and its standard deviation ``mae_sd`` (NaN for one seed), ``mae_std``,
    ``seeds``, median ``best_epoch``, ``composition_mae``, ``unit``, the cited chemical
    accuracy ``chem_acc`` (NaN for A, B, C) and ``ratio`` = mae / chem_acc."""
    g = runs[runs.model == "gine"].groupby("target", sort=False).agg(
        mae=("mae", "mean"), mae_sd=("mae", "std"), mae_std=("mae_std", "mean"), seeds=("seed", "nunique"),
        best_epoch=("best_epoch", "median"), composition_mae=("composition_mae", "mean")
    ).reindex(TARGET_ORDER).reset_index()
    g["unit"] = [t.unit for t in TARGETS]
    g["chem_acc"] = g.target.map(CHEMICAL_ACCURACY)
    g["ratio"] = g.mae / g.chem_acc
    return g


def cited_ratio(model: str, targets: pd.Series) -> pd.Series:
    """Gilmer et al.'s (2017) error ratio of ``model`` ("GC" or "enn-s2s") for each of
    ``targets`` (cited, not measured; None where they give none)."""
    return targets.map(lambda t: literature.GILMER2017_ERROR_RATIOS.get(model, {}).get(t))


def results_table(g: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_target` as the chapter's table: test MAE (± sd over seeds), MAE/std, the
    composition model's MAE, the cited chemical accuracy, our ratio and the cited ratios."""
    cited = {m: cited_ratio(m, g.target) for m, _ in CITED_MODELS}
    return pd.DataFrame({
        "target": g.target, "unit": g.unit,
        "test MAE": [pm(v, s, ".4g", ".2g") for v, s in zip(g.mae, g.mae_sd)],
        "MAE / std": g.mae_std.map("{:.3f}".format),
        "composition model MAE": g.composition_mae.map(lambda v: "" if v != v else f"{v:.4g}"),
        "chemical accuracy (cited)": g.chem_acc.map(lambda v: "" if v != v else f"{v:g}"),
        "ratio": g.ratio.map(lambda v: "" if v != v else f"{v:.1f}"),
        "GC ratio (cited)": cited["GC"].map(lambda v: "" if v is None or v != v else f"{v:g}"),
        "enn-s2s ratio (cited)": cited["enn-s2s"].map(lambda v: "" if v is None or v != v else f"{v:g}"),
    })


def ratio_figure(g: pd.DataFrame, profile: str):
    """Bar chart of our test MAE / chemical accuracy per target of :func:`per_target` (targets
    with a cited accuracy only), the cited ratios of Gilmer et al. as markers, log scale,
    chemical accuracy (1) as a line. Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 3.4))
    r = g.dropna(subset=["ratio"])
    x = np.arange(len(r))
    ax.bar(x, r.ratio, color=sns.color_palette("colorblind")[0], label=f"ours ({profile} profile)")
    for k, (name, marker) in enumerate(CITED_MODELS):
        vals = cited_ratio(name, r.target)
        ok = vals.notna().to_numpy()
        ax.scatter(x[ok], vals[ok].astype(float), marker=marker, color=sns.color_palette("colorblind")[k + 1],
                   zorder=3, label=f"{name}, Gilmer et al. 2017 (cited)")
    ax.axhline(1, color="k", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(x, r.target, rotation=45, ha="right")
    ax.set_ylabel("test MAE / chemical accuracy")
    ax.legend()
    fig.tight_layout()
    return fig


def correlation_frame(dataset: dict) -> pd.DataFrame:
    """|Pearson r| between the targets over the training split, from a ``qm9_dataset``
    record: a [19, 19] frame indexed by target name on both axes."""
    dm = dataset["metrics"]
    names = dm["target_names"]
    return pd.DataFrame(np.abs(np.array(dm["corr_train"])), index=names, columns=names)


def correlation_figure(corr: pd.DataFrame):
    """Heat map of :func:`correlation_frame` (0 to 1, viridis). Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH * 0.75, plots.FULL_WIDTH * 0.62))
    sns.heatmap(corr, cmap="viridis", vmin=0, vmax=1, square=True, ax=ax,
                cbar_kws={"label": "|Pearson r| (training split)"})
    fig.tight_layout()
    return fig


def min_correlation(corr: pd.DataFrame, group) -> float:
    """The smallest entry of ``corr`` between two different targets of ``group``."""
    return float(min(corr.loc[a, b] for a in group for b in group if a != b))


def composition_gain(g: pd.DataFrame) -> dict:
    """How much the network improves on the linear composition model, from :func:`per_target`:
    the smallest and largest ratio composition MAE / network MAE (``gain_min``, ``gain_max``)
    and their targets (``gain_min_target``, ``gain_max_target``)."""
    gain = g.composition_mae / g.mae
    return {"gain_min": float(gain.min()), "gain_max": float(gain.max()),
            "gain_min_target": g.target[gain.idxmin()], "gain_max_target": g.target[gain.idxmax()]}


def chemical_accuracy_summary(g: pd.DataFrame) -> dict:
    """The verdict on chemical accuracy over the targets of :func:`per_target` that have a
    cited accuracy: how many are chemically accurate (ratio strictly below 1, ``n_chem``) of
    ``n_with_acc``, the best and worst target and ratio, and the median ratio."""
    acc = g.dropna(subset=["ratio"])
    best, worst = acc.loc[acc.ratio.idxmin()], acc.loc[acc.ratio.idxmax()]
    return {"n_chem": int((acc.ratio < 1).sum()), "n_with_acc": int(len(acc)),
            "best_target": best.target, "best_ratio": float(best.ratio),
            "worst_target": worst.target, "worst_ratio": float(worst.ratio),
            "median_ratio": float(acc.ratio.median())}


def glue_values(profile: str, dataset: dict, records: list[dict], loader: dict) -> dict:
    """Every value the chapter glues, by name, from a ``qm9_dataset`` record, the
    ``qm9_single_task`` records and the ``qm9_loader_benchmark`` record: counts as
    thousands-separated strings, energies in meV where the name says ``_mev``, the loader's
    ratios PyG / ours, the composition model's MAE / the network's (``gain_*``), the number of
    targets below chemical accuracy (ratio < 1, ``n_chem``) and per target its mean test MAE
    (``mae_<t>``), ratio (``ratio_<t>``, NaN without a cited accuracy) and MAE/std
    (``maestd_<t>``); also ``n_targets`` (the dataset's targets), ``print_step_mev`` (one unit
    in the fourth decimal of a Hartree, in meV: the release's print precision), ``u_mean_ev``
    (the training mean of the total energy U, eV), ``n_seeds`` / ``seeds_phrase`` (seeds per
    target), ``seed_cv_median_pct`` (median over targets of the seed SD / mean MAE, %, NaN for
    one seed) and ``lb_quiet`` (whether the loader was
    timed on a quiet machine: yes / no / unknown)."""
    dm, lm = dataset["metrics"], loader["metrics"]
    gine = gine_record(records)
    cfg, info = gine["config"], gine["model"]
    corr = correlation_frame(dataset)
    g = per_target(runs_frame(records))
    n_seeds = int(g["seeds"].max())
    v = {"profile": profile, "n_runs": len(records), "devices": devices_of(records),
         "n_seeds": n_seeds, "seeds_phrase": "one seed" if n_seeds == 1 else f"{n_seeds} seeds",
         "seed_cv_median_pct": float((100 * g["mae_sd"] / g["mae"]).median()) if n_seeds > 1 else float("nan"),
         "n_mol": f"{dm['n_molecules']:,}", "n_from_xyz": dm["n_from_xyz"], "methane": dm["methane_U0_atom_eV"],
         "gap_err_mev": 1e3 * dm["max_abs_gap_minus_lumo_homo_eV"], "n_targets": len(dm["target_names"]),
         "print_step_mev": 1e3 * 1e-4 * HARTREE_TO_EV, "u_mean_ev": float(dm["targets"]["U"]["mean"])}
    for k in ("train", "valid", "test"):
        v[f"n_{k}"] = f"{dm['split'][k]:,}"
    v.update({"lb_n": f"{lm['n_molecules']:,}", "lb_batch": loader["config"]["batch_size"],
              "lb_device": loader["provenance"]["device"], "lb_threads": lm["threads"],
              "lb_load_ratio": lm["load_ratio"], "lb_train_ratio": lm["train_ratio"],
              "lb_load_share": 100 * lm["pyg_load_s"] / lm["pyg_train_s"], "lb_quiet": quiet_label(quiet_of(loader)),
              "layers": cfg["model_kwargs"]["layers"], "hidden": cfg["model_kwargs"]["hidden"],
              "params": f"{info['params_per_member']:,}", "lr": cfg["lr"], "batch": cfg["batch_size"],
              "epochs": cfg["epochs"], "n_train_used": f"{info['n_train']:,}", "n_valid_used": f"{info['n_valid']:,}",
              "n_test_used": f"{info['n_test']:,}", "hmu_mev": 1e3 * dm["H_minus_U_mean_eV"],
              "hmu_sd_mev": 1e3 * dm["H_minus_U_std_eV"], "kt_mev": 1e3 * dm["kT_eV"],
              "corr_total_min": min_correlation(corr, TOTAL_ENERGIES),
              "corr_atom_min": min_correlation(corr, ATOMIZATION_ENERGIES)})
    v.update(composition_gain(g))
    v.update(chemical_accuracy_summary(g))
    for t, row in g.set_index("target").iterrows():
        v[f"mae_{t}"] = float(row.mae)
        v[f"ratio_{t}"] = float(row.ratio) if row.ratio == row.ratio else float("nan")
        v[f"maestd_{t}"] = float(row.mae_std)
    return v
