"""Mini-batches of tensors that already live on a device, built there by index."""
from __future__ import annotations

from typing import Iterator

import torch


class DeviceLoader:
    """Iterate mini-batches of ``tensors`` (all with the same first dimension N) on their device.

    No per-sample Python and no ``torch.utils.data.DataLoader``: each batch is one indexing op.
    With ``shuffle``, epoch ``k``'s order is a deterministic function of ``seed`` and ``k``
    (one ``torch.Generator`` seeded once at construction, on the tensors' device).

    Args:
        *tensors: tensors [N, ...] on one device.
        batch_size: samples per batch (> 0); the last batch is smaller unless ``drop_last``.
        shuffle: new random order every epoch.
        drop_last: drop the final incomplete batch.
        seed: seed of the shuffling generator.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0):
        if not tensors:
            raise ValueError("DeviceLoader needs at least one tensor")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(f"all tensors must have the same first dimension, got {[t.shape[0] for t in tensors]}")
        if any(t.device != tensors[0].device for t in tensors):
            raise ValueError(f"all tensors must be on one device, got {[str(t.device) for t in tensors]}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.tensors, self.n, self.batch_size = tensors, n, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.device = tensors[0].device
        self.generator = torch.Generator(device=self.device).manual_seed(seed) if shuffle else None

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.shuffle:
            order = torch.randperm(self.n, device=self.device, generator=self.generator)
        else:
            order = None
        for i in range(len(self)):
            lo, hi = i * self.batch_size, min((i + 1) * self.batch_size, self.n)
            if order is None:
                yield tuple(t[lo:hi] for t in self.tensors)
            else:
                idx = order[lo:hi]
                yield tuple(t[idx] for t in self.tensors)
