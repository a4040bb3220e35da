"""Multi-target regression on QM9: one loop for single-task models, stacks of them, and
hard-shared multitask models.

The model maps a batch to standardized predictions [G, C]; output column ``c`` predicts target
``columns[c]`` (an index into ``QM9Data.y``'s 19 columns). The loss is the sum over columns of
the mean squared error on standardized targets (``QM9Data.standardize``). A model with ``K``
independent members (:func:`factorlab.models.stack.num_members`) owns ``C / K`` consecutive
columns per member; since the loss is a sum over members, the learning-rate schedule is a
fixed function of the step (cosine or constant) and each member keeps its *own*
best-validation weights, training a stack gives every member the run it would have alone:
identically for a :class:`~factorlab.models.stack.ModelStack`, and for a grouped model too
on the CPU, bit for bit whatever the stack's size (its layers compute each member in
arithmetic of the same shape, :mod:`factorlab.models.grouped`; a last-bit difference would
otherwise grow, through Adam, into a different run).

Everything stays on the device: batches come from :class:`~factorlab.data.qm9.QM9Loader`,
sums are accumulated on the device and read once per epoch; the clock is read after
synchronizing; training time excludes evaluation. fp32 throughout (bf16 would cost the
energies their precision: chemical accuracy is ~0.4 % of U0_atom's standard deviation).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from factorlab.data.qm9 import TARGETS, QM9Data, QM9Loader
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.models.stack import member_state, num_members
from factorlab.results.checkpoints import next_slot
from factorlab.train import schedules
from factorlab.train.device import synchronize

SCHEDULES = ("cosine", "constant")


@dataclass
class RegressionFit:
    """What :func:`fit_regression` measured (all plain Python values, JSON-ready).

    ``history``: ``epoch`` (1-based), ``lr`` (at the epoch's start), ``train_s`` (cumulative
    training seconds), and per column label ``train_mse`` (standardized MSE, running mean over
    the epoch's batches in training mode) and ``valid_mae`` (target units, eval mode).

    With a ``penalty`` (see :func:`fit_regression`) the history also holds, per epoch,
    ``penalty`` (the term added to the loss, running mean over the epoch's batches, each value
    taken before that batch's step) and ``data_loss`` (the sum over columns of the standardized
    MSE, running mean over the same batches: the sum of the columns' ``train_mse``); with
    ``probes``, ``history[name][key]`` for every ``key`` a probe ``name`` returned, read after
    the epoch's training steps and before its validation; with a ``weighting``,
    ``task_weight`` per column label (the weighting's ``weights()`` after the epoch's steps).

    ``metrics``, per column label: ``test_mae`` (target units), ``test_mae_std`` (in units
    of the target's training standard deviation), ``valid_mae`` (units, at the best epoch),
    ``best_epoch`` (of the member owning the column); plus ``mean_test_mae_std`` over columns.
    """

    history: dict
    metrics: dict
    timing: dict


def column_labels(columns: list[int]) -> list[str]:
    """Target names of ``columns`` (ValueError for an index outside 0..18)."""
    bad = [c for c in columns if not 0 <= c < len(TARGETS)]
    if bad:
        raise ValueError(f"target columns {bad} are not in 0..{len(TARGETS) - 1}")
    return [TARGETS[c].name for c in columns]


@torch.no_grad()
def _summed_errors(model: nn.Module, data: QM9Data, ids: torch.Tensor, columns: list[int], batch_size: int,
                   baseline: CompositionBaseline | None, reduce) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Σ_batches reduce(pred − y [B, C], std [C]), std [C])``, float64 [C] on the device, with
    ``model`` in eval mode (its mode restored after). ``pred`` is in the targets' units: the
    model's outputs are standardized targets or, with ``baseline``, standardized residuals of
    that composition baseline (see :mod:`factorlab.models.qm9_baseline`)."""
    was_training = model.training
    model.eval()
    cols = torch.as_tensor(columns, device=data.device)
    mean, std = data.y_mean.index_select(0, cols), data.y_std.index_select(0, cols)
    total = torch.zeros(len(columns), dtype=torch.float64, device=data.device)
    for b in QM9Loader(data, ids, batch_size=batch_size):
        z = model(b).float()
        pred = z * std + mean if baseline is None else baseline.unstandardize(b, z, cols)
        total += reduce(pred - b.y.index_select(1, cols), std)
    model.train(was_training)
    return total, std


def evaluate_mae(model: nn.Module, data: QM9Data, ids: torch.Tensor, columns: list[int],
                 batch_size: int = 1024, baseline: CompositionBaseline | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean absolute error of ``model`` on molecules ``ids``, per output column, in eval mode.

    With ``baseline``, the model's outputs are standardized residuals of that composition
    baseline (see :mod:`factorlab.models.qm9_baseline`); without, standardized targets.

    Returns ``(mae_units, mae_std)``, float64 [C] on the device: in the targets' units and in
    units of their training standard deviation.
    """
    total, std = _summed_errors(model, data, ids, columns, batch_size, baseline,
                                lambda err, _std: err.abs().sum(0, dtype=torch.float64))
    mae = total / ids.numel()
    return mae, mae / std.double()


def evaluate_mse_std(model: nn.Module, data: QM9Data, ids: torch.Tensor, columns: list[int],
                     batch_size: int = 1024, baseline: CompositionBaseline | None = None) -> torch.Tensor:
    """Mean squared error of ``model`` on molecules ``ids``, per output column, in eval mode,
    in units of each target's *training standard deviation squared* (``QM9Data.y_std``): the
    loss on z-scored targets, whatever the model was trained to predict (with ``baseline``, its
    outputs are standardized residuals, as in :func:`evaluate_mae`).

    Returns float64 [C] on the device.
    """
    total, _ = _summed_errors(model, data, ids, columns, batch_size, baseline,
                              lambda err, std: (err.double() / std.double()).pow(2).sum(0))
    return total / ids.numel()


def make_schedule(optimizer: torch.optim.Optimizer, name: str, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule: ``cosine`` (lr -> 0 over ``total_steps``) or ``constant``; the
    multipliers come from :func:`factorlab.train.schedules.make_schedule`."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedules.make_schedule({"kind": name}, total_steps, 1))


@torch.no_grad()
def _losses_now(model: nn.Module, batch, target: torch.Tensor) -> torch.Tensor:
    """Per-column standardized MSE [C] of ``model`` on ``batch`` in its current mode, leaving
    its buffers (BatchNorm's running statistics) as they were."""
    saved = [t.clone() for t in model.buffers()]
    losses = (model(batch) - target).pow(2).mean(0)
    for t, s in zip(model.buffers(), saved):
        t.copy_(s)
    return losses


def fit_regression(
    model: nn.Module,
    data: QM9Data,
    columns: list[int],
    *,
    train_ids: torch.Tensor,
    valid_ids: torch.Tensor,
    test_ids: torch.Tensor,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    seed: int = 0,
    eval_batch_size: int = 1024,
    baseline: CompositionBaseline | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    probes: Mapping[str, Callable[[], dict[str, float]]] | None = None,
    weighting: nn.Module | None = None,
    step_hooks: Sequence[Callable[[int, object, torch.Tensor], None]] = (),
) -> RegressionFit:
    """Train ``model`` (on ``data``'s device) to predict targets ``columns``, keep each
    member's best-validation weights, and measure test MAE per column.

    Args:
        model: batch -> standardized predictions [G, len(columns)].
        columns: target index (0..18) of each output column; labels are the target names and
            must be unique.
        train_ids, valid_ids, test_ids: int64 molecule rows of ``data``.
        epochs: passes over ``train_ids``; validation after each.
        batch_size: molecules per step (the last, smaller batch of an epoch is dropped).
        lr, weight_decay: Adam's (coupled L2, as ``torch.optim.Adam``).
        schedule: ``"cosine"`` or ``"constant"`` (per step).
        seed: seeds the shuffling order (initialisation is the caller's: seed before building).
        baseline: when given, the model learns the standardized residual of this composition
            baseline instead of the standardized target (:mod:`factorlab.models.qm9_baseline`).
        penalty: when given, a callable returning a scalar tensor (with gradients) that is
            added to the data loss at every step, e.g. a soft-sharing penalty
            (:class:`factorlab.mtl.soft.SoftSharingPenalty`); without it the loss is the data
            loss alone and not one operation of the loop differs.
        probes: ``name -> callable`` returning ``{key: float}``, read (not trained) after each
            epoch's training steps and recorded in ``history[name][key]`` (e.g. the distances
            between the members' weights).
        weighting: when given, how the per-column losses [C] become the loss (a hard-shared
            model's task weighting, e.g. :mod:`factorlab.mtl.weighting`): an ``nn.Module``
            with ``num_tasks == C``, ``combine(losses [C]) -> scalar``, ``after_step(recompute)``
            (called after each step; ``recompute()`` returns the same batch's losses [C] at the
            updated weights, computed without gradients and without moving BatchNorm's
            statistics), ``weights() -> [C]``, and ``lr``: its parameters, if any, train in
            their own group of the optimizer at that learning rate (same schedule, no weight
            decay). Without it the loss is the plain sum, by today's very code path.
        step_hooks: callables ``hook(step, batch, target)`` run at the start of every training
            step (``step`` counts from 0; ``target`` is the batch's standardized targets
            [G, C]), before the step's own forward pass: read-only probes of the training
            (e.g. task-gradient similarity, :mod:`factorlab.mtl.task_affinity`), which must
            leave the model's parameters and buffers as they found them.

    Returns:
        A :class:`RegressionFit`; ``model`` is left holding each member's best weights.

    Inside a run of the store (:mod:`factorlab.results.checkpoints`) and without ``penalty``,
    ``weighting``, ``probes`` or ``step_hooks`` (whose own state is not saved), the whole
    training state is saved after every epoch and a run started again continues after the
    last saved epoch, to the same result; ``timing["resumed_from_epoch"]`` then says where.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    labels = column_labels(columns)
    if len(set(labels)) != len(labels):
        raise ValueError(f"output columns must be distinct targets, got {labels}")
    k_total = num_members(model)
    if len(columns) % k_total:
        raise ValueError(f"{len(columns)} columns cannot be split evenly over {k_total} members")
    per = len(columns) // k_total
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")
    device = data.device
    model.to(device)
    cols = torch.as_tensor(columns, device=device)
    loader = QM9Loader(data, train_ids, batch_size=batch_size, shuffle=True, drop_last=True, seed=seed)
    if len(loader) == 0:
        raise ValueError(f"batch_size {batch_size} exceeds the {train_ids.numel()} training molecules")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if weighting is not None:
        if getattr(weighting, "num_tasks", None) != len(columns):
            raise ValueError(f"the weighting is for {getattr(weighting, 'num_tasks', None)} tasks, "
                             f"the model has {len(columns)} output columns")
        weighting.to(device)
        weighting_params = list(weighting.parameters())
        if weighting_params:
            optimizer.add_param_group({"params": weighting_params, "lr": weighting.lr, "weight_decay": 0.0})
    scheduler = make_schedule(optimizer, schedule, epochs * len(loader))
    views = [member_state(model, k) for k in range(k_total)]
    best_score = [math.inf] * k_total
    best_state: list[dict | None] = [None] * k_total
    best_epoch = [0] * k_total
    best_valid = [[math.nan] * per for _ in range(k_total)]

    history: dict = {"epoch": [], "lr": [], "train_s": [], "train_mse": {l: [] for l in labels},
                     "valid_mae": {l: [] for l in labels}}
    if penalty is not None:
        history.update(penalty=[], data_loss=[])
    if weighting is not None:
        history["task_weight"] = {l: [] for l in labels}
    probes = dict(probes or {})
    history.update({name: {} for name in probes})
    train_s = eval_s = 0.0
    steps = 0
    # resumable (factorlab.results.checkpoints) only when every piece of state is saved below:
    # penalties, weightings, probes and hooks may hold state of their own
    slot = next_slot() if penalty is None and weighting is None and not probes and not step_hooks else None
    saved = None if slot is None else slot.load()
    # what this training is: a slot written by another fit of the same run (a run whose fits
    # differ from one start to the next, e.g. a stack reused within one process) is not resumed
    signature = (list(columns), epochs, len(loader), [(k, list(v.shape)) for k, v in model.state_dict().items()])
    if saved is not None and saved.get("signature") != signature:
        saved = None
    first, resumed_from = 1, 0
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        loader.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["rng"])
        if saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        best_score, best_state, best_epoch, best_valid = (saved["best_score"], saved["best_state"],
                                                          saved["best_epoch"], saved["best_valid"])
        history, train_s, eval_s, steps = saved["history"], saved["train_s"], saved["eval_s"], saved["steps"]
        resumed_from = saved["epoch"]
        first = epochs + 1 if saved["stopped"] else saved["epoch"] + 1
    for epoch in range(first, epochs + 1):
        model.train()
        history["lr"].append(optimizer.param_groups[0]["lr"])
        sq_sum = torch.zeros(len(columns), dtype=torch.float64, device=device)
        pen_sum = torch.zeros((), dtype=torch.float64, device=device)
        synchronize(device)
        t0 = time.perf_counter()
        for b in loader:
            target = (data.standardize(b.y) if baseline is None else baseline.standardize(b, b.y)).index_select(1, cols)
            for hook in step_hooks:  # read-only probes, at the weights before this step
                hook(steps, b, target)
            per_col = (model(b) - target).pow(2).mean(0)  # [C] standardized MSE
            loss = per_col.sum() if weighting is None else weighting.combine(per_col)
            if penalty is not None:  # e.g. soft sharing: data loss + the penalty term
                term = penalty()
                pen_sum += term.detach().double()
                loss = loss + term
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if weighting is not None:  # e.g. FAMO: one update of the task weights per step
                weighting.after_step(lambda: _losses_now(model, b, target))
            sq_sum += per_col.detach().double()
            steps += 1
        synchronize(device)
        train_s += time.perf_counter() - t0
        for name, probe in probes.items():
            for key, value in probe().items():
                history[name].setdefault(key, []).append(float(value))

        t1 = time.perf_counter()
        valid_mae, valid_std = evaluate_mae(model, data, valid_ids, columns, eval_batch_size, baseline)
        train_mse = (sq_sum / len(loader)).tolist()
        valid_list, score = valid_mae.tolist(), valid_std.view(k_total, per).mean(1).tolist()
        for k in range(k_total):
            if math.isfinite(score[k]) and score[k] < best_score[k]:
                best_score[k], best_epoch[k] = score[k], epoch
                best_state[k] = {n: t.detach().clone() for n, t in views[k].items()}
                best_valid[k] = valid_list[k * per:(k + 1) * per]
        synchronize(device)
        eval_s += time.perf_counter() - t1

        history["epoch"].append(epoch)
        history["train_s"].append(train_s)
        for c, label in enumerate(labels):
            history["train_mse"][label].append(train_mse[c])
            history["valid_mae"][label].append(valid_list[c])
        if weighting is not None:
            for label, w in zip(labels, weighting.weights().tolist()):
                history["task_weight"][label].append(float(w))
        if penalty is not None:
            history["penalty"].append(pen_sum.item() / len(loader))
            history["data_loss"].append(sum(train_mse))
        stopped = not all(math.isfinite(v) for v in train_mse)
        if slot is not None:
            slot.save({"epoch": epoch, "signature": signature, "stopped": stopped,
                       "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict(), "generator": loader.generator.get_state(),
                       "rng": torch.get_rng_state(),
                       "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                       "best_score": best_score, "best_state": best_state,
                       "best_epoch": best_epoch, "best_valid": best_valid, "history": history,
                       "train_s": train_s, "eval_s": eval_s, "steps": steps})
        if stopped:
            break  # a member diverged: keep what was measured (the record shows it)

    with torch.no_grad():
        for k in range(k_total):
            if best_state[k] is not None:
                for n, t in views[k].items():
                    t.copy_(best_state[k][n])
    t2 = time.perf_counter()
    test_mae, test_std = evaluate_mae(model, data, test_ids, columns, eval_batch_size, baseline)
    synchronize(device)
    test_s = time.perf_counter() - t2
    test_list, test_std_list = test_mae.tolist(), test_std.tolist()
    epochs_run = len(history["epoch"])
    metrics = {
        "test_mae": dict(zip(labels, test_list)),
        "test_mae_std": dict(zip(labels, test_std_list)),
        "valid_mae": {l: best_valid[c // per][c % per] for c, l in enumerate(labels)},
        "best_epoch": {l: best_epoch[c // per] for c, l in enumerate(labels)},
        "mean_test_mae_std": sum(test_std_list) / len(test_std_list),
    }
    timing = {"train_s": train_s, "eval_s": eval_s, "test_s": test_s, "steps": steps, "epochs_run": epochs_run,
              "epoch_s": train_s / epochs_run, "members": k_total, "precision": "fp32", "compiled": False}
    if resumed_from:
        timing["resumed_from_epoch"] = resumed_from
    return RegressionFit(history=history, metrics=metrics, timing=timing)
