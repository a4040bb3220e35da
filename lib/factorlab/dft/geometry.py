"""Geometries for the DFT side: QM9's own when the molecule is in QM9, else RDKit + geomeTRIC.

- :func:`parse_smiles` validates the input (clear ``ValueError`` for an invalid SMILES, more
  than one molecule, elements other than H, C, N, O, F, a net charge, radicals, too many
  heavy atoms).
- :func:`find_in_qm9` looks the molecule up in a QM9 table (qm9pack schema, e.g. the
  committed fixture or the full set) by canonical SMILES (RDKit, stereo ignored), over every
  ``SMILES*`` column the table has, then by the InChI's connectivity layers.
- :func:`embed` makes a 3D structure (RDKit ETKDG, several conformers, MMFF94, lowest kept) and
  :func:`optimize_geometry` relaxes it with geomeTRIC at B3LYP/6-31G* with density fitting
  (QM9's geometries are B3LYP/6-31G(2df,p); the cheap level costs little except on the LUMO).
- :func:`molecule_geometry` chooses, and says in :attr:`Geometry.note` which geometry was used
  and what that costs in accuracy.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from factorlab.dft.basis import ATOMIC_NUMBER, SYMBOLS

#: The largest molecules QM9 has (heavy atoms); the default limit of :func:`parse_smiles`.
MAX_HEAVY_ATOMS = 9
#: Level of the geometry optimisation for molecules not in QM9.
OPT_BASIS = "6-31g*"

NOTE_QM9 = ("QM9's own B3LYP/6-31G(2df,p) geometry (Index {index}): the DFT values reproduce QM9's "
            "labels to about their printed precision.")
NOTE_OPT = ("not in QM9: RDKit ETKDG + MMFF94 embedding (lowest of {n} conformers), optimised at "
            "B3LYP/6-31G* with density fitting. The cheaper optimisation level costs little except on "
            "the LUMO (tens of meV); the conformer and E/Z isomer chosen can cost tenths of an eV and "
            "of a Debye against the structure QM9 would have used.")
NOTE_MMFF = ("not in QM9: RDKit ETKDG + MMFF94 geometry (lowest of {n} conformers), NOT optimised by "
             "DFT: force-field bond lengths make energies and orbital energies noticeably less accurate.")


@dataclass
class QM9Match:
    """Where a molecule was found in a QM9 table."""

    row: int                 # positional row in the table
    index: int               # QM9 ``Index``
    smiles: str              # the table's SMILES of that row
    how: str                 # "smiles" or "inchi"
    n_matches: int           # rows that matched (stereoisomers); the lowest Index is taken


@dataclass
class Geometry:
    """A molecule's atoms and where its coordinates come from.

    ``z`` int64 [n] atomic numbers; ``pos`` float64 [n, 3] Angstrom; ``source`` one of
    ``"qm9"``, ``"rdkit+geometric"``, ``"rdkit"``; ``reference``: QM9's stored values in
    :data:`~factorlab.data.qm9.TARGETS` units when the molecule is in QM9.
    """

    smiles: str
    canonical: str
    z: np.ndarray
    pos: np.ndarray
    source: str
    note: str
    qm9: QM9Match | None = None
    reference: dict[str, float] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_heavy(self) -> int:
        return int(np.count_nonzero(self.z > 1))


@contextlib.contextmanager
def _quiet_rdkit():
    from rdkit import rdBase

    blocker = rdBase.BlockLogs()
    try:
        yield
    finally:
        del blocker


def parse_smiles(smiles: str, max_heavy_atoms: int = MAX_HEAVY_ATOMS):
    """The RDKit molecule of ``smiles`` with explicit hydrogens, validated for QM9-style DFT.

    Raises:
        ValueError: not a string or empty; RDKit cannot parse it; several disconnected
            molecules; an element other than H, C, N, O, F; a net formal charge (net-neutral
            charge-separated structures such as zwitterions are allowed, QM9 has them);
            unpaired electrons (radicals); more than ``max_heavy_atoms`` heavy atoms.
    """
    from rdkit import Chem

    if not isinstance(smiles, str) or not smiles.strip():
        raise ValueError(f"expected a SMILES string, got {smiles!r}")
    with _quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise ValueError(f"invalid SMILES {smiles!r}: RDKit cannot parse it")
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"SMILES {smiles!r} has no atoms")
    if len(Chem.GetMolFrags(mol)) > 1:
        raise ValueError(f"SMILES {smiles!r} holds {len(Chem.GetMolFrags(mol))} disconnected molecules; give one")
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetSymbol() not in ATOMIC_NUMBER})
    if bad:
        raise ValueError(f"SMILES {smiles!r} has element(s) {', '.join(bad)}: QM9 (and this DFT "
                         "setup) covers H, C, N, O and F only")
    charge = Chem.GetFormalCharge(mol)
    if charge != 0:
        raise ValueError(f"SMILES {smiles!r} is charged (net charge {charge:+d}): QM9 has neutral molecules only")
    radicals = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    if radicals:
        raise ValueError(f"SMILES {smiles!r} has {radicals} unpaired electron(s) (a radical): QM9 has "
                         "closed-shell molecules only")
    heavy = mol.GetNumHeavyAtoms()
    if heavy > max_heavy_atoms:
        raise ValueError(f"SMILES {smiles!r} has {heavy} heavy atoms, more than the limit of {max_heavy_atoms} "
                         "(QM9 has up to 9; the DFT cost grows as the cube of the size)")
    return Chem.AddHs(mol)


def canonical_smiles(mol_or_smiles, isomeric: bool = False) -> str:
    """RDKit canonical SMILES (hydrogens implicit; stereo dropped unless ``isomeric``)."""
    from rdkit import Chem

    mol = mol_or_smiles
    if isinstance(mol, str):
        with _quiet_rdkit():
            mol = Chem.MolFromSmiles(mol)
        if mol is None:
            raise ValueError(f"invalid SMILES {mol_or_smiles!r}")
    return Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=isomeric)


def _inchi_skeleton(inchi: str) -> str:
    """The formula, connectivity, hydrogen and charge layers of an InChI (stereo and isotopes dropped)."""
    parts = str(inchi).strip().split("/")
    return "/".join(parts[:2] + [p for p in parts[2:] if p[:1] in ("c", "h", "q", "p")])


def _formula_counts(mol) -> dict[str, int]:
    counts = {s: 0 for s in ATOMIC_NUMBER}
    for a in mol.GetAtoms():
        counts[a.GetSymbol()] += 1 + (a.GetTotalNumHs() if a.GetSymbol() != "H" else 0)
    return counts


def find_in_qm9(smiles_or_mol, table, columns: Sequence[str] | None = None) -> QM9Match | None:
    """The QM9 row of a molecule, or None.

    The table's rows are first narrowed to the same molecular formula (from the ``Elements``
    column), then compared by RDKit canonical SMILES without stereo over ``columns`` (default:
    every column whose name starts with ``SMILES``, e.g. QM9's GDB SMILES and, where a table
    has it, the SMILES of the relaxed geometry), then by the InChI's formula, connectivity and
    hydrogen layers (``InChi`` column). Several matching rows (stereoisomers, which the SMILES
    do not tell apart) give the lowest ``Index``; an exact isomeric match is preferred when the
    input has stereo.

    Args:
        smiles_or_mol: a SMILES or an RDKit molecule (e.g. from :func:`parse_smiles`).
        table: a DataFrame in the qm9pack schema (:func:`factorlab.data.qm9.read_qm9_table`).
    """
    from rdkit import Chem

    mol = parse_smiles(smiles_or_mol, max_heavy_atoms=10 ** 6) if isinstance(smiles_or_mol, str) else smiles_or_mol
    target = canonical_smiles(mol)
    target_iso = canonical_smiles(mol, isomeric=True)
    counts = _formula_counts(mol)
    elements = table["Elements"].astype(str)
    keep = table["N_atoms"].to_numpy() == sum(counts.values())
    for sym, n in counts.items():
        keep &= elements.str.count(f"'{sym}'").to_numpy() == n
    cand = table[keep]
    if columns is None:
        columns = [c for c in table.columns if c.upper().startswith("SMILES")]
    positions = np.flatnonzero(keep)
    hits, iso_hits = [], []
    for col in columns:
        for pos, s in zip(positions, cand[col].astype(str)):
            with _quiet_rdkit():
                m = Chem.MolFromSmiles(s)
            if m is None:
                continue
            if Chem.MolToSmiles(m, isomericSmiles=False) == target:
                hits.append(pos)
                if Chem.MolToSmiles(m, isomericSmiles=True) == target_iso:
                    iso_hits.append(pos)
    how = "smiles"
    if not hits and "InChi" in table.columns:
        with _quiet_rdkit():
            inchi = Chem.MolToInchi(Chem.RemoveHs(mol))
        if inchi:
            key = _inchi_skeleton(inchi)
            hits = [pos for pos, s in zip(positions, cand["InChi"].astype(str)) if _inchi_skeleton(s) == key]
            how = "inchi"
    if not hits:
        return None
    pool = sorted(set(iso_hits or hits), key=lambda p: int(table["Index"].iloc[p]))
    row = int(pool[0])
    return QM9Match(row=row, index=int(table["Index"].iloc[row]), smiles=str(table["SMILES"].iloc[row]),
                    how=how, n_matches=len(set(hits)))


def qm9_atoms(table, row: int) -> tuple[np.ndarray, np.ndarray]:
    """Atomic numbers (int64 [n]) and B3LYP coordinates (float64 [n, 3], Angstrom) of row ``row``."""
    from factorlab.data.qm9 import parse_atoms
    from factorlab.data.qm9 import ATOMIC_NUMBERS

    z, pos, _ = parse_atoms(table.iloc[[row]])
    return np.asarray(ATOMIC_NUMBERS, dtype=np.int64)[z], pos


def qm9_reference(table, row: int) -> dict[str, float]:
    """QM9's stored values of row ``row`` keyed by target name, in :data:`TARGETS` units."""
    from factorlab.data.qm9 import TARGET_NAMES, qm9_targets

    y = qm9_targets(table.iloc[[row]])[0]
    return {name: float(v) for name, v in zip(TARGET_NAMES, y)}


