"""Device selection and mixed precision.

``device`` strings accepted everywhere in factorlab: ``"auto"`` (CUDA when available, else
CPU), ``"cpu"`` and ``"cuda"`` (or ``"cuda:N"``). Asking for CUDA where there is none is an
error, never a silent fallback to the CPU.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from factorlab.clock import synchronize  # re-exported: the training loops' one synchronize

VALID_DEVICES = ("auto", "cpu", "cuda")


class DeviceError(RuntimeError):
    """A device was requested that this machine does not have."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``/``"cpu"``/``"cuda[:N]"`` into a ``torch.device``.

    Raises:
        ValueError: the string is none of the valid choices.
        DeviceError: CUDA was asked for but is not available.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string, one of {VALID_DEVICES}, got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            built = torch.version.cuda or "none (CPU-only build)"
            raise DeviceError(
                f"device={device!r} was requested but no CUDA GPU is available "
                f"(torch {torch.__version__}, CUDA build: {built}). "
                "Use device='auto' or device='cpu' on this machine."
            )
        return torch.device(name)
    raise ValueError(f"unknown device {device!r}: choose one of {', '.join(VALID_DEVICES)} (or 'cuda:N')")


def autocast(device: torch.device) -> ContextManager:
    """bf16 autocast on CUDA; a no-op context on the CPU (fp32 there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision_name(device: torch.device) -> str:
    """The precision :func:`autocast` uses on ``device``: ``"bf16-autocast"`` or ``"fp32"``."""
    return "bf16-autocast" if device.type == "cuda" else "fp32"


