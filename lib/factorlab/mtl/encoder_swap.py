r"""Encoder swap (the journal's "neural task clustering"): how well task ``i``'s trained
single-task encoder serves task ``j`` when only a fresh head is trained on it.

Given a trained single-task stack (a grouped :class:`~factorlab.models.qm9.QM9GINE` with
``K`` members, member ``k`` predicting ``targets[k]``; each member's encoder is the
channel block ``k`` of the stack's encoder), for each ordered pair (i, j) of ``pairs``:

1. member ``i``'s encoder is frozen (evaluation mode: BatchNorm uses its running
   statistics), so its graph embeddings :math:`z^{(i)}` [n, hidden] of the training,
   validation and test molecules are computed once;
2. a fresh head (the stack's head architecture: ``hidden -> head_hidden -> 1`` MLP,
   initialised as ``nn.Linear``) is trained on :math:`z^{(i)}` to predict task ``j``'s
   standardized target (the residual after the composition baseline when one is given, as
   the members learned) by Adam on the MSE for a fixed budget (``epochs`` over the training
   split, batch ``batch_size``, learning rate ``lr``, cosine schedule), keeping the head of
   the epoch with the lowest validation MAE;
3. its test MAE in the target's units, :math:`\mathrm{MAE}_j(i)`, is compared with member
   ``j``'s own test MAE (the trained stack's own head on its own encoder):

   .. math::
       T_{i \to j} = \frac{\mathrm{MAE}_j(\text{encoder } i,\ \text{fresh head})}
                        {\mathrm{MAE}_j(\text{single-task model } j)}.

   Below 1: ``i``'s encoder serves ``j`` better than ``j``'s own model does.

On the diagonal, :math:`T_{j \to j}` is a fresh head retrained on ``j``'s *own* frozen encoder
against the head trained jointly with it: about 1, not 1 exactly (the fresh head's budget and
initialisation differ, and a head fit to a frozen encoder can do slightly better or worse).
:attr:`EncoderSwap.relative_to_diagonal` divides each column by its diagonal entry instead,
which is 1 on the diagonal by construction and compares encoders under the same head
training.

All pairs train at once as one grouped head (:class:`~factorlab.models.grouped.TaskHeads` with
``groups = len(pairs)``), each group reading its encoder's embedding block: the heads are
independent (the loss is a sum over pairs), so the cost is that of one wide MLP on
precomputed embeddings. ``seconds`` counts embedding plus head training and evaluation.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from factorlab.data.qm9 import QM9Loader, target_index
from factorlab.models.grouped import TaskHeads
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.mtl.relatedness import Relatedness, labelled
from factorlab.seed import seed_everything


@dataclass
class EncoderSwap:
    """What :func:`encoder_swap` measured (rows: encoder ``i``; columns: task ``j``).

    Attributes:
        mae: ``MAE_j(encoder i, fresh head)``, test split, the target's units (NaN for pairs not run).
        own_mae: per task ``j``, the single-task model's own test MAE (units).
        transfer: :class:`Relatedness` ``mae / own_mae`` (column-wise).
        seconds: embedding + head training + evaluation.
        info: budget and sizes.
    """

    mae: pd.DataFrame
    own_mae: pd.Series
    transfer: Relatedness
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def relative_to_diagonal(self) -> pd.DataFrame:
        """``mae[i, j] / mae[j, j]``: 1 on the diagonal by construction (NaN where the
        diagonal pair was not run)."""
        diag = pd.Series(np.diag(self.mae.to_numpy()), index=self.mae.columns)
        return self.mae / diag


@torch.no_grad()
def _embed(model: nn.Module, data, ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Eval-mode encoder output [n, K*hidden] and the stack's own outputs [n, K]."""
    was = model.training
    model.eval()
    embs, outs = [], []
    for b in QM9Loader(data, ids, batch_size=batch_size):
        z = model.encoder(b)
        embs.append(z)
        outs.append(model.heads(z))
    model.train(was)
    return torch.cat(embs), torch.cat(outs)


