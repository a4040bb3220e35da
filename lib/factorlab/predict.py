"""``python -m factorlab predict``: a molecule's 19 QM9 properties by DFT
(:mod:`factorlab.dft`) and/or by a saved network of the ``qm9_demo_model`` experiment (or, with
``train_size="full"``, of ``qm9_demo_full``: the same networks on the whole training split), beside
QM9's own values when the molecule is in QM9, as one side-by-side table (property, unit, DFT,
network, QM9 reference, each method's wall time) in plain text (no widths that depend on a
terminal).

It sits above both :mod:`factorlab.dft` and :mod:`factorlab.experiments` (it reads the
experiment's saved network), beside :mod:`factorlab.report` in the layer order.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

import pandas as pd

from factorlab.data.qm9 import TARGETS

#: Up to this many heavy atoms, ``predict`` warns that the network extrapolates (QM9 is mostly
#: molecules of 7 to 9 heavy atoms; the chapter "DFT or network?" measures the errors by size).
SMALL_MOLECULE = 5

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
                line[cols.index(method)] = f"{seconds:.1f}" if seconds >= 1 else f"{seconds:.2g}"
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


#: ``train_size`` -> the experiment whose saved network ``predict`` loads: the profile's training
#: subset (``qm9_demo_model``) or the whole training split (``qm9_demo_full``).
TRAIN_SIZES = {"budget": "qm9_demo_model", "full": "qm9_demo_full"}


def _check_train_size(train_size: str) -> str:
    if train_size not in TRAIN_SIZES:
        raise ValueError(f"unknown train size {train_size!r}: choose one of {', '.join(TRAIN_SIZES)}")
    return train_size


def find_network_record(network: str = "none", train_size: str = "budget", store=None) -> dict:
    """The run record of the saved network ``network`` (a ``sharing``) trained on the profile's
    subset (``train_size="budget"``) or the whole training split (``"full"``); LookupError
    naming the command that trains it when its weights are missing."""
    if _check_train_size(train_size) == "full":
        from factorlab.experiments.qm9_demo_full import find_full_record

        return find_full_record(network, store)
    from factorlab.experiments.qm9_demo_model import find_demo_record

    return find_demo_record(network, store)


def load_network(network: str = "none", train_size: str = "budget", device: str = "cpu"):
    """``(QM9Predictor, record)`` of :func:`find_network_record`'s network."""
    if _check_train_size(train_size) == "full":
        from factorlab.experiments.qm9_demo_full import load_full_predictor

        return load_full_predictor(network, device)
    from factorlab.experiments.qm9_demo_model import load_demo_predictor

    return load_demo_predictor(network, device)


def network_kind(cfg: dict) -> str:
    """One phrase for a ``qm9_demo_model`` network: its sharing and, for the grouped one, its
    groups (the targets outside them are single-task networks)."""
    if cfg["sharing"] == "none":
        return "19 single-task GINEs"
    if cfg["sharing"] == "hard":
        return "one hard-shared GINE, 19 heads"
    groups = "; ".join(", ".join(g) for g in cfg["groups"])
    n_single = len(cfg["targets"]) - sum(len(g) for g in cfg["groups"])
    return f"the best grouping's GINEs ({groups}) and {n_single} single-task GINEs for the other targets"


def predict_network(smiles: str, table=None, network: str = "none", max_heavy_atoms: int = 9,
                    say=lambda m: None, train_size: str = "budget") -> dict:
    """The saved QM9 network's prediction for ``smiles`` (``network`` and ``train_size`` as in
    :func:`find_network_record`).

    A molecule found in ``table`` (QM9) is featurized from QM9's SMILES and geometry, i.e. as
    in training; any other from its SMILES alone (the GINE reads no coordinates).

    Returns:
        dict: ``values`` (target -> float, TARGETS units), ``reference`` (QM9's values or None),
        ``wall_s`` (featurization + forward pass, seconds; loading the weights excluded),
        ``load_s``, ``record`` (the network's run record), ``how`` (one line on the input),
        ``canonical`` (canonical SMILES).
    """
    from factorlab.data.qm9 import graphs_for_prediction
    from factorlab.data.qm9 import ATOMIC_NUMBERS
    from factorlab.dft.geometry import canonical_smiles, find_in_qm9, parse_smiles, qm9_atoms, qm9_reference

    mol = parse_smiles(smiles, max_heavy_atoms=max_heavy_atoms)
    t0 = time.perf_counter()
    predictor, record = load_network(network, train_size)
    load_s = time.perf_counter() - t0
    say(f"loaded the {record['config']['profile']}-profile network {record['key']} in {load_s:.1f} s")
    match = find_in_qm9(mol, table) if table is not None else None
    t0 = time.perf_counter()
    if match is not None:
        z, pos = qm9_atoms(table, match.row)
        elem = np.searchsorted(np.asarray(ATOMIC_NUMBERS), z)
        data = graphs_for_prediction([match.smiles], [(elem, pos)])
        how = f"graph of QM9 molecule Index {match.index} (as in training)"
    else:
        data = graphs_for_prediction([smiles.strip()])
        how = "graph from the SMILES (RDKit)"
    values = predictor.predict_dict(data)
    wall_s = time.perf_counter() - t0
    return {"values": values, "reference": qm9_reference(table, match.row) if match is not None else None,
            "wall_s": wall_s, "load_s": load_s, "record": record, "how": how, "canonical": canonical_smiles(mol)}


