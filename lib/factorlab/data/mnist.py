"""MNIST: the four canonical IDX files, verified, cached as uint8 tensors, loaded on a device."""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass

import torch

from factorlab.data.errors import DataError
from factorlab.data.fetch import RemoteFile, fetch
from factorlab.data.idx import read_idx_ubyte
from factorlab.paths import processed_dir

#: Canonical sources, first the original then the usual fallback mirrors.
MNIST_URLS = ("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/")

#: File -> MD5 of its *uncompressed* content (the canonical published sums).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
CACHE_VERSION = 1


def mnist_files() -> dict[str, RemoteFile]:
    """The four MNIST files as :class:`RemoteFile` specs."""
    return {name: RemoteFile(name, "mnist", tuple(u + name for u in MNIST_URLS), md5, "gunzip")
            for name, md5 in MNIST_MD5.items()}


@dataclass
class MNISTData:
    """MNIST on one device: images uint8 [N, 28, 28] (0-255), labels int64 [N] (0-9)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def _build_cache() -> dict:
    paths = {name: fetch(spec) for name, spec in mnist_files().items()}
    arrays = {
        "train_x": torch.from_numpy(read_idx_ubyte(paths["train-images-idx3-ubyte.gz"]).copy()),
        "train_y": torch.from_numpy(read_idx_ubyte(paths["train-labels-idx1-ubyte.gz"]).copy()).long(),
        "test_x": torch.from_numpy(read_idx_ubyte(paths["t10k-images-idx3-ubyte.gz"]).copy()),
        "test_y": torch.from_numpy(read_idx_ubyte(paths["t10k-labels-idx1-ubyte.gz"]).copy()).long(),
    }
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    if shapes != {"train_x": (60000, 28, 28), "train_y": (60000,), "test_x": (10000, 28, 28), "test_y": (10000,)}:
        raise DataError(f"MNIST files have unexpected shapes {shapes}")
    return {"version": CACHE_VERSION, "sha256": _checksum(arrays), **arrays}


def _load_cache() -> dict:
    """The processed cache ``processed/mnist.pt``, rebuilt when missing, stale or corrupt."""
    path = processed_dir() / "mnist.pt"
    if path.exists():
        try:
            cache = torch.load(path, weights_only=True)
            arrays = {k: cache[k] for k in ("train_x", "train_y", "test_x", "test_y")}
            if cache.get("version") == CACHE_VERSION and cache.get("sha256") == _checksum(arrays):
                return cache
        except Exception:  # unreadable cache: rebuild it from the verified raw files
            pass
    cache = _build_cache()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        torch.save(cache, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return cache


def load_mnist(device: str | torch.device = "cpu", n_train: int | None = None,
               n_test: int | None = None) -> MNISTData:
    """MNIST on ``device``; ``n_train``/``n_test`` keep only the first samples (smoke runs)."""
    cache = _load_cache()
    dev = torch.device(device)
    for name, n, total in (("n_train", n_train, 60000), ("n_test", n_test, 10000)):
        if n is not None and not 0 < n <= total:
            raise ValueError(f"{name} must be in 1..{total} or None, got {n}")
    tr, te = slice(0, n_train), slice(0, n_test)
    return MNISTData(cache["train_x"][tr].to(dev), cache["train_y"][tr].to(dev),
                     cache["test_x"][te].to(dev), cache["test_y"][te].to(dev))
