r"""Cross-stitch units (Misra et al. 2016, "Cross-stitch Networks for Multi-task Learning"):
soft sharing by learned linear mixing of the task networks' activations.

``K`` task networks of one architecture run side by side as a grouped stack
(``QM9GINE(groups=K)``, :mod:`factorlab.models.grouped`); after every message-passing layer
``l`` of the encoder, the members' node representations are mixed by a learnable matrix
:math:`A^{(l)} \in \mathbb{R}^{K \times K}`:

.. math::
    \tilde{\mathbf{h}}_{i,k} = \sum_{j=1}^{K} A^{(l)}_{kj} \, \mathbf{h}_{i,j}

for every atom ``i`` (``h_{i,j}`` is member ``j``'s ``hidden`` channels). One matrix per layer,
shared by all channels (``per_channel=False``, the default: ``K²`` numbers per layer), or one
per channel (``per_channel=True``: ``hidden · K²``; Misra et al. discuss both granularities).
Initialisation as in the paper: :math:`A_{kk} = \alpha` and :math:`A_{kj} = (1 - \alpha) /
(K - 1)` off the diagonal (rows sum to 1; the paper's two-task ``α_S = 0.9, α_D = 0.1`` is
``alpha=0.9``). With ``alpha=1`` every ``A`` is the identity and the network *is* the
single-task stack (identical outputs: the mixing multiplies by exact ones and zeros).

The units train with the network, by the same optimiser at the same learning rate. Misra et
al. scaled the units' learning rate by 10²-10³ because with SGD their gradients are small next
to the layers'; Adam (our optimiser) normalises every parameter's step to about ``lr``
whatever its gradient's scale, so no separate rate is needed: at ``lr = 1e-3`` an entry can
move by ~1 in a thousand steps.

The heads stay per member (member ``k``'s head reads member ``k``'s pooled embedding), so the
whole network is *one* multitask model: it has no independent members
(:func:`factorlab.models.stack.num_members` is 1) and keeps one best-validation epoch.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from factorlab.data.qm9 import pyg_edge_features, pyg_node_features
from factorlab.models.qm9 import GINEEncoder, GraphBatch, QM9GINE, num_graphs


def stitch_init(members: int, alpha: float) -> torch.Tensor:
    """The initial mixing matrix [K, K]: ``alpha`` on the diagonal, ``(1 - alpha) / (K - 1)``
    elsewhere; ValueError unless ``K >= 2`` and ``0 <= alpha <= 1``."""
    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ValueError(f"cross-stitch units need an int number of members >= 2, got {members!r}")
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = math.nan
    if not 0.0 <= a <= 1.0:  # also rejects NaN
        raise ValueError(f"cross-stitch alpha (the initial diagonal) must be in [0, 1], got {alpha!r}")
    off = (1.0 - a) / (members - 1)
    return torch.full((members, members), off).fill_diagonal_(a)


class CrossStitch(nn.Module):
    r"""One cross-stitch unit: :math:`\tilde{\mathbf{x}}_{n,k} = \sum_j A_{kj} \mathbf{x}_{n,j}`
    (per channel ``c``: :math:`A_{c,k,j}`).

    Args:
        members: ``K >= 2`` networks whose channels are mixed.
        channels: channels per member.
        alpha: initial diagonal in ``[0, 1]`` (off-diagonal ``(1 - alpha) / (K - 1)``).
        per_channel: one ``K × K`` matrix per channel instead of one for all channels.

    Shapes:
        - input: ``[N, K * channels]`` (member-major channels, as a grouped stack's)
        - output: ``[N, K * channels]``
        - ``weight``: ``[K, K]``, or ``[channels, K, K]`` with ``per_channel``
    """

    def __init__(self, members: int, channels: int, alpha: float = 0.9, per_channel: bool = False):
        super().__init__()
        stitch_init(members, alpha)  # checks members and alpha
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"cross-stitch channels must be a positive int, got {channels!r}")
        self.members, self.channels, self.alpha, self.per_channel = members, channels, float(alpha), bool(per_channel)
        shape = (channels, members, members) if per_channel else (members, members)
        self.weight = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Back to the near-identity initialisation."""
        self.weight.copy_(stitch_init(self.members, self.alpha).expand_as(self.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, K*C] -> [N, K*C]."""
        n = x.shape[0]
        xk = x.view(n, self.members, self.channels)
        eq = "ckj,njc->nkc" if self.per_channel else "kj,njc->nkc"
        return torch.einsum(eq, self.weight, xk).reshape(n, self.members * self.channels)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(members={self.members}, channels={self.channels}, alpha={self.alpha}, "
                f"per_channel={self.per_channel})")


class CrossStitchGINE(nn.Module):
    r"""A grouped GINE stack (``QM9GINE(groups=K)``, ``K >= 2`` members) with a
    :class:`CrossStitch` unit after each GINE convolution (after its residual update).

    .. math::
        \mathbf{h}^{l+1} = A^{(l)} \star \Big(\mathbf{h}^{l} + \mathrm{ReLU}\big(
        \mathrm{BN}(\mathrm{GINE}^{l}(\mathbf{h}^{l}))\big)\Big)

    (``A ⋆`` the mixing of the members' channels), then each member's readout and head as in
    :class:`~factorlab.models.qm9.GINEEncoder` and :class:`~factorlab.models.grouped.TaskHeads`.

    Args:
        stack: the grouped stack whose encoder and heads are used (held as ``self.stack``:
            its parameter names, and so :class:`factorlab.mtl.soft.SoftSharingPenalty`'s
            distances on it, are the stack's).
        alpha, per_channel: see :class:`CrossStitch`.

    Shapes:
        - input: a :class:`~factorlab.models.qm9.GraphBatch` of ``G`` molecules
        - output: standardized predictions ``[G, K * num_tasks]`` (member-major columns)
    """

    def __init__(self, stack: QM9GINE, alpha: float = 0.9, per_channel: bool = False):
        super().__init__()
        if not isinstance(stack, QM9GINE) or not isinstance(stack.encoder, GINEEncoder):
            raise ValueError(f"cross-stitch units need a grouped QM9GINE stack, got {type(stack).__name__}")
        if stack.groups < 2:
            raise ValueError(f"cross-stitch units need a stack of at least 2 members, got groups={stack.groups}")
        self.stack = stack
        enc = stack.encoder
        self.stitches = nn.ModuleList(CrossStitch(enc.groups, enc.hidden, alpha, per_channel)
                                      for _ in range(enc.layers))

    @property
    def members(self) -> int:
        """The ``K`` task networks mixed (not independent: see the module docstring)."""
        return self.stack.groups

    def reset_parameters(self) -> None:
        self.stack.reset_parameters()
        for unit in self.stitches:
            unit.reset_parameters()

    def encode(self, batch: GraphBatch) -> torch.Tensor:
        """``G`` molecules -> graph embeddings [G, K * hidden] (``GINEEncoder.forward`` with the
        units after each convolution)."""
        enc = self.stack.encoder
        h = enc.node_in(pyg_node_features(batch.x))
        e = pyg_edge_features(batch.edge_attr)
        for conv, norm, stitch in zip(enc.convs, enc.norms, self.stitches):
            h = stitch(h + torch.relu(norm(conv(h, batch.edge_index, e))))
        return enc.pool_norm(enc.pool(h, batch.batch, size=num_graphs(batch)))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """``G`` molecules -> [G, K * num_tasks]."""
        return self.stack.heads(self.encode(batch))

    @torch.no_grad()
    def summary(self) -> dict[str, float]:
        """Per unit ``l``: the mean diagonal (``stitches.l.diag``) and mean off-diagonal
        (``stitches.l.off``) entry of its matrices, for the training history."""
        out = {}
        k = self.members
        eye = torch.eye(k, dtype=torch.bool, device=self.stitches[0].weight.device)
        for l, unit in enumerate(self.stitches):
            w = unit.weight.reshape(-1, k, k)
            out[f"stitches.{l}.diag"] = float(w[:, eye].mean())
            out[f"stitches.{l}.off"] = float(w[:, ~eye].mean())
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stack!r}, {self.stitches[0]!r} x {len(self.stitches)})"