def predict_main(smiles: str, method: str = "dft", qm9: str | None = None, optimize: bool = True,
                 polarizability: bool | str = "auto", hessian: bool | str = "auto", threads: int | None = None,
                 max_heavy_atoms: int = 9, force: bool = False, density_fit: bool = False, network: str = "none",
                 say=print, out=print, train_size: str = "budget") -> int:
    """What ``python -m factorlab predict`` does: validate, find the geometry, run the DFT and/or
    the saved network, and print one table (``out``) with progress lines (``say``). Returns the
    exit status."""
    from factorlab.dft.compute import predict_dft
    from factorlab.dft.geometry import parse_smiles

    if method not in ("dft", "net", "both"):
        raise ValueError(f"unknown method {method!r}: choose dft, net or both")
    n_heavy = parse_smiles(smiles, max_heavy_atoms=max_heavy_atoms).GetNumHeavyAtoms()  # fail fast
    _check_train_size(train_size)
    if method != "dft":  # fail fast when no network is saved, before any DFT
        find_network_record(network, train_size)
    table = load_qm9_table_for_lookup(qm9, say)
    net = pred = None
    if method in ("net", "both"):
        net = predict_network(smiles, table, network=network, max_heavy_atoms=max_heavy_atoms, say=say,
                              train_size=train_size)
    if method in ("dft", "both"):
        pred = predict_dft(smiles, table, optimize=optimize, max_heavy_atoms=max_heavy_atoms, progress=say,
                           polarizability=polarizability, hessian=hessian, threads=threads, force=force,
                           density_fit=density_fit)
    reference = pred.geometry.reference if pred is not None else net["reference"]
    frame = prediction_frame(dft=pred.dft.values if pred else None, net=net["values"] if net else None,
                             reference=reference)
    wall = {}
    if pred is not None:
        geom, res = pred.geometry, pred.dft
        out(f"{geom.canonical}  ({len(geom.z)} atoms, {geom.n_heavy} heavy; {res.n_basis} basis functions)")
        out(f"level: {res.level}")
        out(f"geometry: {geom.note}")
        wall["DFT"] = pred.wall_s
    else:
        out(f"{net['canonical']}")
    if net is not None:
        cfg, rec = net["record"]["config"], net["record"]
        kind = network_kind(cfg)
        whole = ", the whole training split" if train_size == "full" else ""
        out(f"network: {kind} ({cfg['profile']} profile, {rec['model']['n_train']:,} training molecules{whole}, "
            f"run {rec['key']}); input: {net['how']}")
        wall["network"] = net["wall_s"]
    if reference is None:
        out("QM9: not in QM9 (or not looked up), so no reference values")
    out(format_prediction(frame, wall_s=wall))
    if net is not None:
        out(f"network wall time: featurization + forward pass on the CPU; loading the weights took "
            f"{net['load_s']:.1f} s more")
        if n_heavy <= SMALL_MOLECULE:
            out(f"note: {n_heavy} heavy atom(s): QM9, which the network learned from, is mostly molecules of 7 to 9 "
                "heavy atoms, and on small ones the network's errors are several times its test MAE (chapter "
                "'DFT or network?')")
    if pred is not None:
        for step, why in pred.dft.skipped.items():
            out(f"{step} skipped: {why}")
    return 0
