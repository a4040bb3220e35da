"""Swap dense layers of a model for factorized ones, by submodule name."""
from __future__ import annotations

from torch import nn

from factorlab.layers.base import FactorizedLayer


def _families():
    from factorlab.layers import CONV_LAYERS, LINEAR_LAYERS

    return LINEAR_LAYERS, CONV_LAYERS


def family_class(layer: nn.Module, family: str) -> type[FactorizedLayer]:
    """The factorized class of ``family`` replacing ``layer`` (an nn.Linear or nn.Conv2d)."""
    linear, conv = _families()
    table = linear if isinstance(layer, nn.Linear) else conv if isinstance(layer, nn.Conv2d) else None
    if table is None:
        raise ValueError(f"can only factorize nn.Linear or nn.Conv2d, got {type(layer).__name__}")
    if family not in table:
        raise ValueError(f"unknown {type(layer).__name__} family {family!r}: choose one of {sorted(table)}")
    return table[family]


def factorized_like(layer: nn.Module, family: str, **kwargs) -> FactorizedLayer:
    """A freshly initialised factorized layer with ``layer``'s shape and geometry; ``kwargs``
    are the family's rank arguments (``rank``, ``compression``, ``target_params``, ``d``, ...)."""
    cls = family_class(layer, family)
    cls._check_dense(layer)
    new = cls(**cls._geometry(layer), **kwargs)
    return new.to(layer.weight.device, layer.weight.dtype)


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (dotted path, as in ``named_modules``); ValueError if none."""
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"model has no submodule {name!r}; it has: {', '.join(n for n in modules if n)}")
    return modules[name]


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` in place of the submodule ``name`` and return the old one."""
    old = get_module(model, name)
    parent_name, _, child = name.rpartition(".")
    parent = get_module(model, parent_name) if parent_name else model
    setattr(parent, child, new)
    return old


def factorize_model(model: nn.Module, names: list[str], family: str, *, from_dense: bool = False,
                    **kwargs) -> nn.Module:
    """Replace each submodule in ``names`` by its ``family`` factorization, in place.

    ``from_dense=False``: fresh initialisation (train from scratch; pass ``rank`` or a budget).
    ``from_dense=True``: decompose the trained layer (``kwargs`` go to ``from_dense``).
    """
    for name in names:
        layer = get_module(model, name)
        new = family_class(layer, family).from_dense(layer, **kwargs) if from_dense else \
            factorized_like(layer, family, **kwargs)
        replace_module(model, name, new)
    return model
