"""MNIST: the four canonical IDX files, verified, cached as uint8 tensors, loaded on a device."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from factorlab.data.errors import DataError
from factorlab.data.fetch import RemoteFile, fetch
from factorlab.data.idx import read_idx_ubyte
from factorlab.files import CacheError, load_verified, save_verified
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
ARRAY_KEYS = ("train_x", "train_y", "test_x", "test_y")


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


def _build_arrays() -> dict[str, torch.Tensor]:
    """The four arrays from the verified raw files (downloaded or copied when missing)."""
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
    return arrays


def _load_cache() -> dict:
    """The processed cache ``processed/mnist.pt`` (a verified cache of :mod:`factorlab.files`),
    rebuilt when missing, stale or corrupt."""
    path = processed_dir() / "mnist.pt"
    try:
        return load_verified(path, ARRAY_KEYS, version=CACHE_VERSION, what="MNIST cache")
    except CacheError:  # missing or unusable: rebuild it from the verified raw files
        return save_verified(path, _build_arrays(), version=CACHE_VERSION)


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
