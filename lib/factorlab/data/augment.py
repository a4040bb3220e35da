"""Data augmentation of whole batches on their device, and the per-step batch iterator.

Everything here is a tensor op over a batch [B, C, H, W] (no per-sample Python, no
``torch.utils.data.DataLoader``); randomness comes from an explicit ``torch.Generator`` on the
batch's device, so an epoch is a deterministic function of the seed.

- :func:`translate`: shift each image by its own (dy, dx), filling from a padded border
  (reflect, as in Page's ResNet-9 and airbench, or zeros). Random translation by up to ``p``
  pixels is exactly "pad by ``p``, random crop back to the input size".
- :func:`flip_lr`: mirror the images selected by a mask; :func:`random_flip` draws the mask.
- :func:`cutout`: zero a ``size`` x ``size`` square (clipped at the border) at a random centre
  per image (DeVries & Taylor 2017); applied after normalisation, so zero is the mean colour.
- :class:`AugmentedBatches`: an epoch of shuffled, normalised, augmented batches of a uint8
  dataset that lives on the device, with airbench's *alternating* flip (each image flipped
  by a fixed random mask on even epochs and by its complement on odd ones, so every image is
  seen both ways in any two consecutive epochs) as an option.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

FLIP_MODES = ("none", "random", "alternating")
PAD_MODES = ("reflect", "zeros")


def _check_batch(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected a batch of images [B, C, H, W], got shape {tuple(x.shape)}")


def translate(x: torch.Tensor, shifts: torch.Tensor, pad: int, mode: str = "reflect") -> torch.Tensor:
    """Shift image ``b`` of ``x`` [B, C, H, W] by ``shifts[b] = (dy, dx)`` pixels (each in
    ``-pad..pad``; positive moves content down/right), filling the uncovered border from a
    ``pad``-pixel ``mode`` padding. Zero shifts return ``x`` unchanged (as a new tensor).

    Equivalent to cropping the padded image at offset ``(pad - dy, pad - dx)``.
    """
    _check_batch(x)
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode must be one of {PAD_MODES}, got {mode!r}")
    if shifts.shape != (x.shape[0], 2):
        raise ValueError(f"shifts must be [B, 2] = [{x.shape[0]}, 2], got {tuple(shifts.shape)}")
    if pad == 0:
        if bool((shifts != 0).any()):
            raise ValueError("non-zero shifts need pad > 0")
        return x.clone()
    if bool((shifts.abs() > pad).any()):
        raise ValueError(f"shifts must lie in -{pad}..{pad}")
    return _translate(x, shifts, pad, mode)


def _translate(x: torch.Tensor, shifts: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """:func:`translate` without the checks (which would synchronize a GPU every batch)."""
    b, _, h, w = x.shape
    src = x if x.is_floating_point() else x.float()
    padded = F.pad(src, (pad,) * 4, mode="reflect" if mode == "reflect" else "constant")
    rows = (pad - shifts[:, :1]) + torch.arange(h, device=x.device)  # [B, H]
    cols = (pad - shifts[:, 1:]) + torch.arange(w, device=x.device)  # [B, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # advanced indexing -> [B, H, W, C]
    return out.permute(0, 3, 1, 2).to(x.dtype).contiguous()


def random_translate(x: torch.Tensor, pad: int, generator: torch.Generator | None = None,
                     mode: str = "reflect") -> torch.Tensor:
    """Random crop with padding: each image shifted by (dy, dx) uniform in ``-pad..pad``."""
    if pad == 0:
        return x
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode must be one of {PAD_MODES}, got {mode!r}")
    shifts = torch.randint(-pad, pad + 1, (x.shape[0], 2), device=x.device, generator=generator)
    return _translate(x, shifts, pad, mode)


def flip_lr(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images of ``x`` [B, C, H, W] where the bool ``mask`` [B] is True."""
    _check_batch(x)
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image with probability 1/2."""
    return flip_lr(x, torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square per image, its centre uniform over the image (so it
    may be clipped by the border). ``size`` 0 returns ``x``."""
    _check_batch(x)
    if size <= 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1, 1), device=x.device, generator=generator)
    cx = torch.randint(0, w, (b, 1, 1), device=x.device, generator=generator)
    lo = size // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= cy - lo) & (ys < cy - lo + size) & (xs >= cx - lo) & (xs < cx - lo + size)  # [B, H, W]
    return x.masked_fill(hole[:, None], 0)


