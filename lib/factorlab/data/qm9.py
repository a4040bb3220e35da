"""QM9: the qm9pack table, PyG's 19 targets, RDKit graphs with B3LYP coordinates, a compact
cache, a seeded split, and batches of molecular graphs built on the device by index.

Where the data comes from (first found wins; see :func:`find_qm9_source`):

1. ``source=`` given explicitly: a CSV in the qm9pack schema (``.csv``, ``.csv.xz``, ``.gz``,
   ``.bz2``), a folder holding ``qm9.csv.xz`` or qm9pack's ``qm9_part{1,2,3}.csv``, or the
   qm9pack wheel itself (``pip download --no-deps qm9pack==1.0.3``);
2. ``data/raw/qm9/`` holding ``qm9.csv.xz`` or that wheel;
3. ``<mirror>/qm9/qm9.csv.xz`` for each folder of ``FACTORLAB_DATA_MIRROR``;
4. the CSVs of an installed ``qm9pack`` package.

The processed cache ``data/processed/qm9.pt`` (50.5 MiB, see ``data/README.md``) is built
once with RDKit and then loaded without the raw data and without RDKit, so it is what travels
to a GPU machine.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch

from factorlab.data.errors import DataError
from factorlab.data.qm9_features import ELEMENTS, featurize_chunk, pack_atoms
from factorlab.paths import REPO_ROOT, mirror_dirs, processed_dir, raw_dir

#: Columns read from the qm9pack schema (qm9pack has more; these are the ones used).
QM9_COLUMNS = (
    "Index", "SMILES", "InChi", "N_atoms", "Elements", "XYZ_Ang", "RotA_GHz", "RotB_GHz",
    "RotC_GHz", "Dipole_debye", "Polarizability_bohr3", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au",
    "R2_bohr2", "ZPVE_au", "InternalEnergy_0K_au", "InternalEnergy_298K_au", "Enthalphy_298K_au",
    "GibbsFreeEnergy_298K_au", "Heatcapacity_Cv_cal_mol_K")
_TEXT_COLUMNS = ("SMILES", "InChi", "Elements", "XYZ_Ang")
#: Molecules in the release once the 3,054 that failed its consistency check are removed.
QM9_NUM_MOLECULES = 130831
#: The fixed split of the full set: train, valid; test is the rest (10,831).
QM9_SPLIT_SIZES = (110000, 10000)
#: The committed test fixture: 300 rows of the mirror, same schema, Index 1 (methane) included.
QM9_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "qm9_fixture.csv"
QM9PACK_WHEEL = "qm9pack-1.0.3-py3-none-any.whl"
QM9PACK_PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")

#: CODATA 2018 Hartree energy in eV (PyG's ``HAR2EV``).
HARTREE_TO_EV = 27.211386246
#: Energies of the free atoms (Hartree) at B3LYP/6-31G(2df,p), from the QM9 release's
#: ``atomref.txt``: columns U0 (0 K), U, H, G (298.15 K); rows in :data:`ELEMENTS` order.
ATOMREF_HARTREE = np.array([
    [-0.500273, -0.498857, -0.497912, -0.510927],      # H
    [-37.846772, -37.845355, -37.844411, -37.861317],  # C
    [-54.583861, -54.582445, -54.581501, -54.598897],  # N
    [-75.064579, -75.063163, -75.062219, -75.079532],  # O
    [-99.718730, -99.717314, -99.716370, -99.733544],  # F
])


class Target(NamedTuple):
    """One regression target: its column in ``y``, short name, unit and meaning."""

    index: int
    name: str
    unit: str
    description: str


#: The 19 targets in PyTorch Geometric's QM9 order and units.
TARGETS: tuple[Target, ...] = (
    Target(0, "mu", "D", "dipole moment"),
    Target(1, "alpha", "a0^3", "isotropic polarizability"),
    Target(2, "homo", "eV", "HOMO energy"),
    Target(3, "lumo", "eV", "LUMO energy"),
    Target(4, "gap", "eV", "HOMO-LUMO gap"),
    Target(5, "r2", "a0^2", "electronic spatial extent <R^2>"),
    Target(6, "zpve", "eV", "zero-point vibrational energy"),
    Target(7, "U0", "eV", "internal energy at 0 K"),
    Target(8, "U", "eV", "internal energy at 298.15 K"),
    Target(9, "H", "eV", "enthalpy at 298.15 K"),
    Target(10, "G", "eV", "free energy at 298.15 K"),
    Target(11, "Cv", "cal/(mol K)", "heat capacity at 298.15 K"),
    Target(12, "U0_atom", "eV", "atomization energy of U0"),
    Target(13, "U_atom", "eV", "atomization energy of U"),
    Target(14, "H_atom", "eV", "atomization enthalpy"),
    Target(15, "G_atom", "eV", "atomization free energy"),
    Target(16, "A", "GHz", "rotational constant A"),
    Target(17, "B", "GHz", "rotational constant B"),
    Target(18, "C", "GHz", "rotational constant C"),
)
TARGET_NAMES = tuple(t.name for t in TARGETS)
#: Node feature columns of :attr:`QM9Data.x`.
ATOM_FEATURES = ("element", "atomic_number", "aromatic", "hybridization", "num_hs", "formal_charge")
CACHE_VERSION = 2


def target_index(name: str) -> int:
    """Column of target ``name`` (one of :data:`TARGET_NAMES`) in ``y``."""
    try:
        return TARGET_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown QM9 target {name!r}; expected one of {TARGET_NAMES}") from None


# --------------------------------------------------------------------------- sources and table

def _how_to_get() -> str:
    return ("Provide QM9 in one of three ways: (1) set FACTORLAB_DATA_MIRROR to a folder holding "
            "qm9/qm9.csv.xz (for example the project's shared/datasets); (2) run `pip download "
            f"--no-deps qm9pack==1.0.3` and put {QM9PACK_WHEEL} in {raw_dir() / 'qm9'} or pass "
            "its path as source= (or `pip install qm9pack==1.0.3` to read the installed package); "
            "(3) pass source= a CSV in the qm9pack schema.")


def _qm9pack_installed() -> Path | None:
    try:
        spec = importlib.util.find_spec("qm9pack")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return data if all((data / p).exists() for p in QM9PACK_PARTS) else None


def find_qm9_source(source: str | os.PathLike | None = None) -> Path:
    """Where QM9 will be read from: ``source`` when given, else the first of ``raw/qm9/``,
    the mirror folders, an installed qm9pack (its ``data`` folder).

    Raises:
        DataError: ``source`` does not exist, or nothing was found (naming what was tried and
            the three ways to provide the data).
    """
    if source is not None:
        path = Path(source).expanduser().resolve()
        if not path.exists():
            raise DataError(f"QM9 source {path} does not exist. {_how_to_get()}")
        return path
    tried = []
    for cand in (raw_dir() / "qm9" / "qm9.csv.xz", raw_dir() / "qm9" / QM9PACK_WHEEL,
                 *(m / "qm9" / "qm9.csv.xz" for m in mirror_dirs())):
        if cand.exists():
            return cand
        tried.append(f"{cand}: not found")
    if not mirror_dirs():
        tried.append("no mirror folder (FACTORLAB_DATA_MIRROR is unset)")
    installed = _qm9pack_installed()
    if installed is not None:
        return installed
    tried.append("no installed qm9pack package")
    raise DataError("QM9 not found. Tried: " + "; ".join(tried) + ". " + _how_to_get())


def _read_one_csv(f, what: str):
    """Read the QM9 columns of one CSV (path or binary file object) into a DataFrame."""
    import pandas as pd

    try:
        header = pd.read_csv(f, nrows=0).columns
    except Exception as err:
        raise DataError(f"{what}: corrupt or truncated, cannot read a CSV header "
                        f"({type(err).__name__}: {err}); delete it and get it again. {_how_to_get()}") from err
    missing = [c for c in QM9_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{what}: not in the qm9pack schema, missing columns {missing} (expected "
                        f"{list(QM9_COLUMNS)}). {_how_to_get()}")
    if hasattr(f, "seek"):
        f.seek(0)
    try:
        return pd.read_csv(f, usecols=list(QM9_COLUMNS), dtype={c: str for c in _TEXT_COLUMNS})
    except Exception as err:  # truncated archives (EOFError, LZMAError), bad numbers, bad quoting
        raise DataError(f"{what}: corrupt or truncated ({type(err).__name__}: {err}); delete it and "
                        f"get it again. {_how_to_get()}") from err


def read_qm9_table(source: str | os.PathLike, expect_rows: int | None | str = "full"):
    """The validated QM9 table (a pandas DataFrame, raw units, sorted by ``Index``).

    Args:
        source: a qm9pack-schema CSV (optionally xz/gz/bz2-compressed), a folder with
            ``qm9.csv.xz`` or ``qm9_part{1,2,3}.csv``, or the qm9pack wheel.
        expect_rows: required number of molecules: ``"full"`` (:data:`QM9_NUM_MOLECULES`),
            an int, or ``None`` (any).

    Raises:
        DataError: unreadable, truncated, wrong columns, wrong row count, missing values,
            duplicate ``Index``, or ``N_atoms`` disagreeing with ``Elements``/``XYZ_Ang``.
    """
    import pandas as pd

    if expect_rows == "full":
        expect_rows = QM9_NUM_MOLECULES
    path = Path(source)
    if path.is_dir():
        if (path / "qm9.csv.xz").exists():
            path = path / "qm9.csv.xz"
        elif all((path / p).exists() for p in QM9PACK_PARTS):
            df = pd.concat([_read_one_csv(path / p, str(path / p)) for p in QM9PACK_PARTS], ignore_index=True)
            return _validate(df, str(path), expect_rows)
        else:
            raise DataError(f"{path} holds neither qm9.csv.xz nor {list(QM9PACK_PARTS)}. {_how_to_get()}")
    if path.suffix == ".whl":
        try:
            with zipfile.ZipFile(path) as zf:
                frames = []
                for p in QM9PACK_PARTS:
                    with zf.open(f"qm9pack/data/{p}") as f:
                        frames.append(_read_one_csv(f, f"{path}:{p}"))
        except (zipfile.BadZipFile, KeyError, OSError, EOFError) as err:
            raise DataError(f"{path}: not a readable qm9pack 1.0.3 wheel ({type(err).__name__}: {err}); "
                            f"delete it and download it again. {_how_to_get()}") from err
        return _validate(pd.concat(frames, ignore_index=True), str(path), expect_rows)
    return _validate(_read_one_csv(path, str(path)), str(path), expect_rows)


def _validate(df, what: str, expect_rows: int | None):
    if expect_rows is not None and len(df) != expect_rows:
        raise DataError(f"{what}: {len(df)} molecules, expected {expect_rows} (the QM9 release less the "
                        f"3,054 unconverged ones). The file is truncated or not the full set. {_how_to_get()}")
    if len(df) == 0:
        raise DataError(f"{what}: no molecules")
    bad = [c for c in QM9_COLUMNS if df[c].isna().any()]
    if bad:
        raise DataError(f"{what}: missing values in columns {bad} (first bad row Index "
                        f"{df.loc[df[bad].isna().any(axis=1), 'Index'].iloc[0]}); the file is corrupt. {_how_to_get()}")
    if not df["Index"].is_unique or (df["Index"] < 1).any():
        raise DataError(f"{what}: the Index column must hold unique positive molecule numbers")
    df = df.sort_values("Index", kind="stable").reset_index(drop=True)
    n_el = df["Elements"].str.count(",") + 1
    n_xyz = df["XYZ_Ang"].str.count(r"\[") - 1
    wrong = (n_el != df["N_atoms"]) | (n_xyz != df["N_atoms"]) | (df["N_atoms"] < 1) | (df["N_atoms"] > 127)
    if wrong.any():
        raise DataError(f"{what}: N_atoms disagrees with Elements or XYZ_Ang for {int(wrong.sum())} molecules "
                        f"(first: Index {df.loc[wrong, 'Index'].iloc[0]}); the file is corrupt.")
    return df


def parse_atoms(df) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atoms of all molecules of a validated table, concatenated in file order.

    Returns:
        ``z`` uint8 [A] element index into ``ELEMENTS``; ``pos`` float64 [A, 3] in Angstrom;
        ``atom_ptr`` int64 [N+1] (molecule ``k``'s atoms are ``atom_ptr[k]:atom_ptr[k+1]``).
    """
    n_atoms = df["N_atoms"].to_numpy(np.int64)
    ptr = np.zeros(len(n_atoms) + 1, np.int64)
    np.cumsum(n_atoms, out=ptr[1:])
    symbols = ",".join(df["Elements"].tolist()).translate(str.maketrans("", "", "[]' ")).split(",")
    lut = {e: k for k, e in enumerate(ELEMENTS)}
    try:
        z = np.fromiter((lut[s] for s in symbols), np.uint8, count=len(symbols))
    except KeyError as err:
        raise DataError(f"element {err} in the Elements column is not one of {ELEMENTS}") from None
    try:
        pos = np.array(",".join(df["XYZ_Ang"].tolist()).translate(str.maketrans("", "", "[] ")).split(","),
                       dtype=np.float64)
    except ValueError as err:
        raise DataError(f"XYZ_Ang holds a value that is not a number ({err}); the file is corrupt") from None
    if len(z) != ptr[-1] or pos.size != 3 * ptr[-1]:
        raise DataError(f"Elements/XYZ_Ang hold {len(z)} atoms / {pos.size} coordinates, expected "
                        f"{ptr[-1]} / {3 * ptr[-1]} from N_atoms; the file is corrupt")
    return z, pos.reshape(-1, 3), ptr


