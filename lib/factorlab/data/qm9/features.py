"""QM9 molecular graphs: RDKit features from the SMILES, attached to the atoms of the XYZ file.

The graph's nodes are the atoms of ``XYZ_Ang`` in file order (hydrogens included, like PyTorch
Geometric's QM9), so every node has its B3LYP position. The SMILES-derived RDKit molecule
(with explicit hydrogens) numbers its atoms differently, so the two are matched:

1. a *connectivity* graph is built from the coordinates: atoms ``i, j`` are joined when
   ``d_ij <= f (r_i + r_j)`` (covalent radii of Cordero et al. 2008), for the first factor
   ``f`` in :data:`BOND_FACTORS` that gives as many bonds as the SMILES has;
2. that graph and the SMILES graph, both reduced to element-labelled single bonds, are matched
   with RDKit's substructure search; with equal atom and bond counts a match is a graph
   isomorphism, i.e. a bijection SMILES atom -> XYZ atom that maps bonds onto bonded pairs;
3. bonds (with their RDKit bond type) and atom features (aromaticity, hybridization, formal
   charge) are carried over through that bijection.

Where the molecule has symmetries that ignore bond orders (a carboxylate's two oxygens), one
match is taken deterministically: the features are then those of one resonance structure.

For a few molecules the SMILES (the GDB-17 graph) is *not* the molecule of the relaxed B3LYP
geometry (it rearranged during optimisation, e.g. Index 133857 ``CC1C2C3C4=CCC13C24``), so no
isomorphism exists. Their graph is then taken from the geometry, as PyG's QM9 does for every
molecule: connectivity from distances (factor 1.15, else the other factors), bond orders and
charges by RDKit's ``rdDetermineBonds.DetermineBondOrders`` (xyz2mol, total charge 0), then
RDKit's aromaticity and hybridization. Such molecules are flagged (``from_xyz``) so that they
can be counted or excluded; a molecule that fits neither way is a :class:`DataError`.

Everything here needs RDKit and runs only when the processed cache is (re)built; loading the
cache does not import RDKit (the GPU machine has none).
"""
from __future__ import annotations

import numpy as np

from factorlab.data.errors import DataError
from factorlab.data.qm9.targets import ATOMIC_NUMBERS, ELEMENTS
#: Covalent radii (Angstrom), Cordero et al., Dalton Trans. 2008, of H, C (sp3), N, O, F.
COVALENT_RADII = (0.31, 0.76, 0.71, 0.66, 0.57)
#: Tolerance factors tried, in order, for bonds from coordinates (measured on 10,000 random
#: molecules: bonded pairs reach 1.22 (r_i + r_j), non-bonded ones come down to 1.16).
BOND_FACTORS = (1.15, 1.2, 1.25, 1.1, 1.3, 1.05)
#: Bond types in PyG's order: the edge feature indexes this tuple.
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
#: Hybridization codes: 0 other (H atoms: S), 1 sp, 2 sp2, 3 sp3.
HYBRIDIZATIONS = ("OTHER", "SP", "SP2", "SP3")


def _skeleton(atomic_numbers, bonds):
    """RDKit molecule of element-labelled atoms joined by single bonds (no charges, no H
    inference): the plain graph, for isomorphism tests."""
    from rdkit import Chem

    m = Chem.RWMol()
    for z in atomic_numbers:
        a = Chem.Atom(int(z))
        a.SetNoImplicit(True)
        m.AddAtom(a)
    for i, j in bonds:
        m.AddBond(int(i), int(j), Chem.BondType.SINGLE)
    m = m.GetMol()
    m.UpdatePropertyCache(strict=False)
    return m


def _match_to_xyz(query, n_bonds: int, z: np.ndarray, pos: np.ndarray) -> np.ndarray | None:
    """Bijection SMILES atom -> XYZ atom (int64 [n]), or None when no bond factor works."""
    radii = np.asarray(COVALENT_RADII)[z]
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    ratio = d / (radii[:, None] + radii[None, :])
    np.fill_diagonal(ratio, np.inf)
    znum = np.asarray(ATOMIC_NUMBERS)[z]
    for f in BOND_FACTORS:
        ii, jj = np.nonzero(np.triu(ratio <= f, 1))
        if len(ii) != n_bonds:
            continue
        match = _skeleton(znum, zip(ii, jj)).GetSubstructMatch(query)
        if match:
            return np.asarray(match, dtype=np.int64)
    return None


