"""Where and how a run was produced: git state, library versions, device, times.

Nothing here imports torch or the optional libraries at module import; versions of the
optional ones are read from package metadata, without importing them.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from factorlab.paths import REPO_ROOT

#: Optional libraries recorded when importable: import name -> distribution names to try.
OPTIONAL_LIBRARIES: dict[str, tuple[str, ...]] = {
    "torch_geometric": ("torch-geometric", "torch_geometric"),
    "tensorly": ("tensorly",),
    "pyscf": ("pyscf",),
    "rdkit": ("rdkit", "rdkit-pypi"),
    "torchvision": ("torchvision",),  # and airbench: the anchor's (benchmarks/airbench_anchor.py)
    "airbench": ("airbench",),
}

#: Changes here do not make the tree dirty: records are written before they are committed.
RESULTS_PATHSPEC = ":(exclude)data/results"


def _git(root: Path, *args: str) -> str | None:
    """stdout of ``git args`` run in ``root``, or None when git or the repository is absent."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(root: str | Path | None = None) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository at ``root``
    (default: the project's ``REPO_ROOT``). Dirty means tracked changes or untracked files,
    except under ``data/results/``. Both are None when git is missing or ``root`` is not the
    top of a repository (e.g. an installed copy inside some other repository); never raises."""
    root = Path(REPO_ROOT if root is None else root)
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if top is None or Path(top.strip()).resolve() != root.resolve():
            return {"commit": None, "dirty": None}
        commit = _git(root, "rev-parse", "HEAD")
        if commit is None:  # a repository without commits
            return {"commit": None, "dirty": None}
        status = _git(root, "status", "--porcelain", "--", ".", RESULTS_PATHSPEC)
    except OSError:
        return {"commit": None, "dirty": None}
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def _dist_version(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def library_versions() -> dict:
    """Versions of Python, factorlab, torch, numpy and those optional libraries that are
    importable here (found with ``find_spec``, versions from package metadata)."""
    import factorlab

    versions = {"python": platform.python_version(), "factorlab": factorlab.__version__}
    for name in ("torch", "numpy"):
        versions[name] = _dist_version((name,)) if importlib.util.find_spec(name) else None
    for name, dists in OPTIONAL_LIBRARIES.items():
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            versions[name] = _dist_version(dists)
    return versions


def describe_device(device: Any) -> str:
    """A readable device name: ``"cpu (x86_64, 2 threads)"``, the CUDA device's name (e.g.
    ``"NVIDIA H100 80GB HBM3"``), or the device type for other accelerators."""
    import torch

    dev = torch.device(device)
    if dev.type == "cpu":
        return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return str(dev)


def utc_iso(timestamp: float) -> str:
    """A Unix time (s) as ISO 8601 UTC with seconds precision, e.g. ``2025-01-31T12:00:00+00:00``."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def provenance(config: dict, device: Any, started: float, wall_s: float) -> dict:
    """The ``provenance`` block of a run record. ``started`` is a Unix time (s), ``wall_s``
    the run's wall time (s). No host name or user name is recorded."""
    git = git_state()
    return {"git_commit": git["commit"], "git_dirty": git["dirty"], "versions": library_versions(),
            "device": describe_device(device), "profile": config.get("profile"),
            "started": utc_iso(started), "wall_s": float(wall_s)}
