"""Get one verified file: canonical download first, then mirror folders, never other data.

A file is looked for, in order, in ``raw_dir()/<subdir>/`` (used as is when it verifies), at
each canonical URL, and at ``<mirror>/<subdir>/<filename>`` for each folder of
``FACTORLAB_DATA_MIRROR``. Downloads and copies go to a temporary file that replaces the target
only once verified, so a failure leaves nothing behind. ``FACTORLAB_OFFLINE=1`` skips the
download attempts (for machines that cannot reach the datasets' home servers).
"""
from __future__ import annotations

import gzip
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from factorlab.data.errors import DataError
from factorlab.files import file_digest, write_atomic
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


def _install(write, spec: RemoteFile, target: Path) -> str:
    """``write(tmp_path)`` a candidate, move it onto ``target`` only if its MD5 is the
    expected one (:func:`factorlab.files.write_atomic`); return the MD5 found."""
    found = []

    def verify(tmp: Path) -> bool:
        found.append(file_md5(tmp, spec.md5_of))
        return found[-1] == spec.md5

    write_atomic(target, write, verify=verify)
    return found[-1]


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
                def fill(tmp, url=url):
                    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r, open(tmp, "wb") as f:
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
        got = _install(lambda tmp, src=src: shutil.copyfile(src, tmp), spec, target)
        if got == spec.md5:
            return target
        problems.append(f"{src}: corrupt, MD5 {got} ({spec.md5_of} content), expected {spec.md5}")
    raise DataError(
        f"could not obtain {spec.subdir}/{spec.filename} (expected MD5 {spec.md5} of its "
        f"{spec.md5_of} content). Tried: " + "; ".join(problems) + ". " + _how_to_get(spec))
