"""Resumable runs: the training state of a run in progress, saved after every epoch, so that
a run longer than a session finishes over several.

The run store resumes a grid run by run; this resumes one run epoch by epoch. The store opens
:func:`run_checkpoints` around each training it starts, on ``<root>/.checkpoints/<key>/``;
inside it, each training loop that supports resuming (today
:func:`factorlab.train.fit_regression`) takes the next :class:`Slot` (:func:`next_slot`:
``fit0.pt``, ``fit1.pt``, ... in call order, since one run may train several times) and saves
its whole state there after each epoch. A run started again with the same key loads each
slot and continues after its last saved epoch, which gives the run it would have been without
the interruption (tested bit for bit).

A slot is only used by the code that wrote it: the store passes the code version of a clean
tree (:func:`factorlab.results.provenance.code_version`, a fingerprint of the committed library,
benchmarks and requirements), and a slot written by other code is ignored with a note on stderr
(the run starts over). Commits that add only records, notebook outputs or prose keep the code
version, so a run half done when such a commit lands still resumes, and its record's commit
pins code identical to the code that trained it. A dirty tree (allowed with
``FACTORLAB_ALLOW_DIRTY=1``) gets no slots. The store deletes the folder once the record is
written; a run that fails or is killed leaves it for the next start. Outside the context
(notebooks, tests, benchmarks) :func:`next_slot` is None and nothing is saved.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

#: Folder under the store's root that holds the runs' checkpoints (git-ignored).
CHECKPOINT_DIR = ".checkpoints"


class _Run:
    """The checkpoints of one run: its folder, the code version that may use them, the next slot."""

    def __init__(self, folder: Path, code: str):
        self.folder, self.code, self.count = folder, code, 0


_CURRENT: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("factorlab_run_checkpoints", default=None)


class Slot:
    """One training loop's checkpoint file in a run's folder (``fit<k>.pt``), usable by the code
    version ``code`` only."""

    def __init__(self, path: Path, code: str):
        self.path, self.code = path, code

    def __repr__(self) -> str:
        return f"Slot({str(self.path)!r})"

    def load(self) -> dict | None:
        """The saved state (a dict of tensors and plain values), or None when there is none or
        it was written by other code (then a note on stderr) or cannot be read."""
        if not self.path.is_file():
            return None
        import torch

        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as err:  # a torn or foreign file: start over rather than fail the run
            print(f"factorlab: ignoring unreadable checkpoint {self.path} ({err}); the run starts over",
                  file=sys.stderr)
            return None
        if not isinstance(saved, dict) or saved.get("code") != self.code:
            written = saved.get("code") if isinstance(saved, dict) else None
            print(f"factorlab: checkpoint {self.path} was written by code version {str(written)[:12]}, "
                  f"not {self.code[:12]}; the run starts over", file=sys.stderr)
            return None
        return saved["state"]

    def save(self, state: dict) -> None:
        """Write ``state`` whole or not at all (a temporary file renamed over the slot)."""
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        torch.save({"code": self.code, "state": state}, tmp)
        os.replace(tmp, self.path)


@contextlib.contextmanager
def run_checkpoints(folder: str | Path, code: str | None) -> Iterator[None]:
    """Within the block, :func:`next_slot` hands out slots in ``folder`` for the code version
    ``code`` (a clean tree's :func:`~factorlab.results.provenance.code_version`; None: no
    slots, nothing saved). Nesting replaces the outer run."""
    token = _CURRENT.set(None if code is None else _Run(Path(folder), code))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def next_slot() -> Slot | None:
    """The next checkpoint slot of the run in progress (``fit0.pt``, ``fit1.pt``, ...), or None
    outside :func:`run_checkpoints` (or for a run without a code version)."""
    run = _CURRENT.get()
    if run is None:
        return None
    slot = Slot(run.folder / f"fit{run.count}.pt", run.code)
    run.count += 1
    return slot


def remove_checkpoints(folder: str | Path) -> None:
    """Delete a finished run's checkpoint folder (nothing when there is none)."""
    shutil.rmtree(folder, ignore_errors=True)


__all__ = ["CHECKPOINT_DIR", "Slot", "next_slot", "remove_checkpoints", "run_checkpoints"]
