"""The processed QM9 cache: the validated table featurized (RDKit) into compact arrays, kept in
``data/processed/qm9.pt`` (50.5 MiB, see ``data/README.md``), a verified cache of
:mod:`factorlab.files` (format version and SHA-256 of the arrays, names with shapes and
dtypes). It is built once with RDKit and then loaded without the raw data and without RDKit,
so it is what travels to a GPU machine.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from factorlab.data.qm9.features import featurize_chunk, pack_atoms
from factorlab.data.qm9.source import find_qm9_source, parse_atoms, qm9_targets, read_qm9_table
from factorlab.files import CacheError, load_verified, save_verified
from factorlab.paths import processed_dir

#: Format of ``processed/qm9.pt``; a cache of another version is rebuilt.
CACHE_VERSION = 2
#: The arrays a cache holds (see :func:`build_arrays`).
CACHE_KEYS = ("atoms", "pos", "atom_ptr", "bonds", "bond_type", "bond_ptr", "y", "index", "from_xyz", "smiles")


def build_arrays(df, workers: int = 1) -> dict:
    """Featurize a validated table into the cache's compact arrays.

    Returns:
        dict: ``atoms`` uint8 [A] (packed: bits 0-2 element, 3 aromatic, 4-5 hybridization,
        6-7 formal charge + 1), ``pos`` float32 [A, 3] (Angstrom), ``atom_ptr`` int32 [N+1],
        ``bonds`` int8 [2, B] (each bond once, local atom indices ``i < j``), ``bond_type``
        uint8 [B], ``bond_ptr`` int32 [N+1], ``y`` float32 [N, 19] (the targets' units),
        ``index`` int32 [N] (QM9 ``Index``), ``from_xyz`` uint8 [N] (1: graph taken from the
        geometry because the SMILES is another molecule, see :mod:`~factorlab.data.qm9.features`),
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
    return assemble_arrays(parts, z, pos, ptr, y, index, smiles)


def assemble_arrays(parts: list[dict], z: np.ndarray, pos: np.ndarray, ptr: np.ndarray, y: np.ndarray,
                    index: np.ndarray, smiles: list[str]) -> dict:
    """The cache's arrays (see :func:`build_arrays`) from featurized chunks ``parts`` (outputs
    of :func:`~factorlab.data.qm9.features.featurize_chunk`, in molecule order) and the atoms."""
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



def qm9_cache_path() -> Path:
    """The processed cache of the full dataset, ``processed/qm9.pt``."""
    return processed_dir() / "qm9.pt"




def load_qm9_arrays(source: str | os.PathLike | None = None, workers: int = 1, rebuild: bool = False) -> dict:
    """The full dataset's compact arrays (see :func:`build_arrays`), from the cache
    ``processed/qm9.pt`` when it is present and verifies (version and SHA-256), else built
    from the raw data (RDKit needed) and written atomically (a failure leaves no cache)."""
    path = qm9_cache_path()
    if not rebuild:
        try:
            cache = load_verified(path, CACHE_KEYS, version=CACHE_VERSION, with_shapes=True, what="QM9 cache")
            return {k: cache[k] for k in CACHE_KEYS}
        except CacheError:  # missing, stale or corrupt: rebuild it from the raw data
            pass
    arrays = build_arrays(read_qm9_table(find_qm9_source(source)), workers=workers)
    save_verified(path, arrays, version=CACHE_VERSION, with_shapes=True)
    return arrays
