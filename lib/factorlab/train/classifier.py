"""The training loop of image classifiers (the MNIST nets of the baseline, factorized and
compression experiments): any optimizer, epochs over a device loader, the test set after each.

Everything lives on the device: the data come from a :class:`~factorlab.data.DeviceLoader`;
a step keeps only references to its loss, predictions and labels, which are summed once per
epoch; the clock is read only after synchronizing, at the end of each loss window. Training
time excludes evaluation. The C allocator's setting is the process's (set where a training
process starts, :mod:`factorlab.train.allocator`); the loop records it.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.data.loader import DeviceLoader
from factorlab.layers.paths import model_path_record
from factorlab.train.allocator import allocator_in_effect
from factorlab.train.device import autocast, precision_name, synchronize

#: ``preprocess(x) -> x``: turns a stored batch (e.g. uint8 images) into model input.
Preprocess = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class FitResult:
    """What :func:`fit_classifier` measured.

    ``history`` holds one list per quantity. One entry per epoch: ``epoch`` (1-based),
    ``train_loss`` and ``train_acc`` (means over the epoch's samples of the loss and accuracy
    of each batch in training mode, before that batch's optimizer step), ``test_loss`` and
    ``test_acc`` (evaluation mode, whole test set), ``train_s`` (cumulative training seconds
    at the end of the epoch).

    One entry per loss window: each epoch's steps are cut, from its first step, into windows
    of ``timing["window_steps"]`` = max(1, steps per epoch // ``checks_per_epoch``)
    consecutive steps; the last (steps per epoch mod window) steps of an epoch fall in no
    window. ``window_loss`` is the unweighted mean over the window's steps of each batch's
    mean cross-entropy (nats, training mode, before that step's update; NaN when not finite),
    ``window_s`` the cumulative training seconds at the end of the window's last step (device
    synchronized, evaluation excluded), ``window_epoch`` the fractional epoch there (steps
    done / steps per epoch).
    """

    history: dict[str, list[float]]
    metrics: dict[str, float | None]
    timing: dict[str, float | int | str | None]


def _progress(iterable, total: int, desc: str):
    """A tqdm bar only when stderr is an interactive terminal (never in notebooks or CI)."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    preprocess: Preprocess,
    device: torch.device,
    batch_size: int = 1000,
) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy (fraction) of ``model`` on ``(x, y)``.

    ``x``: stored inputs [N, ...] on ``device``; ``y``: int64 labels [N], or [N, d] with logits
    [N, C, d] (K-dimensional cross-entropy, e.g. d binary tasks); means over all N·d labels.
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for xb, yb in DeviceLoader(x, y, batch_size=batch_size):
        with autocast(device):
            logits = model(preprocess(xb))
        loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)
    n = y.numel()  # labels: one per sample, or one per sample and position (K-dimensional)
    return loss_sum.item() / n, correct.item() / n


