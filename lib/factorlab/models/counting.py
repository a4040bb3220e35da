"""Exact parameter and FLOP counts of a model, by counting what its layers do, and the
compressed (factorized) modules a model holds.

FLOPs count one multiply and one add as two FLOPs (so a Linear(n, m) on one sample is
2 n m, plus m for the bias); only Linear, Conv2d and factorized layers (through their own
exact ``flops``) are counted, which dominate every model here (activations, pooling and
normalisation are ignored).
"""
from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of ``model`` for ONE sample of shape ``input_shape`` (no batch dim),
    counted over its ``nn.Linear`` and ``nn.Conv2d`` layers by running a forward pass."""
    total = 0

    def linear_hook(mod: nn.Linear, inp, out):
        nonlocal total
        rows = out.numel() // out.shape[-1]
        total += rows * (2 * mod.in_features * mod.out_features + (mod.out_features if mod.bias is not None else 0))

    def conv_hook(mod: nn.Conv2d, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += out.numel() * (2 * k + (1 if mod.bias is not None else 0))

    def factorized_hook(mod, inp, out):
        nonlocal total
        total += mod.flops(tuple(inp[0].shape))

    from factorlab.layers import FactorizedLayer

    handles = []
    for m in model.modules():
        if isinstance(m, FactorizedLayer):
            handles.append(m.register_forward_hook(factorized_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def compressed_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of the outermost modules of ``model`` that report a compression ratio
    (a callable ``compression()`` and ``dense_params()``: every layer of
    :mod:`factorlab.layers` and composite factorized convolutions)."""
    out: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if callable(getattr(m, "compression", None)) and callable(getattr(m, "dense_params", None)) \
                and not any(name.startswith(n + ".") for n, _ in out):
            out.append((name, m))
    return out
