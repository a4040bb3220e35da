"""Learning-rate schedules as functions of the training step: multipliers of a base rate.

Each schedule is described by a JSON-able dict (so it can sit in a run's config) and built by
:func:`make_schedule` into ``f(step) -> multiplier`` for ``step`` in ``0..total_steps``:

- ``{"kind": "piecewise", "epochs": [0, 5, 24], "values": [0, 1, 0]}``: linear between knots
  given in epochs (Page's ResNet-9: up from 0 to the peak at epoch 5, down to 0 at the end);
  knots past the end of training are allowed, the curve is simply cut there.
- ``{"kind": "triangle", "start": 0.2, "peak": 0.23, "end": 0.07}``: airbench's, from
  ``start`` up to 1 at the fraction ``peak`` of training, then down to ``end``.
- ``{"kind": "cosine", "warmup_epochs": 0, "final": 0.0}``: optional linear warm-up, then
  cosine annealing from 1 to ``final`` (the long schedule).
- ``{"kind": "constant"}``.
"""
from __future__ import annotations

import math
from typing import Callable

Schedule = Callable[[int], float]
KINDS = ("piecewise", "triangle", "cosine", "constant")


def piecewise_linear(xs: list[float], ys: list[float]) -> Callable[[float], float]:
    """Linear interpolation through the knots ``(xs[i], ys[i])`` (``xs`` increasing),
    constant beyond the first and last knot."""
    if len(xs) != len(ys) or len(xs) < 1:
        raise ValueError(f"need as many knot positions as values (>= 1), got {len(xs)} and {len(ys)}")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"knot positions must increase strictly, got {xs}")

    def f(x: float) -> float:
        if x <= xs[0]:
            return float(ys[0])
        for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
            if x <= x1:
                return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
        return float(ys[-1])

    return f


def make_schedule(spec: dict, total_steps: int, steps_per_epoch: int) -> Schedule:
    """``f(step) -> lr multiplier`` for the schedule ``spec`` over ``total_steps`` steps.

    Raises:
        ValueError: unknown kind or bad parameters.
    """
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise ValueError(f"schedule must be a dict with kind in {KINDS}, got {spec!r}")
    if total_steps < 1 or steps_per_epoch < 1:
        raise ValueError(f"need total_steps and steps_per_epoch >= 1, got {total_steps}, {steps_per_epoch}")
    kind = spec["kind"]
    if kind == "constant":
        return lambda step: 1.0
    if kind == "piecewise":
        f = piecewise_linear([float(e) for e in spec["epochs"]], [float(v) for v in spec["values"]])
        return lambda step: f(step / steps_per_epoch)
    if kind == "triangle":
        f = piecewise_linear([0.0, spec["peak"], 1.0], [spec["start"], 1.0, spec["end"]])
        return lambda step: f(step / total_steps)
    warm = spec.get("warmup_epochs", 0) * steps_per_epoch
    final = spec.get("final", 0.0)

    def cosine(step: int) -> float:
        if warm > 0 and step < warm:
            return step / warm
        t = (step - warm) / max(1, total_steps - warm)
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return cosine


__all__ = ["KINDS", "Schedule", "make_schedule", "piecewise_linear"]
