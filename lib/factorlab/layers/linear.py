"""Shared machinery of the factorized ``nn.Linear`` replacements.

A factorized linear layer maps x [*, in_features] to y [*, out_features] with a weight
W [out_features, in_features] that is never stored: ``in_features`` is split into tensor
modes (i_1, ..., i_d) and ``out_features`` into (o_1, ..., o_d), W is viewed as a tensor of
shape (o_1, ..., o_d, i_1, ..., i_d) (row-major, so ``W.reshape(out, in)`` is the usual
matrix), and that tensor is stored as factors. The forward pass contracts the input with the
factors as one einsum along a FLOP-optimal pairwise path, planned once per batch size; when
contracting the factors with each other first (i.e. rebuilding the weight) is cheaper for
that batch, the planner's path does exactly that. The same equation without the input,
:func:`weight_equation`, rebuilds the weight.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from factorlab.layers.base import ContractionPlan, FactorizedLayer, check_positive_int

#: einsum symbols usable by torch.einsum.
_SYMBOLS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


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

    def _forward_plan(self, batch: int) -> ContractionPlan:
        shapes = [(batch, *self.in_modes)] + [tuple(f.shape) for f in self.factors()]
        return self._plan(("forward", batch), lambda: ContractionPlan(self._equation(), shapes))

    def flops(self, input_shape: Sequence[int]) -> int:
        """Forward FLOPs for an input of shape ``[*, in_features]`` (all leading dims are batch)."""
        input_shape = tuple(input_shape)
        if not input_shape or input_shape[-1] != self.in_features:
            raise ValueError(f"input shape {input_shape} must end with in_features={self.in_features}")
        batch = math.prod(input_shape[:-1])
        bias = batch * self.out_features if self.bias is not None else 0
        return self._forward_plan(batch).cost + bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[*, in_features]`` -> ``[*, out_features]``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected input [..., {self.in_features}], got {tuple(x.shape)}")
        lead = x.shape[:-1]
        batch = math.prod(lead)
        y = self._forward_plan(batch)(x.reshape(batch, *self.in_modes), *self.factors())
        y = y.reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias

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
