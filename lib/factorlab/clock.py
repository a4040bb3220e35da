"""Wall-clock timing of a callable: the one loop that turns ``fn()`` into seconds per call,
shared by the layers' path timer (:func:`factorlab.layers.paths.best_time`) and the training
timers (:mod:`factorlab.train.timing`). Imports nothing of factorlab."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (CUDA), so that a clock read after it measures
    finished work; nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn: Callable[[], object], device: torch.device, min_time: float = 0.0) -> float:
    """One timing sample: calls ``fn()`` (synchronizing ``device`` after each call) until at
    least ``min_time`` seconds have passed, at least once, and returns the mean seconds per
    call. ``min_time`` > 0 is for calls of a few microseconds, where one call is below the
    clock's resolution."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        synchronize(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return elapsed / n
