"""Chapter "DFT or network?" (``notebooks/dft_or_network.ipynb``): the DFT of a sample of QM9
molecules against QM9's labels (experiment ``dft_validation``, one record per molecule), the
saved networks of experiment ``qm9_demo_model`` (19 single-task GINEs, ``sharing "none"``; one
hard-shared GINE, ``"hard"``; and, once the grouping chapter's records exist, the networks of
its best grouping with single-task GINEs for the 8 targets outside it, ``"grouped"``) on the
same molecules, side by side for those recorded (:data:`NETWORK_LABELS` order; the single-task
networks are required, the others shown when present), and the time each method takes (SCF on
one and two threads: benchmark ``dft_threads_benchmark``); where recorded, the same networks
trained on the whole training split (experiment ``qm9_demo_full``, read and never trained:
:func:`full_split_records`) beside them, and the network's worst cases on the sample
(:func:`worst_predictions`). The networks' inference times come from the benchmark
``qm9_demo_inference`` (the saved networks timed together in one process, ideally on a quiet
machine) where it has a record of the networks in use, else from each network's own training
record (:func:`inference_timings`).

Errors are in each target's unit (:data:`factorlab.report.qm9.UNITS`); times in seconds per
molecule on one CPU thread unless a name says ``_ms``/``_us``; a ratio to chemical accuracy
below 1 is chemically accurate; "print step" is the precision QM9 prints a label to."""
from __future__ import annotations

import numpy as np
import pandas as pd

from factorlab import plots
from factorlab.dft.cost import fit_power_law
from factorlab.experiments.dft_validation import QM9_PRINTED_STEP, validation_frame
from factorlab.mtl import CHEMICAL_ACCURACY
from factorlab.report.provenance import devices_of, quiet_label, quiet_of, quiet_sentence
from factorlab.report.formatting import se_digits
from factorlab.report.qm9 import TARGET_ORDER, UNITS

#: Targets grouped by the DFT step they need: key -> (label, targets).
DFT_STEP_GROUPS = {"scf": ("SCF: μ, HOMO, LUMO, gap, ⟨R²⟩", ["mu", "homo", "lumo", "gap", "r2"]),
                   "pol": ("+ CPKS: α", ["alpha"]),
                   "hess": ("+ Hessian: ZPVE, energies, Cv", ["zpve", "U0", "U", "H", "G", "Cv", "U0_atom", "U_atom",
                                                               "H_atom", "G_atom"])}
#: Legend label of each saved network, by its ``sharing``, in display order.
NETWORK_LABELS = {"none": "19 single-task GINEs", "hard": "hard-shared GINE", "grouped": "best grouping's GINEs"}
#: The column of :func:`network_frame` holding each network's test-split MAE.
TEST_COLUMNS = {"none": "single-task MAE, test split", "hard": "hard-shared MAE, test split",
                "grouped": "grouped MAE, test split"}
#: Marker of each network in :func:`accuracy_figure`.
MARKERS = {"none": "o", "hard": "s", "grouped": "^"}
#: Heavy-atom ranges of the "small" and "large" molecules the text compares.
SMALL_MAX_HEAVY, LARGE_MIN_HEAVY = 3, 7


def thread_records(profile: str, store=None) -> list[dict]:
    """The records of the benchmark ``dft_threads_benchmark`` (``benchmarks/dft_threads.py
    --record``: the SCF on one and two threads) for ``profile``, from the run store (empty
    where it was not measured)."""
    from factorlab.results import RunStore

    return [r for r in (store or RunStore()).records("dft_threads_benchmark") if r["config"]["profile"] == profile]


def networks(net_records: list[dict]) -> dict[str, dict]:
    """The ``qm9_demo_model`` records by ``sharing`` (``"none"``: single-task, ``"hard"``:
    shared, ``"grouped"``: the best grouping), in :data:`NETWORK_LABELS` order, those present
    only (ValueError for a sharing it does not know). Where a network has several seeds, the
    lowest seed's record: the network the demonstration loads and the chapter describes
    (:func:`seed_spread` gives the others)."""
    found: dict[str, dict] = {}
    for r in sorted(net_records, key=lambda r: -r["config"].get("seed", 0)):
        found[r["config"]["sharing"]] = r
    unknown = sorted(set(found) - set(NETWORK_LABELS))
    if unknown:
        raise ValueError(f"unknown qm9_demo_model sharing {unknown}: expected {', '.join(NETWORK_LABELS)}")
    return {k: found[k] for k in NETWORK_LABELS if k in found}


def mean_log_ratio(mae: dict[str, float], reference: dict[str, float]) -> float:
    """Mean over the 19 targets (:data:`TARGET_ORDER`) of log(``mae`` / ``reference``), two
    test-MAE dicts by target: the log of their geometric-mean ratio."""
    return float(np.mean([np.log(mae[t] / reference[t]) for t in TARGET_ORDER]))


def seed_spread(net_records: list[dict]) -> dict:
    """How much the networks' test MAEs depend on the seed, and how they compare seed by seed:
    ``seeds_per_network`` (the fewest seeds of a recorded network); per network (``<sharing>``
    of :data:`NETWORK_LABELS`) ``cv_<sharing>`` (median over the 19 targets of the test MAE's
    coefficient of variation over seeds, %; NaN for one seed) and, for the networks other than
    the single-task ones, ``ratio_<sharing>`` / ``ratio_<sharing>_se`` (geometric mean over the
    targets of its test MAE over the single-task networks' of the same seed, as mean and
    standard error over the paired seeds; the SE NaN for one seed) and ``spread_sentence``
    (these in words)."""
    from factorlab.analysis import paired_difference

    by: dict[str, dict[int, dict[str, float]]] = {}
    for r in net_records:
        by.setdefault(r["config"]["sharing"], {})[r["config"].get("seed", 0)] = r["metrics"]["test_mae"]
    v: dict = {"seeds_per_network": min(len(x) for x in by.values())}
    words = []
    for sharing in (k for k in NETWORK_LABELS if k in by):
        seeds = by[sharing]
        if len(seeds) > 1:
            m = pd.DataFrame(seeds)  # targets x seeds
            v[f"cv_{sharing}"] = float((100 * m.std(axis=1, ddof=1) / m.mean(axis=1)).median())
        else:
            v[f"cv_{sharing}"] = float("nan")
        if sharing == "none" or "none" not in by:
            continue
        log_ratio = pd.Series({s: mean_log_ratio(seeds[s], by["none"][s]) for s in seeds if s in by["none"]})
        mean, se, n = paired_difference(log_ratio, pd.Series(0.0, index=log_ratio.index))
        v[f"ratio_{sharing}"], v[f"ratio_{sharing}_se"] = float(np.exp(mean)), float(np.exp(mean) * se)
        digits = se_digits(v[f"ratio_{sharing}_se"])
        spread = "" if se != se else f" ± {v[f'ratio_{sharing}_se']:.{digits}f}"
        owner = NETWORK_LABELS[sharing] + ("'" if NETWORK_LABELS[sharing].endswith("s") else "'s")
        words.append(f"the {owner} test MAE is {v[f'ratio_{sharing}']:.{digits}f}{spread} times the "
                     f"single-task networks' of the same seed")
    n = v["seeds_per_network"]
    if n > 1:
        cv = ", ".join(f"{v[f'cv_{k}']:.1f} % ({NETWORK_LABELS[k]})" for k in NETWORK_LABELS if k in by)
        head = f"Over {n} seeds per network, a target's test MAE varies from seed to seed by a median {cv}"
        tail = " (geometric mean over the targets; mean ± standard error over the seeds)"
    else:
        head, tail = "Each network has one seed, so its test MAEs carry no seed-to-seed spread", \
            " (geometric mean over the targets; one seed)"
    v["spread_sentence"] = head + (f"; {'; '.join(words)}{tail}." if words else ".")
    return v


