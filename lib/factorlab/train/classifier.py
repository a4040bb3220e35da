"""The training loop of image classifiers (the MNIST nets of the baseline, factorized and
compression experiments): any optimizer, epochs over a device loader, the test set after each.

Everything lives on the device: the data come from a :class:`~factorlab.data.DeviceLoader`,
the loss is accumulated on the device and read once per check window, and the clock is read
only after synchronizing. Training time excludes evaluation.
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
from factorlab.train.device import autocast, precision_name, synchronize

#: ``preprocess(x) -> x``: turns a stored batch (e.g. uint8 images) into model input.
Preprocess = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class FitResult:
    """What :func:`fit_classifier` measured.

    ``history`` holds one list per quantity, one entry per epoch: ``epoch`` (1-based),
    ``train_loss`` and ``train_acc`` (running means over the epoch's batches, in training
    mode), ``test_loss`` and ``test_acc`` (evaluation mode, whole test set), ``train_s``
    (cumulative training seconds at the end of the epoch).
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

    ``x``: stored inputs [N, ...] on ``device``; ``y``: int64 labels [N].
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
    n = y.shape[0]
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
            [N, 28, 28]), ``y`` int64 class labels [N].
        seed: seeds the shuffling order (the model's initialisation and dropout use the global
            generator, seeded by the caller).
        target_loss: when given, the training loss (mean over a window of about
            1/``checks_per_epoch`` of an epoch) is watched, and the first time it falls to
            ``target_loss`` or below is recorded as ``time_to_target_s`` (training seconds)
            and ``epochs_to_target`` (fractional epochs); both are None if never reached.

    Returns:
        A :class:`FitResult`; ``metrics`` has the final ``test_acc``, ``test_loss``,
        ``train_loss``, ``train_acc``, the best ``best_test_acc`` and the target results;
        ``timing`` has ``train_s`` (training only, evaluation excluded), ``eval_s``,
        ``steps``, ``precision``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    model.to(device)
    loader = DeviceLoader(*train, batch_size=batch_size, shuffle=True, seed=seed)
    steps_per_epoch = len(loader)
    window = max(1, steps_per_epoch // max(1, checks_per_epoch))

    history: dict[str, list[float]] = {k: [] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "train_s")}
    train_s = eval_s = 0.0
    step = 0
    time_to_target: float | None = None
    epochs_to_target: float | None = None

    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        win_sum = torch.zeros((), device=device, dtype=torch.float64)
        win_n = 0
        synchronize(device)
        t0 = time.perf_counter()
        for xb, yb in _progress(loader, steps_per_epoch, f"epoch {epoch}/{epochs}"):
            with autocast(device):
                logits = model(preprocess(xb))
                loss = F.cross_entropy(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            n = yb.shape[0]
            seen += n
            batch_loss = loss.detach().double()
            loss_sum += batch_loss * n
            correct += (logits.detach().argmax(dim=1) == yb).sum()
            if target_loss is not None and time_to_target is None:
                win_sum += batch_loss
                win_n += 1
                if win_n == window:
                    synchronize(device)
                    elapsed = train_s + time.perf_counter() - t0
                    if win_sum.item() / win_n <= target_loss:
                        time_to_target = elapsed
                        epochs_to_target = step / steps_per_epoch
                    win_sum.zero_()
                    win_n = 0
        synchronize(device)
        train_s += time.perf_counter() - t0

        t1 = time.perf_counter()
        test_loss, test_acc = evaluate(model, *test, preprocess=preprocess, device=device, batch_size=eval_batch_size)
        synchronize(device)
        eval_s += time.perf_counter() - t1

        history["epoch"].append(epoch)
        history["train_loss"].append(loss_sum.item() / seen)
        history["train_acc"].append(correct.item() / seen)
        history["test_loss"].append(test_loss)
        history["test_acc"].append(test_acc)
        history["train_s"].append(train_s)
        if not math.isfinite(history["train_loss"][-1]):
            break  # diverged: keep what was measured, the record shows it

    metrics = {
        "test_acc": history["test_acc"][-1],
        "test_loss": history["test_loss"][-1],
        "train_loss": history["train_loss"][-1],
        "train_acc": history["train_acc"][-1],
        "best_test_acc": max(history["test_acc"]),
        "target_loss": target_loss,
        "time_to_target_s": time_to_target,
        "epochs_to_target": epochs_to_target,
    }
    timing = {
        "train_s": train_s,
        "eval_s": eval_s,
        "steps": step,
        "epochs_run": len(history["epoch"]),
        "precision": precision_name(device),
        "compiled": False,
    }
    return FitResult(history=history, metrics=metrics, timing=timing)
