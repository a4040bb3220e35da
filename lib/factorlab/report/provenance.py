"""The provenance box every chapter ends with: its runs grouped by how they were produced."""
from __future__ import annotations

import pandas as pd

from factorlab.results.tables import provenance_table


def provenance_summary(records: list[dict], by_experiment: bool = True) -> pd.DataFrame:
    """One row per (experiment,) profile, device and git commit of ``records``: the number of
    runs, the first and last start time (UTC) and the summed wall time (s, 1 decimal).
    ``by_experiment=False`` leaves out the experiment column (single-experiment chapters)."""
    keys = (["experiment"] if by_experiment else []) + ["profile", "device", "git commit"]
    prov = provenance_table(records).groupby(keys, as_index=False).agg(
        runs=("run", "count"), first_started=("started", "min"), last_started=("started", "max"),
        wall_time_s=("wall time (s)", "sum"))
    return prov.round(1)


def provenance_box(records: list[dict], by_experiment: bool = True):
    """:func:`provenance_summary` as the ``IPython.display.HTML`` table the chapters show (no
    index, no border)."""
    from IPython.display import HTML

    return HTML(provenance_summary(records, by_experiment).to_html(index=False, border=0))


def profile_of(records: list[dict]) -> str:
    """The profile every one of ``records`` was run under (their config's ``profile``): what a
    chapter's provenance note shows. ValueError when ``records`` is empty or mixes profiles."""
    profiles = sorted({str(r["config"]["profile"]) for r in records})
    if len(profiles) != 1:
        raise ValueError(f"need records of exactly one profile, got {profiles or 'no records'}")
    return profiles[0]


def devices_of(records: list[dict]) -> str:
    """The devices ``records`` ran on (their provenance's ``device``), sorted, comma-separated."""
    return ", ".join(sorted({r["provenance"]["device"] for r in records}))