def molecules_frame(dft_records: list[dict], net_records: list[dict]) -> pd.DataFrame:
    """One row per molecule of ``dft_validation``, by heavy atoms then QM9 Index: SMILES, atoms,
    basis functions, the seconds of each DFT step (NaN where not run), the electronic energy's
    error against QM9's U0 − ZPVE (mEh) and the split the networks saw it in."""
    stl = networks(net_records)["none"]
    return pd.DataFrame([{
        "Index": r["config"]["qm9_index"], "SMILES": r["model"]["smiles"], "heavy atoms": r["config"]["heavy_atoms"],
        "atoms": r["model"]["n_atoms"], "basis functions": r["model"]["n_basis"],
        "SCF (s)": r["timing"].get("scf_s"), "polarizability (s)": r["timing"].get("polarizability_s"),
        "Hessian (s)": r["timing"].get("hessian_s"), "total (s)": r["timing"]["total_s"],
        "energy error (mEh)": r["metrics"]["energy_error_mEh"],
        "network split": stl["metrics"]["sample"].get(str(r["config"]["qm9_index"]), {}).get("split", "not loaded"),
    } for r in dft_records]).sort_values(["heavy atoms", "Index"]).reset_index(drop=True)


def molecules_table(mols: pd.DataFrame) -> pd.DataFrame:
    """:func:`molecules_frame` formatted: seconds with one decimal (empty where not run), the
    energy error signed with four decimals."""
    show = mols.copy()
    for c in ("SCF (s)", "polarizability (s)", "Hessian (s)", "total (s)"):
        show[c] = show[c].map(lambda x: "" if x != x or x is None else f"{x:.1f}")
    show["energy error (mEh)"] = show["energy error (mEh)"].map("{:+.4f}".format)
    return show


def network_sample_frame(dft_records: list[dict], net_records: list[dict]) -> pd.DataFrame:
    """One row per molecule of ``dft_validation``, network and target: the network's value,
    QM9's label and the error network − QM9 (molecules a network has no prediction for are
    left out)."""
    rows = []
    for r in dft_records:
        idx = str(r["config"]["qm9_index"])
        for sharing, rec in networks(net_records).items():
            pred = rec["metrics"]["sample"].get(idx)
            if pred is None:
                continue
            for t in TARGET_ORDER:
                rows.append({"qm9_index": int(idx), "network": sharing, "target": t, "value": pred["network"][t],
                             "qm9": r["metrics"]["qm9"][t], "error": pred["network"][t] - r["metrics"]["qm9"][t]})
    return pd.DataFrame(rows)


def dft_error_summary(dft_records: list[dict]) -> pd.DataFrame:
    """Per target (in :data:`TARGETS` order, those computed), over the molecules: their number,
    median and max |DFT − QM9|, QM9's print step and max / step (at most 0.5 for a perfect
    reproduction of a rounded label)."""
    v = validation_frame(dft_records).dropna(subset=["error"]).copy()
    v["abs"] = v.error.abs()
    summary = v.groupby("target").agg(molecules=("abs", "size"), median=("abs", "median"), max=("abs", "max"))
    summary = summary.reindex([n for n in TARGET_ORDER if n in summary.index])
    summary["step"] = [QM9_PRINTED_STEP[t] for t in summary.index]
    summary["max / step"] = summary["max"] / summary["step"]
    return summary


