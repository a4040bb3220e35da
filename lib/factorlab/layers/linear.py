"""Shared machinery of the factorized ``nn.Linear`` replacements.

A factorized linear layer maps x [*, in_features] to y [*, out_features] with a weight
W [out_features, in_features] that is never stored: ``in_features`` is split into tensor
modes (i_1, ..., i_d) and ``out_features`` into (o_1, ..., o_d), W is viewed as a tensor of
shape (o_1, ..., o_d, i_1, ..., i_d) (row-major, so ``W.reshape(out, in)`` is the usual
matrix), and that tensor is stored as factors. The forward pass contracts the input with the
factors as one einsum along a pairwise path. The candidate paths (:mod:`factorlab.layers.paths`)
are several contraction orders (FLOP-optimal, FLOP + memory, greedy, one factor at a time) and
the rebuilt weight followed by one matrix product (``dense``); the layer times them
(``autotune``) or asks the calibrated cost model, once per input shape and mode. The same
equation without the input, :func:`weight_equation`, rebuilds the weight.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import opt_einsum
import torch
import torch.nn.functional as F
from torch import nn

from factorlab.layers.base import (ContractionPlan, FactorizedLayer, check_positive_int, contraction_plan,
                                   sequential_path)
from factorlab.layers.paths import Candidate, Op

#: einsum symbols usable by torch.einsum.
_SYMBOLS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``y + bias`` ([*, out] + [out]), or ``y`` when ``bias`` is None."""
    return y if bias is None else y + bias


class Symbols:
    """Hands out distinct einsum letters."""

    def __init__(self):
        self._next = 0

    def take(self, n: int = 1) -> str:
        """``n`` fresh letters."""
        if self._next + n > len(_SYMBOLS):
            raise ValueError("too many tensor modes for torch.einsum (at most 52 indices)")
        s = _SYMBOLS[self._next:self._next + n]
        self._next += n
        return s


def weight_equation(subscripts: tuple[str, list[str], str]) -> str:
    """The einsum equation rebuilding the weight tensor (o_1..o_d, i_1..i_d) from the factors,
    given a layer's (x, factors, y) forward ``subscripts``."""
    x, fs, y = subscripts
    return ",".join(fs) + "->" + y[1:] + x[1:]


