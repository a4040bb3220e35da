"""The provenance box every chapter ends with: its runs grouped by how they were produced,
and the ``quiet`` flag of a record (taken on a quiet machine, see
:mod:`factorlab.results.load`) that every reported time is shown beside."""
from __future__ import annotations

import pandas as pd

from factorlab.results.tables import provenance_table


#: Columns of :func:`provenance_summary` counting its runs by :func:`quiet_of`.
QUIET_COLUMNS = ["quiet", "not quiet", "load unknown"]


def quiet_of(record: dict) -> bool | None:
    """Whether ``record`` ran on a quiet machine (its provenance's ``load.quiet``: no other
    training live and others using under a quarter of a core), or None where the record
    predates the load block (taken before the machine's load was recorded)."""
    load = (record.get("provenance") or {}).get("load")
    if not isinstance(load, dict) or load.get("quiet") is None:
        return None
    return bool(load["quiet"])


def quiet_label(flags) -> str:
    """The ``quiet`` cell of a table row measured by one or more records with :func:`quiet_of`
    ``flags`` (a bool/None or an iterable of them): ``"yes"`` when all are quiet, ``"no"``
    when none is and all are known, ``"unknown"`` when none is known, else ``"k of n"`` (k
    quiet of n)."""
    flags = [flags] if flags is None or isinstance(flags, bool) else list(flags)
    if not flags:
        raise ValueError("no records to label")
    known = [f for f in flags if f is not None]
    if not known:
        return "unknown"
    if len(known) == len(flags) and all(known):
        return "yes"
    if len(known) == len(flags) and not any(known):
        return "no"
    return f"{sum(known)} of {len(flags)}"


def quiet_counts(records: list[dict]) -> dict[str, int]:
    """How many of ``records`` were taken on a quiet machine: ``{"quiet", "not_quiet",
    "unknown", "n"}`` (``unknown``: records without a load block)."""
    flags = [quiet_of(r) for r in records]
    return {"quiet": sum(f is True for f in flags), "not_quiet": sum(f is False for f in flags),
            "unknown": sum(f is None for f in flags), "n": len(flags)}


def quiet_sentence(records: list[dict], what: str = "timings") -> str:
    """One sentence-part for prose beside a reported time: ``"<k> of the <n> <what> were taken
    on a quiet machine"`` followed by how many were not and how many predate load recording,
    e.g. ``"0 of the 3 timings were taken on a quiet machine (3 predate load recording)"``."""
    c = quiet_counts(records)
    parts = [f"{c['not_quiet']} on a busy one"] if c["not_quiet"] else []
    parts += [f"{c['unknown']} predate load recording"] if c["unknown"] else []
    tail = f" ({', '.join(parts)})" if parts else ""
    return f"{c['quiet']} of the {c['n']} {what} were taken on a quiet machine{tail}"


def provenance_summary(records: list[dict], by_experiment: bool = True) -> pd.DataFrame:
    """One row per (experiment,) profile, device and git commit of ``records``: the number of
    runs, how many of them ran on a quiet machine, on a busy one, or before the load was
    recorded (:data:`QUIET_COLUMNS`, from :func:`quiet_of`), the first and last start time
    (UTC) and the summed wall time (s, 1 decimal). ``by_experiment=False`` leaves out the
    experiment column (single-experiment chapters)."""
    keys = (["experiment"] if by_experiment else []) + ["profile", "device", "git commit"]
    table = provenance_table(records)
    flags = {r["key"]: quiet_of(r) for r in records}
    q = table["run"].map(flags)
    table["quiet"] = q.eq(True).astype(int) if len(table) else q
    table["not quiet"] = q.eq(False).astype(int) if len(table) else q
    table["load unknown"] = q.isna().astype(int) if len(table) else q
    prov = table.groupby(keys, as_index=False).agg(
        runs=("run", "count"), quiet=("quiet", "sum"), not_quiet=("not quiet", "sum"),
        load_unknown=("load unknown", "sum"), first_started=("started", "min"),
        last_started=("started", "max"), wall_time_s=("wall time (s)", "sum"))
    prov = prov.rename(columns={"not_quiet": "not quiet", "load_unknown": "load unknown"})
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