def dft_error_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`dft_error_summary` formatted (two significant digits, the ratio with two decimals)."""
    return pd.DataFrame({"target": summary.index, "unit": [UNITS[t] for t in summary.index],
                         "molecules": summary.molecules.to_numpy(),
                         "median |DFT − QM9|": summary["median"].map("{:.2g}".format).to_numpy(),
                         "max |DFT − QM9|": summary["max"].map("{:.2g}".format).to_numpy(),
                         "QM9 print step": summary.step.map("{:.2g}".format).to_numpy(),
                         "max / print step": summary["max / step"].map("{:.2f}".format).to_numpy()})


def network_frame(dft_records: list[dict], net_records: list[dict]) -> pd.DataFrame:
    """Per target: the cited chemical accuracy, each recorded network's test-split MAE
    (:data:`TEST_COLUMNS`, side by side in :data:`NETWORK_LABELS` order), the single-task
    networks' MAE over this sample (when they predicted it), the DFT's median |error| over the
    sample and single-task test MAE / chemical accuracy (NaN without a cited accuracy)."""
    net = networks(net_records)
    net_sample = network_sample_frame(dft_records, net_records)
    tab = pd.DataFrame({"target": TARGET_ORDER, "unit": [UNITS[t] for t in TARGET_ORDER]})
    tab["chemical accuracy (cited)"] = tab.target.map(lambda t: CHEMICAL_ACCURACY.get(t, np.nan))
    for sharing, rec in net.items():
        tab[TEST_COLUMNS[sharing]] = tab.target.map(rec["metrics"]["test_mae"])
    if len(net_sample):
        s = net_sample.assign(abs=net_sample.error.abs()).groupby(["network", "target"])["abs"].mean()
        tab["single-task MAE, this sample"] = tab.target.map(s.get("none", pd.Series(dtype=float)))
    tab["DFT median |error|, this sample"] = tab.target.map(dft_error_summary(dft_records)["median"])
    tab["single-task / chemical accuracy"] = tab["single-task MAE, test split"] / tab["chemical accuracy (cited)"]
    return tab


def network_table(tab: pd.DataFrame) -> pd.DataFrame:
    """:func:`network_frame` formatted (three significant digits, empty for NaN)."""
    fmt = tab.copy()
    for c in fmt.columns[2:]:
        fmt[c] = fmt[c].map(lambda x: "" if x != x else f"{x:.3g}")
    return fmt


def per_molecule_ratio(dft_records: list[dict], net_records: list[dict]) -> pd.DataFrame:
    """Per network and molecule of the sample: its heavy atoms and the median over the targets
    with a cited accuracy of |network − QM9| / chemical accuracy (empty, with the columns
    ``network``, ``heavy atoms`` and ``ratio``, when no network predicted the sample)."""
    net_sample = network_sample_frame(dft_records, net_records)
    if not len(net_sample):
        return pd.DataFrame({"network": [], "qm9_index": [], "heavy atoms": [], "ratio": []})
    mols = molecules_frame(dft_records, net_records)
    ns = net_sample[net_sample.target.isin(list(CHEMICAL_ACCURACY))].copy()
    ns["ratio"] = ns.error.abs() / ns.target.map(CHEMICAL_ACCURACY)
    ns["heavy atoms"] = ns.qm9_index.map(dict(zip(mols.Index, mols["heavy atoms"])))
    return ns.groupby(["network", "qm9_index", "heavy atoms"], as_index=False).ratio.median()


def accuracy_figure(per_mol: pd.DataFrame):
    """:func:`per_molecule_ratio` against heavy atoms, one marker per network, log scale,
    chemical accuracy dashed. Returns the Figure, or None when ``per_mol`` is empty."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if not len(per_mol):
        return None
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH * 0.7, 3.2))
    colors = dict(zip(NETWORK_LABELS, sns.color_palette("colorblind", len(NETWORK_LABELS))))
    for sharing, g in per_mol.groupby("network", sort=False):
        ax.scatter(g["heavy atoms"], g.ratio, color=colors[sharing], marker=MARKERS[sharing],
                   label=NETWORK_LABELS[sharing])
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(range(1, 10))
    ax.set_xlabel("heavy atoms")
    ax.set_ylabel("median over targets of\n|error| / chemical accuracy")
    ax.legend()
    fig.tight_layout()
    return fig


#: The benchmark that times the saved networks together (read where recorded, never measured here).
INFERENCE = "qm9_demo_inference"
#: The sources of the networks' inference times, by experiment, as :func:`inference_timings` names them.
TIMING_SOURCES = (INFERENCE, "qm9_demo_model")


def inference_timings(net_records: list[dict], store=None) -> dict:
    """The networks' inference times (seconds per molecule, the fields of ``qm9_demo_model``'s
    ``timing.inference``: ``single_s``, ``batched_s``, ``batch_size``, ``featurize_s``, ...) and
    where they come from.

    From a record of the benchmark ``qm9_demo_inference`` where the run store holds one that
    timed every network of ``net_records`` under the same run key and weights (SHA-256): a
    quiet one first, then the latest; else from each network's own training record
    (``qm9_demo_model``'s ``timing.inference``, each timed right after its training). Never
    measures.

    Returns:
        ``source`` (:data:`TIMING_SOURCES`: ``"qm9_demo_inference"`` or ``"qm9_demo_model"``),
        ``records`` (the records the times come from: the benchmark's one, or the networks'),
        ``quiet`` (:func:`~factorlab.report.provenance.quiet_label` of those records:
        yes / no / unknown / "k of n"), ``repeats`` (the benchmark's, None for the training
        records) and ``by_sharing`` (sharing -> times, for every network of ``net_records``).
    """
    from factorlab.experiments.qm9_demo_inference import matching_records

    net = networks(net_records)
    keys = {s: r.get("key") for s, r in net.items()}
    found = [r for r in matching_records(keys, store) if _same_weights(r, net)] if all(keys.values()) else []
    if found:
        quiet = [r for r in found if quiet_of(r) is True]
        rec = (quiet or found)[-1]
        return {"source": INFERENCE, "records": [rec], "quiet": quiet_label(quiet_of(rec)),
                "repeats": int(rec["metrics"]["repeats"]),
                "by_sharing": {s: rec["metrics"]["inference"][s] for s in net}}
    return {"source": "qm9_demo_model", "records": list(net.values()),
            "quiet": quiet_label([quiet_of(r) for r in net.values()]), "repeats": None,
            "by_sharing": {s: r["timing"]["inference"] for s, r in net.items()}}


def _same_weights(rec: dict, net: dict[str, dict]) -> bool:
    """Whether benchmark record ``rec`` timed the weights (SHA-256) of every network of ``net``
    (sharing -> ``qm9_demo_model`` record; a record that states no SHA-256 is not checked)."""
    timed = rec.get("model", {}).get("networks", {})
    for s, r in net.items():
        want = r.get("model", {}).get("weights", {}).get("sha256")
        if want is not None and timed.get(s, {}).get("sha256") != want:
            return False
    return True


def timing_records(net_records: list[dict], store=None) -> list[dict]:
    """The ``qm9_demo_inference`` record the networks' times come from (:func:`inference_timings`),
    for the provenance table; empty where they come from the training records (already listed)."""
    t = inference_timings(net_records, store)
    return t["records"] if t["source"] == INFERENCE else []


def timing_sentence(timings: dict) -> str:
    """Where the networks' inference times come from, in one sentence (:func:`inference_timings`)."""
    quiet = {"yes": "on a quiet machine", "no": "on a busy machine",
             "unknown": "on a machine whose load was not recorded"}
    where = quiet.get(timings["quiet"], f"{timings['quiet']} on a quiet machine")
    n = timings["by_sharing"]["none"].get("threads")
    threads = "" if n is None else ", one thread" if n == 1 else f", {n} threads"
    if timings["source"] == INFERENCE:
        return (f"The networks were timed together in one process (benchmarks/qm9_demo_inference.py, experiment "
                f"{INFERENCE}: medians of {timings['repeats']} repeats interleaved across the networks{threads}), "
                f"{where}.")
    return (f"Each network was timed right after its own training (its qm9_demo_model record{threads}), {where}; "
            f"benchmarks/qm9_demo_inference.py has not timed these networks together.")


def network_one_molecule_s(net_records: list[dict], store=None) -> float:
    """Seconds the single-task networks take for one molecule from its SMILES: featurization
    plus one forward pass of a ready graph (times of :func:`inference_timings`)."""
    inf = inference_timings(net_records, store)["by_sharing"]["none"]
    return inf["single_s"] + inf["featurize_s"]