def qm9_targets(df, z: np.ndarray | None = None, atom_ptr: np.ndarray | None = None) -> np.ndarray:
    """The 19 targets of :data:`TARGETS` (float64 [N, 19]) from a validated raw table.

    Atomization energies (columns 12-15) are ``total - sum over atoms of ATOMREF_HARTREE``,
    formed in float64 in Hartree and then converted (float32 keeps only ~1 meV of U0).
    ``z``/``atom_ptr`` (from :func:`parse_atoms`) are parsed from the table when not given.
    """
    if z is None or atom_ptr is None:
        z, _, atom_ptr = parse_atoms(df)
    col = lambda c: df[c].to_numpy(np.float64)  # noqa: E731
    totals = np.stack([col(c) for c in ("InternalEnergy_0K_au", "InternalEnergy_298K_au",
                                        "Enthalphy_298K_au", "GibbsFreeEnergy_298K_au")], axis=1)
    mol = np.repeat(np.arange(len(df)), np.diff(atom_ptr))
    ref = np.zeros((len(df), 4))
    np.add.at(ref, mol, ATOMREF_HARTREE[z])
    h = HARTREE_TO_EV
    y = np.column_stack([
        col("Dipole_debye"), col("Polarizability_bohr3"), col("HOMO_au") * h, col("LUMO_au") * h,
        col("HOMO_LUMO_gap_au") * h, col("R2_bohr2"), col("ZPVE_au") * h, totals * h,
        col("Heatcapacity_Cv_cal_mol_K"), (totals - ref) * h,
        col("RotA_GHz"), col("RotB_GHz"), col("RotC_GHz")])
    assert y.shape == (len(df), 19)
    return y


