"""CIFAR-10 data layer: the fixture, image folders and archives, the uint8 cache and its
checksum, sources and their errors, subsets, and the on-device augmentation."""
from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from factorlab.data import DataError
from factorlab.data import cifar10
from factorlab.data.augment import (Augment, AugmentedBatches, cutout, flip_lr, random_flip, random_translate,
                                    translate)
from factorlab.data.cifar10 import (CLASSES, load_arrays, load_cifar10, read_cache, read_source, stratified_subset,
                                    write_cache)
from factorlab.data.fetch import file_md5
from factorlab.experiments.cifar_common import FIXTURE


@pytest.fixture
def datadir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACTORLAB_OFFLINE", "1")
    monkeypatch.delenv("FACTORLAB_DATA_MIRROR", raising=False)
    monkeypatch.delenv("FACTORLAB_CIFAR10_VARIANT", raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def fixture_arrays():
    return read_source(FIXTURE, expect_full=False)


def test_fixture_loads_with_shapes_labels_and_statistics():
    d = load_cifar10(source=FIXTURE)
    assert d.train_x.shape == (250, 3, 32, 32) and d.train_x.dtype == torch.uint8
    assert d.test_x.shape == (100, 3, 32, 32) and d.test_y.dtype == torch.int64
    assert d.train_y.bincount().tolist() == [25] * 10 and d.test_y.bincount().tolist() == [10] * 10
    assert d.variant == "cifar10-jpeg-q75" and d.lossy and d.classes == CLASSES
    assert d.mean.shape == (3,) and 0.3 < float(d.mean.min()) and float(d.mean.max()) < 0.6
    assert 0.15 < float(d.std.min()) and float(d.std.max()) < 0.35
    z = d.normalize(d.train_x)
    assert z.dtype == torch.float32 and abs(float(z.mean())) < 0.1 and abs(float(z.std()) - 1) < 0.1


def test_image_tree_reads_like_its_archive(tmp_path, fixture_arrays):
    with tarfile.open(FIXTURE) as tf:
        tf.extractall(tmp_path, filter="data")
    tree = read_source(tmp_path / "cifar10-jpeg", expect_full=False)
    for k in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(tree[k], fixture_arrays[k])
    with pytest.raises(DataError, match="expected 5000 of each"):
        read_source(tmp_path / "cifar10-jpeg", expect_full=True)


def test_cache_round_trip_and_checksum_failure(tmp_path, fixture_arrays):
    path = write_cache(fixture_arrays, tmp_path / "c.pt", "cifar10-jpeg-q75")
    cache = read_cache(path)
    assert all(torch.equal(cache[k], fixture_arrays[k]) for k in ("train_x", "train_y", "test_x", "test_y"))
    assert cache["variant"] == "cifar10-jpeg-q75" and len(cache["sha256"]) == 64 and len(cache["mean"]) == 3
    tampered = dict(cache)
    tampered["train_x"] = cache["train_x"].clone()
    tampered["train_x"][0, 0, 0, 0] ^= 1  # one flipped bit
    torch.save(tampered, path)
    with pytest.raises(DataError) as err:
        read_cache(path)
    msg = str(err.value)
    assert str(path) in msg and "corrupt" in msg and "SHA-256" in msg
    assert "cifar-10-python.tar.gz" in msg and "FACTORLAB_DATA_MIRROR" in msg  # both ways to get the data
    path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="unreadable"):
        read_cache(path)


def _fixture_mirror(tmp_path, monkeypatch):
    """A mirror holding the fixture under the JPEG archive's name, accepted as the full set."""
    mirror = tmp_path / "mirror"
    (mirror / "cifar10").mkdir(parents=True)
    (mirror / "cifar10" / cifar10.JPEG_ARCHIVE.filename).write_bytes(FIXTURE.read_bytes())
    spec = cifar10.JPEG_ARCHIVE.__class__(cifar10.JPEG_ARCHIVE.filename, "cifar10", (), file_md5(FIXTURE))
    monkeypatch.setattr(cifar10, "JPEG_ARCHIVE", spec)
    monkeypatch.setattr(cifar10, "FULL_COUNTS", {"train": 250, "test": 100})
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(mirror))
    return mirror