def time_figure(mols: pd.DataFrame, net_records: list[dict], store=None):
    """Seconds per molecule against heavy atoms: each DFT step's cumulated time (SCF, +
    polarizability, + Hessian) as points, the single-task networks' inference times
    (:func:`inference_timings`) as lines, log scale. Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    inf_s = inference_timings(net_records, store)["by_sharing"]["none"]
    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 3.6))
    pal = sns.color_palette("colorblind", 6)
    for col, label, c, m in (("SCF (s)", "DFT: SCF", pal[0], "o"),
                             ("polarizability (s)", "DFT: + polarizability (CPKS)", pal[1], "s"),
                             ("Hessian (s)", "DFT: + Hessian (thermochemistry)", pal[2], "^")):
        d = mols.dropna(subset=[col])
        y = d["SCF (s)"] if col == "SCF (s)" else (d["SCF (s)"] + d["polarizability (s)"].fillna(0)
                                                  + (d["Hessian (s)"] if col == "Hessian (s)" else 0))
        ax.scatter(d["heavy atoms"], y, color=c, marker=m, label=label, zorder=3)
    lines = (("featurize_single", "network: SMILES → graph → 19 single-task GINEs", pal[3], "-"),
             ("single_s", "network: one molecule, graph ready", pal[4], "--"),
             ("batched_s", f"network: batches of {inf_s['batch_size']:,}, per molecule", pal[5], ":"))
    for key, label, c, ls in lines:
        ax.axhline(inf_s["single_s"] + inf_s["featurize_s"] if key == "featurize_single" else inf_s[key],
                   color=c, ls=ls, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("heavy atoms")
    ax.set_ylabel("seconds per molecule (one CPU thread)")
    ax.set_xticks(range(1, 10))
    ax.legend(loc="center right")
    fig.tight_layout()
    return fig


def cost_fits(mols: pd.DataFrame) -> dict:
    """Power laws of the DFT's cost in the number of basis functions (least squares in log-log,
    :func:`factorlab.dft.cost.fit_power_law`; NaN with fewer than two molecules): ``scf`` and
    ``hess`` as (seconds at the first molecule's size, power), the ``largest`` molecule's row
    and ``hess_extrap_s``, the Hessian's fit extrapolated to it (an extrapolation, not a
    measurement)."""
    hess = mols.dropna(subset=["Hessian (s)"])
    scf_fit = fit_power_law(mols["basis functions"], mols["SCF (s)"]) if len(mols) > 1 else (np.nan, np.nan)
    hess_fit = fit_power_law(hess["basis functions"], hess["Hessian (s)"]) if len(hess) > 1 else (np.nan, np.nan)
    largest = mols.loc[mols["basis functions"].idxmax()]
    hess_extrap = hess_fit[0] * (largest["basis functions"] / hess["basis functions"].iloc[0]) ** hess_fit[1] \
        if len(hess) > 1 else np.nan
    return {"scf": scf_fit, "hess": hess_fit, "largest": largest, "hess_extrap_s": hess_extrap}


def speed_error_points(dft_records: list[dict], net_records: list[dict], store=None) -> pd.DataFrame:
    """One point per group of :data:`DFT_STEP_GROUPS` and method: seconds per molecule (the
    DFT: median over the sample of the steps' total, the Hessian's over the molecules it ran on;
    the network: one molecule from its SMILES, :func:`network_one_molecule_s`) and the median, min and max over the group's
    targets of error / chemical accuracy (the DFT: largest |error| on the sample; the network:
    single-task test MAE)."""
    mols = molecules_frame(dft_records, net_records)
    summary = dft_error_summary(dft_records)
    hess = mols.dropna(subset=["Hessian (s)"])
    stl = networks(net_records)["none"]
    dft_time = {"scf": mols["SCF (s)"].median(),
                "pol": (mols["SCF (s)"] + mols["polarizability (s)"]).median(),
                "hess": (hess["SCF (s)"] + hess["Hessian (s)"]).median() if len(hess) else np.nan}
    net_time = network_one_molecule_s(net_records, store)
    pts = []
    for g, (label, ts) in DFT_STEP_GROUPS.items():
        dft_r = [summary.loc[t, "max"] / CHEMICAL_ACCURACY[t] for t in ts if t in summary.index]
        net_r = [stl["metrics"]["test_mae"][t] / CHEMICAL_ACCURACY[t] for t in ts]
        if dft_r:
            pts.append({"group": g, "label": label, "method": "DFT: largest |error| on the sample",
                        "seconds": dft_time[g], "median": np.median(dft_r), "lo": min(dft_r), "hi": max(dft_r)})
        pts.append({"group": g, "label": label, "method": "network: test MAE (19 single-task GINEs)",
                    "seconds": net_time, "median": np.median(net_r), "lo": min(net_r), "hi": max(net_r)})
    return pd.DataFrame(pts)


def speed_error_figure(pts: pd.DataFrame):
    """:func:`speed_error_points` as error / chemical accuracy against seconds per molecule
    (log-log; the bar is the range over the group's targets; the network's three groups,
    which share one time, drawn slightly apart). Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(plots.FULL_WIDTH, 3.8))
    markers = {"scf": "o", "pol": "s", "hess": "^"}
    shift = {"scf": 0.8, "pol": 1.0, "hess": 1.25}  # spread the network's three groups (same time) apart
    colors = dict(zip(pts.method.unique(), sns.color_palette("colorblind", 2)))
    for _, p in pts.iterrows():
        x = p.seconds * (shift[p.group] if p.method.startswith("network") else 1.0)
        ax.errorbar([x], [p["median"]], yerr=[[p["median"] - p.lo], [p.hi - p["median"]]], color=colors[p.method],
                    marker=markers[p.group], ms=7, capsize=3, ls="none")
    for m, c in colors.items():
        ax.plot([], [], color=c, marker="o", ls="none", label=m)
    for g, (label, _) in DFT_STEP_GROUPS.items():
        ax.plot([], [], color="0.4", marker=markers[g], ls="none", label=label)
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seconds per molecule (one CPU thread)")
    ax.set_ylabel("error / chemical accuracy")
    ax.legend(loc="center", ncol=1)
    fig.tight_layout()
    return fig


