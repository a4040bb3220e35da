"""Chapter "MNIST baselines" (``notebooks/mnist_baselines.ipynb``), the architecture details the
thesis journal leaves unstated: from the records of the experiment ``mnist_architecture``
(:mod:`factorlab.experiments.mnist_architecture`) beside the ``journal`` runs of
``mnist_baselines``, whose nets are the chapter's choices (conv1 without pooling; conv2 with
3x3 kernels and no hidden dense layer).

Accuracies are test accuracies in percent after the last epoch, as mean ± standard error over
seeds (SE = sd / sqrt(n), none for one seed); differences are in points, architecture variant
minus the chapter's net, paired by seed (:func:`factorlab.analysis.paired_difference`): a
variant's run and the ``mnist_baselines`` run it pairs with share the seed and every training
setting (profile, optimizer, epochs, data), so they differ in the architecture alone. The
journal's accuracy of each net (cited, not measured) stands beside its rows.

These functions only read records: :func:`stored_records` takes what the run store holds and
never trains; a variant without records reads :data:`NOT_RUN`.
"""
from __future__ import annotations

import json
import math

import pandas as pd

from factorlab.analysis import paired_difference
from factorlab.experiments.mnist_architecture import ARCHS, NAME, VARIANT, grid
from factorlab.experiments.mnist_baselines import JOURNAL_ACCURACY
from factorlab.experiments.mnist_baselines import grid as baselines_grid
from factorlab.report.formatting import pm, se_digits
from factorlab.report.mnist_baselines import CLEAR_SE
from factorlab.report.store import stored_records as stored_records_of
from factorlab.report.verdicts import NOT_MEASURED

#: What a cell reads when its variant has no records.
NOT_RUN = "not run"
#: The ``arch`` of the chapter's own nets (the ``mnist_baselines`` runs) in the frames.
CHAPTER = "chapter"
#: Row labels of each (net, arch): what differs from the chapter's net.
ARCH_LABEL = {
    ("conv1", CHAPTER): "chapter's net: no pooling",
    ("conv1", "pool"): "2x2 max-pooling after the conv",
    ("conv2", CHAPTER): "chapter's net: 3x3 kernels, no dense layer",
    ("conv2", "kernel5"): "5x5 kernels",
    ("conv2", "dense100"): "dense 100 (ReLU) before the output",
    ("conv2", "kernel5_dense100"): "5x5 kernels and dense 100",
}
#: The same, short, for the table's narrow column.
ARCH_SHORT = {
    ("conv1", CHAPTER): "the chapter's",
    ("conv1", "pool"): "+ 2x2 max-pool",
    ("conv2", CHAPTER): "the chapter's",
    ("conv2", "kernel5"): "5x5 kernels",
    ("conv2", "dense100"): "+ dense 100",
    ("conv2", "kernel5_dense100"): "5x5 + dense 100",
}
#: Config keys that are not training settings: a variant's run pairs with the chapter's run of
#: the same seed whose config agrees on every other key.
_NOT_SETTINGS = ("experiment", "model_kwargs", "arch", "seed")


def stored_records(profile: str, store=None) -> tuple[list[dict], list[dict]]:
    """The records the run store holds (never training) of ``mnist_architecture``'s grid under
    ``profile`` and of the ``mnist_baselines`` runs of :data:`VARIANT` of the nets in
    :data:`ARCHS` (the chapter's nets the variants pair with), each in grid order; configs
    without a record are left out."""
    base = [c for c in baselines_grid(profile) if c["net"] in ARCHS and c["variant"] == VARIANT]
    return stored_records_of(grid(profile), store)[0], stored_records_of(base, store)[0]


def _settings(config: dict) -> str:
    """The training settings of a config (every key but :data:`_NOT_SETTINGS`), as a string."""
    return json.dumps({k: v for k, v in config.items() if k not in _NOT_SETTINGS}, sort_keys=True)


