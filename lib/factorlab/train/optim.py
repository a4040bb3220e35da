"""SGD parameter groups (weight decay of compressed layers, BatchNorm learning rates) and the
Lookahead/EMA scheme of the fast CIFAR-10 recipes."""
from __future__ import annotations

import torch
from torch import nn

from factorlab.models.counting import compressed_modules

#: How the weight decay of a compressed layer's parameters is set: ``"usual"`` (the same as
#: every other parameter) or ``"scaled"`` (multiplied by that layer's compression ratio,
#: dense parameters / its parameters: the ablation of the fourth journal).
WD_MODES = ("usual", "scaled")


def param_groups(model: nn.Module, *, lr: float, weight_decay: float, wd_mode: str = "usual",
                 norm_lr_scale: float = 1.0) -> list[dict]:
    """SGD parameter groups of the trainable parameters of ``model``.

    - ordinary parameters: ``lr`` and (coupled, PyTorch) ``weight_decay``;
    - BatchNorm parameters: learning rate ``lr * norm_lr_scale`` and weight decay
      ``weight_decay / norm_lr_scale``, so their decay per step (lr x wd) is unchanged
      (airbench trains BatchNorm shifts 64x faster);
    - parameters of each compressed module (see :func:`compressed_modules`): with
      ``wd_mode="scaled"`` its weight decay is multiplied by the module's ``compression()``.

    Each group carries ``name`` (``"other"``, ``"norm"``, ``"compressed"`` or
    ``"compressed:<module>"``) and ``wd_multiplier``, which ``torch.optim.SGD`` keeps.
    Empty groups are left out.
    """
    if wd_mode not in WD_MODES:
        raise ValueError(f"wd_mode must be one of {WD_MODES}, got {wd_mode!r}")
    if not norm_lr_scale > 0:
        raise ValueError(f"norm_lr_scale must be positive, got {norm_lr_scale!r}")
    seen: set[int] = set()
    groups: list[dict] = []

    def add(name: str, params: list[nn.Parameter], lr_g: float, wd_mult: float) -> None:
        params = [p for p in params if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": lr_g, "weight_decay": weight_decay * wd_mult * lr / lr_g,
                           "name": name, "wd_multiplier": wd_mult})

    comp = compressed_modules(model)
    if wd_mode == "usual":
        add("compressed", [p for _, m in comp for p in m.parameters()], lr, 1.0)
    else:
        for name, m in comp:
            add(f"compressed:{name}", list(m.parameters()), lr, float(m.compression()))
    norms = [p for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()]
    add("norm", norms, lr * norm_lr_scale, 1.0)
    add("other", list(model.parameters()), lr, 1.0)
    return groups


def ema_decay(step: int, total_steps: int, base: float = 0.95, every: int = 5, power: float = 3.0) -> float:
    """airbench's EMA decay for an update every ``every`` steps: ``base ** every`` times
    ``(step / total_steps) ** power``, rising from 0 (follow the weights) to ``base ** every``
    (average strongly) over training."""
    return base ** every * (step / total_steps) ** power


class LookaheadEMA:
    """An exponential moving average of the model's floating-point state (parameters and
    BatchNorm running statistics) that is copied back into the model at every update, so
    training continues from the average (Lookahead with an EMA as the slow weights)."""

    def __init__(self, model: nn.Module):
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        """ema <- decay * ema + (1 - decay) * model, then model <- ema (``decay=1``: only
        copy the average back)."""
        for (key, ema), value in zip(self.state.items(), model.state_dict().values()):
            if value.dtype.is_floating_point:
                ema.lerp_(value, 1.0 - decay)
                value.copy_(ema)


__all__ = ["LookaheadEMA", "WD_MODES", "ema_decay", "param_groups"]