def fit_classifier(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    device: torch.device,
    seed: int,
    preprocess: Preprocess,
    target_loss: float | None = None,
    checks_per_epoch: int = 10,
    eval_batch_size: int = 1000,
) -> FitResult:
    """Train ``model`` with cross-entropy for ``epochs`` epochs and evaluate after each.

    Args:
        train, test: ``(x, y)`` tensors already on ``device``; ``x`` as stored (e.g. uint8
            [N, 28, 28]), ``y`` int64 class labels [N]; or [N, d] for a model whose logits
            are [B, C, d] (d classification problems at once, e.g. d one-vs-all tasks with
            C = 2): losses and accuracies are then means over all N·d labels.
        seed: seeds the shuffling order (the model's initialisation and dropout use the global
            generator, seeded by the caller).
        target_loss: when given, the first window (see :class:`FitResult`) whose mean training
            loss is at or below ``target_loss`` gives ``time_to_target_s`` (training seconds
            at its end) and ``epochs_to_target`` (fractional epochs there); both are None if
            no window reaches it. Any other target can be read from the recorded windows
            afterwards (:func:`factorlab.analysis.time_to_target`).
        checks_per_epoch: windows per epoch (about; see :class:`FitResult`).

    Returns:
        A :class:`FitResult`; ``metrics`` has the final ``test_acc``, ``test_loss``,
        ``train_loss``, ``train_acc``, the best ``best_test_acc`` and the target results;
        ``timing`` has ``train_s`` (training only, evaluation excluded), ``eval_s``,
        ``steps``, ``steps_per_epoch``, ``window_steps``, ``precision`` and ``allocator``
        (on the CPU :func:`~factorlab.train.allocator.allocator_in_effect`: the process's
        setting, which this loop does not change); for a model with factorized layers also
        ``paths`` and ``path_cost`` (:func:`factorlab.layers.paths.model_path_record`: which
        computation each layer ran, chosen by which cost rule and calibration).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    allocator = allocator_in_effect() if device.type == "cpu" else "caching (CUDA)"
    model.to(device)
    loader = DeviceLoader(*train, batch_size=batch_size, shuffle=True, seed=seed)
    steps_per_epoch = len(loader)
    window = max(1, steps_per_epoch // max(1, checks_per_epoch))

    history: dict[str, list[float]] = {k: [] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc",
                                                       "train_s", "window_loss", "window_s", "window_epoch")}
    train_s = eval_s = 0.0
    step = 0

    for epoch in range(1, epochs + 1):
        model.train()
        # Per step only references are kept (no device arithmetic, no host reads): the batch's
        # mean loss, its predicted classes and its labels; the epoch's sums come after it.
        losses: list[torch.Tensor] = []
        preds: list[torch.Tensor] = []
        labels: list[torch.Tensor] = []
        window_end_s: list[float] = []
        synchronize(device)
        t0 = time.perf_counter()
        for xb, yb in _progress(loader, steps_per_epoch, f"epoch {epoch}/{epochs}"):
            with autocast(device):
                logits = model(preprocess(xb))
                loss = F.cross_entropy(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            preds.append(logits.detach().argmax(dim=1))
            labels.append(yb)
            if len(losses) % window == 0:  # a window ends: stamp the training clock
                synchronize(device)
                window_end_s.append(train_s + time.perf_counter() - t0)
        synchronize(device)
        train_s += time.perf_counter() - t0

        batch_loss = torch.stack(losses).tolist()  # float32 -> exact Python floats
        seen = loss_sum = 0
        for value, yb in zip(batch_loss, labels):  # summed in float64 in step order
            n = yb.numel()
            loss_sum += value * n
            seen += n
        correct = int(torch.cat(preds).eq(torch.cat(labels)).sum())
        for k, end_s in enumerate(window_end_s):
            win_sum = 0.0
            for value in batch_loss[k * window:(k + 1) * window]:
                win_sum += value
            history["window_loss"].append(win_sum / window)
            history["window_s"].append(end_s)
            history["window_epoch"].append((step + (k + 1) * window) / steps_per_epoch)
        step += len(losses)
        del losses, preds, labels

        t1 = time.perf_counter()
        test_loss, test_acc = evaluate(model, *test, preprocess=preprocess, device=device, batch_size=eval_batch_size)
        synchronize(device)
        eval_s += time.perf_counter() - t1

        history["epoch"].append(epoch)
        history["train_loss"].append(loss_sum / seen)
        history["train_acc"].append(correct / seen)
        history["test_loss"].append(test_loss)
        history["test_acc"].append(test_acc)
        history["train_s"].append(train_s)
        if not math.isfinite(history["train_loss"][-1]):
            break  # diverged: keep what was measured, the record shows it

    # the first window at or below the target (NaN never is), as factorlab.analysis.time_to_target reads it
    reached = None if target_loss is None else next(
        (k for k, loss in enumerate(history["window_loss"]) if loss <= target_loss), None)
    metrics = {
        "test_acc": history["test_acc"][-1],
        "test_loss": history["test_loss"][-1],
        "train_loss": history["train_loss"][-1],
        "train_acc": history["train_acc"][-1],
        "best_test_acc": max(history["test_acc"]),
        "target_loss": target_loss,
        "time_to_target_s": None if reached is None else history["window_s"][reached],
        "epochs_to_target": None if reached is None else history["window_epoch"][reached],
    }
    timing = {
        "train_s": train_s,
        "eval_s": eval_s,
        "steps": step,
        "steps_per_epoch": steps_per_epoch,
        "window_steps": window,
        "epochs_run": len(history["epoch"]),
        "precision": precision_name(device),
        "allocator": allocator,
        "compiled": False,
        **model_path_record(model),
    }
    return FitResult(history=history, metrics=metrics, timing=timing)
