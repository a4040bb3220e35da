"""Fast CIFAR-10 networks, with their 3x3 convolutions swappable for factorized ones.

Both nets take normalised images [B, 3, 32, 32] and return logits [B, n_classes].

**ResNet9** (Page, "How to train your ResNet", the DAWNBench ResNet-9)::

    prep    conv3x3(3 -> 64)  BN ReLU
    layer1  conv3x3(64 -> 128)  maxpool2  BN ReLU, then x + res1(x), res1 = 2 x (conv3x3 BN ReLU) at 128
    layer2  conv3x3(128 -> 256) maxpool2  BN ReLU
    layer3  conv3x3(256 -> 512) maxpool2  BN ReLU, then x + res3(x), res3 = 2 x (conv3x3 BN ReLU) at 512
    head    global max-pool, linear(512 -> 10, no bias), logits x 0.125

All convolutions 3x3, padding 1, no bias (BN follows). The pooling sits right after the
convolution (conv, pool, BN, ReLU: BN and ReLU then run on a quarter of the pixels; Page's
first version pooled after the ReLU, which changes no parameter). 6,573,120 parameters at
width 1. ``width`` scales every channel count (64, 128, 256, 512) for the dense reference
curve.

**AirbenchNet** (after Keller Jordan's airbench94, itself after tysam-code's hlb-CIFAR10;
written here from its description, not vendored)::

    whiten  conv2x2(3 -> 24, bias), no padding, weight fixed from the training patches' whitening
            (the 12 eigenvectors of the 2x2x3 patch covariance, scaled by 1/sqrt(eigenvalue),
            and their negatives), GELU
    block1  conv3x3(24 -> 64)   maxpool2 BN GELU  conv3x3(64 -> 64)   BN GELU
    block2  conv3x3(64 -> 256)  maxpool2 BN GELU  conv3x3(256 -> 256) BN GELU
    block3  conv3x3(256 -> 256) maxpool2 BN GELU  conv3x3(256 -> 256) BN GELU
    head    maxpool3 (3x3 -> 1x1), linear(256 -> 10, no bias), logits x 1/9

BatchNorm with eps 1e-12, running-average momentum 0.4 (airbench's 0.6 in its own
convention), scale fixed at 1 (only the shift trains); dense 3x3 convolutions are
initialised with a Dirac identity in their first ``in_channels`` filters (an implicit
residual). ``width`` scales 64/256/256 (the whitening layer stays 24 wide).

**Factorized variants** (``factorize=`` spec, see :func:`conv_factory`) replace every 3x3
convolution except the first layer (``prep`` / ``whiten``) with a layer from
:mod:`factorlab.layers` of the same geometry; the head stays dense.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from factorlab.layers import (CPConv2d, LowRankConv2d, SeparableConv2d, TTConv2d, TuckerConv2d,
                              bottleneck_rank)
from factorlab.layers.tt import tt_max_ranks
from factorlab.models.counting import compressed_modules

#: ``factory(in_channels, out_channels) -> module``: a 3x3, stride 1, padding 1 convolution
#: without bias, [B, in, H, W] -> [B, out, H, W].
ConvFactory = Callable[[int, int], nn.Module]

#: Conv families of :func:`conv_factory` -> allowed spec keys (besides ``family``).
FAMILIES: dict[str, tuple[str, ...]] = {
    "dense": (),
    "separable": (),                        # depthwise 3x3 + full pointwise
    "separable_lowrank": ("factor", "rank"),  # depthwise 3x3 + pointwise bottleneck in -> rank -> out
    "separable_tt": ("d", "rank"),          # depthwise 3x3 + tensor-train pointwise over d channel modes
    "lowrank": ("rank", "compression"),     # 3x3 in -> rank, 1x1 rank -> out
    "tucker": ("rank", "compression"),      # Tucker-2: 1x1 in -> q, 3x3 q -> p, 1x1 p -> out
    "cp": ("rank", "compression"),          # CP: 1x1, 3x1, 1x3 depthwise, 1x1
    "tt": ("d", "rank", "compression"),     # TT convolution (spatial core + d channel cores)
}
MAX_WIDTH = 4.0


def dense_conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """The dense 3x3 'same' convolution without bias."""
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)


class SeparableTTConv2d(nn.Module):
    """Depthwise 3x3 convolution, then a tensor-train 1x1 (pointwise) convolution.

    The pointwise map in -> out is a TT-matrix over ``d`` channel modes (balanced factors of
    in and out, :func:`factorlab.layers.factorize_dim`), i.e. a
    :class:`~factorlab.layers.TTConv2d` with a 1x1 kernel, spatial rank 1 and internal ranks
    ``rank`` (each clamped to its TT-SVD maximum). params: in * 9 + the TT cores (+1, the
    1x1 "spatial core" scalar of TTConv2d).
    """

    def __init__(self, in_channels: int, out_channels: int, d: int = 2, rank: int = 8):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        probe = TTConv2d(in_channels, out_channels, 1, rank=[1] * d, d=d, bias=False)
        sizes = [1] + [c * s for c, s in zip(probe.in_modes, probe.out_modes)]
        ranks = [min(rank, m) for m in tt_max_ranks(sizes)]
        self.pointwise = TTConv2d(in_channels, out_channels, 1, rank=ranks, d=d, bias=False)
        self.d, self.rank = d, tuple(ranks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, in, H, W] -> [B, out, H, W]."""
        return self.pointwise(self.depthwise(x))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def dense_params(self) -> int:
        """Parameters of the dense 3x3 convolution it replaces."""
        return self.in_channels * self.out_channels * 9

    def compression(self) -> float:
        return self.dense_params() / self.num_params()

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, d={self.d}, rank={self.rank}"


