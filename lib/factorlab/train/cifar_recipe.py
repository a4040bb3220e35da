"""The fast CIFAR-10 training loop: ResNet-9 and airbench-style recipes, long schedules.

One function, :func:`fit_fast`, driven by a *recipe*: a JSON-able dict that sits in the run's
config (every key below is required unless a default is given):

- ``epochs`` (float: airbench trains 9.9 epochs), ``batch_size``;
- ``lr`` and ``weight_decay`` in the per-example convention of Page's ResNet-9: the loss
  is *summed* over the batch, so SGD gets ``lr / batch_size`` and coupled weight decay
  ``weight_decay * batch_size`` (the decay per step, lr x wd, is then independent of the
  batch size); ``momentum``, ``nesterov``;
- ``schedule``: a multiplier of ``lr`` per step (see :mod:`factorlab.train.schedules`);
- ``wd_mode``: ``"usual"`` or ``"scaled"`` (compressed layers' decay x their compression,
  see :func:`factorlab.train.optim.param_groups`); ``norm_lr_scale`` (default 1; airbench 64);
- ``label_smoothing`` (default 0);
- ``augment``: :class:`factorlab.data.augment.Augment` as a dict;
- ``ema``: None or ``{"every", "decay_base", "decay_pow"}``: airbench's Lookahead/EMA, exactly
  as airbench 0.1.8's ``train`` does it (see :func:`lookahead_step`): the average starts from
  the weights before the whitening initialisation, and every ``every`` steps it absorbs the
  weights with decay :func:`~factorlab.train.optim.ema_decay` and is copied back into the
  model; after the last step the model takes the average. Nothing is copied at epoch ends.
- ``whiten_bias_epochs``: None or the epochs after which the whitening layer's bias is
  frozen; ``whiten_images`` (default 5000): training images used to set it (a fixed random
  subset, seed 0);
- ``tta``: the test-time augmentation level of the headline accuracy: 0 none, 1 mirror,
  2 mirror + one-pixel translations (airbench's); all three are recorded anyway;
- ``eval_train_n`` (default 0): per epoch, also evaluate the loss on this many training
  images, in eval mode and without augmentation (the long schedule's overfitting question);
- ``bf16`` (default True: bf16 autocast on CUDA; the CPU always computes in fp32),
  ``compile`` (default False; CUDA only), ``channels_last`` (default True: the model, the
  batches and the evaluation inputs in channels-last memory format, on any device; on this
  project's CPU it makes the training step of every net of the cpu grids faster, see
  ``benchmarks/memory_format.py``),
  ``warmup_steps`` (default 3).

Timing, as ``shared/GPU.md`` asks: ``warmup_steps`` steps on random data first (cuDNN
autotuning, compilation), after which the model's state is restored; ``synchronize`` before
every clock read; ``train_s`` counts the training steps and the whitening initialisation
(airbench counts it too), not the per-epoch evaluations; ``tta_s`` is the final evaluation at
the recipe's TTA level, and ``total_s = train_s + tta_s`` is comparable with airbench's
reported time. Device name, precision and compile setting go into ``timing``.
"""
from __future__ import annotations

import contextlib
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.data.augment import Augment, AugmentedBatches, translate
from factorlab.layers.paths import model_path_record
from factorlab.train.device import synchronize
from factorlab.train.classifier import FitResult
from factorlab.train.optim import LookaheadEMA, ema_decay, param_groups
from factorlab.train.schedules import make_schedule

REQUIRED = ("epochs", "batch_size", "lr", "weight_decay", "momentum", "nesterov", "schedule", "wd_mode", "augment",
            "ema", "whiten_bias_epochs", "tta")
DEFAULTS = {"norm_lr_scale": 1.0, "label_smoothing": 0.0, "whiten_images": 5000, "eval_train_n": 0, "bf16": True,
            "compile": False, "channels_last": True, "warmup_steps": 3, "eval_batch_size": 1000}
TTA_LEVELS = (0, 1, 2)
EMA_KEYS = ("every", "decay_base", "decay_pow")


