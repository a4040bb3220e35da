"""Parse IDX files (the format of MNIST): a magic number, dimensions, then uint8 data."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from factorlab.data.errors import DataError


def read_idx_ubyte(path: Path) -> np.ndarray:
    """Read a (gzip-compressed) unsigned-byte IDX file into a uint8 array of its dimensions."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise DataError(f"{path}: bad IDX magic number {raw[:4].hex()} (expected 000008 then 01-04 dims)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: IDX header says {dims} ({int(np.prod(dims))} values) but holds {data.size}")
    return data.reshape(dims)