def _check_spec(spec: dict | None) -> tuple[str, dict]:
    if spec is None:
        return "dense", {}
    if not isinstance(spec, dict) or "family" not in spec:
        raise ValueError(f"factorize spec must be None or a dict with a 'family' key, got {spec!r}")
    family = spec["family"]
    if family not in FAMILIES:
        raise ValueError(f"unknown conv family {family!r}: choose one of {', '.join(FAMILIES)}")
    kwargs = {k: v for k, v in spec.items() if k != "family"}
    unknown = set(kwargs) - set(FAMILIES[family])
    if unknown:
        raise ValueError(f"family {family!r} takes {list(FAMILIES[family]) or 'no options'}, got unknown "
                         f"{sorted(unknown)}")
    if family == "separable_lowrank" and len(kwargs) != 1:
        raise ValueError("separable_lowrank needs exactly one of factor (rank = in_channels // factor) or rank")
    if family == "separable_tt" and set(kwargs) != {"d", "rank"}:
        raise ValueError("separable_tt needs d (number of channel modes) and rank (internal TT rank)")
    if family in ("lowrank", "tucker", "cp") and len(kwargs) != 1:
        raise ValueError(f"{family} needs exactly one of rank or compression")
    if family == "tt" and ("rank" in kwargs) == ("compression" in kwargs):
        raise ValueError("tt needs exactly one of rank or compression (and optionally d)")
    return family, kwargs