def _mol_from_xyz(z: np.ndarray, pos: np.ndarray):
    """RDKit molecule of the geometry itself (atoms in XYZ order): connectivity from distances,
    bond orders and charges from xyz2mol (total charge 0); None when no factor gives one."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    radii = np.asarray(COVALENT_RADII)[z]
    ratio = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1) / (radii[:, None] + radii[None, :])
    np.fill_diagonal(ratio, np.inf)
    conf = Chem.Conformer(len(z))
    for i, p in enumerate(pos):
        conf.SetAtomPosition(i, [float(v) for v in p])
    for f in BOND_FACTORS:
        m = Chem.RWMol()
        for zz in np.asarray(ATOMIC_NUMBERS)[z]:
            m.AddAtom(Chem.Atom(int(zz)))
        for i, j in zip(*np.nonzero(np.triu(ratio <= f, 1))):
            m.AddBond(int(i), int(j), Chem.BondType.SINGLE)
        m = m.GetMol()
        m.AddConformer(Chem.Conformer(conf), assignId=True)
        try:
            rdDetermineBonds.DetermineBondOrders(m, charge=0)
            Chem.SanitizeMol(m)
        except Exception:  # no valid bond-order assignment with this connectivity: next factor
            continue
        return m
    return None


def featurize_molecule(smiles: str, z: np.ndarray, pos: np.ndarray, index: int = -1) -> dict:
    """Graph of one molecule, its nodes in XYZ order.

    Args:
        smiles: the molecule's SMILES (as in the QM9 release / qm9pack).
        z: element index into :data:`ELEMENTS` per XYZ atom, int [n].
        pos: B3LYP coordinates, float [n, 3], Angstrom.
        index: the molecule's QM9 ``Index`` (for error messages only).

    Returns:
        dict of numpy arrays: ``aromatic`` uint8 [n] (0/1), ``hybridization`` uint8 [n]
        (codes of :data:`HYBRIDIZATIONS`), ``formal_charge`` int8 [n] (-1, 0, +1), ``bonds``
        int64 [B, 2] (XYZ atom indices, ``i < j``, sorted), ``bond_type`` uint8 [B] (codes of
        :data:`BOND_TYPES`), ``from_xyz`` bool (graph from the geometry, not the SMILES).

    Raises:
        DataError: the SMILES does not parse, or its graph does not fit the coordinates.
    """
    from rdkit import Chem

    where = f"QM9 molecule Index {index} (SMILES {smiles!r})"
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DataError(f"{where}: RDKit cannot parse the SMILES; the QM9 file is corrupt or not "
                        f"the qm9pack 1.0.3 data.")
    mol = Chem.AddHs(mol)
    n = len(z)
    zmap = {zz: k for k, zz in enumerate(ATOMIC_NUMBERS)}
    q_el = [zmap.get(a.GetAtomicNum(), -1) for a in mol.GetAtoms()]
    if sorted(q_el) != sorted(int(v) for v in z):
        raise DataError(f"{where}: the SMILES has atoms {sorted(q_el)} (element indices) but the XYZ "
                        f"list has {sorted(int(v) for v in z)}")
    q_bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    query = _skeleton([a.GetAtomicNum() for a in mol.GetAtoms()], q_bonds)
    z, pos = np.asarray(z), np.asarray(pos, dtype=np.float64)
    match = _match_to_xyz(query, len(q_bonds), z, pos)
    from_xyz = match is None
    if from_xyz:  # the SMILES is not the relaxed molecule: take the graph from the geometry
        mol = _mol_from_xyz(z, pos)
        if mol is None:
            raise DataError(f"{where}: the SMILES bond graph does not fit the XYZ geometry at any "
                            f"bond tolerance {BOND_FACTORS}, and RDKit finds no bond orders for the "
                            f"geometry's own connectivity")
        match = np.arange(n)
    return _graph_features(mol, match, n, from_xyz, where)


def _graph_features(mol, match: np.ndarray, n: int, from_xyz: bool, where: str) -> dict:
    """Atom and bond features of RDKit molecule ``mol`` (explicit H) carried onto ``n`` nodes
    through ``match`` (node of each RDKit atom); see :func:`featurize_molecule`."""
    from rdkit import Chem

    aromatic = np.zeros(n, np.uint8)
    hybrid = np.zeros(n, np.uint8)
    charge = np.zeros(n, np.int8)
    hyb_code = {Chem.HybridizationType.SP: 1, Chem.HybridizationType.SP2: 2, Chem.HybridizationType.SP3: 3}
    for a in mol.GetAtoms():
        k = match[a.GetIdx()]
        aromatic[k] = a.GetIsAromatic()
        hybrid[k] = hyb_code.get(a.GetHybridization(), 0)
        c = a.GetFormalCharge()
        if not -1 <= c <= 1:
            raise DataError(f"{where}: formal charge {c} outside -1..1 cannot be stored")
        charge[k] = c
    type_code = {Chem.BondType.SINGLE: 0, Chem.BondType.DOUBLE: 1, Chem.BondType.TRIPLE: 2,
                 Chem.BondType.AROMATIC: 3}
    bonds = np.empty((mol.GetNumBonds(), 2), np.int64)
    btype = np.empty(mol.GetNumBonds(), np.uint8)
    for k, b in enumerate(mol.GetBonds()):
        i, j = match[b.GetBeginAtomIdx()], match[b.GetEndAtomIdx()]
        bonds[k] = (min(i, j), max(i, j))
        if b.GetBondType() not in type_code:
            raise DataError(f"{where}: bond type {b.GetBondType()} is not one of {BOND_TYPES}")
        btype[k] = type_code[b.GetBondType()]
    order = np.lexsort((bonds[:, 1], bonds[:, 0]))
    return {"aromatic": aromatic, "hybridization": hybrid, "formal_charge": charge,
            "bonds": bonds[order], "bond_type": btype[order], "from_xyz": from_xyz}


def featurize_smiles(smiles: str) -> tuple[np.ndarray, dict]:
    """Graph of a molecule from its SMILES alone (no geometry), nodes in RDKit's order with
    the hydrogens appended: the same features as :func:`featurize_molecule` gives a QM9
    molecule, for a graph network that does not read coordinates.

    Returns:
        ``z`` int64 [n] element indices into :data:`ELEMENTS`, and the dict of
        :func:`featurize_molecule` (``from_xyz`` False).

    Raises:
        DataError: RDKit cannot parse the SMILES, or it has an element outside :data:`ELEMENTS`.
    """
    from rdkit import Chem

    where = f"SMILES {smiles!r}"
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DataError(f"{where}: RDKit cannot parse it")
    mol = Chem.AddHs(mol)
    zmap = {zz: k for k, zz in enumerate(ATOMIC_NUMBERS)}
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() not in zmap})
    if bad:
        raise DataError(f"{where}: element(s) {', '.join(bad)} not among QM9's {', '.join(ELEMENTS)}")
    z = np.asarray([zmap[a.GetAtomicNum()] for a in mol.GetAtoms()], np.int64)
    return z, _graph_features(mol, np.arange(len(z)), len(z), False, where)


def featurize_chunk(args: tuple) -> dict:
    """Featurize consecutive molecules (one unit of work for a process pool).

    Args:
        args: ``(smiles list [M], element indices [A_chunk], positions [A_chunk, 3],
            atom_ptr [M+1] into those, QM9 Index [M])``.

    Returns:
        concatenated per-atom ``aromatic``, ``hybridization``, ``formal_charge`` [A_chunk],
        per-bond ``bonds`` (local to each molecule) [B, 2], ``bond_type`` [B], and
        ``n_bonds`` int64 [M], ``from_xyz`` uint8 [M].
    """
    smiles, z, pos, ptr, index = args
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    parts = [featurize_molecule(s, z[ptr[k]:ptr[k + 1]], pos[ptr[k]:ptr[k + 1]], int(index[k]))
             for k, s in enumerate(smiles)]
    out = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros(0, np.uint8)
           for key in ("aromatic", "hybridization", "formal_charge", "bond_type")}
    out["bonds"] = np.concatenate([p["bonds"] for p in parts]) if parts else np.zeros((0, 2), np.int64)
    out["n_bonds"] = np.asarray([len(p["bond_type"]) for p in parts], np.int64)
    out["from_xyz"] = np.asarray([p["from_xyz"] for p in parts], np.uint8)
    return out


def pack_atoms(z: np.ndarray, aromatic: np.ndarray, hybridization: np.ndarray,
               formal_charge: np.ndarray) -> np.ndarray:
    """One byte per atom: bits 0-2 element, 3 aromatic, 4-5 hybridization, 6-7 charge + 1."""
    return (np.asarray(z, np.uint8) | (np.asarray(aromatic, np.uint8) << 3)
            | (np.asarray(hybridization, np.uint8) << 4)
            | ((np.asarray(formal_charge, np.int16) + 1).astype(np.uint8) << 6)).astype(np.uint8)
