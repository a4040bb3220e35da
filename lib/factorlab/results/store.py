"""The run store: one JSON record per run, keyed by the hash of the run's config.

``run(config, train_fn)`` returns the stored record if there is one, else calls
``train_fn(config)``, writes the record atomically and returns it as read back from disk, so
a first run and a later cache hit return identical (``==``) objects. With
``FACTORLAB_REQUIRE_CACHED=1`` a missing run is a :class:`RunNotCachedError` instead.

A ``cpu`` or ``full`` run does not start from a working tree whose code has uncommitted
changes (:func:`factorlab.results.provenance.git_state`): :class:`DirtyTreeError` names the
changed files, unless ``FACTORLAB_ALLOW_DIRTY=1`` is set (the record then says so). While a
run trains, a marker in ``<root>/.live/`` lets every other run see it; the record's
``provenance.load`` says how busy the machine was (:mod:`factorlab.results.load`). A training
that supports it saves its state after every epoch in ``<root>/.checkpoints/<key>/`` and a
run started again continues from there (:mod:`factorlab.results.checkpoints`); the folder is
deleted once the record is written.

A record is ``{"schema", "key", "experiment", "config", "metrics", "history", "timing",
"model", "provenance"}``. Numpy and torch scalars are stored as Python numbers; JSON has no
NaN or infinity, so non-finite floats (a diverged loss) are stored as ``null``.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from factorlab.files import write_atomic
from factorlab.paths import results_dir
from factorlab.results.checkpoints import CHECKPOINT_DIR, remove_checkpoints, run_checkpoints
from factorlab.results.hashing import canonical_json, check_config, config_hash
from factorlab.results.load import LiveMarker, load_snapshot, load_summary
from factorlab.results.provenance import code_version, git_state, provenance

SCHEMA = 1
RESULT_KEYS = ("metrics", "history", "timing", "model")

#: ``train_fn(config) -> {"metrics": ..., "history": ..., "timing": ..., "model": ...}``
TrainFn = Callable[[dict], dict]


class RunNotCachedError(LookupError):
    """A run was needed that is not in the store, and training was forbidden."""


class RunRecordError(ValueError):
    """A record file exists but cannot be used (corrupt JSON, or not the run it claims)."""


class DirtyTreeError(RuntimeError):
    """A ``cpu``/``full`` run was asked for while the code has uncommitted changes."""


#: Profiles whose records the book publishes: they must pin their code (a commit).
PINNED_PROFILES = ("cpu", "full")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def require_cached() -> bool:
    """Whether ``FACTORLAB_REQUIRE_CACHED`` forbids training (read at call time)."""
    return _flag("FACTORLAB_REQUIRE_CACHED")


def allow_dirty() -> bool:
    """Whether ``FACTORLAB_ALLOW_DIRTY`` lets a ``cpu``/``full`` run start from a dirty tree."""
    return _flag("FACTORLAB_ALLOW_DIRTY")


def check_clean(config: dict, git: dict) -> None:
    """DirtyTreeError naming the changed files when ``config`` is a ``cpu``/``full`` run, the
    code in ``git`` (:func:`git_state`) is dirty and ``FACTORLAB_ALLOW_DIRTY`` is not set."""
    if config.get("profile") in PINNED_PROFILES and git.get("dirty") and not allow_dirty():
        files = git.get("dirty_files") or []
        shown = ", ".join(files[:8]) + (f" and {len(files) - 8} more" if len(files) > 8 else "")
        raise DirtyTreeError(
            f"refusing to start a {config['profile']} run of {config['experiment']!r} from a working tree "
            f"with uncommitted code changes ({shown}): commit them first so the record pins its code, "
            "or set FACTORLAB_ALLOW_DIRTY=1 (the record is then marked)")


def to_jsonable(value: Any, path: str = "") -> Any:
    """Plain JSON values: numpy/torch scalars (0-d) to Python numbers, tuples to lists, keys
    to str, non-finite floats to None. TypeError naming ``path`` for anything else."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, (bool, int, float, str)) and getattr(value, "ndim", None) == 0 \
            and callable(getattr(value, "item", None)):
        value = value.item()  # numpy scalar / 0-d array / 0-d tensor
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"cannot store {path or 'value'} of type {type(value).__module__}."
                    f"{type(value).__qualname__} in a run record (JSON values and 0-d numpy/torch "
                    "scalars only)")


def _not_cached_message(config: dict, key: str, root: Path) -> str:
    exp = config["experiment"]
    return (f"run {key} of experiment {exp!r} is not in the run store {root / exp} and "
            f"FACTORLAB_REQUIRE_CACHED is set, so it is not trained here. Config: "
            f"{canonical_json(config)}. Produce it with `python -m factorlab run {exp} "
            f"--profile {config.get('profile', 'cpu')}` (or unset FACTORLAB_REQUIRE_CACHED).")


