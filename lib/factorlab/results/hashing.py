"""Stable identity of a run: the hash of its config's canonical JSON."""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"config value at {path or '<root>'} is {value!r}: NaN and inf are not allowed")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"config key {k!r} at {path or '<root>'} is not a string")
            _check(v, f"{path}.{k}" if path else k)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise TypeError(f"config value at {path or '<root>'} has type {type(value).__name__}: "
                    "only None, bool, int, float, str, list and dict are allowed")


def canonical_json(config: dict) -> str:
    """The config as JSON with sorted keys and no whitespace (tuples become lists, floats
    print as Python's shortest repr), so equal configs give equal strings in any process."""
    _check(config, "")
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: dict) -> str:
    """First 16 hex digits of the SHA-256 of :func:`canonical_json`; the run's key.

    Raises ValueError when ``config`` has no string ``experiment`` entry."""
    if not isinstance(config, dict) or not isinstance(config.get("experiment"), str):
        raise ValueError("a run config must be a dict with a string 'experiment' entry")
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]
