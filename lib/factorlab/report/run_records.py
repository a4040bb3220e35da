"""Appendix "Run records" (``notebooks/run_records.ipynb``): one row per record in the run
store, every experiment and benchmark (:class:`factorlab.results.RunStore`), with what tells
it apart, its headline metric, device, profile, commit, wall time and whether it ran on a
quiet machine."""
from __future__ import annotations

import pandas as pd

from factorlab.report.provenance import quiet_label, quiet_of
from factorlab.results import RunStore

#: Config entries that tell runs of one experiment apart, in the order they are shown.
LABEL_KEYS = ("net", "variant", "family", "compression", "width", "wd_mode", "model", "task_set", "qm9_index",
              "seed")
#: Headline metrics, first match wins: accuracy (MNIST, CIFAR), the mean test MAE in training
#: stds (QM9), a speed ratio (benchmarks), energy errors (DFT), a test loss.
HEADLINE_METRICS = ("test_acc", "baseline_acc", "mean_test_mae_std", "load_ratio", "energy_error_mEh",
                    "methane_U0_atom_eV", "test_loss")
#: Columns of :func:`records_table`.
COLUMNS = ["experiment", "run", "profile", "what", "metric", "value", "device", "commit", "wall (s)", "quiet"]


def load_records(profile: str | None = None, store: RunStore | None = None) -> list[dict]:
    """Every record in the run store (``store``, default :class:`RunStore()`: the committed
    ``data/results`` or ``FACTORLAB_RESULTS_DIR``), of every experiment; only those of
    ``profile`` when given."""
    store = store or RunStore()
    return [r for r in store.records() if profile is None or r["provenance"]["profile"] == profile]


def label(config: dict) -> str:
    """The config entries that tell runs of one experiment apart (:data:`LABEL_KEYS` present
    with a scalar value; else every scalar entry but experiment and profile), as ``k=v, ...``."""
    skip = {"experiment", "profile"}
    keys = [k for k in LABEL_KEYS if config.get(k) is not None and not isinstance(config[k], dict)]
    keys = keys or sorted(k for k in set(config) - skip if not isinstance(config[k], (dict, list)))
    return ", ".join(f"{k}={config[k]}" for k in keys)


def headline_metric(metrics: dict) -> str | None:
    """The first of :data:`HEADLINE_METRICS` that ``metrics`` holds as a number, or None."""
    return next((k for k in HEADLINE_METRICS if isinstance(metrics.get(k), (int, float))), None)


def records_table(records: list[dict]) -> pd.DataFrame:
    """The appendix table, one row per record in the given order: experiment, run key,
    profile, :func:`label`, headline metric and its value (4 decimals), device, commit (10
    characters, ``+dirty`` for a dirty tree), wall time (s, 1 decimal) and ``quiet``: "yes" when
    the run had the machine to itself (no other training, others using under a quarter of a
    core), "no" when it did not, "unknown" for records from before the load was recorded."""
    rows = []
    for r in records:
        p, m = r["provenance"], r["metrics"]
        headline = headline_metric(m)
        rows.append({
            "experiment": r["experiment"], "run": r["key"], "profile": p["profile"], "what": label(r["config"]),
            "metric": headline or "", "value": "" if headline is None else f"{m[headline]:.4f}",
            "device": p["device"], "commit": (p["git_commit"] or "unknown")[:10] + ("+dirty" if p["git_dirty"] else ""),
            "wall (s)": f"{p['wall_s']:.1f}", "quiet": quiet_label(quiet_of(r)),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def dirty_in_use(records: list[dict], store: RunStore | None = None) -> pd.DataFrame:
    """The records from a tree with uncommitted code (``git_dirty``) that a chapter still reads:
    those whose config is in its experiment's grid under the record's own profile
    (:func:`factorlab.report.store.grid_configs`). One row each: experiment, run key,
    :func:`label`, commit (10 characters) and the date it started; empty when there is none."""
    from factorlab.report.store import grid_configs

    store = store or RunStore()
    keys: dict[tuple[str, str], set[str]] = {}
    rows = []
    for r in records:
        p = r["provenance"]
        if not p.get("git_dirty"):
            continue
        grid = (r["experiment"], p["profile"])
        if grid not in keys:
            keys[grid] = {store.key(c) for c in grid_configs(*grid)}
        if r["key"] in keys[grid]:
            rows.append({"experiment": r["experiment"], "run": r["key"], "what": label(r["config"]),
                         "commit": (p["git_commit"] or "unknown")[:10], "started": str(p.get("started", ""))[:10]})
    return pd.DataFrame(rows, columns=["experiment", "run", "what", "commit", "started"])