def test_mirror_to_cache_then_corrupt_cache_is_rebuilt_or_refused(datadir, tmp_path, monkeypatch, fixture_arrays):
    mirror = _fixture_mirror(tmp_path, monkeypatch)
    d = load_cifar10(n_train=50, n_test=20)
    assert d.train_x.shape[0] == 50 and d.train_y.bincount().tolist() == [5] * 10
    cache = datadir / "processed" / "cifar10-jpeg-q75.pt"
    assert cache.exists() and (datadir / "raw" / "cifar10" / cifar10.JPEG_ARCHIVE.filename).exists()
    assert torch.equal(read_cache(cache)["train_x"], fixture_arrays["train_x"])
    cache.write_bytes(b"garbage")  # source still there: rebuilt
    assert torch.equal(load_cifar10().train_x, fixture_arrays["train_x"])
    cache.write_bytes(b"garbage")  # source gone: a clear error naming the cache and the ways to get the data
    (datadir / "raw" / "cifar10" / cifar10.JPEG_ARCHIVE.filename).unlink()
    (mirror / "cifar10" / cifar10.JPEG_ARCHIVE.filename).unlink()
    with pytest.raises(DataError) as err:
        load_arrays("cifar10-jpeg-q75")
    msg = str(err.value)
    assert str(cache) in msg and "cannot be rebuilt" in msg and "cifar-10-python.tar.gz" in msg


def test_missing_and_corrupt_sources_are_clear_errors(datadir, tmp_path, monkeypatch):
    with pytest.raises(DataError) as err:
        load_cifar10()
    msg = str(err.value)
    assert "cifar10-jpeg-q75.tar.xz" in msg and "FACTORLAB_DATA_MIRROR" in msg and "cifar-10-python.tar.gz" in msg
    mirror = tmp_path / "bad"
    (mirror / "cifar10").mkdir(parents=True)
    (mirror / "cifar10" / "cifar10-jpeg-q75.tar.xz").write_bytes(FIXTURE.read_bytes()[:5000])
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(mirror))
    with pytest.raises(DataError) as err:
        load_cifar10()
    assert cifar10.JPEG_ARCHIVE.md5 in str(err.value) and not (datadir / "processed").exists()
    with pytest.raises(DataError, match="canonical CIFAR-10 unavailable"):
        load_cifar10(variant="cifar10")
    truncated = tmp_path / "t.tar.xz"
    truncated.write_bytes(FIXTURE.read_bytes()[:30000])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_source(truncated, expect_full=False)
    with pytest.raises(DataError, match="does not exist"):
        read_source(tmp_path / "nope")


def test_unknown_and_default_variant(monkeypatch):
    with pytest.raises(ValueError, match="unknown CIFAR-10 variant 'cifar100'"):
        load_cifar10(variant="cifar100")
    monkeypatch.setenv("FACTORLAB_CIFAR10_VARIANT", "cifar10")
    assert cifar10.default_variant() == "cifar10"
    monkeypatch.setenv("FACTORLAB_CIFAR10_VARIANT", "bogus")
    with pytest.raises(ValueError, match="unknown CIFAR-10 variant"):
        cifar10.default_variant()


