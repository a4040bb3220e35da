"""factorlab.files: atomic writes, file digests and verified caches (the one copy of that code)."""
from __future__ import annotations

import hashlib
import stat

import pytest
import torch

from factorlab.files import (CacheError, arrays_sha256, atomic_torch_save, file_digest, load_verified, save_verified,
                             write_atomic)

ARRAYS = {"x": torch.arange(6, dtype=torch.uint8).reshape(2, 3), "y": torch.tensor([1.5, -2.0])}


def test_cache_checksums_are_the_ones_existing_caches_store():
    # Computed with the three copies this helper replaced (data/mnist.py, data/cifar10.py: names and
    # bytes; data/qm9.py: names, shapes, dtypes and bytes, SMILES joined by newlines). A change here
    # invalidates every processed cache on every machine.
    assert arrays_sha256(ARRAYS) == "e8470f1e41c00978082e57340914f63e84a9c71e37a38c197d3bed610b454156"
    assert arrays_sha256(dict(ARRAYS, smiles=["C", "CC"]), with_shapes=True) == \
        "9deda4772f33853bd37c8255476f7ade409be767158128051067c3a739fb418b"


def test_write_atomic_writes_bytes_text_and_writers(tmp_path):
    target = tmp_path / "sub" / "a.json"
    assert write_atomic(target, "héllo\n") is True
    assert target.read_bytes() == "héllo\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    write_atomic(target, lambda p: p.write_text("from a writer"))
    assert target.read_text() == "from a writer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_write_atomic_leaves_the_old_file_on_failure_or_rejection(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def broken(p):
        p.write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_atomic(target, broken)
    assert write_atomic(target, b"new", verify=lambda p: p.read_bytes() == b"something else") is False
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary file left behind
    assert write_atomic(target, b"new", verify=lambda p: p.read_bytes() == b"new") is True
    assert target.read_bytes() == b"new"


def test_atomic_torch_save_is_deterministic_and_loads(tmp_path):
    a, b = atomic_torch_save(ARRAYS, tmp_path / "a.pt"), atomic_torch_save(ARRAYS, tmp_path / "b.pt")
    assert file_digest(a) == file_digest(b) == hashlib.sha256(a.read_bytes()).hexdigest()
    assert torch.equal(torch.load(a, weights_only=True)["x"], ARRAYS["x"])


def test_verified_cache_round_trip_and_every_failure(tmp_path):
    path = tmp_path / "c.pt"
    with pytest.raises(CacheError, match=r"^test cache .*c\.pt does not exist$"):
        load_verified(path, ARRAYS, version=1, what="test cache")
    written = save_verified(path, ARRAYS, version=1, note="kept")
    cache = load_verified(path, ARRAYS, version=1)
    assert cache["note"] == "kept" and cache["sha256"] == written["sha256"] == arrays_sha256(ARRAYS)
    assert torch.equal(cache["y"], ARRAYS["y"])
    with pytest.raises(CacheError, match="has version 1, expected 2"):
        load_verified(path, ARRAYS, version=2)
    with pytest.raises(CacheError, match="unreadable .*KeyError"):
        load_verified(path, ["x", "z"], version=1)
    save_verified(path, ARRAYS, version=1, with_shapes=True)  # stored checksum of the other kind
    with pytest.raises(CacheError, match="is corrupt: SHA-256 of its arrays is"):
        load_verified(path, ARRAYS, version=1)
    path.write_bytes(b"garbage")
    with pytest.raises(CacheError, match="unreadable"):
        load_verified(path, ARRAYS, version=1)