class FactorizedLinear(FactorizedLayer):
    """Base class of the factorized ``nn.Linear`` replacements: subclasses set
    ``in_modes``/``out_modes``, implement ``factors()``, ``subscripts()`` and
    ``dense_weight()`` (a call of the family's module-level conversion function) and the
    rank hooks of :class:`~factorlab.layers.FactorizedLayer`, and call
    ``reset_parameters()`` at the end of ``__init__``.

    ``subscripts()`` returns (x, [one per factor], y) einsum subscripts where ``x`` is the
    batch letter followed by one letter per input mode and ``y`` the batch letter followed by
    one letter per output mode.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features))
        else:
            self.register_parameter("bias", None)
        self.in_modes: tuple[int, ...] = (self.in_features,)
        self.out_modes: tuple[int, ...] = (self.out_features,)

    @property
    def fan_in(self) -> int:
        return self.in_features

    # -- to implement ------------------------------------------------------------------
    def subscripts(self) -> tuple[str, list[str], str]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    def dense_params(self) -> int:
        """in_features out_features (+ out_features with bias)."""
        return self.in_features * self.out_features + (self.out_features if self.bias is not None else 0)

    def _equation(self) -> str:
        x, fs, y = self.subscripts()
        return ",".join([x, *fs]) + "->" + y

    def _sequential_order(self) -> list[int]:
        """Factor numbers (1-based operand positions) in the order the ``sequential`` path
        contracts them with the input: last factor first (the input modes sit in the last
        factors of CP and TT); Tucker overrides it (input factors, core, output factors)."""
        return list(range(len(self.factors()), 0, -1))

    def _plans_for(self, batch: int) -> dict[str, ContractionPlan]:
        """The contraction orders of the input with the factors, by path name (duplicates
        dropped): ``factored`` (FLOP-optimal, opt_einsum's dynamic programming), ``combo``
        (dynamic programming on FLOPs + elements written), ``greedy`` and ``sequential`` (one
        factor at a time, Novikov et al.'s order for TT), and ``dense``: every factor first
        (the rebuilt weight), then one product with the input."""
        def build():
            eq = self._equation()
            shapes = [(batch, *self.in_modes)] + [tuple(f.shape) for f in self.factors()]
            n = len(shapes)
            plans = {"factored": ContractionPlan(eq, shapes)}
            for name, opt in (("combo", opt_einsum.DynamicProgramming(minimize="combo")), ("greedy", "greedy"),
                              ("sequential", sequential_path(n, self._sequential_order()))):
                plan = ContractionPlan(eq, shapes, optimize=opt)
                if all(plan.path != p.path for p in plans.values()):
                    plans[name] = plan
            if n > 2:
                weight = contraction_plan(weight_equation(self.subscripts()), tuple(shapes[1:]))
                rebuild = [tuple(i + 1 for i in step) for step in weight.path] + [(0, 1)]
            else:
                rebuild = [(0, 1)]
            plans["dense"] = ContractionPlan(eq, shapes, optimize=rebuild)
            return plans
        return self._plan(("plans", batch), build)

    def _check_input_shape(self, shape) -> tuple[int, int]:
        shape = tuple(int(s) for s in shape)
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"input shape {shape} must end with in_features={self.in_features}")
        return (math.prod(shape[:-1]), self.in_features)

    def _build_candidates(self, shape: tuple[int, int]) -> dict[str, Candidate]:
        batch = shape[0]
        x_shape = (batch, *self.in_modes)
        out = {}
        for name, plan in self._plans_for(batch).items():
            if name == "dense":
                continue
            out[name] = Candidate(
                name, prepare=lambda plan=plan: plan.prepare(*self._factor_tuple()),
                apply=lambda x, prep, bias, plan=plan: add_bias(plan.apply(x.reshape(x_shape), *prep).reshape(batch, -1),
                                                                bias),
                prep_ops=plan.ops(True), ops=plan.ops(False, (batch, self.out_features)))
        rebuild = self._plans_for(batch)["dense"]
        mm = rebuild.ops(False)[-1]
        out["dense"] = Candidate(
            "dense", prepare=lambda: (self.dense_weight(),), apply=lambda x, prep, bias: F.linear(x, prep[0], bias),
            prep_ops=rebuild.ops(True), ops=(Op("mm", mm.flops, mm.elements),), prep_key="dense")
        return out

    def _forward_plan(self, batch: int) -> ContractionPlan:
        """The contraction a gradient-recording forward pass on ``batch`` rows runs here
        (``path_for``; ``dense``: the rebuilt weight's contraction, then the product with the
        input)."""
        return self._plans_for(batch)[self.path_for((batch, self.in_features), grad=True)]

    def canonical_path(self, input_shape: Sequence[int]) -> str:
        """``force_path`` when set, else ``factored`` (the FLOP-optimal contraction order):
        the path :meth:`flops` counts."""
        shape = self._check_input_shape(input_shape)
        return self._check_force_path(shape) if self.force_path is not None else "factored"

    def _output_elements(self, shape: tuple[int, int]) -> int:
        return shape[0] * self.out_features

    def flops(self, input_shape: Sequence[int]) -> int:
        """Forward FLOPs for an input of shape ``[*, in_features]`` (all leading dims are
        batch): the FLOP-optimal contraction of the input with the factors (opt_einsum's
        dynamic programming; ``force_path`` when set) + 1 per output for the bias. The same on
        every machine, whatever path the forward pass runs (that one: :meth:`chosen_flops`)."""
        return super().flops(input_shape)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[*, in_features]`` -> ``[*, out_features]``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected input [..., {self.in_features}], got {tuple(x.shape)}")
        if x.dim() == 2:
            return self._run_path(x, (x.shape[0], self.in_features))
        lead = x.shape[:-1]
        batch = math.prod(lead)
        x2 = x.reshape(batch, self.in_features)
        return self._run_path(x2, (batch, self.in_features)).reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        modes = f", in_modes={self.in_modes}, out_modes={self.out_modes}" if len(self.in_modes) > 1 else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}{modes}, rank={self.rank}, "
                f"params={self.num_params()}, bias={self.bias is not None}")

    @staticmethod
    def _check_dense(layer: nn.Module) -> None:
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"from_dense expects an nn.Linear, got {type(layer).__name__}")

    @staticmethod
    def _geometry(layer: nn.Linear) -> dict:
        return {"in_features": layer.in_features, "out_features": layer.out_features, "bias": layer.bias is not None}
