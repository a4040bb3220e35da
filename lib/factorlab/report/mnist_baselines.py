"""Chapter "MNIST baselines" (``notebooks/mnist_baselines.ipynb``): the three networks of the
thesis journal as written and with other weight decays, from the records of the experiment
``mnist_baselines`` (:mod:`factorlab.experiments.mnist_baselines`).

Accuracies are test accuracies in percent after the last epoch (points for differences); times
are seconds of training steps (evaluation excluded). Seeds pair runs: the same seed gives the
same initialisation and batch order to every variant of a net, so variants are compared by
paired differences (:func:`factorlab.analysis.paired_difference`).

Thresholds, stated once: a paired difference is *clear* when its mean exceeds
:data:`CLEAR_SE` standard errors; the journal's figure is *reproduced* when it lies within
:data:`REPRODUCE_SD` prediction standard deviations of our mean (``sd·sqrt(1 + 1/n)``, the spread
of one more run of the same settings); a net has *plateaued* when the mean test accuracy of its
last :data:`PLATEAU_EPOCHS` epochs differs from that of the :data:`PLATEAU_EPOCHS` before by less
than :data:`PLATEAU_POINTS` points for every variant (seed means)."""
from __future__ import annotations

import math

import pandas as pd

from factorlab import plots
from factorlab.analysis import paired_difference
from factorlab.experiments.mnist_baselines import JOURNAL_ACCURACY
from factorlab.report.provenance import devices_of, profile_of

#: A paired difference is clear beyond this many standard errors.
CLEAR_SE = 2
#: The journal's figure is reproduced within this many prediction standard deviations.
REPRODUCE_SD = 2
#: Plateau test: epochs per window, and the largest change (points) of the windows' mean accuracy.
PLATEAU_EPOCHS, PLATEAU_POINTS = 5, 0.2

#: Row labels of the networks (a), (b), (c) of the journal.
NET_LABEL = {"mlp": "(a) MLP 784-512-512-10", "conv1": "(b) 1 conv + dense 100", "conv2": "(c) 2 conv + pooling"}
#: Row labels of each (net, variant): optimizer and weight decay.
VARIANT_LABEL = {
    ("mlp", "journal"): "SGD, no weight decay (journal)",
    ("mlp", "l2"): "SGD, L2 5e-4",
    ("conv1", "journal"): "Adam, L2 0.1 (journal)",
    ("conv1", "l2"): "Adam, L2 5e-4",
    ("conv1", "adamw"): "AdamW, decoupled 0.1",
    ("conv2", "journal"): "Adam, L2 0.1 (journal)",
    ("conv2", "l2"): "Adam, L2 5e-4",
    ("conv2", "adamw"): "AdamW, decoupled 0.1",
}


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run of ``mnist_baselines``: net, variant, seed, epochs, batch, acc (test
    accuracy, %), train_loss (last epoch), params, train_s (s); in record order."""
    return pd.DataFrame([{
        "net": r["config"]["net"], "variant": r["config"]["variant"], "seed": r["config"]["seed"],
        "epochs": r["config"]["epochs"], "batch": r["config"]["batch_size"],
        "acc": 100 * r["metrics"]["test_acc"], "train_loss": r["metrics"]["train_loss"],
        "params": r["model"]["params"], "train_s": r["timing"]["train_s"],
        "epoch_s": r["timing"]["train_s"] / len(r["history"]["epoch"]),
        "acc_epoch1": 100 * r["history"]["test_acc"][0],
        "quiet": (r["provenance"].get("load") or {}).get("quiet"),
    } for r in records])


#: Headers of :func:`results_table`'s spread columns: the ± is a standard deviation over seeds.
ACC_COLUMN, TIME_COLUMN = "test acc. (%, mean ± SD)", "train time (s, mean ± SD)"


def results_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of ``mnist_baselines``: one row per (net, variant) in record order,
    with epochs, batch, seeds, test accuracy (mean ± SD over seeds, %), the journal's figure
    (cited; "n/r" where the journal reports none), parameters, training time (s, mean ± SD),
    the median seconds per epoch and how many of the runs were timed on a quiet machine. The
    headers of the two spread columns say that the ± is a standard deviation
    (:data:`ACC_COLUMN`, :data:`TIME_COLUMN`), not a standard error as in the chapter's paired
    differences."""
    runs = runs_frame(records)
    rows = []
    for (net, variant), g in runs.groupby(["net", "variant"], sort=False):
        journal = JOURNAL_ACCURACY[net] if variant == "journal" else None
        rows.append({
            "network": NET_LABEL[net], "optimizer, weight decay": VARIANT_LABEL[net, variant],
            "epochs": int(g["epochs"].iloc[0]), "batch": int(g["batch"].iloc[0]), "seeds": len(g),
            ACC_COLUMN: plots.mean_std(g["acc"], 2),
            "journal (%)": ("n/r" if journal is None and variant == "journal"
                            else ("" if journal is None else f"{journal:.1f}")),
            "params": f"{int(g['params'].iloc[0]):,}",
            TIME_COLUMN: plots.mean_std(g["train_s"], 0),
            "s / epoch": f"{g['epoch_s'].median():.0f}",
            "quiet": f"{int((g['quiet'] == True).sum())}/{len(g)}",  # noqa: E712 (None: not recorded)
        })
    return pd.DataFrame(rows)


