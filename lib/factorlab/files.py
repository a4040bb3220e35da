"""Files written whole or not at all, file digests, and checksummed tensor caches.

Every file factorlab writes for later reading (run records, saved networks, downloads, the
processed dataset caches) goes through :func:`write_atomic`: the content goes to a temporary
file in the target's folder, is flushed to disk, optionally verified, and only then renamed
over the target, so a crash, a failed check or a killed worker leaves the old file or none,
never a partial one. A *verified cache* (:func:`save_verified`, :func:`load_verified`) is a
``torch.save`` dict of tensors with a format ``version`` and the SHA-256 of its arrays
(:func:`arrays_sha256`), checked on every load.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Union

#: What :func:`write_atomic` writes: bytes, text (UTF-8), or a function that writes the
#: temporary file at the path it is given.
Content = Union[bytes, str, Callable[[Path], None]]


class CacheError(Exception):
    """A verified cache that is missing, unreadable, of another version or corrupt (one line)."""


def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk; a no-op where not supported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, content: Content, *, verify: Callable[[Path], bool] | None = None,
                 mode: int = 0o644) -> bool:
    """Write ``content`` to ``path`` whole or not at all.

    Args:
        path: the target; its folder is created.
        content: bytes, str (written as UTF-8), or ``writer(tmp_path)`` that writes the
            temporary file (e.g. ``lambda p: torch.save(obj, p)``).
        verify: called on the finished temporary file; when it returns False the target is
            left untouched and the temporary file removed.
        mode: permission bits of the written file (the temporary file is made 0600).

    Returns:
        True when ``path`` was replaced, False when ``verify`` rejected the content.
    Raises whatever ``content`` or ``verify`` raises, after removing the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        if callable(content):
            os.close(fd)
            content(Path(tmp))
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        _fsync_path(tmp)
        if verify is not None and not verify(Path(tmp)):
            return False
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_path(path.parent, directory=True)  # make the rename durable too
    return True


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through :func:`write_atomic`; returns ``path``.

    Saved through a file object, so the bytes do not depend on the (random) temporary file
    name: ``torch.save`` to a path names the archive's folder after the file.
    """
    import torch

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    write_atomic(path, save)
    return Path(path)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", *, gunzip: bool = False) -> str:
    """Hex digest (``hashlib`` ``algorithm``) of a file's bytes, or of its decompressed content
    with ``gunzip``, read in 1 MiB blocks. Raises what opening or reading raises (OSError,
    EOFError, gzip.BadGzipFile)."""
    h = hashlib.new(algorithm)
    with (gzip.open if gunzip else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def arrays_sha256(arrays: dict, *, with_shapes: bool = False) -> str:
    """SHA-256 over ``arrays`` (name -> CPU tensor, or a list of str), sorted by name: each
    name's bytes, then (``with_shapes``) the tensor's shape and dtype as text, then its raw
    bytes, or a string list joined by newlines. This is the checksum every processed cache
    stores (MNIST and CIFAR-10 without shapes, QM9 with); changing it invalidates them all."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        v = arrays[k]
        if isinstance(v, (list, tuple)):
            h.update("\n".join(v).encode())
            continue
        if with_shapes:
            h.update(str(tuple(v.shape)).encode() + str(v.dtype).encode())
        h.update(v.contiguous().numpy().tobytes())
    return h.hexdigest()


def save_verified(path: str | os.PathLike, arrays: dict, *, version: int, with_shapes: bool = False,
                  **extra: Any) -> dict:
    """Write the cache ``{"version", "sha256", **extra, **arrays}`` to ``path`` atomically and
    return it (``extra``: other plain values kept beside the arrays, not checksummed)."""
    cache = {"version": version, "sha256": arrays_sha256(arrays, with_shapes=with_shapes), **extra, **arrays}
    atomic_torch_save(cache, path)
    return cache


def load_verified(path: str | os.PathLike, keys: Iterable[str], *, version: int, with_shapes: bool = False,
                  what: str = "cache") -> dict:
    """The whole cache dict at ``path`` once its ``version`` and the SHA-256 of its arrays
    ``keys`` check out.

    Raises:
        CacheError: the file is missing, unreadable, lacks one of ``keys``, has another
            version, or its arrays do not match the stored SHA-256 (one line naming ``what``
            and the file).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CacheError(f"{what} {path} does not exist")
    try:
        cache = torch.load(path, weights_only=True)
        arrays = {k: cache[k] for k in keys}
    except Exception as err:  # truncated, foreign, or missing a key
        raise CacheError(f"{what} {path} is unreadable ({type(err).__name__}: {err})") from err
    if cache.get("version") != version:
        raise CacheError(f"{what} {path} has version {cache.get('version')}, expected {version}")
    got = arrays_sha256(arrays, with_shapes=with_shapes)
    if got != cache.get("sha256"):
        raise CacheError(f"{what} {path} is corrupt: SHA-256 of its arrays is {got}, stored {cache.get('sha256')}")
    return cache
