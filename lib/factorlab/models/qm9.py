"""Graph networks for QM9, built from PyTorch Geometric layers, each split into an
``encoder`` (molecules -> graph embeddings) and ``heads`` (embeddings -> one output per task).

- :class:`QM9GINE`: the GCN-style network of the journals, with bond types: an atom
  embedding, ``layers`` GINE convolutions (Hu et al. 2020; PyG ``GINEConv``, whose messages
  ReLU(x_j + W e_ji) carry the bond type), a sum (or mean) readout and an MLP head per task.
  With ``groups=K`` it is ``K`` independent such networks in one (see
  :mod:`factorlab.models.grouped`), which is how many single-task models train at once.
- :class:`QM9SchNet`: the 3D reference, SchNet (Schütt et al. 2017) from PyG's interaction
  blocks (continuous-filter convolutions on interatomic distances) over every atom pair of a
  molecule within ``cutoff``; invariant to rotations and translations.

Every model takes a batch with PyG's fields -- ``x`` int64 [n, 6] (the codes of
:data:`factorlab.data.qm9.ATOM_FEATURES`), ``pos`` [n, 3] Angstrom, ``edge_index`` int64
[2, e], ``edge_attr`` int64 [e] bond codes, ``batch`` int64 [n], ``ptr`` int64 [G+1] -- which
both :class:`~factorlab.data.qm9.QM9Batch` and a PyG ``Batch`` of ``QM9Data.molecule(i)``
dicts have, and returns *standardized* predictions [G, T] (see ``QM9Data.standardize``; or of
the residual over a composition baseline, :mod:`factorlab.models.qm9_baseline`, as the trainer chooses).
"""
from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn
from torch_geometric.nn import GINEConv, global_add_pool, global_mean_pool
from torch_geometric.nn.models.schnet import GaussianSmearing, InteractionBlock, ShiftedSoftplus

from factorlab.data.qm9 import pyg_edge_features, pyg_node_features
from factorlab.models.grouped import GroupedLinear, SharedInputLinear, TaskHeads

#: Width of :func:`~factorlab.data.qm9.pyg_node_features` / :func:`~factorlab.data.qm9.pyg_edge_features`.
NODE_FEATURES, EDGE_FEATURES = 11, 4
#: Largest atomic number in QM9 (F) + 1: size of SchNet's element embedding.
MAX_Z = 10
READOUTS = {"sum": global_add_pool, "mean": global_mean_pool}


class GraphBatch(Protocol):
    """What the models read from a batch (QM9Batch and torch_geometric's Batch both fit)."""

    x: torch.Tensor
    pos: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor


def num_graphs(batch: GraphBatch) -> int:
    """Number of molecules in ``batch`` (from ``ptr``'s length: no device sync)."""
    return batch.ptr.numel() - 1


# --------------------------------------------------------------------------- encoders

def _grouped_edges(conv: GINEConv, groups: int) -> GINEConv:
    """``conv`` with its bond-type embedding (``conv.lin``, one ``Linear(edge_dim, K * hidden)``)
    computed group by group (:class:`~factorlab.models.grouped.SharedInputLinear`, same
    tensors), so that a group's numbers do not depend on how many groups there are."""
    conv.lin = SharedInputLinear.from_linear(conv.lin, groups)
    return conv