def curves_frame(records: list[dict]) -> pd.DataFrame:
    """Per-epoch history of ``mnist_baselines``, long format: net and variant (their row
    labels), seed, epoch, train loss and test accuracy (%)."""
    return pd.DataFrame([
        {"net": NET_LABEL[r["config"]["net"]], "variant": VARIANT_LABEL[r["config"]["net"], r["config"]["variant"]],
         "seed": r["config"]["seed"], "epoch": e, "train loss": tl, "test accuracy (%)": 100 * ta}
        for r in records
        for e, tl, ta in zip(r["history"]["epoch"], r["history"]["train_loss"], r["history"]["test_acc"])
    ])


def accuracy_figure(records: list[dict]):
    """Figure of ``mnist_baselines``: per net (columns), the test accuracy (top, %) and the
    training loss (bottom, log scale) per epoch, one line per variant (mean ± std over seeds).
    Nets trained for a single epoch show one point."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    curves = curves_frame(records)
    nets = [n for n in NET_LABEL.values() if (curves["net"] == n).any()]
    fig, axes = plt.subplots(2, len(nets), figsize=(plots.FULL_WIDTH, 5.6), sharex="col", squeeze=False)
    for col, net in enumerate(nets):
        data = curves[curves["net"] == net]
        for row, y in enumerate(["test accuracy (%)", "train loss"]):
            ax = axes[row, col]
            sns.lineplot(data=data, x="epoch", y=y, hue="variant", marker="o", markersize=3,
                         errorbar="sd", ax=ax, legend=row == 0)
            if row == 1:
                plots.log_axis_auto(ax, "y")
            if col:
                ax.set_ylabel("")
        axes[0, col].set_title(net)
    fig.tight_layout()
    for col in range(len(nets)):  # each net's variants under its column
        plots.legend_below(fig, axes[0, col], ncol=1, under=[axes[1, col]])
    return fig


def plateau_frame(records: list[dict]) -> pd.DataFrame:
    """Per (net, variant) with at least ``2·PLATEAU_EPOCHS`` epochs: ``change``, the mean test
    accuracy (seed mean, %) of the last :data:`PLATEAU_EPOCHS` epochs minus that of the
    :data:`PLATEAU_EPOCHS` before, in points."""
    rows = []
    for r in records:
        acc = r["history"]["test_acc"]
        if len(acc) >= 2 * PLATEAU_EPOCHS:
            last, before = acc[-PLATEAU_EPOCHS:], acc[-2 * PLATEAU_EPOCHS:-PLATEAU_EPOCHS]
            rows.append({"net": r["config"]["net"], "variant": r["config"]["variant"],
                         "change": 100 * (sum(last) - sum(before)) / PLATEAU_EPOCHS})
    if not rows:
        return pd.DataFrame(columns=["net", "variant", "change"])
    return pd.DataFrame(rows).groupby(["net", "variant"], as_index=False, sort=False)["change"].mean()


def _clear(mean: float, se: float) -> bool:
    """Whether a paired difference is clear: ``|mean| > CLEAR_SE · se`` (False without an se)."""
    return not math.isnan(se) and abs(mean) > CLEAR_SE * se


def glue_values(records: list[dict]) -> dict:
    """Every value the chapter glues, from the records of ``mnist_baselines`` (all of one
    profile), in glue order:

    - ``acc_<net>_<variant>``, ``std_<net>_<variant>``: mean and std over seeds (ddof 1; 0 for
      one seed) of the test accuracy (%);
    - ``journal_<net>``: the journal's accuracy (cited) and ``gap_<net>``: ours (journal
      variant) minus the journal's, in points, for the nets it reports;
    - ``wd_cost_<net>`` = acc(l2) - acc(journal) and ``adamw_vs_l2_<net>`` = acc(adamw) -
      acc(l2) for conv1 and conv2 (points; positive: the journal's setting is worse);
    - ``profile``, ``n_runs``, ``n_seeds``, ``epochs_<net>``, ``devices``, ``train_minutes``
      (summed training time of all runs, min);
    - for conv1 and conv2, paired by seed: ``wd_cost_se_<net>`` and ``adamw_vs_l2_se_<net>``
      (standard errors of the two differences above, points; NaN for one seed) and
      ``wd_clear_<net>``, ``adamw_clear_<net>``: ``"clear"`` or ``"not clear"`` (beyond
      :data:`CLEAR_SE` standard errors);
    - ``adamw_shrink_<net>``: how much decoupled decay alone shrinks a weight over the whole
      run, ``100·(1 − (1 − lr·λ)^steps)`` (%), for conv1 and conv2;
    - ``gap_sd_<net>``: ``|gap|`` in prediction standard deviations of one run and
      ``reproduces_<net>``: ``"reproduces"`` or ``"does not reproduce"`` (within
      :data:`REPRODUCE_SD`), for the nets the journal reports;
    - ``acc1_<net>_<variant>``: the mean test accuracy after the first epoch (%);
    - per net, ``plateau_<net>``: the largest ``|change|`` of :func:`plateau_frame` over its
      variants (points; NaN when it trained fewer than ``2·PLATEAU_EPOCHS`` epochs) and
      ``plateau_verdict_<net>``: ``"has plateaued"`` (below :data:`PLATEAU_POINTS`), ``"has
      not plateaued"`` or ``"was trained too briefly to judge"``; ``plateau_epochs``,
      ``plateau_points``, ``clear_se``, ``reproduce_sd``: the thresholds; ``converged_note``
      (:func:`converged_note` of the nets the journal reports);
    - ``epoch_s_<net>``: the median seconds per training epoch over the net's runs;
      ``quiet_runs``: how many runs were timed on a quiet machine (provenance ``load``);
    - ``batch_<net>``: the batch size of the net's runs, and ``journal_wd``: the weight decay of
      the convolutional nets' journal variant (NaN unless all those records agree), both read
      from the records' configs.
    """
    runs = runs_frame(records)
    acc = runs.groupby(["net", "variant"])["acc"]
    means = acc.mean()
    values: dict = {}
    for (net, variant), mean in means.items():
        values[f"acc_{net}_{variant}"] = float(mean)
    for (net, variant), std in acc.std(ddof=1).fillna(0.0).items():
        values[f"std_{net}_{variant}"] = float(std)
    for net, reported in JOURNAL_ACCURACY.items():
        if reported is not None:
            values[f"journal_{net}"] = reported
            values[f"gap_{net}"] = float(means[net, "journal"] - reported)
    values["profile"] = profile_of(records)
    values["n_runs"] = len(records)
    values["n_seeds"] = int(runs["seed"].nunique())
    for net, g in runs.groupby("net"):
        values[f"epochs_{net}"] = int(g["epochs"].iloc[0])
    values["devices"] = devices_of(records)
    values["train_minutes"] = float(runs["train_s"].sum() / 60)

    by_seed = runs.set_index(["net", "variant", "seed"])["acc"].sort_index()
    for net in ("conv1", "conv2"):
        for name, (a, b) in {"wd_cost": ("l2", "journal"), "adamw_vs_l2": ("adamw", "l2")}.items():
            mean, se, _ = paired_difference(by_seed[net, a], by_seed[net, b])
            values[f"{name}_{net}"] = mean  # equals the difference of the means when every seed pairs
            values[f"{name}_se_{net}"] = se
            values[f"{'wd' if name == 'wd_cost' else 'adamw'}_clear_{net}"] = "clear" if _clear(mean, se) else "not clear"
    for net in ("conv1", "conv2"):
        r = next(r for r in records if r["config"]["net"] == net and r["config"]["variant"] == "adamw")
        c = r["config"]
        values[f"adamw_shrink_{net}"] = 100 * (1 - (1 - c["lr"] * c["weight_decay"]) ** r["timing"]["steps"])
    acc_sd = acc.std(ddof=1)
    for net, reported in JOURNAL_ACCURACY.items():
        if reported is not None:
            n = int(acc.count()[net, "journal"])
            sd = float(acc_sd[net, "journal"]) * math.sqrt(1 + 1 / n) if n > 1 else float("nan")
            values[f"gap_sd_{net}"] = abs(values[f"gap_{net}"]) / sd if sd == sd and sd > 0 else float("inf")
            values[f"reproduces_{net}"] = ("reproduces" if values[f"gap_sd_{net}"] <= REPRODUCE_SD
                                           else "does not reproduce")
    for (net, variant), mean in runs.groupby(["net", "variant"])["acc_epoch1"].mean().items():
        values[f"acc1_{net}_{variant}"] = float(mean)
    plateau = plateau_frame(records)
    for net in NET_LABEL:
        change = plateau.loc[plateau["net"] == net, "change"].abs()
        values[f"plateau_{net}"] = float(change.max()) if len(change) else float("nan")
        values[f"plateau_verdict_{net}"] = (
            "was trained too briefly to judge" if not len(change)
            else "has plateaued" if values[f"plateau_{net}"] < PLATEAU_POINTS else "has not plateaued")
    values["converged_note"] = converged_note({net: values[f"plateau_verdict_{net}"] for net in JOURNAL_ACCURACY
                                               if JOURNAL_ACCURACY[net] is not None})
    values["plateau_epochs"], values["plateau_points"] = PLATEAU_EPOCHS, PLATEAU_POINTS
    values["clear_se"], values["reproduce_sd"] = CLEAR_SE, REPRODUCE_SD
    for net, g in runs.groupby("net"):
        values[f"epoch_s_{net}"] = float(g["epoch_s"].median())
    values["quiet_runs"] = int((runs["quiet"] == True).sum())  # noqa: E712 (None: not recorded)
    for net, g in runs.groupby("net"):
        values[f"batch_{net}"] = int(g["batch"].iloc[0])
    wds = {r["config"]["weight_decay"] for r in records
           if r["config"]["net"] in ("conv1", "conv2") and r["config"]["variant"] == "journal"}
    values["journal_wd"] = float(wds.pop()) if len(wds) == 1 else float("nan")
    return values


def converged_note(verdicts: dict[str, str]) -> str:
    """What the plateau verdicts (``{net: plateau_verdict}``, nets in chapter order) allow the
    comparison with the journal's figures to claim, as a clause starting with "so": which of
    our accuracies are converged ones (the journal states no epochs, so whether its figures
    are converged stays open)."""
    done = [net for net, v in verdicts.items() if v == "has plateaued"]
    letter = {net: NET_LABEL[net].split(" ")[0] for net in verdicts}
    if not done:
        return "so neither our numbers nor the journal's are shown here to be converged accuracies"
    others = [letter[n] for n in verdicts if n not in done]
    ours = ("so our figures are converged accuracies" if not others else
            f"so our figure for {' and '.join(letter[n] for n in done)} is a converged accuracy and that for "
            f"{' and '.join(others)} is not shown to be one")
    return ours + "; whether the journal's are, it does not say"


# --- the training loop's own cost (benchmark train_throughput) -------------------------------

def throughput_table(record: dict) -> pd.DataFrame:
    """The ``train_throughput`` record as the chapter's table: per net, the batch, the steps
    timed per repetition, the milliseconds per training step of ``fit_classifier`` and of a
    plain PyTorch loop (medians over repetitions), their ratio, the same ratio of process CPU
    time, and whether both loops ended with the same weights."""
    rows = record["metrics"]["rows"]
    return pd.DataFrame({"net": [NET_LABEL.get(r["net"], r["net"]) for r in rows],
                         "batch": [r["batch_size"] for r in rows], "steps": [r["steps"] for r in rows],
                         "fit_classifier (ms/step)": [f"{1e3 * r['fit_s']:.2f}" for r in rows],
                         "plain loop (ms/step)": [f"{1e3 * r['plain_s']:.2f}" for r in rows],
                         "ratio": [f"{r['ratio']:.3f}" for r in rows],
                         "CPU-time ratio": [f"{r['cpu_ratio']:.3f}" for r in rows],
                         "same weights": ["yes" if r["same_weights"] else "no" for r in rows]})


def throughput_glue_values(record: dict) -> dict:
    """Glue values of the throughput section: ``tp_ratio_max`` (the largest fit / plain ratio),
    ``tp_target`` (the ratio the loop is held to), ``tp_within`` / ``tp_n`` (nets within it),
    ``tp_same`` ("yes" when both loops ended with identical weights on every net),
    ``tp_threads``, ``tp_quiet`` (:func:`~factorlab.report.provenance.quiet_label` of the
    record), and per net ``tp_<net>_fit_ms`` / ``tp_<net>_plain_ms`` (ms per step)."""
    from factorlab.report.provenance import quiet_label, quiet_of

    m = record["metrics"]
    v = {"tp_ratio_max": float(m["ratio_max"]), "tp_target": float(m["target_ratio"]),
         "tp_within": int(m["n_within_target"]), "tp_n": int(m["n"]),
         "tp_same": "yes" if m["all_same_weights"] else "no",
         "tp_threads": int(record["timing"]["threads"]), "tp_quiet": quiet_label(quiet_of(record))}
    for r in m["rows"]:
        v[f"tp_{r['net']}_fit_ms"] = 1e3 * float(r["fit_s"])
        v[f"tp_{r['net']}_plain_ms"] = 1e3 * float(r["plain_s"])
    return v