def accuracy_frame(records: list[dict], baseline_records: list[dict] = ()) -> pd.DataFrame:
    """One row per run: ``net``, ``arch`` (:data:`CHAPTER` for a ``mnist_baselines`` run),
    ``variant``, ``seed``, ``profile``, ``acc`` (final test accuracy, %), ``params``,
    ``epochs``, ``train_s`` (s) and ``settings`` (the training settings the pairing matches);
    the ``mnist_architecture`` records first, then those of ``baseline_records`` of the nets
    and variant the architectures change; in record order."""
    cols = ["net", "arch", "variant", "seed", "profile", "acc", "params", "epochs", "train_s", "settings"]
    rows = []
    for r in list(records) + [b for b in baseline_records
                              if b["config"]["net"] in ARCHS and b["config"]["variant"] == VARIANT]:
        c = r["config"]
        rows.append({"net": c["net"], "arch": c["arch"] if c["experiment"] == NAME else CHAPTER,
                     "variant": c["variant"], "seed": c["seed"], "profile": c["profile"],
                     "acc": 100 * r["metrics"]["test_acc"], "params": r["model"]["params"], "epochs": c["epochs"],
                     "train_s": r["timing"]["train_s"], "settings": _settings(c)})
    return pd.DataFrame(rows, columns=cols)


def _se(x: pd.Series) -> float:
    return float(x.std(ddof=1) / math.sqrt(x.count())) if x.count() > 1 else float("nan")


def variants_frame(records: list[dict], baseline_records: list[dict], profile: str) -> pd.DataFrame:
    """One row per net and architecture of ``mnist_architecture``'s ``profile`` grid, each net's
    :data:`CHAPTER` row first (its ``mnist_baselines`` runs), whether or not it has records:
    ``net``, ``arch``, ``n`` (seeds recorded), ``acc`` and ``acc_se`` (mean and standard
    error over seeds, %; NaN without records, SE NaN for one seed), ``diff`` and ``diff_se``
    (variant − chapter's net, paired by seed and training settings, points; NaN for the
    chapter's rows and where nothing pairs), ``n_pairs``, ``params`` (NA without records)
    and ``journal`` (the journal's accuracy of the net, cited, %). Only records of
    ``profile`` count."""
    runs = accuracy_frame(records, baseline_records)
    runs = runs[runs["profile"] == profile]
    order = []
    for c in grid(profile):
        for key in ((c["net"], CHAPTER), (c["net"], c["arch"])):
            if key not in order:
                order.append(key)
    chapter = {net: g.set_index(["settings", "seed"])["acc"] for net, g in runs[runs["arch"] == CHAPTER].groupby("net")}
    rows = []
    for net, arch in order:
        g = runs[(runs["net"] == net) & (runs["arch"] == arch)]
        diff = diff_se = math.nan
        n_pairs = 0
        if arch != CHAPTER and len(g) and net in chapter:
            try:
                diff, diff_se, n_pairs = paired_difference(g.set_index(["settings", "seed"])["acc"], chapter[net])
            except ValueError:  # no seed of the same settings pairs up
                pass
        rows.append({"net": net, "arch": arch, "n": int(len(g)),
                     "acc": float(g["acc"].mean()) if len(g) else math.nan, "acc_se": _se(g["acc"]),
                     "diff": diff, "diff_se": diff_se, "n_pairs": n_pairs,
                     "params": int(g["params"].iloc[0]) if len(g) else None, "journal": JOURNAL_ACCURACY[net]})
    return pd.DataFrame(rows).astype({"params": "Int64"})


def variants_table(records: list[dict], baseline_records: list[dict], profile: str) -> pd.DataFrame:
    """:func:`variants_frame` as the chapter's table, narrow enough for the column: net ("(b)",
    "(c)": :data:`NET_PROSE`), architecture (:data:`ARCH_SHORT`), parameters, seeds,
    test accuracy (%, mean ± SE), variant − chapter's net (points, paired by seed, mean ± SE,
    with the pairs counted) and the journal's accuracy (cited). Two decimals, three where an SE
    would print as zero (:func:`~factorlab.report.formatting.se_digits`). A variant without records
    reads :data:`NOT_RUN` in its accuracy and "—" in its parameters and difference (as the CIFAR
    chapter's tables do, so the table stays narrow); one whose runs pair with none of the
    chapter's reads "no pair"."""
    f = variants_frame(records, baseline_records, profile)
    rows = []
    for r in f.itertuples():
        if r.arch == CHAPTER:
            vs = "(reference)"
        elif r.n == 0:
            vs = "—"
        elif r.n_pairs == 0:
            vs = "no pair"
        else:
            pairs = f"{r.n_pairs} pair{'s' if r.n_pairs > 1 else ''}"
            vs = f"{pm(r.diff, r.diff_se, f'+.{se_digits(r.diff_se)}f')} ({pairs})"
        rows.append({"net": NET_PROSE[r.net], "architecture": ARCH_SHORT[r.net, r.arch],
                     "params": "—" if pd.isna(r.params) else f"{int(r.params):,}", "seeds": r.n,
                     "test acc. (%)": NOT_RUN if r.n == 0 else pm(r.acc, r.acc_se, f".{se_digits(r.acc_se)}f"),
                     "vs. chapter's (points)": vs, "journal (%)": f"{r.journal:.1f}"})
    return pd.DataFrame(rows)