def threads_sentence(thread_recs: list[dict]) -> str:
    """The sentence on the SCF's speed-up from one to two threads, from the first
    ``dft_threads_benchmark`` record (or that it was not measured), with whether the machine
    was quiet (:func:`factorlab.report.provenance.quiet_of`; "not recorded" for old records)."""
    if not thread_recs:
        return "The speed-up on two threads has not been measured for this profile (benchmarks/dft_threads.py)."
    tm = thread_recs[0]["metrics"]
    heavy = [r["heavy_atoms"] for r in tm["rows"]]
    quiet = {"yes": "a quiet machine", "no": "a busy machine",
             "unknown": "a machine whose load was not recorded"}[quiet_label(quiet_of(thread_recs[0]))]
    return (f"On two threads of the same machine ({quiet}) the SCF ran {tm['speedup_min']:.2f} to "
            f"{tm['speedup_max']:.2f} times faster than on one, on {len(heavy)} molecules of {min(heavy)} to "
            f"{max(heavy)} heavy atoms (benchmarks/dft_threads.py), with the same energy.")


def glue_values(profile: str, dft_records: list[dict], net_records: list[dict], thread_recs: list[dict],
                store=None) -> dict:
    """Every value the chapter glues, by name, from the ``dft_validation``, ``qm9_demo_model``
    and ``dft_threads_benchmark`` records: the sample and the networks (counts as
    thousands-separated strings), the DFT's times (s) and power laws (:func:`cost_fits`,
    ``hess_extrap_h`` in hours), the networks' times (ms, µs), the speed-up of the network over
    the SCF, the validation verdicts (``n_within_one``: targets whose largest error is at most
    one print step; ``worst_*``: the largest max / step), the networks' test MAE / chemical
    accuracy (``n_net_accurate``: at most 1) and the median per-molecule ratio of the small
    (≤ 3 heavy atoms) and large (≥ 7) molecules (``small_max`` / ``large_min``); ``size_min`` /
    ``size_max`` (heavy atoms of the sample), ``n_members_stl`` (single-task networks, one
    encoder each), ``n_heads_hard`` (the hard-shared network's heads, one encoder);
    ``dft_quiet_sentence`` (how many DFT timings were taken on a quiet machine); the networks'
    inference times come from :func:`inference_timings` (``store``: the run store it reads),
    with ``net_timing_source`` (its ``source``: ``qm9_demo_inference`` or ``qm9_demo_model``),
    ``net_quiet`` (whether those records were taken on a quiet machine: yes / no / unknown /
    "k of n") and ``net_timing_sentence`` (:func:`timing_sentence`); with a
    grouped network also ``grouped_groups`` (its groups, "a, b | c, d"), ``grouped_shared`` (those
    of two or more targets only), ``n_members_grouped``
    (its networks, single-task ones included), ``grouped_single_ms`` and ``grouped_batched_us``.
    Beside the Hessian's times: ``hess_n`` (molecules it ran on), ``hess_over_scf_min`` /
    ``_max`` (its time over the SCF's on the same molecule) and ``hess_vs_scf_power``
    (:func:`_compare_powers` of the two fitted powers). Beside the speed-up of the network over the
    SCF: ``speedup_min_3g`` / ``speedup_max_3g`` (:func:`sig3`) and ``speedup_flag``
    (:func:`speedup_flag`: whether both sides were timed on a quiet machine, and which way it
    biases the ratio)."""
    net = networks(net_records)
    stl, hard = net["none"], net["hard"]
    timings = inference_timings(net_records, store)
    inf_s, inf_h = timings["by_sharing"]["none"], timings["by_sharing"]["hard"]
    mols = molecules_frame(dft_records, net_records)
    summary = dft_error_summary(dft_records)
    fits = cost_fits(mols)
    hess = mols.dropna(subset=["Hessian (s)"])
    largest = fits["largest"]
    v = {"profile": profile, "n_dft": len(dft_records), "dft_devices": devices_of(dft_records),
         "net_devices": devices_of(net_records),
         "hessian_max": max([r["config"]["heavy_atoms"] for r in dft_records if r["config"]["hessian"]], default=0),
         "per_size": max(mols.groupby("heavy atoms").size()),
         "n_train": f"{stl['model']['n_train']:,}", "n_test": f"{stl['model']['n_test']:,}",
         "n_valid": f"{stl['model']['n_valid']:,}", "epochs": stl["config"]["epochs"],
         "params_stl": f"{stl['model']['params']:,}", "params_hard": f"{hard['model']['params']:,}",
         "scf_min": float(mols["SCF (s)"].min()), "scf_max": float(mols["SCF (s)"].max()),
         "largest_smiles": str(largest["SMILES"]), "largest_nbf": int(largest["basis functions"]),
         "scf_power": float(fits["scf"][1]), "hess_power": float(fits["hess"][1]),
         "hess_min": float(hess["Hessian (s)"].min()) if len(hess) else float("nan"),
         "hess_max": float(hess["Hessian (s)"].max()) if len(hess) else float("nan"),
         "hess_extrap_h": float(fits["hess_extrap_s"]) / 3600,
         "net_single_ms": 1e3 * inf_s["single_s"], "net_featurize_ms": 1e3 * inf_s["featurize_s"],
         "net_batched_us": 1e6 * inf_s["batched_s"], "batch_size": f"{inf_s['batch_size']:,}",
         "hard_single_ms": 1e3 * inf_h["single_s"], "hard_batched_us": 1e6 * inf_h["batched_s"],
         "size_min": int(mols["heavy atoms"].min()), "size_max": int(mols["heavy atoms"].max()),
         "n_members_stl": int(stl["model"]["members"]), "n_heads_hard": len(hard["model"]["targets"]),
         "small_max": SMALL_MAX_HEAVY, "large_min": LARGE_MIN_HEAVY,
         "dft_quiet_sentence": quiet_sentence(dft_records, "DFT timings"),
         "net_quiet": timings["quiet"], "net_timing_source": timings["source"],
         "net_timing_sentence": timing_sentence(timings)}
    if "grouped" in net:
        grp = net["grouped"]
        inf_g = timings["by_sharing"]["grouped"]
        shared = [g for g in grp["config"]["groups"] if len(g) > 1]
        v.update({"grouped_groups": " | ".join(", ".join(g) for g in grp["config"]["groups"]),
                  "grouped_shared": " | ".join(", ".join(g) for g in shared) if shared else "no targets",
                  "n_members_grouped": int(grp["model"]["members"]), "grouped_single_ms": 1e3 * inf_g["single_s"],
                  "grouped_batched_us": 1e6 * inf_g["batched_s"]})
    net_one = inf_s["single_s"] + inf_s["featurize_s"]  # network_one_molecule_s
    hess_over_scf = hess["Hessian (s)"] / hess["SCF (s)"]
    v.update({"hess_n": int(len(hess)),
              "hess_over_scf_min": float(hess_over_scf.min()) if len(hess) else float("nan"),
              "hess_over_scf_max": float(hess_over_scf.max()) if len(hess) else float("nan"),
              "hess_vs_scf_power": _compare_powers(fits["hess"][1], fits["scf"][1])})
    v.update({"speedup_min": float(mols["SCF (s)"].min() / net_one),
              "speedup_max": float(mols["SCF (s)"].max() / net_one),
              "speedup_min_3g": sig3(mols["SCF (s)"].min() / net_one),
              "speedup_max_3g": sig3(mols["SCF (s)"].max() / net_one),
              "speedup_flag": speedup_flag(dft_records, timings["quiet"]),
              "energy_err_max": float(mols["energy error (mEh)"].abs().max()),
              "n_within_one": int((summary["max / step"] <= 1).sum()),
              "net_rate": float(1 / inf_s["batched_s"]), "n_targets_dft": len(summary)})
    worst = summary["max / step"].idxmax()
    v.update({"worst_target": worst, "worst_ratio": float(summary.loc[worst, "max / step"])})
    tab = network_frame(dft_records, net_records)
    ratios = tab.dropna(subset=["single-task / chemical accuracy"]).set_index("target")["single-task / chemical accuracy"]
    v.update({"net_ratio_min": float(ratios.min()), "net_ratio_min_t": ratios.idxmin(),
              "net_ratio_max": float(ratios.max()), "net_ratio_max_t": ratios.idxmax(),
              "net_ratio_median": float(ratios.median()), "n_net_accurate": int((ratios <= 1).sum()),
              "threads_sentence": threads_sentence(thread_recs),
              "n_train_split": int((mols["network split"] == "train").sum())})
    per_mol = per_molecule_ratio(dft_records, net_records)
    st = per_mol[per_mol.network == "none"]
    v.update({"small_ratio": float(st[st["heavy atoms"] <= SMALL_MAX_HEAVY].ratio.median()),
              "large_ratio": float(st[st["heavy atoms"] >= LARGE_MIN_HEAVY].ratio.median())})
    return v


