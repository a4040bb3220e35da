"""Get one verified file: canonical download first, then mirror folders, never other data.

A file is looked for, in order, in ``raw_dir()/<subdir>/`` (used as is when it verifies), at
each canonical URL, and at ``<mirror>/<subdir>/<filename>`` for each folder of
``FACTORLAB_DATA_MIRROR``. Downloads and copies go to a temporary file that replaces the target
only once verified, so a failure leaves nothing behind. ``FACTORLAB_OFFLINE=1`` skips the
download attempts (for machines that cannot reach the datasets' home servers).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from factorlab.data.errors import DataError
from factorlab.paths import mirror_dirs, raw_dir

DOWNLOAD_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its name, where it lives, and its checksum.

    ``md5_of``: ``"raw"`` (MD5 of the file's bytes) or ``"gunzip"`` (MD5 of the decompressed
    content of a ``.gz`` file, as MNIST publishes it).
    """

    filename: str
    subdir: str
    urls: tuple[str, ...]
    md5: str
    md5_of: str = "raw"


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", *, gunzip: bool = False) -> str:
    """Hex digest (``hashlib`` ``algorithm``) of a file's bytes, or of its decompressed content
    with ``gunzip``, read in 1 MiB blocks. Raises what opening or reading raises (OSError,
    EOFError, gzip.BadGzipFile)."""
    h = hashlib.new(algorithm)
    with (gzip.open if gunzip else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_md5(path: Path, md5_of: str = "raw") -> str:
    """Hex MD5 of ``path``'s bytes, or of its gunzipped content when ``md5_of == "gunzip"``;
    ``"unreadable (...)"`` (which matches no checksum) for a truncated or non-gzip file."""
    try:
        return file_digest(path, "md5", gunzip=md5_of == "gunzip")
    except (OSError, EOFError, gzip.BadGzipFile) as err:  # truncated or not gzip at all
        return f"unreadable ({type(err).__name__}: {err})"


def _how_to_get(spec: RemoteFile) -> str:
    return (f"Get it either by download from {' or '.join(spec.urls)} (needs network; unset "
            f"FACTORLAB_OFFLINE), or by setting FACTORLAB_DATA_MIRROR to a folder that holds "
            f"{spec.subdir}/{spec.filename} (for example the project's shared/datasets).")


def _install(src_fill, spec: RemoteFile, target: Path) -> str:
    """Write via ``src_fill(fileobj)`` to a temp file, verify, move into place; return the MD5."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            src_fill(f)
        got = file_md5(Path(tmp), spec.md5_of)
        if got == spec.md5:
            os.replace(tmp, target)
        return got
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(spec: RemoteFile) -> Path:
    """Return the path of a verified local copy of ``spec``, getting it if needed.

    Raises:
        DataError: naming the file, the expected and the found MD5, and both ways to get it.
    """
    target = raw_dir() / spec.subdir / spec.filename
    problems: list[str] = []
    if target.exists():
        got = file_md5(target, spec.md5_of)
        if got == spec.md5:
            return target
        raise DataError(
            f"{target} is corrupt: expected MD5 {spec.md5} ({spec.md5_of} content), found {got}. "
            f"Delete it and get it again. {_how_to_get(spec)}")
    if os.environ.get("FACTORLAB_OFFLINE", "").lower() not in ("1", "true", "yes"):
        for url in spec.urls:
            try:
                def fill(f, url=url):
                    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:
                        shutil.copyfileobj(r, f)
                got = _install(fill, spec, target)
                if got == spec.md5:
                    return target
                problems.append(f"{url}: MD5 {got}, expected {spec.md5}")
            except Exception as err:  # network errors of every kind: try the next source
                problems.append(f"{url}: {type(err).__name__}: {err}")
    else:
        problems.append("downloads skipped (FACTORLAB_OFFLINE is set)")
    mirrors = mirror_dirs()
    if not mirrors:
        problems.append("no mirror folder (FACTORLAB_DATA_MIRROR is unset)")
    for mirror in mirrors:
        src = mirror / spec.subdir / spec.filename
        if not src.exists():
            problems.append(f"{src}: not found")
            continue

        def fill(f, src=src):
            with open(src, "rb") as s:
                shutil.copyfileobj(s, f)
        got = _install(fill, spec, target)
        if got == spec.md5:
            return target
        problems.append(f"{src}: corrupt, MD5 {got} ({spec.md5_of} content), expected {spec.md5}")
    raise DataError(
        f"could not obtain {spec.subdir}/{spec.filename} (expected MD5 {spec.md5} of its "
        f"{spec.md5_of} content). Tried: " + "; ".join(problems) + ". " + _how_to_get(spec))