class GINEEncoder(nn.Module):
    r"""Atom features -> ``layers`` residual GINE convolutions -> readout.

    .. math::
        \mathbf{h}^{0}_i = \mathbf{W}_{in} \mathbf{f}_i, \quad
        \mathbf{h}^{l+1}_i = \mathbf{h}^{l}_i + \mathrm{ReLU}\Big(\mathrm{BN}\Big(
        \mathrm{MLP}^{l}\big(\mathbf{h}^{l}_i + \textstyle\sum_{j \in \mathcal{N}(i)}
        \mathrm{ReLU}(\mathbf{h}^{l}_j + \mathbf{W}^{l}_e \mathbf{e}_{ji})\big)\Big)\Big),
        \quad \mathbf{z}_g = \mathrm{BN}\big(\textstyle\sum_{i \in g} \mathbf{h}^{L}_i\big)

    with ``f_i`` PyG's 11 atom features and ``e_ji`` the one-hot bond type. Every map across
    channels is block-diagonal over ``groups``, so ``groups=K`` computes ``K`` independent
    encoders (group ``k`` owns channels ``k*hidden:(k+1)*hidden``).

    The BatchNorm of the pooled embedding (``pool_norm``) is what lets the heads learn: summed
    over ~18 atoms, the raw embedding has per-channel offsets far larger than its spread across
    molecules, and without it the network did not even fit U0 (a near-linear function of the
    atom counts) to 0.3 standard deviations; with it, to 0.04 in the same 4 epochs on 5,000
    molecules. Per channel and affine at evaluation, it keeps sums extensive.

    Args:
        hidden: channels per group.
        layers: number of GINE convolutions.
        groups: independent encoders computed at once.
        readout: ``"sum"`` (extensive properties add up over atoms) or ``"mean"``.
        batch_norm: BatchNorm after each convolution (per channel, so per group).
        pool_norm: BatchNorm of the pooled graph embedding (per channel). In training mode
            BatchNorm needs at least two molecules per batch.

    Shapes:
        - input: a :class:`GraphBatch` of ``G`` molecules
        - output: graph embeddings ``[G, groups * hidden]``
    """

    def __init__(self, hidden: int = 128, layers: int = 4, groups: int = 1, readout: str = "sum",
                 batch_norm: bool = True, pool_norm: bool = True):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}: choose one of {sorted(READOUTS)}")
        if hidden < 1 or layers < 1 or groups < 1:
            raise ValueError(f"hidden, layers and groups must be positive, got {hidden}, {layers}, {groups}")
        self.hidden, self.layers, self.groups, self.readout = hidden, layers, groups, readout
        width = groups * hidden
        # shared input, independent rows per group (an nn.Linear's tensors and initialisation)
        self.node_in = SharedInputLinear.from_linear(nn.Linear(NODE_FEATURES, width), groups)
        # no bias where BatchNorm follows: it would cancel it (a parameter with zero gradient,
        # which Adam turns into a random walk of +-lr steps)
        self.convs = nn.ModuleList(
            _grouped_edges(GINEConv(nn.Sequential(GroupedLinear(hidden, hidden, groups), nn.ReLU(),
                                                  GroupedLinear(hidden, hidden, groups, bias=not batch_norm)),
                                    edge_dim=EDGE_FEATURES), groups)
            for _ in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) if batch_norm else nn.Identity() for _ in range(layers))
        self.pool = READOUTS[readout]
        self.pool_norm = nn.BatchNorm1d(width) if pool_norm else nn.Identity()

    @property
    def out_channels(self) -> int:
        """Width of the graph embedding per group."""
        return self.hidden

    def reset_parameters(self) -> None:
        self.node_in.reset_parameters()
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            if isinstance(norm, nn.BatchNorm1d):
                norm.reset_parameters()
        if isinstance(self.pool_norm, nn.BatchNorm1d):
            self.pool_norm.reset_parameters()

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """``G`` molecules -> [G, groups * hidden]."""
        h = self.node_in(pyg_node_features(batch.x))
        e = pyg_edge_features(batch.edge_attr)
        for conv, norm in zip(self.convs, self.norms):
            h = h + torch.relu(norm(conv(h, batch.edge_index, e)))
        return self.pool_norm(self.pool(h, batch.batch, size=num_graphs(batch)))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(hidden={self.hidden}, layers={self.layers}, groups={self.groups}, "
                f"readout={self.readout!r})")