def test_canonical_archive_keeps_the_published_order(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "cifar-10-python.tar.gz"
    batches = {}
    with tarfile.open(path, "w:gz") as tf:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
            batches[name] = (data, [int(v) for v in rng.integers(0, 10, 3)])
            blob = pickle.dumps({b"data": data, b"labels": batches[name][1]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    arrays = read_source(path)
    assert arrays["train_x"].shape == (15, 3, 32, 32) and arrays["test_x"].shape == (3, 3, 32, 32)
    assert np.array_equal(arrays["train_x"][3].numpy().reshape(-1), batches["data_batch_2"][0][0])
    assert arrays["test_y"].tolist() == batches["test_batch"][1]
    assert load_cifar10(source=path).variant == "cifar10"


def test_stratified_subset_is_balanced_and_seeded():
    labels = torch.arange(10).repeat_interleave(30)
    a = stratified_subset(labels, 47, seed=3)
    assert a.shape == (47,) and len(set(a.tolist())) == 47
    counts = labels[a].bincount(minlength=10)
    assert int(counts.max()) - int(counts.min()) <= 1
    assert torch.equal(a, stratified_subset(labels, 47, seed=3))
    assert not torch.equal(a, stratified_subset(labels, 47, seed=4))
    for bad in (0, 301, 2.5, True):
        with pytest.raises(ValueError, match="subset size"):
            stratified_subset(labels, bad)


# -- augmentation ----------------------------------------------------------------------------

def _images(b=4, c=3, h=8, w=8):
    return torch.arange(b * c * h * w, dtype=torch.float32).reshape(b, c, h, w)


def test_translate_zero_is_identity_and_shifts_move_content():
    x = _images()
    assert torch.equal(translate(x, torch.zeros(4, 2, dtype=torch.int64), 2), x)
    assert torch.equal(random_translate(x, 0), x)
    down = translate(x, torch.tensor([[1, 0]] * 4), 2, "zeros")
    assert torch.equal(down[:, :, 1:], x[:, :, :-1]) and torch.all(down[:, :, 0] == 0)
    left = translate(x, torch.tensor([[0, -2]] * 4), 2, "reflect")
    assert torch.equal(left[..., :-2], x[..., 2:])
    assert torch.equal(left[..., -1], x[..., -3]) and torch.equal(left[..., -2], x[..., -2])  # reflect border
    mixed = translate(x, torch.tensor([[0, 0], [1, 1], [0, 0], [-1, 0]]), 1)
    assert torch.equal(mixed[0], x[0]) and torch.equal(mixed[3, :, :-1], x[3, :, 1:])
    u8 = translate(x.to(torch.uint8), torch.tensor([[1, 0]] * 4), 1)
    assert u8.dtype == torch.uint8
    with pytest.raises(ValueError, match="shifts must lie in -1..1"):
        translate(x, torch.tensor([[2, 0]] * 4), 1)
    with pytest.raises(ValueError, match=r"shifts must be \[B, 2\]"):
        translate(x, torch.zeros(3, 2, dtype=torch.int64), 1)


def test_random_translation_is_seeded_and_within_pad():
    x = _images(16)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = random_translate(x, 2, g1), random_translate(x, 2, g2)
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)


def test_flip_and_cutout():
    x = _images()
    mask = torch.tensor([True, False, True, False])
    y = flip_lr(x, mask)
    assert torch.equal(y[0], x[0].flip(-1)) and torch.equal(y[1], x[1])
    assert torch.equal(flip_lr(y, mask), x)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(random_flip(x, g1), random_flip(x, g2))
    ones = torch.ones(64, 3, 16, 16)
    holes = (cutout(ones, 4, torch.Generator().manual_seed(0)) == 0).all(dim=1)  # [B, H, W]
    per_image = holes.sum(dim=(1, 2))
    assert int(per_image.max()) == 16 and int(per_image.min()) >= 1 and int(per_image.max()) <= 16
    assert torch.equal(cutout(ones, 0), ones)


def test_augment_config_validation():
    assert Augment.from_dict(None) == Augment(pad=0, flip="none")
    with pytest.raises(ValueError, match="flip must be one of"):
        Augment(flip="sometimes")
    with pytest.raises(ValueError, match="unknown augmentation keys"):
        Augment.from_dict({"pad": 2, "rotate": 10})
    with pytest.raises(ValueError, match="pad must be a non-negative int"):
        Augment(pad=-1)


def test_augmented_batches_shapes_determinism_and_alternating_flip(fixture_arrays):
    x, y = fixture_arrays["train_x"], fixture_arrays["train_y"]
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    kw = dict(batch_size=64, augment={"pad": 2, "pad_mode": "reflect", "flip": "random", "cutout": 4})
    a = AugmentedBatches(x, y, mean, std, seed=0, **kw)
    b = AugmentedBatches(x, y, mean, std, seed=0, **kw)
    batches_a, batches_b = list(a), list(b)
    assert len(a) == 250 // 64 == len(batches_a)
    xb, yb = batches_a[0]
    assert xb.shape == (64, 3, 32, 32) and xb.dtype == torch.float32 and yb.shape == (64,)
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(batches_a, batches_b))
    c = AugmentedBatches(x, y, mean, std, seed=1, **kw)
    assert not torch.equal(next(iter(c))[0], xb)
    plain = AugmentedBatches(x, y, mean, std, batch_size=250, augment=None)
    xp, yp = next(iter(plain))
    idx = torch.stack([torch.nonzero((x == xp_u8).flatten(1).all(1)).squeeze() for xp_u8 in
                       (xp * 0.25 + 0.5).mul(255).round().to(torch.uint8)[:3]])
    assert torch.equal(y[idx], yp[:3])  # no augmentation: exactly the normalised images
    alt = AugmentedBatches(x, y, mean, std, batch_size=10, augment={"pad": 0, "flip": "alternating"})
    ids = torch.arange(10)
    e0, e1 = alt.transform(x[ids], ids, 0), alt.transform(x[ids], ids, 1)
    assert torch.equal(e0, e1.flip(-1))  # every image is seen both ways in two epochs
    with pytest.raises(ValueError, match="must be uint8"):
        AugmentedBatches(x.float(), y, mean, std, batch_size=8)
    with pytest.raises(ValueError, match="exceeds the 250 images"):
        AugmentedBatches(x, y, mean, std, batch_size=1000)