def check_recipe(recipe: dict) -> dict:
    """``recipe`` with defaults filled in; ValueError naming missing or unknown keys."""
    missing = [k for k in REQUIRED if k not in recipe]
    unknown = sorted(set(recipe) - set(REQUIRED) - set(DEFAULTS))
    if missing or unknown:
        raise ValueError(f"recipe: missing keys {missing}, unknown keys {unknown}; required {list(REQUIRED)}, "
                         f"optional {sorted(DEFAULTS)}")
    r = {**DEFAULTS, **recipe}
    if not r["epochs"] > 0:
        raise ValueError(f"epochs must be positive, got {r['epochs']!r}")
    if r["ema"] is not None:
        if not isinstance(r["ema"], dict) or set(r["ema"]) != set(EMA_KEYS):
            got = sorted(r["ema"]) if isinstance(r["ema"], dict) else r["ema"]
            raise ValueError(f"ema must be None or a dict with exactly the keys {list(EMA_KEYS)}, got {got!r}"
                             + (" (start_epoch is gone: the average starts at step 0, as in airbench 0.1.8)"
                                if isinstance(r["ema"], dict) and "start_epoch" in r["ema"] else ""))
        if not (isinstance(r["ema"]["every"], int) and r["ema"]["every"] >= 1):
            raise ValueError(f"ema.every must be a positive integer, got {r['ema']['every']!r}")
    if r["tta"] not in TTA_LEVELS:
        raise ValueError(f"tta must be one of {TTA_LEVELS}, got {r['tta']!r}")
    Augment.from_dict(r["augment"])
    return r


def _precision(device: torch.device, bf16: bool):
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16), "bf16-autocast"
    return contextlib.nullcontext(), "fp32"


@torch.no_grad()
def predict_levels(model: nn.Module, x: torch.Tensor, normalize, *, max_level: int = 0, batch_size: int = 1000,
                   amp=contextlib.nullcontext, channels_last: bool = False) -> dict[int, torch.Tensor]:
    """Logits (float32) of ``model`` in eval mode for uint8 images ``x`` [N, 3, H, W] at every
    test-time augmentation level up to ``max_level``, sharing the forward passes:

    - level 0: the image as it is (1 pass);
    - level 1: the mean of level 0 and the mirrored image (2 passes);
    - level 2 (airbench's): half of level 1, plus a quarter each of level 1 applied to the
      image translated by one pixel down-right and up-left, reflect border (6 passes).

    ``normalize``: uint8 batch -> model input; ``amp()``: the precision context.
    """
    if max_level not in TTA_LEVELS:
        raise ValueError(f"max_level must be one of {TTA_LEVELS}, got {max_level!r}")
    was_training = model.training
    model.eval()
    out: dict[int, list[torch.Tensor]] = {level: [] for level in range(max_level + 1)}

    def net(v):
        if channels_last:
            v = v.contiguous(memory_format=torch.channels_last)
        with amp():
            return model(v).float()

    def mirror(v):
        return 0.5 * (net(v) + net(v.flip(-1)))

    try:
        for xb in x.split(batch_size):
            xb = normalize(xb)
            plain = net(xb)
            out[0].append(plain)
            if max_level >= 1:
                mirrored = 0.5 * (plain + net(xb.flip(-1)))
                out[1].append(mirrored)
            if max_level >= 2:
                shifts = torch.ones(xb.shape[0], 2, dtype=torch.int64, device=xb.device)
                moved = [mirror(translate(xb, s * shifts, 1, "reflect")) for s in (1, -1)]
                out[2].append(0.5 * mirrored + 0.25 * (moved[0] + moved[1]))
    finally:
        model.train(was_training)
    return {level: torch.cat(chunks) for level, chunks in out.items()}


def predict(model: nn.Module, x: torch.Tensor, normalize, *, level: int = 0, **kwargs) -> torch.Tensor:
    """Logits at one test-time augmentation ``level`` (see :func:`predict_levels`)."""
    return predict_levels(model, x, normalize, max_level=level, **kwargs)[level]


def _loss_acc(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).sum().item() / y.shape[0]


def _warmup(model: nn.Module, steps: int, batch_size: int, device: torch.device, amp, channels_last: bool,
            n_classes: int) -> None:
    """``steps`` training steps on random data (``amp()``: the precision context), then the
    model's state restored exactly."""
    if steps <= 0:
        return
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0, momentum=0.9, nesterov=True)
    g = torch.Generator(device=device).manual_seed(12345)  # never touches the run's generators
    model.train()
    for _ in range(steps):
        x = torch.randn(batch_size, 3, 32, 32, device=device, generator=g)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, n_classes, (batch_size,), device=device, generator=g)
        with amp():
            loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        model.load_state_dict(state)
    model.zero_grad(set_to_none=True)


def lookahead_step(ema: LookaheadEMA | None, model: nn.Module, step: int, total_steps: int,
                   ema_cfg: dict | None) -> None:
    """airbench 0.1.8's Lookahead after optimizer step number ``step`` (1-based) of
    ``total_steps``: when ``step`` is a multiple of ``every``, ``ema`` absorbs the model with
    decay ``ema_decay(step, total_steps, decay_base, every, decay_pow)`` and the model takes
    the average; at the last step the model then takes the average (decay 1). Nothing when
    ``ema`` is None."""
    if ema is None:
        return
    if step % ema_cfg["every"] == 0:
        ema.update(model, ema_decay(step, total_steps, ema_cfg["decay_base"], ema_cfg["every"], ema_cfg["decay_pow"]))
    if step >= total_steps:
        ema.update(model, 1.0)


