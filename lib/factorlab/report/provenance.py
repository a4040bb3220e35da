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