def conv_factory(spec: dict | None) -> ConvFactory:
    """The 3x3 convolution maker of a ``factorize`` spec (a JSON-able dict) or None (dense).

    Specs: ``{"family": "separable"}``; ``{"family": "separable_lowrank", "factor": f}``
    (bottleneck rank ``in_channels // f``, the journal's) or ``"rank": r``;
    ``{"family": "separable_tt", "d": d, "rank": r}``; ``{"family": "lowrank" | "tucker" |
    "cp", "rank": r}`` or ``"compression": c`` (dense params / layer params, per layer);
    ``{"family": "tt", "d": d, "rank": r | "compression": c}``.

    Raises:
        ValueError: unknown family or options (checked here, before any layer is built).
    """
    family, kw = _check_spec(spec)
    geo = {"kernel_size": 3, "padding": 1, "bias": False}
    if family == "dense":
        return dense_conv3x3
    if family == "separable":
        return lambda i, o: SeparableConv2d(i, o, **geo)
    if family == "separable_lowrank":
        if "factor" in kw:
            factor = kw["factor"]
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 1:
                raise ValueError(f"separable_lowrank factor must be a number >= 1, got {factor!r}")
            return lambda i, o: SeparableConv2d(i, o, rank=min(bottleneck_rank(i, factor), o), **geo)
        return lambda i, o: SeparableConv2d(i, o, rank=kw["rank"], **geo)
    if family == "separable_tt":
        return lambda i, o: SeparableTTConv2d(i, o, d=kw["d"], rank=kw["rank"])
    cls = {"lowrank": LowRankConv2d, "tucker": TuckerConv2d, "cp": CPConv2d, "tt": TTConv2d}[family]
    return lambda i, o: cls(i, o, **geo, **kw)


def scaled_channels(base: int, width: float) -> int:
    """``round(base * width)``, at least 1."""
    return max(1, int(round(base * width)))


def check_width(width) -> float:
    """``width`` as a float in (0, :data:`MAX_WIDTH`], else ValueError."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) \
            or not 0 < width <= MAX_WIDTH:
        raise ValueError(f"width must be a number in (0, {MAX_WIDTH}] (a multiplier of the channel counts, "
                         f"1.0 = the published net), got {width!r}")
    return float(width)


class Mul(nn.Module):
    """Multiply by a constant (the logit scale)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


class ConvBN(nn.Module):
    """conv (from the factory) [, maxpool2], BN, activation."""

    def __init__(self, conv: nn.Module, c_out: int, pool: bool, act: nn.Module, bn: nn.Module | None = None):
        super().__init__()
        self.conv = conv
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.bn = bn if bn is not None else nn.BatchNorm2d(c_out)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pool(self.conv(x))))


class Residual(nn.Module):
    """x + f(x)."""

    def __init__(self, *blocks: nn.Module):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x)


class ResNet9(nn.Module):
    """Page's ResNet-9 (see the module docstring). ``conv``: the 3x3 convolution factory for
    every layer but ``prep`` (default dense); ``width``: channel multiplier."""

    def __init__(self, width: float = 1.0, conv: ConvFactory | None = None, n_classes: int = 10,
                 logit_scale: float = 0.125):
        super().__init__()
        width = check_width(width)
        conv = conv or dense_conv3x3
        c0, c1, c2, c3 = (scaled_channels(c, width) for c in (64, 128, 256, 512))
        self.channels = (c0, c1, c2, c3)
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.prep = ConvBN(dense_conv3x3(3, c0), c0, False, relu())
        self.layer1 = ConvBN(conv(c0, c1), c1, True, relu())
        self.res1 = Residual(ConvBN(conv(c1, c1), c1, False, relu()), ConvBN(conv(c1, c1), c1, False, relu()))
        self.layer2 = ConvBN(conv(c1, c2), c2, True, relu())
        self.layer3 = ConvBN(conv(c2, c3), c3, True, relu())
        self.res3 = Residual(ConvBN(conv(c3, c3), c3, False, relu()), ConvBN(conv(c3, c3), c3, False, relu()))
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c3, n_classes, bias=False),
                                  Mul(logit_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, 32, 32] -> logits [B, n_classes]."""
        x = self.res1(self.layer1(self.prep(x)))
        x = self.res3(self.layer3(self.layer2(x)))
        return self.head(x)


def airbench_bn(c: int, momentum: float = 0.6) -> nn.BatchNorm2d:
    """airbench's BatchNorm: eps 1e-12, running averages updated with weight 1 - ``momentum``
    (PyTorch's convention), scale frozen at 1, shift trained."""
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=1 - momentum)
    bn.weight.requires_grad_(False)
    return bn