# --------------------------------------------------------------------------- processed arrays

def _checksum(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        v = arrays[k]
        if isinstance(v, torch.Tensor):
            h.update(str(tuple(v.shape)).encode() + str(v.dtype).encode())
            h.update(v.contiguous().numpy().tobytes())
        else:  # the SMILES list
            h.update("\n".join(v).encode())
    return h.hexdigest()


def build_arrays(df, workers: int = 1) -> dict:
    """Featurize a validated table into the cache's compact arrays.

    Returns:
        dict: ``atoms`` uint8 [A] (packed: bits 0-2 element, 3 aromatic, 4-5 hybridization,
        6-7 formal charge + 1), ``pos`` float32 [A, 3] (Angstrom), ``atom_ptr`` int32 [N+1],
        ``bonds`` int8 [2, B] (each bond once, local atom indices ``i < j``), ``bond_type``
        uint8 [B], ``bond_ptr`` int32 [N+1], ``y`` float32 [N, 19] (units of :data:`TARGETS`),
        ``index`` int32 [N] (QM9 ``Index``), ``from_xyz`` uint8 [N] (1: graph taken from the
        geometry because the SMILES is another molecule, see :mod:`~factorlab.data.qm9_features`),
        ``smiles`` list of N str.
    """
    z, pos, ptr = parse_atoms(df)
    y = qm9_targets(df, z, ptr)
    smiles = df["SMILES"].tolist()
    index = df["Index"].to_numpy(np.int64)
    n = len(smiles)
    step = max(1, min(2000, -(-n // max(1, workers))))
    jobs = [(smiles[a:b], z[ptr[a]:ptr[b]], pos[ptr[a]:ptr[b]], ptr[a:b + 1] - ptr[a], index[a:b])
            for a, b in ((a, min(a + step, n)) for a in range(0, n, step))]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(featurize_chunk, jobs, chunksize=1)
    else:
        parts = [featurize_chunk(j) for j in jobs]
    return _assemble(parts, z, pos, ptr, y, index, smiles)


def _assemble(parts: list[dict], z: np.ndarray, pos: np.ndarray, ptr: np.ndarray, y: np.ndarray,
              index: np.ndarray, smiles: list[str]) -> dict:
    """The cache's arrays (see :func:`build_arrays`) from featurized chunks ``parts`` (outputs
    of :func:`~factorlab.data.qm9_features.featurize_chunk`, in molecule order) and the atoms."""
    n = len(smiles)
    cat = lambda k: np.concatenate([p[k] for p in parts])  # noqa: E731
    n_bonds = cat("n_bonds")
    bond_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(n_bonds, out=bond_ptr[1:])
    t = torch.from_numpy
    return {
        "atoms": t(pack_atoms(z, cat("aromatic"), cat("hybridization"), cat("formal_charge"))),
        "pos": t(pos.astype(np.float32)),
        "atom_ptr": t(ptr.astype(np.int32)),
        "bonds": t(np.ascontiguousarray(cat("bonds").T.astype(np.int8))),
        "bond_type": t(cat("bond_type")),
        "bond_ptr": t(bond_ptr.astype(np.int32)),
        "y": t(y.astype(np.float32)),
        "index": t(index.astype(np.int32)),
        "from_xyz": t(cat("from_xyz")),
        "smiles": smiles,
    }


def graphs_for_prediction(smiles: list[str], geometries: list | None = None,
                          device: str | torch.device = "cpu") -> "QM9Data":
    """Molecules that are not (necessarily) in the cache, featurized exactly as training was,
    as a :class:`QM9Data` without targets (``y`` NaN, ``index`` -1): what a trained network
    predicts from.

    Args:
        smiles: N SMILES strings.
        geometries: per molecule ``(z, pos)`` (element indices into ``ELEMENTS`` int [n],
            Angstrom float [n, 3]) or None. With a geometry the SMILES graph is matched onto
            its atoms as for QM9's own molecules (so a QM9 molecule with QM9's geometry gets
            its training graph); without, the graph comes from the SMILES alone (positions
            zero: for networks that ignore coordinates, such as the GINE).
        device: where the tensors go.

    Raises:
        DataError: a SMILES that does not parse or does not fit its geometry.
    """
    from factorlab.data.qm9_features import featurize_molecule, featurize_smiles

    if not smiles:
        raise ValueError("no molecules given")
    geometries = geometries if geometries is not None else [None] * len(smiles)
    if len(geometries) != len(smiles):
        raise ValueError(f"{len(smiles)} SMILES but {len(geometries)} geometries")
    zs, poss, parts = [], [], []
    for s, geom in zip(smiles, geometries):
        if geom is None:
            z, f = featurize_smiles(s)
            pos = np.zeros((len(z), 3))
        else:
            z, pos = np.asarray(geom[0], np.int64), np.asarray(geom[1], np.float64)
            f = featurize_molecule(s, z, pos)
        zs.append(z)
        poss.append(pos)
        parts.append({**{k: f[k] for k in ("aromatic", "hybridization", "formal_charge", "bond_type", "bonds")},
                      "n_bonds": np.asarray([len(f["bond_type"])], np.int64),
                      "from_xyz": np.asarray([f["from_xyz"]], np.uint8)})
    ptr = np.zeros(len(smiles) + 1, np.int64)
    np.cumsum([len(z) for z in zs], out=ptr[1:])
    n = len(smiles)
    arrays = _assemble(parts, np.concatenate(zs).astype(np.uint8), np.concatenate(poss), ptr,
                       np.full((n, len(TARGETS)), np.nan), np.full(n, -1), list(smiles))
    return _expand(arrays, torch.device(device), seed=0)


CACHE_KEYS = ("atoms", "pos", "atom_ptr", "bonds", "bond_type", "bond_ptr", "y", "index", "from_xyz", "smiles")


def qm9_cache_path() -> Path:
    """The processed cache of the full dataset, ``processed/qm9.pt``."""
    return processed_dir() / "qm9.pt"


def load_qm9_arrays(source: str | os.PathLike | None = None, workers: int = 1, rebuild: bool = False) -> dict:
    """The full dataset's compact arrays (see :func:`build_arrays`), from the cache
    ``processed/qm9.pt`` when it is present and verifies (version and SHA-256), else built
    from the raw data (RDKit needed) and written atomically (a failure leaves no cache)."""
    path = qm9_cache_path()
    if path.exists() and not rebuild:
        try:
            cache = torch.load(path, weights_only=True)
            arrays = {k: cache[k] for k in CACHE_KEYS}
            if cache.get("version") == CACHE_VERSION and cache.get("sha256") == _checksum(arrays):
                return arrays
        except Exception:  # unreadable or incomplete cache: rebuild it from the raw data
            pass
    arrays = build_arrays(read_qm9_table(find_qm9_source(source)), workers=workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".qm9.pt.", suffix=".part")
    os.close(fd)
    try:
        torch.save({"version": CACHE_VERSION, "sha256": _checksum(arrays), **arrays}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return arrays


# --------------------------------------------------------------------------- split and data

def qm9_split(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Fixed random split of ``n`` molecules (rows in ``Index`` order) into int64 row tensors.

    The full set (130,831) gets 110,000 train / 10,000 valid / the rest test; another ``n``
    (the fixture) gets the same fractions, rounded. The order is
    ``numpy.random.default_rng(seed).permutation(n)``.
    """
    full = 130831  # the release's count, fixed here so the split never depends on configuration
    if n == full:
        n_train, n_valid = QM9_SPLIT_SIZES
    else:
        n_train = round(n * QM9_SPLIT_SIZES[0] / full)
        n_valid = round(n * QM9_SPLIT_SIZES[1] / full)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n).astype(np.int64))
    return {"train": perm[:n_train], "valid": perm[n_train:n_train + n_valid], "test": perm[n_train + n_valid:]}


class QM9Batch(NamedTuple):
    """A batch of molecular graphs (PyG's ``Batch`` fields, as plain tensors on the device).

    ``x`` int64 [n, 6] (columns :data:`ATOM_FEATURES`); ``pos`` float32 [n, 3] Angstrom;
    ``edge_index`` int64 [2, e] (batch-global node indices, both directions of each bond);
    ``edge_attr`` int64 [e] (bond type code); ``batch`` int64 [n] (graph of each node, 0..B-1);
    ``y`` float32 [B, 19] raw units; ``ptr`` int64 [B+1] (graph ``k``'s nodes are
    ``ptr[k]:ptr[k+1]``).
    """

    x: torch.Tensor
    pos: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    y: torch.Tensor
    ptr: torch.Tensor


@dataclass
class QM9Data:
    """QM9 on one device, as flat concatenated arrays with per-molecule pointers.

    Attributes:
        x: int8 [A, 6] node features, columns :data:`ATOM_FEATURES` (element index into
            ``ELEMENTS``, atomic number, aromatic 0/1, hybridization 0 other/1 sp/2 sp2/3 sp3,
            number of bonded H, formal charge).
        pos: float32 [A, 3] B3LYP coordinates, Angstrom.
        atom_ptr: int64 [N+1]; molecule ``k`` owns nodes ``atom_ptr[k]:atom_ptr[k+1]``.
        edge_index: int8 [2, E] *local* node indices of directed edges (both directions of each
            bond, sorted by source then target within each molecule).
        edge_attr: uint8 [E] bond type code (0 single, 1 double, 2 triple, 3 aromatic).
        edge_ptr: int64 [N+1]; molecule ``k`` owns edges ``edge_ptr[k]:edge_ptr[k+1]``.
        y: float32 [N, 19] targets of :data:`TARGETS` in their units. Columns 7-10 (total
            energies, ~-11,000 eV) are resolved to ~1 meV in float32; 12-15 were formed in float64.
        index: int64 [N] QM9 molecule ``Index`` of each row (rows are in ``Index`` order).
        smiles: the N SMILES strings.
        from_xyz: bool [N]; True where the SMILES is not the molecule of the relaxed geometry and
            the graph was derived from the coordinates instead (see :mod:`~factorlab.data.qm9_features`).
        split: ``{"train", "valid", "test"}`` -> int64 row tensors on the device (see
            :func:`qm9_split`); ``index[split[k]]`` are the molecule numbers.
        y_mean, y_std: float32 [19] statistics of ``y`` over the training rows (float64 sums).
    """

    x: torch.Tensor
    pos: torch.Tensor
    atom_ptr: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    edge_ptr: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    smiles: list[str]
    from_xyz: torch.Tensor
    split: dict[str, torch.Tensor] = field(default_factory=dict)
    y_mean: torch.Tensor | None = None
    y_std: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.y.device

    @property
    def num_molecules(self) -> int:
        return self.y.shape[0]

    def standardize(self, y: torch.Tensor) -> torch.Tensor:
        """``(y - y_mean) / y_std`` for y [..., 19]."""
        return (y - self.y_mean) / self.y_std

    def unstandardize(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`standardize`."""
        return z * self.y_std + self.y_mean

    def batch(self, ids: torch.Tensor) -> QM9Batch:
        """Graphs of molecules ``ids`` (int64 [B] rows), gathered on the device by index.

        Pure tensor ops (pointer differences, cumulative sums, ``index_select`` gathers): no
        Python loop over molecules; one host sync to read the batch's node and edge counts.
        (``index_select`` rather than ``t[idx]``: on a 2-core CPU, advanced indexing and
        ``repeat_interleave`` each cost ~8 ms of thread wake-up, ``index_select`` ~0.05 ms.)
        """
        dev = self.device
        ids = torch.as_tensor(ids, dtype=torch.long, device=dev)
        a0 = self.atom_ptr.index_select(0, ids)
        e0 = self.edge_ptr.index_select(0, ids)
        na = self.atom_ptr.index_select(0, ids + 1) - a0
        ne = self.edge_ptr.index_select(0, ids + 1) - e0
        n_nodes, n_edges = torch.stack([na.sum(), ne.sum()]).tolist()
        zero = torch.zeros(1, dtype=torch.long, device=dev)
        ptr = torch.cat([zero, na.cumsum(0)])
        eptr = torch.cat([zero, ne.cumsum(0)])
        node_graph = _segment_ids(ptr, n_nodes)
        edge_graph = _segment_ids(eptr, n_edges)
        # row of x for each batch node: its molecule's first row + its rank within the molecule
        nodes = torch.arange(n_nodes, device=dev) + (a0 - ptr[:-1]).index_select(0, node_graph)
        edges = torch.arange(n_edges, device=dev) + (e0 - eptr[:-1]).index_select(0, edge_graph)
        edge_index = self.edge_index.index_select(1, edges).long() + ptr.index_select(0, edge_graph)
        return QM9Batch(self.x.index_select(0, nodes).long(), self.pos.index_select(0, nodes), edge_index,
                        self.edge_attr.index_select(0, edges).long(), node_graph, self.y.index_select(0, ids), ptr)

    def molecule(self, i: int) -> dict[str, torch.Tensor]:
        """One molecule as tensors (``x`` int64 [n, 6], ``pos`` [n, 3], ``edge_index`` int64
        [2, e] local, ``edge_attr`` int64 [e], ``y`` [1, 19]): e.g. to build PyG ``Data``."""
        a, b = int(self.atom_ptr[i]), int(self.atom_ptr[i + 1])
        e, f = int(self.edge_ptr[i]), int(self.edge_ptr[i + 1])
        return {"x": self.x[a:b].long(), "pos": self.pos[a:b], "edge_index": self.edge_index[:, e:f].long(),
                "edge_attr": self.edge_attr[e:f].long(), "y": self.y[i:i + 1]}


def _segment_ids(ptr: torch.Tensor, total: int) -> torch.Tensor:
    """Segment of each of ``total`` items given segment pointers ``ptr`` [B+1] (int64 [total]):
    a +1 at each segment start, cumulated (empty segments are skipped correctly)."""
    marks = torch.zeros(total + 1, dtype=torch.long, device=ptr.device)
    starts = ptr[1:-1]
    marks.index_add_(0, starts, torch.ones_like(starts))
    return marks[:total].cumsum(0)


def _expand(arrays: dict, device: torch.device, seed: int) -> QM9Data:
    """Cache arrays -> :class:`QM9Data`: unpack atoms, make edges directed, count hydrogens."""
    atom_ptr = arrays["atom_ptr"].long()
    bond_ptr = arrays["bond_ptr"].long()
    n = atom_ptr.shape[0] - 1
    code = arrays["atoms"].to(torch.int16)
    element = code & 7
    bonds = arrays["bonds"].long()
    nb = bond_ptr[1:] - bond_ptr[:-1]
    bond_mol = torch.arange(n).repeat_interleave(nb)
    off = atom_ptr[bond_mol]
    # directed edges (i->j and j->i), ordered by global source then local target
    src = torch.cat([bonds[0], bonds[1]]) + torch.cat([off, off])
    dst_local = torch.cat([bonds[1], bonds[0]])
    order = torch.argsort(src * 128 + dst_local)
    src, dst_local = src[order], dst_local[order]
    edge_attr = torch.cat([arrays["bond_type"], arrays["bond_type"]])[order]
    edge_mol = torch.cat([bond_mol, bond_mol])[order]
    src_local = src - atom_ptr[edge_mol]
    num_hs = torch.zeros(code.shape[0], dtype=torch.int16)
    num_hs.index_add_(0, src, (element[dst_local + atom_ptr[edge_mol]] == 0).to(torch.int16))
    z_lut = torch.tensor([1, 6, 7, 8, 9], dtype=torch.int16)
    x = torch.stack([element, z_lut[element.long()], (code >> 3) & 1, (code >> 4) & 3, num_hs,
                     ((code >> 6) & 3) - 1], dim=1).to(torch.int8)
    y = arrays["y"]
    split = qm9_split(n, seed)
    ytr = y[split["train"]].double()
    dev = torch.device(device)
    return QM9Data(
        x=x.to(dev), pos=arrays["pos"].to(dev), atom_ptr=atom_ptr.to(dev),
        edge_index=torch.stack([src_local, dst_local]).to(torch.int8).to(dev), edge_attr=edge_attr.to(dev),
        edge_ptr=(2 * bond_ptr).to(dev), y=y.to(dev), index=arrays["index"].long().to(dev),
        smiles=list(arrays["smiles"]), from_xyz=arrays["from_xyz"].bool().to(dev),
        split={k: v.to(dev) for k, v in split.items()},
        y_mean=ytr.mean(0).float().to(dev),
        y_std=(ytr.std(0) if ytr.shape[0] > 1 else torch.full_like(ytr[0], float("nan"))).float().to(dev))


def load_qm9(device: str | torch.device = "cpu", source: str | os.PathLike | None = None,
             fixture: bool | str | os.PathLike = False, seed: int = 0, workers: int = 1) -> QM9Data:
    """QM9 on ``device`` as a :class:`QM9Data` (with its seeded split and training statistics).

    Args:
        device: where every tensor goes.
        source: where to read the full dataset when the cache must be built (see
            :func:`find_qm9_source`); ignored when ``processed/qm9.pt`` verifies.
        fixture: ``True`` for the committed 300-molecule test fixture, or the path of another
            small qm9pack-schema CSV; read and featurized in memory (any row count, no cache).
        seed: seed of the train/valid/test split.
        workers: processes for RDKit featurization when the cache is built.

    Raises:
        DataError: no data found, or the data/file is corrupt (the message says how to fix it).
    """
    if fixture is not False and fixture is not None:
        path = QM9_FIXTURE if fixture is True else Path(fixture)
        if not path.exists():
            raise DataError(f"QM9 fixture {path} does not exist")
        arrays = build_arrays(read_qm9_table(path, expect_rows=None), workers=1)
    else:
        arrays = load_qm9_arrays(source, workers=workers)
    return _expand(arrays, device, seed)


class QM9Loader:
    """Iterate :class:`QM9Batch` es of ``data``'s molecules ``ids`` on ``data``'s device.

    Like :class:`factorlab.data.loader.DeviceLoader`: with ``shuffle``, epoch ``k``'s order is a
    deterministic function of ``seed`` and ``k`` (one generator on the device, seeded once).

    Args:
        data: the dataset.
        ids: a split name (``"train"``, ``"valid"``, ``"test"``) or int64 rows [M].
        batch_size: molecules per batch (> 0); the last is smaller unless ``drop_last``.
        shuffle: new random order every epoch.
        drop_last: drop the final incomplete batch.
        seed: seed of the shuffling generator.
    """

    def __init__(self, data: QM9Data, ids: str | torch.Tensor = "train", batch_size: int = 128,
                 shuffle: bool = False, drop_last: bool = False, seed: int = 0):
        if isinstance(ids, str):
            if ids not in data.split:
                raise ValueError(f"unknown split {ids!r}; expected one of {sorted(data.split)}")
            ids = data.split[ids]
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.data, self.batch_size = data, batch_size
        self.ids = torch.as_tensor(ids, dtype=torch.long).to(data.device)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator = torch.Generator(device=data.device).manual_seed(seed) if shuffle else None

    def __len__(self) -> int:
        n = self.ids.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[QM9Batch]:
        ids = self.ids
        if self.shuffle:
            ids = ids[torch.randperm(ids.shape[0], device=ids.device, generator=self.generator)]
        for i in range(len(self)):
            yield self.data.batch(ids[i * self.batch_size:(i + 1) * self.batch_size])


def pyg_node_features(x: torch.Tensor) -> torch.Tensor:
    """PyG QM9's 11 float node features from ``x`` [n, 6]: one-hot H, C, N, O, F; atomic
    number; aromatic; one-hot sp, sp2, sp3; number of H."""
    x = x.long()
    el = torch.nn.functional.one_hot(x[:, 0], 5)
    hyb = torch.nn.functional.one_hot(x[:, 3], 4)[:, 1:]
    return torch.cat([el, x[:, 1:2], x[:, 2:3], hyb, x[:, 4:5]], dim=1).float()


def pyg_edge_features(edge_attr: torch.Tensor) -> torch.Tensor:
    """PyG QM9's 4 float edge features (one-hot single, double, triple, aromatic) from codes [e]."""
    return torch.nn.functional.one_hot(edge_attr.long(), 4).float()
