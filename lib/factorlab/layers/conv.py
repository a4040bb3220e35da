"""Shared machinery of the factorized ``nn.Conv2d`` replacements.

A factorized convolution maps x [B, in_channels, H, W] to y [B, out_channels, H', W'] with a
weight [out_channels, in_channels, kh, kw] stored as factors. Its candidate paths
(:mod:`factorlab.layers.paths`) are the *factored* sequence of small convolutions (1x1,
depthwise, ...) the decomposition defines, partial rebuilds some families add (factors merged
into one kernel), the *dense* path (rebuild the weight, one convolution), and each of these
in channels-last memory format (``<name>_cl``). The layer times them (``autotune``) or asks
the calibrated cost model, once per input shape and mode, and caches the choice;
``force_path`` overrides it (tests and benchmarks).

Stride, padding and dilation are those of the dense layer being replaced and are applied in
the spatial stage(s); the channel-mixing 1x1 stages use stride 1 and no padding. Grouped
dense convolutions and non-zero padding modes are refused by ``from_dense``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.layers.base import FactorizedLayer, check_positive_int, contraction_plan
from factorlab.layers.paths import Candidate, Op


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    if isinstance(value, str):
        raise ValueError(f"{name}={value!r}: string values are not supported, give integers")
    vals = tuple(value) if isinstance(value, Sequence) else (value, value)
    if len(vals) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    out = []
    for v in vals:
        if isinstance(v, bool) or not hasattr(v, "__index__") or int(v) < minimum:
            raise ValueError(f"{name} must be integer(s) >= {minimum}, got {value!r}")
        out.append(int(v))
    return out[0], out[1]


def conv_geometry(kernel_size, stride=1, padding=0, dilation=1) -> dict[str, tuple[int, int]]:
    """A convolution's ``kernel_size``, ``stride``, ``padding`` and ``dilation`` as checked pairs
    of ints (kernel, stride, dilation >= 1; padding >= 0); ValueError naming the bad one."""
    return {"kernel_size": _pair("kernel_size", kernel_size, 1), "stride": _pair("stride", stride, 1),
            "padding": _pair("padding", padding, 0), "dilation": _pair("dilation", dilation, 1)}


def conv_output_hw(hw: tuple[int, int], kernel, stride, padding, dilation) -> tuple[int, int]:
    """Spatial output size of a convolution (PyTorch's formula)."""
    return tuple(  # type: ignore[return-value]
        (n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation)
    )


def conv_flops(batch: int, c_in: int, c_out: int, out_hw: tuple[int, int], kernel, groups: int = 1) -> int:
    """FLOPs of one convolution without bias: 2 x B x C_out x H' x W' x (C_in/groups) x kh x kw."""
    return 2 * batch * c_out * out_hw[0] * out_hw[1] * (c_in // groups) * kernel[0] * kernel[1]


def conv_kind(groups: int, c_in: int, c_out: int) -> str:
    """The cost model's kind of a convolution: ``conv`` (groups = 1), ``gconv`` (depthwise:
    one channel in and out per group), else ``gconv_multi``."""
    if groups == 1:
        return "conv"
    return "gconv" if c_in == groups and c_out == groups else "gconv_multi"


class Stage:
    """One convolution of a factored sequence: weight [c_out, c_in/groups, kh, kw] and its
    geometry."""

    def __init__(self, weight: torch.Tensor, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1):
        self.weight, self.stride, self.padding, self.dilation, self.groups = weight, stride, padding, dilation, groups

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)

    def flops(self, shape: tuple[int, int, int, int]) -> tuple[int, tuple[int, int, int, int]]:
        """(FLOPs, output shape) for an input of ``shape`` [B, C, H, W]."""
        c_out, _, kh, kw = self.weight.shape
        hw = conv_output_hw(shape[2:], (kh, kw), self.stride, self.padding, self.dilation)
        return conv_flops(shape[0], shape[1], c_out, hw, (kh, kw), self.groups), (shape[0], c_out, *hw)


def stage_candidate(name: str, build: Callable[[], list[Stage]], template: list[Stage], weight_ops: tuple[Op, ...],
                    ops: tuple[Op, ...], channels_last: bool = False) -> Candidate:
    """A :class:`~factorlab.layers.paths.Candidate` running the convolutions ``build()``
    returns (``template``: one such list, for the geometry). With ``channels_last``, the
    weights and the input are converted to that memory format first (the weight copies are
    part of the prepared work)."""
    geometry = [(st.stride, st.padding, st.dilation, st.groups) for st in template]
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def prepare() -> tuple:
        return tuple(st.weight.contiguous(memory_format=fmt) for st in build())

    def apply(x: torch.Tensor, weights: tuple, bias: torch.Tensor | None) -> torch.Tensor:
        x = x.contiguous(memory_format=fmt) if channels_last else x
        last = len(weights) - 1
        for k, (w, (stride, padding, dilation, groups)) in enumerate(zip(weights, geometry)):
            x = F.conv2d(x, w, bias if k == last else None, stride, padding, dilation, groups)
        return x

    if channels_last:
        weight_ops = weight_ops + tuple(Op("copy", 0, 2 * st.weight.numel()) for st in template)
    return Candidate(name, prepare, apply, weight_ops, ops, fmt, prep_key=name)


class FactorizedConv2d(FactorizedLayer):
    """Base class of the factorized ``nn.Conv2d`` replacements: subclasses implement
    ``factors()``, ``weight_equation()`` (the einsum from the factors to the weight),
    ``dense_weight()`` (a call of the family's module-level conversion function, which
    contracts that equation), ``stages()`` (the factored convolution sequence), optionally
    ``_stage_paths()`` (more convolution sequences: partial rebuilds) and
    ``_extra_candidates()`` (paths that are not convolution sequences), and the rank hooks of
    :class:`~factorlab.layers.FactorizedLayer`, and call ``reset_parameters()`` at the end of
    ``__init__``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = True):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        geometry = conv_geometry(kernel_size, stride, padding, dilation)
        self.kernel_size, self.stride = geometry["kernel_size"], geometry["stride"]
        self.padding, self.dilation = geometry["padding"], geometry["dilation"]
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels))
        else:
            self.register_parameter("bias", None)

    @property
    def fan_in(self) -> int:
        """in_channels kh kw."""
        return self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    # -- to implement ------------------------------------------------------------------
    def weight_equation(self) -> str:  # pragma: no cover - abstract
        """The einsum equation ``dense_weight()`` contracts the factors with."""
        raise NotImplementedError

    def stages(self) -> list[Stage]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    def dense_params(self) -> int:
        """out_channels in_channels kh kw (+ out_channels with bias)."""
        kh, kw = self.kernel_size
        return self.out_channels * self.in_channels * kh * kw + (self.out_channels if self.bias is not None else 0)

    def _weight_flops(self) -> int:
        """FLOPs of rebuilding the weight (the contraction ``dense_weight()`` runs)."""
        return contraction_plan(self.weight_equation(), tuple(tuple(f.shape) for f in self.factors())).cost

    def _check_input_shape(self, shape) -> tuple[int, int, int, int]:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(f"expected input [B, {self.in_channels}, H, W], got {shape}")
        return shape  # type: ignore[return-value]

    # -- candidate paths -------------------------------------------------------------------
    def _stage_paths(self) -> dict[str, tuple[Callable[[], list[Stage]], tuple[Op, ...]]]:
        """Paths that are a sequence of convolutions, by name: (a function building the
        stages from the current factors, the kernel calls that build their weights).
        ``factored`` (``stages()``) and ``dense`` (the rebuilt weight, one convolution) here;
        families add partial rebuilds (some factors merged into one kernel)."""
        shapes = tuple(tuple(f.shape) for f in self.factors())
        return {"factored": (self.stages, ()),
                "dense": (lambda: [Stage(self.dense_weight(), self.stride, self.padding, self.dilation)],
                          contraction_plan(self.weight_equation(), shapes).ops())}

    def _extra_candidates(self, shape: tuple[int, int, int, int]) -> dict[str, Candidate]:
        """Paths that are not a plain sequence of convolutions (TT's einsum orders)."""
        return {}

    def _build_candidates(self, shape: tuple[int, int, int, int]) -> dict[str, Candidate]:
        out = self._extra_candidates(shape)
        twins = {}
        for name, (build, weight_ops) in self._stage_paths().items():
            with torch.no_grad():
                template = build()
            ops, s = [], shape
            for st in template:
                f, nxt = st.flops(s)
                ops.append(Op(conv_kind(st.groups, s[1], nxt[1]), f, math.prod(s) + math.prod(nxt) + st.weight.numel()))
                s = nxt
            out[name] = stage_candidate(name, build, template, weight_ops, tuple(ops))
            twins[name + "_cl"] = stage_candidate(name + "_cl", build, template, weight_ops, tuple(ops),
                                                  channels_last=True)
        return {**out, **twins}

    def path_for(self, input_shape, *, grad: bool | None = None) -> str:
        """The path ``forward`` runs on ``input_shape`` [B, C, H, W] (a name of
        ``candidates(input_shape)``: ``factored``, ``dense``, a partial rebuild, or one of
        them with ``_cl``, computed in channels-last): ``force_path`` when set, else measured
        (``autotune``) or the calibrated cost model's choice, cached per key."""
        return super().path_for(input_shape, grad=grad)

    def canonical_path(self, input_shape: Sequence[int]) -> str:
        """``force_path`` when set, else ``factored`` (the family's sequence of convolutions)
        or ``dense`` (the rebuilt weight, one convolution), whichever has fewer FLOPs, ties to
        ``factored``: the path :meth:`flops` counts (the FLOP rule of the layers before the
        measured path choice)."""
        shape = self._check_input_shape(input_shape)
        if self.force_path is not None:
            return self._check_force_path(shape)
        cands = self.candidates(shape)
        return "factored" if cands["factored"].flops() <= cands["dense"].flops() else "dense"

    def _output_elements(self, shape: tuple[int, int, int, int]) -> int:
        hw = conv_output_hw(shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)
        return shape[0] * self.out_channels * hw[0] * hw[1]

    def flops(self, input_shape: Sequence[int]) -> int:
        """Forward FLOPs for an input [B, in_channels, H, W] along :meth:`canonical_path` (the
        cheaper of the factored sequence and the rebuilt weight), + 1 per output for the bias:
        the same on every machine, whatever path the forward pass runs (that one:
        :meth:`chosen_flops`)."""
        return super().flops(input_shape)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, in_channels, H, W] -> [B, out_channels, H', W']."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input [B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        return self._run_path(x, tuple(x.shape))

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        for name, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if len(getattr(self, "in_modes", ())) > 1:
            s += f", in_modes={self.in_modes}, out_modes={self.out_modes}"
        if getattr(self, "depth_multiplier", 1) != 1:
            s += f", depth_multiplier={self.depth_multiplier}"
        return s + f", rank={self.rank}, params={self.num_params()}, bias={self.bias is not None}"

    # -- from_dense helpers --------------------------------------------------------------
    @staticmethod
    def _check_dense(layer: nn.Module) -> None:
        if not isinstance(layer, nn.Conv2d):
            raise ValueError(f"from_dense expects an nn.Conv2d, got {type(layer).__name__}")
        if layer.groups != 1:
            raise ValueError(f"from_dense supports groups=1 only (got groups={layer.groups}): a grouped "
                             "convolution is already factorized; decompose each group's dense weight instead")
        if layer.padding_mode != "zeros":
            raise ValueError(f"from_dense supports padding_mode='zeros' only, got {layer.padding_mode!r}")
        if isinstance(layer.padding, str):
            raise ValueError(f"from_dense needs integer padding, got padding={layer.padding!r}: rebuild the "
                             "dense layer with explicit integer padding")

    @staticmethod
    def _geometry(layer: nn.Conv2d) -> dict:
        return {"in_channels": layer.in_channels, "out_channels": layer.out_channels,
                "kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding,
                "dilation": layer.dilation, "bias": layer.bias is not None}