def glue_values(records: list[dict], baseline_records: list[dict], profile: str) -> dict:
    """The values a chapter glues, per row of :func:`variants_frame` (``<net>_<arch>``):
    ``arch_n_…`` (seeds), ``arch_acc_…`` and ``arch_acc_se_…`` (%), and for the variants
    ``arch_diff_…``, ``arch_diff_se_…`` (points; NaN where nothing pairs) and ``arch_clear_…``:
    ``"clear"`` (beyond :data:`~factorlab.report.mnist_baselines.CLEAR_SE` standard errors),
    ``"not clear"``, ``"not measured"`` (one pair: no standard error) or ``"not run"`` (no
    pair); plus ``arch_runs`` and
    ``arch_grid`` (records held and configs in the grid of ``profile``)."""
    f = variants_frame(records, baseline_records, profile)
    values: dict = {}
    for r in f.itertuples():
        key = f"{r.net}_{r.arch}"
        values[f"arch_n_{key}"] = int(r.n)
        values[f"arch_acc_{key}"], values[f"arch_acc_se_{key}"] = float(r.acc), float(r.acc_se)
        if r.arch != CHAPTER:
            values[f"arch_diff_{key}"], values[f"arch_diff_se_{key}"] = float(r.diff), float(r.diff_se)
            values[f"arch_clear_{key}"] = (NOT_RUN if r.n_pairs == 0 else NOT_MEASURED if math.isnan(r.diff_se) else
                                           "clear" if abs(r.diff) > CLEAR_SE * r.diff_se else "not clear")
    values["arch_runs"] = int(f.loc[f["arch"] != CHAPTER, "n"].sum())
    values["arch_grid"] = len(grid(profile))
    values["arch_sentence"] = architecture_sentence(f, values["arch_runs"], values["arch_grid"])
    return values


#: The nets as the chapter's prose names them.
NET_PROSE = {"conv1": "(b)", "conv2": "(c)"}


def architecture_sentence(f: pd.DataFrame, runs: int, grid_size: int) -> str:
    """One sentence (plain text, for glue) from :func:`variants_frame` ``f``: per variant with
    records, its net, what it changes, its accuracy and its paired difference to the chapter's
    net with the verdict (clear beyond :data:`~factorlab.report.mnist_baselines.CLEAR_SE`
    standard errors); then the variants not run yet; or that none is, with ``runs`` of
    ``grid_size`` recorded."""
    if runs == 0:
        return (f"None of the {grid_size} runs of the architecture variants is recorded yet, so whether an unstated "
                "architecture detail explains the gaps is not measured.")
    done, missing = [], []
    for r in f[f["arch"] != CHAPTER].itertuples():
        what = f"{NET_PROSE[r.net]} with {ARCH_LABEL[r.net, r.arch]}"
        if r.n == 0:
            missing.append(what)
            continue
        if r.n_pairs == 0:
            done.append(f"{what} reaches {r.acc:.2f} % (no run pairs with the chapter's)")
            continue
        verdict = (NOT_MEASURED if math.isnan(r.diff_se) else
                   "clear" if abs(r.diff) > CLEAR_SE * r.diff_se else "not clear")
        done.append(f"{what} reaches {r.acc:.2f} % ({pm(r.diff, r.diff_se, f'+.{se_digits(r.diff_se)}f')} points "
                    f"against the chapter's net over {r.n_pairs} seed pair{'s' if r.n_pairs > 1 else ''}, {verdict})")
    text = "With the journal's settings, " + "; ".join(done) + "."
    return text + (f" Not run yet: {', '.join(missing)}." if missing else "")