def sig3(x: float) -> str:
    """``x`` to three significant digits, thousands-separated: ``689``, ``127,000``, ``3.12``."""
    if x != x:
        return "nan"
    rounded = float(f"{x:.3g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 100 else f"{rounded:.3g}"


def _compare_powers(hess: float, scf: float) -> str:
    """The Hessian's fitted power against the SCF's, as prose: "lower than", "higher than" or
    "about the same as" (within 0.05 of each other); "not comparable" where either is NaN."""
    if hess != hess or scf != scf:
        return "not comparable"
    return "about the same as" if abs(hess - scf) < 0.05 else "lower than" if hess < scf else "higher than"


def speedup_flag(dft_records: list[dict], net_quiet: str) -> str:
    """Whether the times of a network-over-SCF speed-up were taken on a quiet machine, as a
    phrase for prose: the DFT records' :func:`~factorlab.report.provenance.quiet_label` and the
    networks' (``net_quiet``), and which way the load biases the ratio (a slowed SCF makes it an
    upper bound, a slowed network a lower one)."""
    dft_quiet = quiet_label([quiet_of(r) for r in dft_records]) if dft_records else "unknown"
    if dft_quiet == "yes" and net_quiet == "yes":
        return "both sides timed on a quiet machine"
    if net_quiet == "yes":
        return (f"not quiet: the SCF times were not taken on a known quiet machine (quiet: {dft_quiet}), so they, "
                "and these ratios, are upper bounds; the network's were timed on a quiet machine")
    if dft_quiet == "yes":
        return (f"not quiet: the network's times were not taken on a known quiet machine (quiet: {net_quiet}), so "
                "these ratios are lower bounds; the SCF's were timed on a quiet machine")
    return (f"not quiet: neither side was timed on a known quiet machine (SCF quiet: {dft_quiet}, network quiet: "
            f"{net_quiet}), so these ratios are rough")


# --- the same networks on the whole training split (experiment qm9_demo_full) -----------------

#: The experiment of the same networks trained on the whole training split: read where recorded
#: (:func:`full_split_records`), never trained by the chapter.
FULL_SPLIT = "qm9_demo_full"
#: Short label of each network the full split was trained for, by ``sharing``.
SPLIT_LABELS = {"none": "single-task", "hard": "hard-shared"}
#: How prose names a target (its PyG name otherwise).
TARGET_PROSE = {"mu": "μ", "alpha": "α", "homo": "HOMO", "lumo": "LUMO", "gap": "HOMO–LUMO gap", "r2": "⟨R²⟩",
                "zpve": "ZPVE"}


def full_split_records(profile: str, store=None) -> list[dict]:
    """The ``qm9_demo_full`` records of ``profile``'s grid that the run store holds, in grid
    order (empty where none is recorded, and under ``full``, whose grid is empty). Never trains."""
    from factorlab.report.store import cached_records

    return cached_records(FULL_SPLIT, profile, store)[0]


def _by_sharing(records: list[dict]) -> dict[str, dict]:
    return {r["config"]["sharing"]: r for r in records}


def train_size_frame(net_records: list[dict], full_records: list[dict]) -> pd.DataFrame:
    """Per target (:data:`TARGET_ORDER`): unit, cited chemical accuracy and, for each network of
    :data:`SPLIT_LABELS` with a ``qm9_demo_model`` record, its test MAE trained on the budget's
    subset (``"<label>, training subset"``), on the whole training split (``"<label>, whole
    training split"``, NaN without its ``qm9_demo_full`` record) and their ratio (``"<label>:
    whole / subset"``, below 1 where the whole split helped). Both are over the whole test
    split, in the target's unit."""
    net, full = networks(net_records), _by_sharing(full_records)
    tab = pd.DataFrame({"target": TARGET_ORDER, "unit": [UNITS[t] for t in TARGET_ORDER]})
    tab["chemical accuracy (cited)"] = tab.target.map(lambda t: CHEMICAL_ACCURACY.get(t, np.nan))
    for sharing, label in SPLIT_LABELS.items():
        if sharing not in net:
            continue
        sub = tab.target.map(net[sharing]["metrics"]["test_mae"]).astype(float)
        whole = tab.target.map(full[sharing]["metrics"]["test_mae"]).astype(float) if sharing in full \
            else pd.Series(np.nan, index=tab.index)
        tab[f"{label}, training subset"] = sub
        tab[f"{label}, whole training split"] = whole
        tab[f"{label}: whole / subset"] = whole / sub
    return tab


def train_size_table(tab: pd.DataFrame) -> pd.DataFrame:
    """:func:`train_size_frame` formatted: three significant digits, ratios with two decimals,
    "not measured" for a network without its whole-split record, empty for a missing cited
    accuracy."""
    from factorlab.report.verdicts import NOT_MEASURED

    fmt = tab.copy()
    for c in fmt.columns[2:]:
        if c == "chemical accuracy (cited)":
            fmt[c] = fmt[c].map(lambda x: "" if x != x else f"{x:.3g}")
        else:
            spec = "{:.2f}" if c.endswith("whole / subset") else "{:.3g}"
            fmt[c] = fmt[c].map(lambda x, s=spec: NOT_MEASURED if x != x else s.format(x))
    return fmt


def train_size_glue(net_records: list[dict], full_records: list[dict], sharing: str = "none") -> dict:
    """The values the chapter glues on the training size, for network ``sharing`` (a key of
    :data:`SPLIT_LABELS`; the single-task networks by default): ``n_train_full`` (molecules,
    thousands-separated), ``epochs_full``, ``train_min_full`` (minutes of training steps) and
    ``quiet_full`` (whether they were timed on a quiet machine) of the whole-split network,
    ``full_ratio_median``
    (median over the 19 targets of whole / subset test MAE), ``full_n_better`` (targets whose
    test MAE fell), ``full_n_accurate`` and ``subset_n_accurate`` (targets whose test MAE is at
    most the cited chemical accuracy) and ``full_split_sentence`` (these in one sentence, which
    first says that each size is one run, naming the seeds: the subset network the chapter
    describes, :func:`networks`, and the whole-split one, trained once). For
    another network than ``"none"`` every key has the prefix ``"<sharing>_"``. Without the
    whole-split record every value but the sentence is "not measured" and the sentence says the
    run is not in the records yet (naming its experiment); where the budget's networks use the whole split already
    (``n_train`` None) the sentence says so."""
    from factorlab.report.verdicts import NOT_MEASURED

    if sharing not in SPLIT_LABELS:
        raise ValueError(f"no whole-split network {sharing!r}: expected one of {', '.join(SPLIT_LABELS)}")
    label = SPLIT_LABELS[sharing]
    prefix = "" if sharing == "none" else f"{sharing}_"
    named = "the single-task networks'" if sharing == "none" else f"the {label} network's"
    subject = "they are" if sharing == "none" else "it is"
    rec = networks(net_records)[sharing]
    full = _by_sharing(full_records).get(sharing)
    keys = ("n_train_full", "epochs_full", "train_min_full", "quiet_full", "full_ratio_median", "full_n_better", "full_n_accurate",
            "subset_n_accurate")
    if rec["config"].get("n_train") is None:
        v = {**dict.fromkeys(keys, NOT_MEASURED), "full_split_sentence":
             f"Under this profile the networks already train on the whole training split "
             f"({rec['model']['n_train']:,} molecules)."}
    elif full is None:
        profile = rec["config"]["profile"]
        v = {**dict.fromkeys(keys, NOT_MEASURED), "full_split_sentence":
             f"The {label} {'networks' if sharing == 'none' else 'network'} trained on the whole training split "
             f"{'are' if sharing == 'none' else 'is'} not in the records of the {profile} profile yet (experiment "
             f"{FULL_SPLIT})."}  # plain text: a glued string is not parsed as markdown
    else:
        tab = train_size_frame(net_records, full_records)
        ratio = tab[f"{label}: whole / subset"]
        acc = tab["chemical accuracy (cited)"]
        v = {"n_train_full": f"{full['model']['n_train']:,}", "epochs_full": int(full["config"]["epochs"]),
             "train_min_full": float(full["timing"]["train_s"]) / 60, "quiet_full": quiet_label(quiet_of(full)),
             "full_ratio_median": float(ratio.median()), "full_n_better": int((ratio < 1).sum()),
             "full_n_accurate": int((tab[f"{label}, whole training split"] <= acc).sum()),
             "subset_n_accurate": int((tab[f"{label}, training subset"] <= acc).sum())}
        v["full_split_sentence"] = (
            f"One run at each size (seed {int(rec['config'].get('seed', 0))} on the subset; the whole-split "
            f"{'networks were' if sharing == 'none' else 'network was'} trained once, seed "
            f"{int(full['config'].get('seed', 0))}), so no seed-to-seed spread: trained on the whole training "
            f"split ({v['n_train_full']} molecules, {v['epochs_full']} epochs) instead "
            f"of {rec['model']['n_train']:,} molecules for {rec['config']['epochs']} epochs, {named} "
            f"test MAE is {v['full_ratio_median']:.2f} times as large (median over the {len(ratio)} targets), lower "
            f"on {v['full_n_better']} of them; {subject} chemically accurate on {v['full_n_accurate']} of the "
            f"{int(acc.notna().sum())} targets with a cited accuracy ({v['subset_n_accurate']} before).")
    return {f"{prefix}{k}": x for k, x in v.items()}


def sharing_by_size(net_records: list[dict], full_records: list[dict]) -> dict:
    """Hard sharing against single-task training at both training sizes, for the network the
    chapter describes (the lowest seed of each, as :func:`networks`): ``hard_vs_none_subset``
    and ``hard_vs_none_full`` (geometric mean over the 19 targets of the hard-shared network's
    test MAE over the single-task networks', both trained on the budget's subset / on the whole
    training split), ``hard_better_subset`` / ``hard_better_full`` (targets where the
    hard-shared one's is lower), ``sharing_size_seed`` (that seed) and ``sharing_size_sentence``
    (these in words, saying that the whole-split comparison has one seed). Values the records
    cannot give (a network or its whole-split run missing) read "not measured", and the
    sentence says which run is missing."""
    from factorlab.report.verdicts import NOT_MEASURED

    net, full = networks(net_records), _by_sharing(full_records)
    keys = ("hard_vs_none_subset", "hard_vs_none_full", "hard_better_subset", "hard_better_full", "sharing_size_seed")
    if "none" not in net or "hard" not in net:
        return {**dict.fromkeys(keys, NOT_MEASURED), "sharing_size_sentence":
                "The comparison needs both the single-task and the hard-shared network (experiment qm9_demo_model)."}
    v: dict = dict.fromkeys(keys, NOT_MEASURED)

    def compare(hard: dict, none: dict) -> tuple[float, int]:
        a, b = hard["metrics"]["test_mae"], none["metrics"]["test_mae"]
        return float(np.exp(mean_log_ratio(a, b))), sum(a[t] < b[t] for t in TARGET_ORDER)

    v["hard_vs_none_subset"], v["hard_better_subset"] = compare(net["hard"], net["none"])
    v["sharing_size_seed"] = int(net["none"]["config"].get("seed", 0))
    subset = (f"trained on the subset, the hard-shared network's test MAE is {v['hard_vs_none_subset']:.2f} times "
              f"the single-task networks' (geometric mean over the {len(TARGET_ORDER)} targets; lower on "
              f"{v['hard_better_subset']} of them)")
    missing = [SPLIT_LABELS[k] for k in ("none", "hard") if k not in full]
    if missing:
        v["sharing_size_sentence"] = (f"Seed {v['sharing_size_seed']}: {subset}; on the whole training split the "
                                      f"{' and '.join(missing)} {'networks are' if 'single-task' in missing else 'network is'} "
                                      f"not in the records yet (experiment {FULL_SPLIT}).")
        return v
    v["hard_vs_none_full"], v["hard_better_full"] = compare(full["hard"], full["none"])
    v["sharing_size_sentence"] = (
        f"Seed {v['sharing_size_seed']}: {subset}; trained on the whole training split, "
        f"{v['hard_vs_none_full']:.2f} times (lower on {v['hard_better_full']} of them). The whole-split networks have one "
        f"seed each, so this second ratio carries no seed-to-seed spread.")
    return v


def worst_predictions(dft_records: list[dict], net_records: list[dict], full_records: list[dict] | None = None,
                      sharing: str = "none", n: int = 5, targets: list[str] | None = None) -> pd.DataFrame:
    """The ``n`` (molecule, target) pairs of the chapter's sample on which network ``sharing``
    (trained on the budget's subset) is furthest from QM9's label in units of its own test MAE
    (``ratio to test MAE``), largest first, over ``targets`` (default: those with a cited
    chemical accuracy, as in the chapter's figures; the rotational constants of the
    one-heavy-atom molecules are off QM9's scale altogether).

    Columns: ``qm9_index``, ``SMILES``, ``heavy atoms``, ``target``, ``unit``, ``QM9`` (label),
    ``DFT`` (this chapter's value, NaN where that step did not run), ``network``, ``error``
    (network − QM9), ``ratio to test MAE``, ``ratio to chemical accuracy``, ``split`` (where the
    network saw the molecule, as in :func:`molecules_frame`) and, with a ``qm9_demo_full``
    record of the same sharing, ``whole split: network``, ``whole split: error``, ``whole
    split: ratio to test MAE`` (its own test MAE) and ``whole split: split`` (``train`` for the
    molecules it trained on)."""
    targets = targets if targets is not None else [t for t in TARGET_ORDER if t in CHEMICAL_ACCURACY]
    rec = networks(net_records)[sharing]
    full = _by_sharing(full_records or []).get(sharing)
    dft = validation_frame(dft_records).set_index(["qm9_index", "target"])["dft"]
    rows = []
    for r in dft_records:
        idx = r["config"]["qm9_index"]
        pred = rec["metrics"]["sample"].get(str(idx))
        if pred is None:
            continue
        for t in targets:
            qm9, value = r["metrics"]["qm9"][t], pred["network"][t]
            row = {"qm9_index": idx, "SMILES": r["model"]["smiles"], "heavy atoms": r["config"]["heavy_atoms"],
                   "target": t, "unit": UNITS[t], "QM9": qm9, "DFT": dft.get((idx, t), np.nan), "network": value,
                   "error": value - qm9, "ratio to test MAE": abs(value - qm9) / rec["metrics"]["test_mae"][t],
                   "ratio to chemical accuracy": abs(value - qm9) / CHEMICAL_ACCURACY.get(t, np.nan),
                   "split": pred["split"]}
            whole = full["metrics"]["sample"].get(str(idx)) if full is not None else None
            if whole is not None:
                w = whole["network"][t]
                row.update({"whole split: network": w, "whole split: error": w - qm9,
                            "whole split: ratio to test MAE": abs(w - qm9) / full["metrics"]["test_mae"][t],
                            "whole split: split": whole["split"]})
            rows.append(row)
    frame = pd.DataFrame(rows)
    if not len(frame):
        return frame
    frame["DFT"] = frame["DFT"].astype(float)
    return frame.sort_values(["ratio to test MAE", "qm9_index", "target"], ascending=[False, True, True]) \
        .head(n).reset_index(drop=True)


def worst_table(worst: pd.DataFrame) -> pd.DataFrame:
    """:func:`worst_predictions` formatted: values with four significant digits, ratios with
    one decimal, empty where a value is missing."""
    fmt = worst.drop(columns=["qm9_index"]).copy()
    for c in fmt.columns:
        if c in ("SMILES", "heavy atoms", "target", "unit") or c.endswith("split"):
            continue
        spec = "{:.1f}" if "ratio" in c else "{:.4g}"
        fmt[c] = fmt[c].map(lambda x, s=spec: "" if x is None or x != x else s.format(x))
    return fmt


#: How prose names the split a network saw a molecule in (:func:`molecules_frame`'s ``network split``).
SPLIT_PROSE = {"train": "seen in training", "valid": "used to pick the epoch", "test": "test split",
               "train_unused": "never seen", "valid_unused": "never seen", "test_unused": "never seen"}


def _case(row: pd.Series) -> str:
    """One case of :func:`worst_predictions` in words (ratios of 10 or more without decimals)."""
    name = TARGET_PROSE.get(row.target, row.target)
    unit = row.unit.replace("^2", "²").replace("^3", "³")
    atoms = f"{row['heavy atoms']} heavy atom{'s' if row['heavy atoms'] != 1 else ''}"
    ratio = row["ratio to test MAE"]
    times = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}"
    return (f"the {name} of {row.SMILES} ({atoms}, {SPLIT_PROSE.get(row.split, row.split)}: {row.network:.4g} "
            f"against QM9's {row.QM9:.4g} {unit}, {times} times its test MAE)")


def worst_sentence(worst: pd.DataFrame, k: int = 3) -> str:
    """The first ``k`` rows of :func:`worst_predictions` in one or two sentences: the cases and
    where the network saw each molecule (:data:`SPLIT_PROSE`) and, with the whole-split
    network's columns, its errors on the same cases and which of those molecules it trained on."""
    if not len(worst):
        return "The networks predicted none of this chapter's molecules."
    top = worst.head(k)
    cases = "; ".join(_case(r) for _, r in top.iterrows())
    text = f"Relative to its own test error, the network is furthest from QM9 on {cases}."
    if "whole split: ratio to test MAE" not in top or top["whole split: ratio to test MAE"].isna().all():
        return text
    seen = sorted(set(top.SMILES[top["whole split: split"] == "train"]))
    ratios = ", ".join("(not predicted)" if x != x else f"{x:.1f}" for x in top["whole split: ratio to test MAE"])
    text += f" Trained on the whole training split, it is off by {ratios} times its own test MAE on the same cases"
    return text + (f" (it trained on {', '.join(seen)})." if seen else " (it trained on none of them).")
