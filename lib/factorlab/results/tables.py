"""Tables of run records for the book."""
from __future__ import annotations

import pandas as pd


def provenance_table(records: list[dict]) -> pd.DataFrame:
    """One row per record: run key, experiment, profile, device, commit (10 chars, "+dirty"
    when the tree had uncommitted changes), start time (UTC) and wall time (s, 1 decimal)."""
    rows = []
    for r in records:
        p = r["provenance"]
        commit = (p.get("git_commit") or "unknown")[:10] + ("+dirty" if p.get("git_dirty") else "")
        rows.append({"run": r["key"], "experiment": r["experiment"], "profile": p.get("profile"),
                     "device": p.get("device"), "git commit": commit, "started": p.get("started"),
                     "wall time (s)": round(float(p.get("wall_s") or 0.0), 1)})
    cols = ["run", "experiment", "profile", "device", "git commit", "started", "wall time (s)"]
    return pd.DataFrame(rows, columns=cols).sort_values(["experiment", "run"], ignore_index=True)


def records_frame(records: list[dict], metrics: list[str] | None = None) -> pd.DataFrame:
    """Config and metrics flattened to columns ``config.<k>`` and ``metrics.<k>`` (dict values
    of the config are kept as their JSON text), one row per record, sorted by key."""
    import json

    rows = []
    for r in records:
        row = {"key": r["key"], "experiment": r["experiment"]}
        for k, v in r["config"].items():
            row[f"config.{k}"] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
        for k, v in r["metrics"].items():
            if metrics is None or k in metrics:
                row[f"metrics.{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows).sort_values("key", ignore_index=True) if rows else pd.DataFrame()