def molecule_pairs(pos: torch.Tensor, ptr: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ordered pair of distinct atoms of the same molecule closer than ``cutoff``.

    The interaction graph of :class:`SchNetEncoder` (PyG's ``radius_graph`` needs the
    compiled ``torch_cluster``; QM9 molecules are small enough to enumerate all pairs).

    Args:
        pos: [n, 3] positions (Angstrom).
        ptr: int64 [G+1]; molecule ``g`` holds atoms ``ptr[g]:ptr[g+1]``.
        cutoff: largest interatomic distance kept (Angstrom).

    Returns:
        ``edge_index`` int64 [2, e] (row 0 source ``j``, row 1 target ``i``, batch-global) and
        the distances [e] (Angstrom).
    """
    dev = pos.device
    counts = ptr[1:] - ptr[:-1]
    squares = counts * counts
    total = int(squares.sum())
    graph = torch.repeat_interleave(torch.arange(counts.numel(), device=dev), squares, output_size=total)
    start = torch.cumsum(squares, 0) - squares
    k = torch.arange(total, device=dev) - start.index_select(0, graph)
    n = counts.index_select(0, graph)
    i, j = torch.div(k, n, rounding_mode="floor"), torch.remainder(k, n)
    first = ptr.index_select(0, graph)
    src, dst = first + j, first + i
    dist = (pos.index_select(0, dst) - pos.index_select(0, src)).norm(dim=-1)
    keep = (i != j) & (dist <= cutoff)
    return torch.stack([src[keep], dst[keep]]), dist[keep]


class SchNetEncoder(nn.Module):
    r"""SchNet's representation: element embedding, ``interactions`` continuous-filter
    convolution blocks (PyG's ``InteractionBlock``) on Gaussian-expanded distances, an atomwise
    layer, and a sum over atoms.

    .. math::
        \mathbf{h}^{l+1}_i = \mathbf{h}^{l}_i + \mathrm{Interaction}^{l}\big(\mathbf{h}^{l},
        \{ \exp(-\gamma (d_{ij} - \mu_k)^2) \}_{j \ne i,\, d_{ij} \le r_c}\big), \quad
        \mathbf{z}_g = \mathrm{BN}\big(\textstyle\sum_{i \in g} \mathrm{ssp}(\mathbf{W} \mathbf{h}^{L}_i + \mathbf{b})\big)

    Depends on the geometry only through distances: invariant to rotations, translations and
    the order of atoms. Uses the atomic number (column 1 of ``x``) and ``pos``; not the bonds.

    Args:
        hidden: atom embedding width.
        filters: filter width of the continuous-filter convolutions.
        interactions: number of interaction blocks.
        gaussians: radial basis size (centres spread over ``[0, cutoff]``).
        cutoff: interaction cutoff (Angstrom); filters go smoothly to zero at it.
        pool_norm: BatchNorm of the pooled embedding (see :class:`GINEEncoder`).

    Shapes:
        - input: a :class:`GraphBatch` of ``G`` molecules
        - output: graph embeddings ``[G, hidden]``
    """

    def __init__(self, hidden: int = 128, filters: int = 128, interactions: int = 6, gaussians: int = 50,
                 cutoff: float = 10.0, pool_norm: bool = True):
        super().__init__()
        if min(hidden, filters, interactions, gaussians) < 1 or cutoff <= 0:
            raise ValueError("SchNet sizes and cutoff must be positive, got "
                             f"{hidden=}, {filters=}, {interactions=}, {gaussians=}, {cutoff=}")
        self.hidden, self.filters, self.interactions_n = hidden, filters, interactions
        self.gaussians, self.cutoff = gaussians, float(cutoff)
        self.groups = 1
        self.embedding = nn.Embedding(MAX_Z, hidden)
        self.distance_expansion = GaussianSmearing(0.0, self.cutoff, gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden, gaussians, filters, self.cutoff) for _ in range(interactions))
        self.atomwise = nn.Linear(hidden, hidden)
        self.act = ShiftedSoftplus()
        self.pool_norm = nn.BatchNorm1d(hidden) if pool_norm else nn.Identity()

    @property
    def out_channels(self) -> int:
        return self.hidden

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        for block in self.interactions:
            block.reset_parameters()
        self.atomwise.reset_parameters()
        if isinstance(self.pool_norm, nn.BatchNorm1d):
            self.pool_norm.reset_parameters()

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """``G`` molecules -> [G, hidden]."""
        edge_index, dist = molecule_pairs(batch.pos, batch.ptr, self.cutoff)
        rbf = self.distance_expansion(dist)
        h = self.embedding(batch.x[:, 1].long())
        for block in self.interactions:
            h = h + block(h, edge_index, dist, rbf)
        h = self.act(self.atomwise(h))
        return self.pool_norm(global_add_pool(h, batch.batch, size=num_graphs(batch)))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(hidden={self.hidden}, filters={self.filters}, "
                f"interactions={self.interactions_n}, gaussians={self.gaussians}, cutoff={self.cutoff})")


# --------------------------------------------------------------------------- models

class QM9Model(nn.Module):
    """``heads(encoder(batch))``: standardized predictions [G, groups * num_tasks].

    ``encoder`` maps a batch to graph embeddings [G, groups * hidden] and ``heads`` maps
    those to [G, groups * num_tasks]; either may be replaced by a compatible module (e.g.
    another model's encoder of the same width). ``hparams`` holds the constructor arguments,
    so ``type(m)(**m.hparams)`` builds a fresh model of the same shape.
    """

    encoder: nn.Module
    heads: TaskHeads

    def __init__(self, hparams: dict[str, Any]):
        super().__init__()
        self.hparams = dict(hparams)

    @property
    def num_tasks(self) -> int:
        """Tasks (output columns) per group."""
        return self.hparams["num_tasks"]

    @property
    def groups(self) -> int:
        """Independent networks computed at once (1 for an ordinary model)."""
        return self.hparams.get("groups", 1)

    def reset_parameters(self) -> None:
        """Re-initialise encoder and heads."""
        self.encoder.reset_parameters()
        self.heads.reset_parameters()

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """``G`` molecules -> standardized predictions [G, groups * num_tasks]."""
        return self.heads(self.encoder(batch))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({args})"


def _check_tasks(num_tasks: Any) -> int:
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive int (the number of targets predicted), got {num_tasks!r}")
    return num_tasks


class QM9GINE(QM9Model):
    """GCN-style network: :class:`GINEEncoder` + one MLP head per task (:class:`TaskHeads`).

    Args:
        num_tasks: output columns (targets) per group.
        hidden: encoder width per group. layers: GINE convolutions.
        head_hidden: hidden width of each task's head.
        groups: ``K`` independent networks in one (outputs group-major: column
            ``k * num_tasks + t``).
        readout: ``"sum"`` or ``"mean"``. batch_norm: BatchNorm after each convolution.
        pool_norm: BatchNorm of the pooled embedding.
    """

    def __init__(self, num_tasks: int, hidden: int = 128, layers: int = 4, head_hidden: int = 64, groups: int = 1,
                 readout: str = "sum", batch_norm: bool = True, pool_norm: bool = True):
        super().__init__({"num_tasks": _check_tasks(num_tasks), "hidden": hidden, "layers": layers,
                          "head_hidden": head_hidden, "groups": groups, "readout": readout, "batch_norm": batch_norm,
                          "pool_norm": pool_norm})
        self.encoder = GINEEncoder(hidden, layers, groups, readout, batch_norm, pool_norm)
        self.heads = TaskHeads(hidden, num_tasks, head_hidden, groups)


class QM9SchNet(QM9Model):
    """3D reference: :class:`SchNetEncoder` + one MLP head per task.

    Args:
        num_tasks: output columns (targets).
        hidden, filters, interactions, gaussians, cutoff, pool_norm: see :class:`SchNetEncoder`
            (sizes default to PyG's SchNet defaults).
        head_hidden: hidden width of each task's head.
    """

    def __init__(self, num_tasks: int, hidden: int = 128, filters: int = 128, interactions: int = 6,
                 gaussians: int = 50, cutoff: float = 10.0, head_hidden: int = 64, pool_norm: bool = True):
        super().__init__({"num_tasks": _check_tasks(num_tasks), "hidden": hidden, "filters": filters,
                          "interactions": interactions, "gaussians": gaussians, "cutoff": cutoff,
                          "head_hidden": head_hidden, "pool_norm": pool_norm})
        self.encoder = SchNetEncoder(hidden, filters, interactions, gaussians, cutoff, pool_norm)
        self.heads = TaskHeads(hidden, num_tasks, head_hidden)


#: Model names accepted by :func:`build_qm9_model`.
QM9_MODELS: dict[str, type[QM9Model]] = {"gine": QM9GINE, "schnet": QM9SchNet}


def build_qm9_model(name: str, num_tasks: int, **kwargs: Any) -> QM9Model:
    """Build the QM9 model ``name`` (one of :data:`QM9_MODELS`) with ``num_tasks`` outputs.

    Raises:
        ValueError: unknown name, a non-positive task count, or an argument the model lacks.
    """
    if name not in QM9_MODELS:
        raise ValueError(f"unknown QM9 model {name!r}: choose one of {sorted(QM9_MODELS)}")
    try:
        return QM9_MODELS[name](_check_tasks(num_tasks), **kwargs)
    except TypeError as err:  # an unexpected keyword
        raise ValueError(f"bad arguments for QM9 model {name!r}: {err}") from None
