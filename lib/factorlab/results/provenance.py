"""Where and how a run was produced: git state, library versions, device, times."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import subprocess
import sys
from datetime import datetime, timezone

import torch

from factorlab.paths import REPO_ROOT

OPTIONAL_LIBRARIES = ("torch_geometric", "tensorly", "pyscf", "rdkit")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository; changes under
    ``data/results/`` do not count as dirty (records are written before they are committed)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)data/results")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def library_versions() -> dict:
    """Versions of Python, factorlab, torch, numpy and the optional libraries importable here."""
    import numpy

    import factorlab

    versions = {"python": platform.python_version(), "factorlab": factorlab.__version__,
                "torch": torch.__version__, "numpy": numpy.__version__}
    for name in OPTIONAL_LIBRARIES:
        if importlib.util.find_spec(name) is not None:
            dist = {"torch_geometric": "torch-geometric"}.get(name, name)
            try:
                versions[name] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = "unknown"
    return versions


def describe_device(device: str | torch.device) -> str:
    """A readable device name, e.g. ``"cpu (x86_64, 2 threads)"`` or the CUDA device name."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(config: dict, device: str | torch.device, started: float, wall_s: float) -> dict:
    """The ``provenance`` block of a run record; ``started`` is a Unix time (s)."""
    git = git_state()
    return {
        "git_commit": git["commit"], "git_dirty": git["dirty"],
        "versions": library_versions(), "device": describe_device(device),
        "profile": config.get("profile"),
        "started": datetime.fromtimestamp(started, tz=timezone.utc).isoformat(timespec="seconds"),
        "wall_s": wall_s, "argv0": sys.argv[0].rsplit("/", 1)[-1] if sys.argv else None,
    }
