"""QM9 on a device: the seeded split, the dataset as flat tensors with per-molecule pointers
(:class:`QM9Data`), batches of molecular graphs gathered on the device by index
(:class:`QM9Batch`, :class:`QM9Loader`), PyG's float features, and graphs of new molecules
to predict.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch

from factorlab.data.errors import DataError
from factorlab.data.qm9.cache import assemble_arrays, build_arrays, load_qm9_arrays
from factorlab.data.qm9.source import QM9_FIXTURE, read_qm9_table
from factorlab.data.qm9.targets import TARGETS

#: Node feature columns of :attr:`QM9Data.x`.
ATOM_FEATURES = ("element", "atomic_number", "aromatic", "hybridization", "num_hs", "formal_charge")
#: The fixed split of the full set: train, valid; test is the rest (10,831).
QM9_SPLIT_SIZES = (110000, 10000)


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
            the graph was derived from the coordinates instead (see :mod:`~factorlab.data.qm9.features`).
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


def graphs_for_prediction(smiles: list[str], geometries: list | None = None,
                          device: str | torch.device = "cpu") -> QM9Data:
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
    from factorlab.data.qm9.features import featurize_molecule, featurize_smiles

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
    arrays = assemble_arrays(parts, np.concatenate(zs).astype(np.uint8), np.concatenate(poss), ptr,
                             np.full((n, len(TARGETS)), np.nan), np.full(n, -1), list(smiles))
    return _expand(arrays, torch.device(device), seed=0)