class AirbenchNet(nn.Module):
    """The airbench94-style net (see the module docstring). ``conv``: the 3x3 convolution
    factory (default dense, Dirac-initialised); ``width``: multiplier of 64/256/256."""

    def __init__(self, width: float = 1.0, conv: ConvFactory | None = None, n_classes: int = 10,
                 whiten_kernel: int = 2, bn_momentum: float = 0.6, logit_scale: float = 1 / 9, dirac: bool = True):
        super().__init__()
        width = check_width(width)
        conv = conv or dense_conv3x3
        widths = tuple(scaled_channels(c, width) for c in (64, 256, 256))
        self.channels = widths
        c_white = 2 * 3 * whiten_kernel ** 2
        self.whiten = nn.Conv2d(3, c_white, whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # set by init_whitening, never trained
        nn.init.zeros_(self.whiten.bias)
        self.act = nn.GELU()
        blocks, c_in = [], c_white
        for c in widths:
            blocks.append(nn.Sequential(ConvBN(conv(c_in, c), c, True, nn.GELU(), airbench_bn(c, bn_momentum)),
                                        ConvBN(conv(c, c), c, False, nn.GELU(), airbench_bn(c, bn_momentum))))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.MaxPool2d(3), nn.Flatten(), nn.Linear(c_in, n_classes, bias=False),
                                  Mul(logit_scale))
        if dirac:  # implicit residual: dense convs start as the identity on their first in_channels outputs
            for m in self.blocks.modules():
                if isinstance(m, nn.Conv2d) and m.groups == 1:
                    with torch.no_grad():
                        nn.init.dirac_(m.weight[:m.in_channels])

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalised training images [N, 3, H, W]: with the
        k x k x 3 patch covariance C = V diag(l) V^T, the filters are V / sqrt(l + eps) and
        their negatives (so GELU keeps both signs)."""
        k = self.whiten.kernel_size[0]
        x = images.float()
        patches = x.unfold(2, k, 1).unfold(3, k, 1)  # [N, C, H', W', k, k]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k).double()
        cov = patches.T @ patches / patches.shape[0]
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        evals, evecs = evals.flip(0), evecs.flip(1)
        filters = (evecs.T / torch.sqrt(evals.clamp_min(0) + eps)[:, None]).reshape(3 * k * k, 3, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, 32, 32] -> logits [B, n_classes]."""
        return self.head(self.blocks(self.act(self.whiten(x))))


#: Net name -> class.
CIFAR_MODELS: dict[str, type[nn.Module]] = {"resnet9": ResNet9, "airbench": AirbenchNet}


def build_cifar_model(net: str, width: float = 1.0, factorize: dict | None = None, **kwargs) -> nn.Module:
    """``net`` ("resnet9" or "airbench") at ``width``, its 3x3 convolutions (all but the first
    layer) made by :func:`conv_factory` of ``factorize``; freshly initialised from the global RNG."""
    if net not in CIFAR_MODELS:
        raise ValueError(f"unknown CIFAR net {net!r}: choose one of {', '.join(CIFAR_MODELS)}")
    return CIFAR_MODELS[net](width=width, conv=conv_factory(factorize), **kwargs)


def describe_factorized(model: nn.Module) -> list[dict]:
    """Name, type, channels, rank, parameters and dense-equivalent parameters of each
    factorized convolution (JSON-able), found by :func:`~factorlab.models.counting.compressed_modules`."""
    rows = []
    for name, m in compressed_modules(model):
        rank = getattr(m, "rank", None)
        rows.append({"name": name, "type": type(m).__name__, "in": m.in_channels, "out": m.out_channels,
                     "rank": list(rank) if isinstance(rank, tuple) else rank, "params": m.num_params(),
                     "dense_params": m.dense_params()})
    return rows


__all__ = ["AirbenchNet", "CIFAR_MODELS", "ConvFactory", "FAMILIES", "ResNet9", "SeparableTTConv2d",
           "build_cifar_model", "check_width", "conv_factory", "dense_conv3x3",
           "describe_factorized"]