def fit_fast(model: nn.Module, data, recipe: dict, *, device: torch.device | str, seed: int,
             n_classes: int = 10) -> FitResult:
    """Train ``model`` on ``data`` (a :class:`factorlab.data.cifar10.CIFAR10Data` on
    ``device``) with ``recipe`` (see the module docstring) and evaluate it.

    ``seed`` seeds the batch order and augmentation (the model's initialisation is the
    caller's). Returns a :class:`~factorlab.train.classifier.FitResult`:

    - ``history`` per epoch: ``epoch`` (fractional for a partial last epoch), ``lr`` (the
      multiplier at the epoch's end), ``train_loss``/``train_acc`` (running means over the
      epoch's augmented batches; the loss *with* label smoothing, as trained),
      ``test_loss``/``test_acc`` (no TTA, plain cross-entropy), ``train_s`` (cumulative), and
      with ``eval_train_n`` also ``train_eval_loss``/``train_eval_acc``;
    - ``metrics``: ``test_acc`` and ``test_loss`` at the recipe's TTA level,
      ``test_acc_tta0/1/2``, ``test_loss_tta0``, final ``train_loss``/``train_acc``,
      ``best_test_acc`` (over epochs, no TTA), ``diverged``;
    - ``timing``: ``train_s``, ``whiten_s``, ``tta_s``, ``total_s``, ``eval_s``, ``steps``,
      ``epochs_run``, ``steps_per_epoch``, ``precision``, ``compiled``, ``channels_last``,
      ``warmup_steps``, ``device_name``; for a model with factorized layers also ``paths``
      and ``path_cost`` (:func:`factorlab.layers.paths.model_path_record`).
    """
    r = check_recipe(recipe)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    channels_last = bool(r["channels_last"])
    compiled = bool(r["compile"]) and cuda
    precision = _precision(dev, r["bf16"])[1]

    def amp():
        return _precision(dev, r["bf16"])[0]

    old_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True if cuda else old_benchmark
    try:
        model.to(dev)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        net = torch.compile(model) if compiled else model
        bs = int(r["batch_size"])
        batches = AugmentedBatches(data.train_x, data.train_y, data.mean, data.std, batch_size=bs,
                                   augment=r["augment"], seed=seed, drop_last=True, channels_last=channels_last)
        steps_per_epoch = len(batches)
        total_steps = math.ceil(steps_per_epoch * r["epochs"])
        schedule = make_schedule(r["schedule"], total_steps, steps_per_epoch)
        groups = param_groups(model, lr=r["lr"] / bs, weight_decay=r["weight_decay"] * bs, wd_mode=r["wd_mode"],
                              norm_lr_scale=r["norm_lr_scale"])
        for g in groups:
            g["base_lr"] = g["lr"]
        optimizer = torch.optim.SGD(groups, lr=r["lr"] / bs, momentum=r["momentum"], nesterov=r["nesterov"])

        _warmup(net, int(r["warmup_steps"]), bs, dev, amp, channels_last, n_classes)

        ema_cfg = r["ema"]
        # airbench 0.1.8 takes the average's starting point before the whitening initialisation
        ema = LookaheadEMA(model) if ema_cfg is not None else None
        whiten = getattr(model, "whiten", None) if hasattr(model, "init_whitening") else None
        eval_train = None
        if r["eval_train_n"]:
            n = min(int(r["eval_train_n"]), data.train_x.shape[0])
            g_eval = torch.Generator().manual_seed(0)
            idx = torch.randperm(data.train_x.shape[0], generator=g_eval)[:n].sort().values.to(dev)
            eval_train = (data.train_x[idx], data.train_y[idx])

        whiten_idx = None
        if whiten is not None:  # a fixed random subset: an image tree's training set is sorted by class
            n = min(int(r["whiten_images"]), data.train_x.shape[0])
            whiten_idx = torch.randperm(data.train_x.shape[0], generator=torch.Generator().manual_seed(0))[:n]
            whiten_idx = whiten_idx.sort().values.to(dev)

        history: dict[str, list] = {k: [] for k in ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                                                    "train_s")}
        if eval_train is not None:
            history.update(train_eval_loss=[], train_eval_acc=[])
        train_s = eval_s = whiten_s = 0.0
        step = 0
        diverged = False

        synchronize(dev)
        t0 = time.perf_counter()
        if whiten is not None:  # whitening initialisation from training images: part of training time
            model.init_whitening(data.normalize(data.train_x[whiten_idx]))
        synchronize(dev)
        whiten_s = time.perf_counter() - t0
        train_s += whiten_s

        for epoch in range(math.ceil(r["epochs"])):
            if whiten is not None and r["whiten_bias_epochs"] is not None:
                whiten.bias.requires_grad_(epoch < r["whiten_bias_epochs"])
            net.train()
            loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
            correct = torch.zeros((), device=dev, dtype=torch.int64)
            seen = 0
            synchronize(dev)
            t0 = time.perf_counter()
            for xb, yb in batches:
                with amp():
                    logits = net(xb)
                    loss = F.cross_entropy(logits.float(), yb, label_smoothing=r["label_smoothing"], reduction="sum")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                mult = schedule(step)
                for g in optimizer.param_groups:
                    g["lr"] = g["base_lr"] * mult
                optimizer.step()
                step += 1
                loss_sum += loss.detach().double()
                correct += (logits.detach().argmax(1) == yb).sum()
                seen += yb.shape[0]
                lookahead_step(ema, model, step, total_steps, ema_cfg)
                if step >= total_steps:
                    break
            synchronize(dev)
            train_s += time.perf_counter() - t0

            t1 = time.perf_counter()
            logits_test = predict(net, data.test_x, data.normalize, level=0, batch_size=r["eval_batch_size"], amp=amp,
                                  channels_last=channels_last)
            test_loss, test_acc = _loss_acc(logits_test, data.test_y)
            if eval_train is not None:
                tl, ta = _loss_acc(predict(net, eval_train[0], data.normalize, level=0,
                                           batch_size=r["eval_batch_size"], amp=amp, channels_last=channels_last),
                                   eval_train[1])
                history["train_eval_loss"].append(tl)
                history["train_eval_acc"].append(ta)
            synchronize(dev)
            eval_s += time.perf_counter() - t1

            history["epoch"].append(step / steps_per_epoch)
            history["lr"].append(schedule(step))
            history["train_loss"].append(loss_sum.item() / max(1, seen))
            history["train_acc"].append(correct.item() / max(1, seen))
            history["test_loss"].append(test_loss)
            history["test_acc"].append(test_acc)
            history["train_s"].append(train_s)
            if not math.isfinite(history["train_loss"][-1]):
                diverged = True
                break

        # Final evaluation: the recipe's TTA level, timed (airbench counts it); every level up
        # to 2 goes into the record (one more untimed sweep when the recipe's level is lower).
        test_loss0 = history["test_loss"][-1]
        synchronize(dev)
        t2 = time.perf_counter()
        levels = predict_levels(net, data.test_x, data.normalize, max_level=r["tta"], batch_size=r["eval_batch_size"],
                                amp=amp, channels_last=channels_last)
        synchronize(dev)
        tta_s = time.perf_counter() - t2
        test_loss = F.cross_entropy(levels[r["tta"]], data.test_y).item()
        if r["tta"] < max(TTA_LEVELS):
            levels = predict_levels(net, data.test_x, data.normalize, max_level=max(TTA_LEVELS),
                                    batch_size=r["eval_batch_size"], amp=amp, channels_last=channels_last)
        accs = {level: (logits.argmax(1) == data.test_y).sum().item() / data.test_y.shape[0]
                for level, logits in levels.items()}
    finally:
        torch.backends.cudnn.benchmark = old_benchmark

    metrics = {
        "test_acc": accs[r["tta"]], "test_loss": test_loss, "tta_level": r["tta"],
        "test_acc_tta0": accs[0], "test_acc_tta1": accs[1], "test_acc_tta2": accs[2], "test_loss_tta0": test_loss0,
        "train_loss": history["train_loss"][-1], "train_acc": history["train_acc"][-1],
        "best_test_acc": max(history["test_acc"]), "diverged": diverged,
    }
    if eval_train is not None:
        metrics.update(train_eval_loss=history["train_eval_loss"][-1], train_eval_acc=history["train_eval_acc"][-1])
    timing = {
        "train_s": train_s, "whiten_s": whiten_s, "tta_s": tta_s, "total_s": train_s + tta_s, "eval_s": eval_s,
        "steps": step, "epochs_run": len(history["epoch"]), "steps_per_epoch": steps_per_epoch,
        "precision": precision, "compiled": compiled, "channels_last": channels_last,
        "warmup_steps": int(r["warmup_steps"]),
        "device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
        **model_path_record(model),
    }
    return FitResult(history=history, metrics=metrics, timing=timing)


__all__ = ["DEFAULTS", "EMA_KEYS", "REQUIRED", "TTA_LEVELS", "check_recipe", "fit_fast", "lookahead_step", "predict",
           "predict_levels"]
