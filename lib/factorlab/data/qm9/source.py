"""Reading QM9: where the qm9pack table comes from, reading and validating it, and its atoms
and 19 targets as arrays.

Where the data comes from (first found wins; see :func:`find_qm9_source`):

1. ``source=`` given explicitly: a CSV in the qm9pack schema (``.csv``, ``.csv.xz``, ``.gz``,
   ``.bz2``), a folder holding ``qm9.csv.xz`` or qm9pack's ``qm9_part{1,2,3}.csv``, or the
   qm9pack wheel itself (``pip download --no-deps qm9pack==1.0.3``);
2. ``data/raw/qm9/`` holding ``qm9.csv.xz`` or that wheel;
3. ``<mirror>/qm9/qm9.csv.xz`` for each folder of ``FACTORLAB_DATA_MIRROR``;
4. the CSVs of an installed ``qm9pack`` package.
"""
from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

import numpy as np

from factorlab.data.errors import DataError
from factorlab.data.qm9.targets import ATOMREF_HARTREE, ELEMENTS, HARTREE_TO_EV
from factorlab.paths import REPO_ROOT, mirror_dirs, raw_dir

#: Columns read from the qm9pack schema (qm9pack has more; these are the ones used).
QM9_COLUMNS = (
    "Index", "SMILES", "InChi", "N_atoms", "Elements", "XYZ_Ang", "RotA_GHz", "RotB_GHz",
    "RotC_GHz", "Dipole_debye", "Polarizability_bohr3", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au",
    "R2_bohr2", "ZPVE_au", "InternalEnergy_0K_au", "InternalEnergy_298K_au", "Enthalphy_298K_au",
    "GibbsFreeEnergy_298K_au", "Heatcapacity_Cv_cal_mol_K")
_TEXT_COLUMNS = ("SMILES", "InChi", "Elements", "XYZ_Ang")
#: Molecules in the release once the 3,054 that failed its consistency check are removed.
QM9_NUM_MOLECULES = 130831
#: The committed test fixture: 300 rows of the mirror, same schema, Index 1 (methane) included.
QM9_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "qm9_fixture.csv"
QM9PACK_WHEEL = "qm9pack-1.0.3-py3-none-any.whl"
QM9PACK_PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")


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
