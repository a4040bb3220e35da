"""Where the project keeps its files.

Every location can be moved with an environment variable, so that tests and CI can work in a
temporary directory without touching the committed run store:

- ``FACTORLAB_DATA_DIR``: root of ``raw/`` and ``processed/`` (default ``<repo>/data``).
- ``FACTORLAB_RESULTS_DIR``: the run store (default ``<repo>/data/results``).
- ``FACTORLAB_MODELS_DIR``: saved networks (default ``<repo>/data/models``; when only the run
  store was moved, ``<run store>/.models``, so a throw-away store never writes committed weights).
- ``FACTORLAB_DATA_MIRROR``: ``os.pathsep``-separated list of mirror folders (no default).
"""
from __future__ import annotations

import os
from pathlib import Path

#: The repository root (``lib/factorlab/paths.py`` -> three levels up).
REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Root folder of downloaded (``raw/``) and cached (``processed/``) data."""
    return Path(os.environ.get("FACTORLAB_DATA_DIR", REPO_ROOT / "data")).resolve()


def raw_dir() -> Path:
    """Folder of verified downloads, ``<data_dir>/raw``."""
    return data_dir() / "raw"


def processed_dir() -> Path:
    """Folder of compact processed caches, ``<data_dir>/processed``."""
    return data_dir() / "processed"


def results_dir() -> Path:
    """Root of the run store, one sub-folder per experiment."""
    return Path(os.environ.get("FACTORLAB_RESULTS_DIR", REPO_ROOT / "data" / "results")).resolve()


def models_dir() -> Path:
    """Root of the saved networks the demonstration loads, one sub-folder per experiment."""
    if os.environ.get("FACTORLAB_MODELS_DIR"):
        return Path(os.environ["FACTORLAB_MODELS_DIR"]).resolve()
    if os.environ.get("FACTORLAB_RESULTS_DIR"):
        return results_dir() / ".models"
    return (REPO_ROOT / "data" / "models").resolve()


def mirror_dirs() -> list[Path]:
    """Mirror folders named in ``FACTORLAB_DATA_MIRROR`` (relative paths are taken from the
    current directory), in the order given; empty when the variable is unset."""
    value = os.environ.get("FACTORLAB_DATA_MIRROR", "")
    return [Path(p).resolve() for p in value.split(os.pathsep) if p.strip()]
