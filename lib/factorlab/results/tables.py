"""Tables of run records for the book: provenance boxes and flat frames of configs/metrics."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

PROVENANCE_COLUMNS = ["run", "experiment", "profile", "device", "git commit", "started", "wall time (s)"]


def _commit(prov: dict) -> str:
    """First 10 characters of the commit, ``+dirty`` when the tree had changes."""
    commit = (prov.get("git_commit") or "unknown")[:10]
    return commit + ("+dirty" if prov.get("git_dirty") else "")


def provenance_table(records: list[dict]) -> pd.DataFrame:
    """One row per record: run key, experiment, profile, device, git commit (10 characters,
    ``+dirty`` when the tree had uncommitted changes), start time (UTC) and wall time (s,
    1 decimal); sorted by experiment then run."""
    rows = []
    for r in records:
        p = r.get("provenance") or {}
        wall = p.get("wall_s")
        rows.append({"run": r["key"], "experiment": r["experiment"], "profile": p.get("profile"),
                     "device": p.get("device"), "git commit": _commit(p), "started": p.get("started"),
                     "wall time (s)": None if wall is None else round(float(wall), 1)})
    frame = pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)
    return frame.sort_values(["experiment", "run"], kind="stable", ignore_index=True)


def _flatten(prefix: str, value: Any, out: dict) -> None:
    """Nested dicts become dotted columns; lists are kept as their JSON text (hashable)."""
    if isinstance(value, dict) and value:
        for k in sorted(value):
            _flatten(f"{prefix}.{k}", value[k], out)
    elif isinstance(value, (dict, list)):
        out[prefix] = json.dumps(value, sort_keys=True)
    else:
        out[prefix] = value


def records_frame(records: list[dict], metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per record: ``key``, ``experiment``, then the config and the metrics flattened
    to columns ``config.<k>`` and ``metrics.<k>`` (nested dicts as ``config.<k>.<j>``, lists
    as JSON text). ``metrics`` picks metric columns by (flattened) name, in that order; a
    record lacking one gets NaN. Rows sorted by experiment then key, columns sorted within
    each group."""
    rows, config_cols, metric_cols = [], set(), set()
    for r in records:
        conf, mets = {}, {}
        _flatten("config", r.get("config") or {}, conf)
        _flatten("metrics", r.get("metrics") or {}, mets)
        if metrics is not None:
            mets = {f"metrics.{m}": mets.get(f"metrics.{m}") for m in metrics}
        config_cols.update(conf)
        metric_cols.update(mets)
        rows.append({"key": r["key"], "experiment": r["experiment"], **conf, **mets})
    mcols = [f"metrics.{m}" for m in metrics] if metrics is not None else sorted(metric_cols)
    columns = ["key", "experiment", *sorted(config_cols), *mcols]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["experiment", "key"], kind="stable", ignore_index=True)
