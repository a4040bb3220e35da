"""Stable identity of a run: the hash of its config's canonical JSON.

A config is a plain dict of JSON values (None, bool, int, float, str, list/tuple, dict with
str keys) with a str ``experiment`` entry. Anything else (numpy or torch scalars, tensors,
sets, NaN, inf) is refused with an error naming where it sits, so that the hash never depends
on how a value happens to print.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

#: Experiment names become folder names: letters, digits, ``_``, ``-``, ``.``; no leading dot.
_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

_SCALARS = (type(None), bool, int, float, str)


def _check(value: Any, path: str) -> None:
    """Raise TypeError naming ``path`` unless ``value`` is a plain JSON value."""
    where = path or "<root>"
    if type(value) in _SCALARS:  # exact types: numpy.float64 subclasses float, yet is refused
        if type(value) is float and not math.isfinite(value):
            raise TypeError(f"config value at {where} is {value!r}: NaN and inf are not allowed")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"config key {k!r} at {where} is not a string")
            _check(v, f"{path}.{k}" if path else k)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise TypeError(f"config value at {where} has type {type(value).__module__}.{type(value).__qualname__}: "
                    "only None, bool, int, float, str, list, tuple and dict are allowed")


def canonical_json(config: dict) -> str:
    """The config as JSON with sorted keys and no whitespace (tuples become lists, floats
    print as Python's shortest repr, so 0.1 stays ``0.1``); equal configs give equal strings
    in any process. TypeError naming the key path for a non-JSON value."""
    _check(config, "")
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)


def check_config(config: dict) -> str:
    """The config's experiment name; ValueError unless ``config`` is a dict whose
    ``experiment`` is a str usable as a folder name."""
    if not isinstance(config, dict) or not isinstance(config.get("experiment"), str):
        raise ValueError("a run config must be a dict with a string 'experiment' entry")
    name = config["experiment"]
    if not _EXPERIMENT_NAME.fullmatch(name):
        raise ValueError(f"experiment name {name!r} is not usable as a folder name "
                         "(letters, digits, '_', '-', '.'; no leading dot)")
    return name


def config_hash(config: dict) -> str:
    """First 16 hex digits of the SHA-256 of :func:`canonical_json`: the run's key.

    ValueError when ``config`` has no usable string ``experiment`` entry."""
    check_config(config)
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:16]
