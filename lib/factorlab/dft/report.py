"""The side-by-side table of ``python -m factorlab predict``: property, unit, DFT, network,
QM9 reference, and each method's wall time, as plain text (no widths that depend on a
terminal)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from factorlab.data.qm9 import TARGETS

#: Decimals shown per unit.
DECIMALS = {"D": 4, "a0^3": 3, "eV": 4, "a0^2": 3, "cal/(mol K)": 3, "GHz": 4}


def _fmt(value, unit: str) -> str:
    if value is None or value != value:  # None, or NaN (pandas' missing value)
        return "-"
    d = DECIMALS.get(unit, 4)
    return f"{round(float(value), d) + 0.0:.{d}f}"  # + 0.0: no "-0.0000"


def prediction_frame(dft: dict | None = None, net: dict | None = None, reference: dict | None = None,
                     names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per target: ``property``, ``unit``, then the columns given (``DFT``, ``network``,
    ``QM9``) and, with a reference, the error of each method. Values are floats or None."""
    rows = []
    for t in TARGETS:
        if names is not None and t.name not in names:
            continue
        row = {"property": t.name, "unit": t.unit}
        for label, values in (("DFT", dft), ("network", net), ("QM9", reference)):
            if values is not None:
                row[label] = values.get(t.name)
        if reference is not None:
            for label, values in (("DFT", dft), ("network", net)):
                if values is not None:
                    a, b = values.get(t.name), reference.get(t.name)
                    row[f"{label} error"] = None if a is None or b is None else a - b
        rows.append(row)
    return pd.DataFrame(rows)


def format_prediction(frame: pd.DataFrame, wall_s: dict[str, float] | None = None) -> str:
    """The frame of :func:`prediction_frame` as aligned text, plus a ``wall time`` line per method."""
    cols = list(frame.columns)
    cells = [cols]
    for _, row in frame.iterrows():
        cells.append([str(row[c]) if c in ("property", "unit") else _fmt(row[c], row["unit"]) for c in cols])
    if wall_s:
        line = ["wall time", "s"] + ["" for _ in cols[2:]]
        for method, seconds in wall_s.items():
            if method in cols:
                line[cols.index(method)] = f"{seconds:.1f}"
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    out = []
    for k, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def load_qm9_table_for_lookup(source: str | None, say) -> object | None:
    """The QM9 table to look molecules up in: ``source`` (a path; ``"none"`` for no lookup), or
    wherever :func:`~factorlab.data.qm9.find_qm9_source` finds the full set; None (with a
    message) when there is none."""
    from factorlab.data.errors import DataError
    from factorlab.data.qm9 import find_qm9_source, read_qm9_table

    if source is not None and str(source).lower() == "none":
        return None
    try:
        path = find_qm9_source(source)
        say(f"reading QM9 from {path} to look the molecule up")
        return read_qm9_table(path, expect_rows=None if source is not None else "full")
    except DataError as err:
        if source is not None:
            raise
        say(f"QM9 is not available here, so the molecule is not looked up ({str(err).split('. ')[0]})")
        return None


def predict_main(smiles: str, method: str = "dft", qm9: str | None = None, optimize: bool = True,
                 polarizability: bool | str = "auto", hessian: bool | str = "auto", threads: int | None = None,
                 max_heavy_atoms: int = 9, force: bool = False, density_fit: bool = False, say=print,
                 out=print) -> int:
    """What ``python -m factorlab predict`` does: validate, find the geometry, run the DFT and
    print the table (``out``) with progress lines (``say``). Returns the exit status."""
    from factorlab.dft.compute import predict_dft
    from factorlab.dft.geometry import parse_smiles

    if method not in ("dft", "net", "both"):
        raise ValueError(f"unknown method {method!r}: choose dft, net or both")
    if method != "dft":
        raise ValueError("the network side of `predict` (issue 6, item 3) is not available yet: use --method dft")
    parse_smiles(smiles, max_heavy_atoms=max_heavy_atoms)  # fail fast, before reading QM9
    table = load_qm9_table_for_lookup(qm9, say)
    pred = predict_dft(smiles, table, optimize=optimize, max_heavy_atoms=max_heavy_atoms, progress=say,
                       polarizability=polarizability, hessian=hessian, threads=threads, force=force,
                       density_fit=density_fit)
    geom, res = pred.geometry, pred.dft
    frame = prediction_frame(dft=res.values, reference=geom.reference)
    out(f"{geom.canonical}  ({len(geom.z)} atoms, {geom.n_heavy} heavy; {res.n_basis} basis functions)")
    out(f"level: {res.level}")
    out(f"geometry: {geom.note}")
    out(format_prediction(frame, wall_s={"DFT": pred.wall_s}))
    for step, why in res.skipped.items():
        out(f"{step} skipped: {why}")
    return 0