def embed(mol, seed: int = 0, n_conformers: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """3D structure of an RDKit molecule with hydrogens: ETKDG v3 (``n_conformers``, seeded),
    each relaxed with MMFF94 (UFF where MMFF lacks parameters), the lowest in energy kept.

    Returns atomic numbers int64 [n] and positions float64 [n, 3] (Angstrom).

    Raises:
        RuntimeError: RDKit could not embed the molecule.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mh = Chem.Mol(mol)
    if any(a.GetTotalNumHs() for a in mh.GetAtoms() if a.GetAtomicNum() > 1):
        mh = Chem.AddHs(mh)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    with _quiet_rdkit():
        cids = list(AllChem.EmbedMultipleConfs(mh, numConfs=n_conformers, params=params))
        if not cids:
            params.useRandomCoords = True
            cids = list(AllChem.EmbedMultipleConfs(mh, numConfs=n_conformers, params=params))
        if not cids:
            raise RuntimeError(f"RDKit could not embed {Chem.MolToSmiles(Chem.RemoveHs(mh))} in 3D")
        if AllChem.MMFFHasAllMoleculeParams(mh):
            results = AllChem.MMFFOptimizeMoleculeConfs(mh, maxIters=2000)
        else:
            results = AllChem.UFFOptimizeMoleculeConfs(mh, maxIters=2000)
    energies = [e for _, e in results]
    best = cids[int(np.argmin(energies))]
    z = np.array([a.GetAtomicNum() for a in mh.GetAtoms()], dtype=np.int64)
    return z, np.asarray(mh.GetConformer(best).GetPositions(), dtype=np.float64)


@contextlib.contextmanager
def _quiet_geometric():
    """Keep geomeTRIC from taking over logging while it runs.

    ``geometric.optimize.run_optimizer`` calls ``logging.config.fileConfig`` on every run, which
    replaces the *root* logger's handlers (closing the host's: a notebook's, pytest's) and
    prints a banner and every step to stderr. For the duration of the call that function is
    made a no-op and the ``geometric`` loggers write nowhere; both are restored afterwards.
    Progress is reported through our own callback instead.
    """
    import logging
    import logging.config

    glog = logging.getLogger("geometric")
    saved = (logging.config.fileConfig, glog.propagate, glog.level, list(glog.handlers))
    null = logging.NullHandler()
    logging.config.fileConfig = lambda *args, **kwargs: None
    glog.propagate = False
    glog.addHandler(null)
    try:
        yield
    finally:
        logging.config.fileConfig, glog.propagate = saved[0], saved[1]
        glog.removeHandler(null)
        glog.setLevel(saved[2])


def optimize_geometry(z: Sequence[int], pos_angstrom, basis: str = OPT_BASIS, density_fit: bool = True,
                      max_steps: int = 100, progress: Callable[[str], None] | None = None) -> np.ndarray:
    """Relax a geometry with geomeTRIC at B3LYP (``b3lypg``) / ``basis`` (Cartesian d, as
    Gaussian's 6-31G*), density-fitted by default. Returns positions float64 [n, 3] (Angstrom).

    Raises:
        RuntimeError: geomeTRIC did not converge in ``max_steps``.
    """
    from pyscf.geomopt.geometric_solver import kernel as geometric_kernel

    from factorlab.dft.basis import build_molecule
    from factorlab.dft.scf import make_scf

    mol = build_molecule(z, pos_angstrom, basis=basis, cart=True)
    mf = make_scf(mol, pure_f=False, density_fit=density_fit, grid=3, conv_tol=1e-9)
    t0 = time.perf_counter()
    steps = []

    def callback(envs):
        steps.append(envs.get("energy"))
        if progress is not None:
            e = envs.get("energy")
            progress(f"geometry step {len(steps)}: E = {e:.6f} Eh ({time.perf_counter() - t0:.0f} s)"
                     if e is not None else f"geometry step {len(steps)}")

    with _quiet_geometric():
        conv, mol_eq = geometric_kernel(mf, maxsteps=max_steps, callback=callback)
    if not conv:
        raise RuntimeError(f"geomeTRIC did not converge in {max_steps} steps")
    return np.asarray(mol_eq.atom_coords(unit="Angstrom"), dtype=np.float64)


def molecule_geometry(smiles: str, table=None, optimize: bool = True, max_heavy_atoms: int = MAX_HEAVY_ATOMS,
                      seed: int = 0, n_conformers: int = 10,
                      progress: Callable[[str], None] | None = None) -> Geometry:
    """The geometry to run the DFT on: QM9's when ``smiles`` is found in ``table`` (a QM9
    DataFrame, or None to skip the lookup), else RDKit's embedding, optimised with geomeTRIC
    unless ``optimize`` is False. Validation errors as :func:`parse_smiles`."""
    say = progress or (lambda msg: None)
    mol = parse_smiles(smiles, max_heavy_atoms=max_heavy_atoms)
    canon = canonical_smiles(mol)
    if table is not None:
        match = find_in_qm9(mol, table)
        if match is not None:
            z, pos = qm9_atoms(table, match.row)
            say(f"{canon}: found in QM9 (Index {match.index}), using its B3LYP geometry")
            return Geometry(smiles, canon, z, pos, "qm9", NOTE_QM9.format(index=match.index), match,
                            qm9_reference(table, match.row))
    t0 = time.perf_counter()
    z, pos = embed(mol, seed=seed, n_conformers=n_conformers)
    timings = {"embed": time.perf_counter() - t0}
    if not optimize:
        return Geometry(smiles, canon, z, pos, "rdkit", NOTE_MMFF.format(n=n_conformers), timings=timings)
    from factorlab.dft.cost import estimate_cost

    say(f"{canon}: not in QM9; optimising the RDKit geometry at B3LYP/6-31G* (density fitting), "
        f"estimated {estimate_cost(z).optimize:.0f} s")
    t0 = time.perf_counter()
    pos = optimize_geometry(z, pos, progress=say)
    timings["optimize"] = time.perf_counter() - t0
    say(f"geometry optimised in {timings['optimize']:.0f} s")
    return Geometry(smiles, canon, z, pos, "rdkit+geometric", NOTE_OPT.format(n=n_conformers), timings=timings)


__all__ = ["Geometry", "MAX_HEAVY_ATOMS", "QM9Match", "SYMBOLS", "canonical_smiles", "embed", "find_in_qm9",
           "molecule_geometry", "optimize_geometry", "parse_smiles", "qm9_atoms", "qm9_reference"]
