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

#: The code that runs: uncommitted changes under these paths make a tree dirty. Records,
#: notebooks, prose and saved weights do not (records are written before they are committed).
CODE_PATHSPECS = ("lib", "benchmarks", "requirements.txt", "pyproject.toml", "environment.yml")


def _git(root: Path, *args: str) -> str | None:
    """stdout of ``git args`` run in ``root``, or None when git or the repository is absent."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(root: str | Path | None = None) -> dict:
    """``{"commit": sha or None, "dirty": bool or None, "dirty_files": [path, ...]}`` of the
    repository at ``root`` (default: the project's ``REPO_ROOT``). Dirty means uncommitted
    changes (tracked or untracked) to the code that runs, :data:`CODE_PATHSPECS`; new records,
    notebook outputs and prose do not count. Commit and dirty are None (and the list empty)
    when git is missing or ``root`` is not the top of a repository (e.g. an installed copy
    inside some other repository); never raises."""
    root = Path(REPO_ROOT if root is None else root)
    unknown = {"commit": None, "dirty": None, "dirty_files": []}
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if top is None or Path(top.strip()).resolve() != root.resolve():
            return unknown
        commit = _git(root, "rev-parse", "HEAD")
        if commit is None:  # a repository without commits
            return unknown
        status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *CODE_PATHSPECS)
    except OSError:
        return unknown
    if status is None:
        return {"commit": commit.strip(), "dirty": None, "dirty_files": []}
    files = sorted(line[3:].strip() for line in status.splitlines() if line.strip())
    return {"commit": commit.strip(), "dirty": bool(files), "dirty_files": files}


def code_version(root: str | Path | None = None) -> str | None:
    """A fingerprint of the committed code that runs: the SHA-256 (hex) of ``git ls-tree HEAD``
    over :data:`CODE_PATHSPECS` (their tree and blob ids), so two commits that differ only in
    records, notebooks or prose share it and a commit that changes the library does not. None
    where git or the repository is missing (as :func:`git_state`). Says nothing of uncommitted
    changes: ask :func:`git_state` whether the tree is dirty."""
    import hashlib

    root = Path(REPO_ROOT if root is None else root)
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if top is None or Path(top.strip()).resolve() != root.resolve():
            return None
        listing = _git(root, "ls-tree", "HEAD", "--", *CODE_PATHSPECS)
    except OSError:
        return None
    return None if listing is None else hashlib.sha256(listing.encode()).hexdigest()


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


def provenance(config: dict, device: Any, started: float, wall_s: float, *, git: dict | None = None,
               load: dict | None = None, allowed_dirty: bool = False) -> dict:
    """The ``provenance`` block of a run record. ``started`` is a Unix time (s), ``wall_s``
    the run's wall time (s), ``git`` the :func:`git_state` taken when the run started
    (default: now), ``load`` the machine's load during the run
    (:func:`factorlab.results.load.load_summary`; omitted when None), ``allowed_dirty``
    whether ``FACTORLAB_ALLOW_DIRTY`` let a dirty tree run. No host or user name is recorded."""
    git = git_state() if git is None else git
    prov = {"git_commit": git["commit"], "git_dirty": git["dirty"], "versions": library_versions(),
            "device": describe_device(device), "profile": config.get("profile"),
            "started": utc_iso(started), "wall_s": float(wall_s)}
    if git.get("dirty"):
        prov["git_dirty_files"] = list(git.get("dirty_files") or [])
        prov["allowed_dirty"] = bool(allowed_dirty)
    if load is not None:
        prov["load"] = load
    return prov
