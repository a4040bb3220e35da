"""MNIST data layer: verification, mirror copies, corrupt files, the cache, the device loader."""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
import torch

from factorlab.data import DataError, DeviceLoader, fetch, file_md5, load_mnist, mnist_files
from factorlab.data.idx import read_idx_ubyte
from factorlab.data.mnist import MNIST_MD5

REPO = Path(__file__).resolve().parents[2]


def _real_mirror() -> Path | None:
    """The dataset mirror: FACTORLAB_DATA_MIRROR if set, else ../shared/datasets beside the repo."""
    for cand in [*os.environ.get("FACTORLAB_DATA_MIRROR", "").split(os.pathsep), str(REPO.parent / "shared" / "datasets")]:
        if cand and (Path(cand) / "mnist" / "train-labels-idx1-ubyte.gz").exists():
            return Path(cand).resolve()
    return None


MIRROR = _real_mirror()
needs_mirror = pytest.mark.skipif(MIRROR is None, reason="no MNIST mirror on this machine (set FACTORLAB_DATA_MIRROR)")


@pytest.fixture
def datadir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACTORLAB_OFFLINE", "1")
    monkeypatch.delenv("FACTORLAB_DATA_MIRROR", raising=False)
    return tmp_path / "data"


@needs_mirror
def test_mirror_files_match_the_canonical_md5(datadir, monkeypatch):
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(MIRROR))
    for name, spec in mnist_files().items():
        path = fetch(spec)
        assert path == datadir / "raw" / "mnist" / name
        assert file_md5(path, "gunzip") == MNIST_MD5[name]


@needs_mirror
def test_load_mnist_shapes_and_cache_rebuild(datadir, monkeypatch):
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(MIRROR))
    d = load_mnist(n_train=1000, n_test=100)
    assert d.train_x.shape == (1000, 28, 28) and d.train_x.dtype == torch.uint8
    assert d.train_y.dtype == torch.int64 and d.test_x.shape == (100, 28, 28)
    assert set(d.train_y.tolist()) == set(range(10))
    assert d.test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    cache = datadir / "processed" / "mnist.pt"
    assert cache.exists()
    cache.write_bytes(b"garbage")  # a corrupt cache is rebuilt, not trusted
    again = load_mnist(n_train=1000, n_test=100)
    assert torch.equal(again.train_x, d.train_x)
    with pytest.raises(ValueError, match="n_train must be in 1..60000"):
        load_mnist(n_train=0)


def _fake_mirror(tmp_path: Path, payload: bytes) -> Path:
    mirror = tmp_path / "mirror"
    (mirror / "mnist").mkdir(parents=True)
    for name in MNIST_MD5:
        (mirror / "mnist" / name).write_bytes(payload)
    return mirror


def test_corrupt_mirror_copy_is_refused_and_leaves_nothing(datadir, tmp_path, monkeypatch):
    mirror = _fake_mirror(tmp_path, gzip.compress(b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"abc"))
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(mirror))
    spec = mnist_files()["train-labels-idx1-ubyte.gz"]
    with pytest.raises(DataError) as err:
        fetch(spec)
    msg = str(err.value)
    assert "train-labels-idx1-ubyte.gz" in msg and spec.md5 in msg  # the file and the expected sum
    assert "corrupt" in msg and "http" in msg and "FACTORLAB_DATA_MIRROR" in msg  # both ways to get it
    assert not (datadir / "raw" / "mnist").exists() or not any((datadir / "raw" / "mnist").iterdir())


@needs_mirror
def test_truncated_copy_of_the_real_file_is_refused(datadir, tmp_path, monkeypatch):
    real = (MIRROR / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    mirror = _fake_mirror(tmp_path, real[: len(real) // 2])
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(mirror))
    with pytest.raises(DataError, match="27ae3e4e09519cfbb04c329615203637"):
        fetch(mnist_files()["t10k-labels-idx1-ubyte.gz"])


def test_missing_everywhere_names_both_ways(datadir):
    with pytest.raises(DataError) as err:
        fetch(mnist_files()["t10k-images-idx3-ubyte.gz"])
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "2646ac647ad5339dbf082846283269ea" in msg
    assert "FACTORLAB_DATA_MIRROR is unset" in msg and "yann.lecun.com" in msg


@needs_mirror
def test_corrupt_file_already_in_raw_is_not_trusted(datadir, monkeypatch):
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(MIRROR))
    spec = mnist_files()["t10k-labels-idx1-ubyte.gz"]
    path = fetch(spec)
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[100] ^= 0xFF  # one flipped byte
    path.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DataError, match=f"corrupt: expected MD5 {spec.md5}"):
        fetch(spec)


def test_idx_parser_rejects_bad_magic_and_sizes(tmp_path):
    good = tmp_path / "ok.gz"
    good.write_bytes(gzip.compress(b"\x00\x00\x08\x02" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6))))
    assert read_idx_ubyte(good).tolist() == [[0, 1, 2], [3, 4, 5]]
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc"))
    with pytest.raises(DataError, match="bad IDX magic"):
        read_idx_ubyte(bad)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc"))
    with pytest.raises(DataError, match="holds 3"):
        read_idx_ubyte(short)


def test_device_loader_covers_each_index_once_per_epoch():
    x = torch.arange(10)
    loader = DeviceLoader(x, x * 2, batch_size=3, shuffle=True, seed=7)
    assert len(loader) == 4
    epoch1 = [b for b in loader]
    seen = torch.cat([a for a, _ in epoch1])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(b, a * 2) for a, b in epoch1)  # tensors stay aligned
    epoch2 = torch.cat([a for a, _ in loader])
    assert not torch.equal(seen, epoch2)  # a new order each epoch
    again = DeviceLoader(x, x * 2, batch_size=3, shuffle=True, seed=7)
    assert torch.equal(torch.cat([a for a, _ in again]), seen)  # same seed, same order


def test_device_loader_order_drop_last_and_errors():
    x = torch.arange(10)
    assert [b[0].tolist() for b in DeviceLoader(x, batch_size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DeviceLoader(x, batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="positive int"):
        DeviceLoader(x, batch_size=0)
    with pytest.raises(ValueError, match="same first dimension"):
        DeviceLoader(x, torch.arange(9), batch_size=2)


def test_file_digest_raw_and_gunzipped(tmp_path):
    import gzip
    import hashlib

    from factorlab.data.fetch import file_digest

    payload = b"factorlab" * 100_000  # several read blocks
    raw, gz = tmp_path / "x.bin", tmp_path / "x.bin.gz"
    raw.write_bytes(payload)
    gz.write_bytes(gzip.compress(payload))
    assert file_digest(raw) == hashlib.sha256(payload).hexdigest()
    assert file_digest(gz, "md5", gunzip=True) == hashlib.md5(payload).hexdigest() == file_md5(gz, "gunzip")
    assert file_md5(raw, "gunzip").startswith("unreadable (BadGzipFile")
    with pytest.raises(FileNotFoundError):
        file_digest(tmp_path / "missing")