@dataclass(frozen=True)
class Augment:
    """Training augmentation: translation by up to ``pad`` pixels (``pad_mode`` border),
    ``flip`` (one of :data:`FLIP_MODES`), ``cutout`` square size (0: none)."""

    pad: int = 4
    pad_mode: str = "reflect"
    flip: str = "random"
    cutout: int = 0

    def __post_init__(self):
        if isinstance(self.pad, bool) or not isinstance(self.pad, int) or self.pad < 0:
            raise ValueError(f"pad must be a non-negative int, got {self.pad!r}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        if self.flip not in FLIP_MODES:
            raise ValueError(f"flip must be one of {FLIP_MODES}, got {self.flip!r}")
        if isinstance(self.cutout, bool) or not isinstance(self.cutout, int) or self.cutout < 0:
            raise ValueError(f"cutout must be a non-negative int, got {self.cutout!r}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "Augment":
        """From a config dict (keys ``pad``, ``pad_mode``, ``flip``, ``cutout``); None: none."""
        if d is None:
            return cls(pad=0, flip="none")
        unknown = set(d) - {"pad", "pad_mode", "flip", "cutout"}
        if unknown:
            raise ValueError(f"unknown augmentation keys {sorted(unknown)}: use pad, pad_mode, flip, cutout")
        return cls(**d)


class AugmentedBatches:
    """Shuffled mini-batches of a uint8 image set on its device, normalised and augmented
    per batch. One ``torch.Generator`` (seeded once) draws the order and every random
    augmentation, so the sequence of batches is a function of ``seed`` alone.

    Args:
        x: uint8 images [N, C, H, W]; y: int64 labels [N] (same device).
        mean, std: per-channel statistics on the [0, 1] scale, tensors [C] on the device.
        batch_size: images per step; the last incomplete batch is dropped (fixed shapes,
            as fast training recipes do) unless ``drop_last=False``.
        augment: an :class:`Augment` (or its dict).
        dtype: dtype of the yielded images (float32; bf16/fp16 for lower-precision training).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, *, batch_size: int,
                 augment: Augment | dict | None = None, seed: int = 0, drop_last: bool = True,
                 dtype: torch.dtype = torch.float32, channels_last: bool = False):
        _check_batch(x)
        if x.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (0-255), got {x.dtype}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"labels must be [{x.shape[0]}], got {tuple(y.shape)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if drop_last and batch_size > x.shape[0]:
            raise ValueError(f"batch_size {batch_size} exceeds the {x.shape[0]} images (with drop_last no batch "
                             "would remain): use a smaller batch")
        self.x, self.y, self.batch_size, self.drop_last = x, y, batch_size, drop_last
        self.augment = augment if isinstance(augment, Augment) else Augment.from_dict(augment)
        self.mean = mean.to(x.device, torch.float32).view(1, -1, 1, 1)
        self.std = std.to(x.device, torch.float32).view(1, -1, 1, 1)
        self.dtype, self.channels_last = dtype, channels_last
        self.generator = torch.Generator(device=x.device).manual_seed(seed)
        # airbench's alternating flip: a fixed per-image mask, complemented every other epoch.
        self.flip_mask = torch.rand(x.shape[0], device=x.device, generator=self.generator) < 0.5
        self.epoch = 0

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def transform(self, xb: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        """uint8 batch ``xb`` (images ``idx`` of the set) -> normalised, augmented float."""
        a, g = self.augment, self.generator
        out = (xb.float().div_(255.0) - self.mean) / self.std  # normalise first: reflect/zeros in that space
        if a.flip == "random":
            out = random_flip(out, g)
        elif a.flip == "alternating":
            out = flip_lr(out, self.flip_mask[idx] ^ bool(epoch % 2))
        out = random_translate(out, a.pad, g, a.pad_mode)
        out = cutout(out, a.cutout, g)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out.to(self.dtype)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        order = torch.randperm(self.x.shape[0], device=self.x.device, generator=self.generator)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.transform(self.x[idx], idx, epoch), self.y[idx]


__all__ = ["Augment", "AugmentedBatches", "FLIP_MODES", "PAD_MODES", "cutout", "flip_lr", "random_flip",
           "random_translate", "translate"]
