"""The C allocator under PyTorch's CPU tensors: keep freed memory for reuse.

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc serves a block above its
*mmap threshold* (128 KiB at first, then adjusted upward by the largest block freed, at most
32 MiB) with a fresh ``mmap``, and returns the top of its heap to the system once more than
the *trim threshold* is free. A training step frees its activations and gradients at the end
and allocates the same sizes again in the next step, so under those defaults many of them come
back as new pages that fault in (and are zeroed by the kernel) on every step: system time
that depends on the process's allocation history, not on the model. Setting both thresholds
to a fixed large value makes ``malloc`` reuse the freed blocks instead; the process then keeps
its peak CPU memory until it exits. Numerical results do not change (only where the bytes
live does).

The setting is the process's: :func:`retain_freed_memory` is called once where a process that
trains starts (``python -m factorlab run``, each worker of the ``processes`` and ``ray``
executors, a benchmark script, and a notebook's kernel before its first run is trained), and the
training loops record :func:`allocator_in_effect` with their timing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: ``mallopt`` parameter numbers of glibc's ``<malloc.h>``.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Both thresholds (bytes): blocks below it come from the heap, and the heap is never trimmed
#: while less than this is free at its top.
KEEP_BYTES = 1 << 30

_state: dict[str, str] = {}


def retain_freed_memory() -> str:
    """Set glibc's mmap and trim thresholds to :data:`KEEP_BYTES` (once per process).

    Returns what is in effect, recorded with each timing: ``"glibc, freed memory kept"``, or
    ``"system default"`` where the C library is not glibc (macOS, Windows, musl) or refuses.
    """
    if "allocator" not in _state:
        _state["allocator"] = _set_thresholds()
    return _state["allocator"]


def allocator_in_effect() -> str:
    """What :func:`retain_freed_memory` set in this process, or ``"system default"`` where it
    was not called: the ``allocator`` a training loop records with its timing."""
    return _state.get("allocator", "system default")


def _set_thresholds() -> str:
    if not sys.platform.startswith("linux"):
        return "system default"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: AttributeError elsewhere)
    except (OSError, AttributeError):
        return "system default"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, KEEP_BYTES) != 1 or mallopt(M_TRIM_THRESHOLD, KEEP_BYTES) != 1:
        return "system default"
    return "glibc, freed memory kept"
