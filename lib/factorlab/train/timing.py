"""Wall-clock timing of forward (and backward) passes, done right: warm-up excluded,
device synchronized before every clock read, median over repeats."""
from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from factorlab.clock import seconds_per_call, synchronize


def median_time(fn: Callable[[], object], device: torch.device | str = "cpu", *, repeats: int = 20,
                warmup: int = 3, min_time: float = 0.0) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls.

    With ``min_time`` > 0, each timed sample loops ``fn`` until at least that many seconds
    have passed and reports the per-call mean (for calls of a few microseconds).
    """
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    return statistics.median(seconds_per_call(fn, device, min_time) for _ in range(repeats))


def interleaved_times(fns: dict[str, Callable[[], object]], device: torch.device | str = "cpu", *,
                      repeats: int = 20, warmup: int = 3, min_time: float = 0.0,
                      warm_each: bool = False) -> dict[str, float]:
    """Median seconds of each of ``fns`` (name -> callable), timed in rounds: every round takes
    one sample of each, in turn (see :func:`median_time` for ``warmup`` and ``min_time``). A
    slow spell of the machine or a clock change then touches every callable alike, so ratios
    between them are what the code makes them, not when each was measured.

    ``warm_each``: one untimed call of the same callable right before each sample, so every
    sample starts from that callable's own data in cache. Without it, a callable whose
    predecessor in the round touched other data of cache size (another copy of a weight) pays
    the misses in its first call, and one that follows a callable on the same tensors does
    not: a bias of the order of one weight's transfer from memory per sample."""
    device = torch.device(device)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if warm_each:
                fn()
                synchronize(device)
            samples[name].append(seconds_per_call(fn, device, min_time))
    return {name: statistics.median(v) for name, v in samples.items()}


def time_inference(model: torch.nn.Module, x: torch.Tensor, **kwargs) -> float:
    """Median seconds of ``model(x)`` in eval mode without autograd (see :func:`median_time`)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return median_time(lambda: model(x), x.device, **kwargs)
    finally:
        model.train(was_training)


def time_forward_backward(module: torch.nn.Module, x: torch.Tensor, **kwargs) -> float:
    """Median seconds of one forward and backward pass of ``module`` on ``x`` (a sum of the
    output as the loss; gradients of ``x`` included when it requires them)."""

    def step():
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()

    return median_time(step, x.device, **kwargs)
