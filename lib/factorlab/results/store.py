"""The run store: one JSON record per run, keyed by the hash of the run's config.

``run(config, train_fn)`` returns the stored record if there is one, else trains, writes the
record atomically and returns it as read back from disk (so a first run and a later cache hit
return identical objects). With ``FACTORLAB_REQUIRE_CACHED=1`` a missing run is an error
instead of a training run.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from factorlab.paths import results_dir
from factorlab.results.hashing import canonical_json, config_hash
from factorlab.results.provenance import provenance

SCHEMA = 1
RESULT_KEYS = ("metrics", "history", "timing", "model")

#: ``train_fn(config) -> {"metrics": ..., "history": ..., "timing": ..., "model": ...}``
TrainFn = Callable[[dict], dict]


class RunNotCachedError(LookupError):
    """A run was needed that is not in the store, and training was forbidden."""


def require_cached() -> bool:
    """Whether ``FACTORLAB_REQUIRE_CACHED`` forbids training (read at call time)."""
    return os.environ.get("FACTORLAB_REQUIRE_CACHED", "").strip().lower() in ("1", "true", "yes")


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: numpy/torch scalars to Python numbers, tuples to lists, NaN/inf to
    None (JSON has no NaN; a diverged loss is stored as null)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a run record")


class RunStore:
    """Records under ``<root>/<experiment>/<key>.json``; ``root`` defaults to ``results_dir()``."""

    def __init__(self, root: str | Path | None = None):
        self._root = Path(root) if root is not None else None

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else results_dir()

    def key(self, config: dict) -> str:
        return config_hash(config)

    def path(self, config: dict) -> Path:
        return self.root / config["experiment"] / f"{self.key(config)}.json"

    def get(self, config: dict) -> dict | None:
        """The stored record of ``config``, or None. A corrupt file is an error naming it."""
        path = self.path(config)
        if not path.exists():
            return None
        return self._read(path)

    def __contains__(self, config: dict) -> bool:
        return self.path(config).exists()

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"run record {path} is corrupt ({err}); delete it to re-run, or restore it from git") from err

    def run(self, config: dict, train_fn: TrainFn, *, device: str = "cpu") -> dict:
        """The record of ``config``: from the store, or by calling ``train_fn(config)``."""
        record = self.get(config)
        if record is not None:
            return record
        key = self.key(config)
        if require_cached():
            exp = config["experiment"]
            raise RunNotCachedError(
                f"run {key} of experiment {exp!r} is not in the run store {self.root} and "
                f"FACTORLAB_REQUIRE_CACHED is set, so it will not be trained here. Config: "
                f"{canonical_json(config)}. Produce it with `python -m factorlab run {exp} "
                f"--profile {config.get('profile', 'cpu')}` (or unset FACTORLAB_REQUIRE_CACHED).")
        started = time.time()
        t0 = time.perf_counter()
        result = train_fn(config)
        wall_s = time.perf_counter() - t0
        extra = set(result) - set(RESULT_KEYS)
        if extra:
            raise ValueError(f"train_fn returned unknown keys {sorted(extra)}; allowed: {RESULT_KEYS}")
        record = {"schema": SCHEMA, "key": key, "experiment": config["experiment"], "config": config,
                  **{k: result.get(k, {}) for k in RESULT_KEYS},
                  "provenance": provenance(config, device, started, wall_s)}
        path = self.path(config)
        self._write_atomic(path, to_jsonable(record))
        return self._read(path)

    @staticmethod
    def _write_atomic(path: Path, record: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, sort_keys=True, indent=1, allow_nan=False)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def records(self, experiment: str | None = None) -> list[dict]:
        """All records of ``experiment`` (all experiments when None), sorted by experiment, key."""
        folders = [self.root / experiment] if experiment else sorted(p for p in self.root.glob("*") if p.is_dir())
        return [self._read(p) for folder in folders for p in sorted(folder.glob("*.json"))]


def default_store() -> RunStore:
    """A store at ``results_dir()`` (honours ``FACTORLAB_RESULTS_DIR``)."""
    return RunStore()


def run(config: dict, train_fn: TrainFn, *, device: str = "cpu", store: RunStore | None = None) -> dict:
    """:meth:`RunStore.run` on ``store`` (default: :func:`default_store`)."""
    return (store or default_store()).run(config, train_fn, device=device)