@torch.no_grad()
def _targets(data, ids: torch.Tensor, cols: torch.Tensor, baseline: CompositionBaseline | None,
             batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardized targets [n, K] of ``cols`` and the scale [K] that turns them into units."""
    parts = []
    for b in QM9Loader(data, ids, batch_size=batch_size):
        z = data.standardize(b.y) if baseline is None else baseline.standardize(b, b.y)
        parts.append(z.index_select(1, cols))
    scale = (data.y_std if baseline is None else baseline.res_std).index_select(0, cols)
    return torch.cat(parts), scale


def _check_pairs(pairs, k: int) -> list[tuple[int, int]]:
    out = []
    for p in pairs:
        i, j = p
        if not (isinstance(i, int) and isinstance(j, int) and 0 <= i < k and 0 <= j < k):
            raise ValueError(f"pair {p!r} is not a pair of member indices in 0..{k - 1}")
        out.append((i, j))
    if not out:
        raise ValueError("encoder_swap needs at least one pair")
    return out


def encoder_swap(model: nn.Module, data, split: dict[str, torch.Tensor], targets: list[str],
                 pairs: list[tuple[int, int]] | None = None, *, baseline: CompositionBaseline | None = None,
                 epochs: int = 20, batch_size: int = 128, lr: float = 1e-3, head_hidden: int | None = None,
                 seed: int = 0, eval_batch_size: int = 1024) -> EncoderSwap:
    """Encoder-swap transfer for ordered ``pairs`` (i, j) of a trained single-task stack.

    Args:
        model: the trained stack: ``model.encoder`` maps a batch to [G, K*hidden] and
            ``model.heads`` (a :class:`TaskHeads`, one task per group) to [G, K]; member
            ``k`` predicts ``targets[k]``.
        data: the :class:`~factorlab.data.qm9.QM9Data` the stack was trained on.
        split: ``train``, ``valid``, ``test`` molecule rows (those of the stack's training).
        targets: the members' target names, in order.
        pairs: ordered (encoder i, task j) member indices; all ``K^2`` when None.
        baseline: the composition baseline the members learned the residual of (or None).
        epochs, batch_size, lr: the fresh heads' fixed budget (Adam, cosine schedule).
        head_hidden: the fresh heads' hidden width (the stack's own by default).
        seed: seeds the heads' initialisation and the shuffling.

    Returns:
        An :class:`EncoderSwap`.
    """
    heads = getattr(model, "heads", None)
    if not isinstance(heads, TaskHeads) or heads.num_tasks != 1 or not hasattr(model, "encoder"):
        raise ValueError("encoder_swap needs a single-task stack: model.encoder and model.heads "
                         "(TaskHeads with one task per group)")
    k = heads.groups
    if len(targets) != k:
        raise ValueError(f"the stack has {k} members, got {len(targets)} targets")
    if not isinstance(epochs, int) or epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"bad budget: epochs={epochs!r}, batch_size={batch_size!r}, lr={lr!r}")
    pairs = _check_pairs([(i, j) for i in range(k) for j in range(k)] if pairs is None else pairs, k)
    hidden, width = heads.in_channels, head_hidden or heads.hidden
    dev = data.device
    t0 = time.perf_counter()
    cols = torch.as_tensor([target_index(t) for t in targets], device=dev)
    emb, z, own_out = {}, {}, None
    for part in ("train", "valid", "test"):
        e, out = _embed(model, data, split[part], eval_batch_size)
        emb[part] = e.view(e.shape[0], k, hidden)
        z[part], scale = _targets(data, split[part], cols, baseline, eval_batch_size)
        if part == "test":
            own_out = out
    own_mae = ((own_out - z["test"]).abs().double().mean(0) * scale.double()).cpu().numpy()

    enc = torch.as_tensor([i for i, _ in pairs], device=dev)
    task = torch.as_tensor([j for _, j in pairs], device=dev)
    p = len(pairs)
    seed_everything(seed)
    head = TaskHeads(hidden, 1, width, groups=p).to(dev)

    def inputs(part: str, rows: torch.Tensor | slice) -> torch.Tensor:
        return emb[part][rows].index_select(1, enc).reshape(-1, p * hidden)  # [G, P*hidden]

    def mae_std(part: str) -> torch.Tensor:  # [P], standardized units
        with torch.no_grad():
            total = torch.zeros(p, dtype=torch.float64, device=dev)
            n = emb[part].shape[0]
            for s in range(0, n, eval_batch_size):
                rows = slice(s, min(s + eval_batch_size, n))
                pred = head(inputs(part, rows))
                total += (pred - z[part][rows].index_select(1, task)).abs().sum(0, dtype=torch.float64)
            return total / n

    n_train = emb["train"].shape[0]
    steps_per_epoch = n_train // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {batch_size} exceeds the {n_train} training molecules")
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    total_steps = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    best = torch.full((p,), math.inf, dtype=torch.float64, device=dev)
    best_state = {n: t.detach().clone() for n, t in head.state_dict().items()}
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=gen).to(dev)
        for s in range(steps_per_epoch):
            rows = order[s * batch_size:(s + 1) * batch_size]
            pred = head(inputs("train", rows))
            loss = (pred - z["train"][rows].index_select(1, task)).pow(2).mean(0).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        valid = mae_std("valid")
        better = valid < best
        best = torch.where(better, valid, best)
        with torch.no_grad():
            for n, t in head.state_dict().items():  # group-major along dim 0
                mask = better.view(-1, *[1] * (t.dim() - 1))
                best_state[n].copy_(torch.where(mask, t, best_state[n]))
    head.load_state_dict(best_state)
    swap = (mae_std("test") * scale.double().index_select(0, task)).cpu().numpy()
    seconds = time.perf_counter() - t0

    mae = np.full((k, k), np.nan)
    for (i, j), v in zip(pairs, swap):
        mae[i, j] = v
    mae_frame = labelled(mae, targets)
    own = pd.Series(own_mae, index=list(targets))
    info = {"pairs": p, "epochs": epochs, "batch_size": batch_size, "lr": lr, "head_hidden": width,
            "seed": seed, "n_train": n_train, "n_valid": int(emb["valid"].shape[0]),
            "n_test": int(emb["test"].shape[0]), "target": "residual" if baseline is not None else "standardized"}
    transfer = Relatedness("encoder_swap", mae_frame / own, seconds, info)
    return EncoderSwap(mae_frame, own, transfer, seconds, info)