class RunStore:
    """Records at ``<root>/<experiment>/<key>.json``; ``root`` defaults to
    :func:`factorlab.paths.results_dir`, evaluated on each use (honours
    ``FACTORLAB_RESULTS_DIR``)."""

    def __init__(self, root: str | Path | None = None):
        self._root = Path(root) if root is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @property
    def root(self) -> Path:
        """The store's folder."""
        return self._root if self._root is not None else results_dir()

    def key(self, config: dict) -> str:
        """The run's key: :func:`config_hash` of ``config``."""
        return config_hash(config)

    def path(self, config: dict) -> Path:
        """Where the record of ``config`` lives (whether or not it exists)."""
        return self.root / check_config(config) / f"{self.key(config)}.json"

    def __contains__(self, config: dict) -> bool:
        return self.path(config).is_file()

    def get(self, config: dict) -> dict | None:
        """The stored record of ``config``, or None. RunRecordError naming the file when it is
        corrupt or holds another run."""
        path = self.path(config)
        if not path.is_file():
            return None
        record = self._read(path)
        if record.get("key") != path.stem:
            raise RunRecordError(f"run record {path} holds key {record.get('key')!r}, not "
                                 f"{path.stem!r}; delete it to re-run, or restore it from git")
        return record

    def run(self, config: dict, train_fn: TrainFn, *, device: Any = "cpu") -> dict:
        """The record of ``config``: from the store, or by calling ``train_fn(config)`` and
        writing the record. Exceptions of ``train_fn`` propagate and nothing is written."""
        record = self.get(config)
        if record is not None:
            return record
        key = self.key(config)
        if require_cached():
            raise RunNotCachedError(_not_cached_message(config, key, self.root))
        git = git_state()
        check_clean(config, git)
        checkpoints = self.root / CHECKPOINT_DIR / key
        code = None if git["dirty"] or git["commit"] is None else code_version()
        with LiveMarker(self.root, key) as marker, run_checkpoints(checkpoints, code):
            start = load_snapshot(marker)
            started, t0 = time.time(), time.perf_counter()
            result = train_fn(config)
            wall_s = time.perf_counter() - t0
            load = load_summary(start, marker)
        if not isinstance(result, dict):
            raise TypeError(f"train_fn must return a dict with keys {RESULT_KEYS}, got {type(result).__name__}")
        extra = set(result) - set(RESULT_KEYS)
        if extra:
            raise ValueError(f"train_fn returned unknown keys {sorted(map(str, extra))}; allowed: {RESULT_KEYS}")
        record = {"schema": SCHEMA, "key": key, "experiment": config["experiment"], "config": config,
                  **{k: {} if result.get(k) is None else result[k] for k in RESULT_KEYS},
                  "provenance": provenance(config, device, started, wall_s, git=git, load=load,
                                           allowed_dirty=allow_dirty())}
        path = self.path(config)
        _write_atomic(path, to_jsonable(record))
        remove_checkpoints(checkpoints)
        return self._read(path)

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RunRecordError(f"run record {path} is corrupt ({err}); delete it to re-run, "
                                 "or restore it from git") from err
        if not isinstance(record, dict):
            raise RunRecordError(f"run record {path} is corrupt (not a JSON object); delete it "
                                 "to re-run, or restore it from git")
        return record

    def records(self, experiment: str | None = None) -> list[dict]:
        """All records of ``experiment`` sorted by key (all experiments, sorted by experiment
        then key, when None); empty when there are none."""
        if experiment is not None:
            check_config({"experiment": experiment})
            folders = [self.root / experiment]
        else:
            folders = sorted(p for p in self.root.glob("*") if p.is_dir() and not p.name.startswith("."))
        return [self._read(p) for folder in folders for p in sorted(folder.glob("*.json"))]


def _write_atomic(path: Path, record: dict) -> None:
    """Write ``record`` as JSON (sorted keys, indent 1) to ``path`` whole or not at all
    (:func:`factorlab.files.write_atomic`: temporary file, fsync, rename, mode 0644)."""
    write_atomic(path, json.dumps(record, sort_keys=True, indent=1, allow_nan=False) + "\n")


def default_store() -> RunStore:
    """A store at ``results_dir()`` (honours ``FACTORLAB_RESULTS_DIR`` at each use)."""
    return RunStore()


def run(config: dict, train_fn: TrainFn, *, device: Any = "cpu", store: RunStore | None = None) -> dict:
    """:meth:`RunStore.run` on ``store`` (default: :func:`default_store`)."""
    return (store if store is not None else default_store()).run(config, train_fn, device=device)
