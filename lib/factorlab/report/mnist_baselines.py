"""Chapter "MNIST baselines" (``notebooks/mnist_baselines.ipynb``): the three networks of the
thesis journal as written and with other weight decays, from the records of the experiment
``mnist_baselines`` (:mod:`factorlab.experiments.mnist_baselines`).

Accuracies are test accuracies in percent after the last epoch; times are seconds of training
steps (evaluation excluded)."""
from __future__ import annotations

import pandas as pd

from factorlab import plots
from factorlab.experiments.mnist_baselines import JOURNAL_ACCURACY
from factorlab.report.provenance import devices_of, profile_of

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
    } for r in records])


def results_table(records: list[dict]) -> pd.DataFrame:
    """The chapter's table of ``mnist_baselines``: one row per (net, variant) in record order,
    with epochs, batch, seeds, test accuracy (mean ± std over seeds, %), the journal's figure
    (cited; "n/r" where the journal reports none), parameters and training time (s)."""
    runs = runs_frame(records)
    rows = []
    for (net, variant), g in runs.groupby(["net", "variant"], sort=False):
        journal = JOURNAL_ACCURACY[net] if variant == "journal" else None
        rows.append({
            "network": NET_LABEL[net], "optimizer, weight decay": VARIANT_LABEL[net, variant],
            "epochs": int(g["epochs"].iloc[0]), "batch": int(g["batch"].iloc[0]), "seeds": len(g),
            "test acc. (%)": plots.mean_std(g["acc"], 2),
            "journal (%)": ("n/r" if journal is None and variant == "journal"
                            else ("" if journal is None else f"{journal:.1f}")),
            "params": f"{int(g['params'].iloc[0]):,}",
            "train time (s)": plots.mean_std(g["train_s"], 0),
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
    """Figure of ``mnist_baselines``: the final test accuracy of every run (left, one dot per
    seed) and, for each net trained for more than one epoch, its training loss per epoch (mean
    ± std over seeds, log scale)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    curves = curves_frame(records)
    final = curves.sort_values("epoch").groupby(["net", "variant", "seed"], sort=False).tail(1)
    long_nets = [n for n in NET_LABEL.values() if curves.loc[curves["net"] == n, "epoch"].max() > 1]
    fig, axes = plt.subplots(1, 1 + len(long_nets), figsize=(plots.FULL_WIDTH, 3.8),
                             gridspec_kw={"width_ratios": [1.6] + [1] * len(long_nets)})
    axes = list(axes) if len(long_nets) else [axes]
    sns.stripplot(data=final, y="variant", x="test accuracy (%)", hue="net", dodge=False, size=6, ax=axes[0])
    axes[0].set_title("final test accuracy, one dot per seed")
    axes[0].set_ylabel("")
    axes[0].legend(fontsize="x-small", title=None, loc="lower left")
    for ax, net in zip(axes[1:], long_nets):
        sns.lineplot(data=curves[curves["net"] == net], x="epoch", y="train loss", hue="variant",
                     marker="o", errorbar="sd", ax=ax)
        ax.set_yscale("log")
        ax.set_title(f"{net}: training loss")
        ax.legend(fontsize="x-small", title=None)
    fig.tight_layout()
    return fig


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
      (summed training time of all runs, min).
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
    for net in ("conv1", "conv2"):
        values[f"wd_cost_{net}"] = float(means[net, "l2"] - means[net, "journal"])
        values[f"adamw_vs_l2_{net}"] = float(means[net, "adamw"] - means[net, "l2"])
    values["profile"] = profile_of(records)
    values["n_runs"] = len(records)
    values["n_seeds"] = int(runs["seed"].nunique())
    for net, g in runs.groupby("net"):
        values[f"epochs_{net}"] = int(g["epochs"].iloc[0])
    values["devices"] = devices_of(records)
    values["train_minutes"] = float(runs["train_s"].sum() / 60)
    return values
