"""A linear model of QM9's targets on the molecule's composition, which the networks refine.

Extensive targets (the energies, ZPVE, heat capacity, polarizability) are mostly a sum of
per-element contributions: a least-squares fit on the element counts alone predicts U0 to
under 1 eV although U0 spans thousands of eV. A network trained on standardized targets from
scratch must first rediscover this nearly linear, badly conditioned function (the counts are
large and strongly correlated), which Adam does slowly: within a short budget the network
ends up worse than the linear fit. So the networks learn the *residual*

    r = y - [n_H, n_C, n_N, n_O, n_F, 1] W,

with ``W`` [6, 19] fit by least squares (float64) on the training split, standardized with
the residual's training mean and standard deviation. This is the "atom reference" or
"dressed atom" baseline of QM9 models (SchNet's ``atomref``), fit rather than taken from
the free atoms' energies; for intensive targets (dipole, orbital energies) it explains
little and costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from factorlab.data.qm9 import QM9Loader

#: Number of element columns (H, C, N, O, F), as in :data:`factorlab.data.qm9.ELEMENTS`.
NUM_ELEMENTS = 5


def element_counts(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Atoms of each element per molecule, float64 [G, 5], from node codes ``x`` [n, 6]
    (column 0: element index) and ``batch`` [n] (molecule of each node)."""
    onehot = torch.nn.functional.one_hot(x[:, 0].long(), NUM_ELEMENTS).double()
    out = torch.zeros(num_graphs, NUM_ELEMENTS, dtype=torch.float64, device=x.device)
    return out.index_add_(0, batch, onehot)


def _design(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    counts = element_counts(x, batch, num_graphs)
    return torch.cat([counts, torch.ones(num_graphs, 1, dtype=torch.float64, device=x.device)], dim=1)


@dataclass
class CompositionBaseline:
    """Least-squares composition model of all 19 targets and the residual's statistics.

    Attributes:
        weight: float64 [6, 19]: per-element contributions (rows H, C, N, O, F) and intercept,
            in the targets' units.
        res_mean, res_std: float32 [19]: residual statistics over the training split.
    """

    weight: torch.Tensor
    res_mean: torch.Tensor
    res_std: torch.Tensor

    @classmethod
    def fit(cls, data, train_ids: torch.Tensor, batch_size: int = 4096) -> "CompositionBaseline":
        """Fit on molecules ``train_ids`` of ``data`` (a :class:`~factorlab.data.qm9.QM9Data`)."""
        xs, ys = [], []
        for b in QM9Loader(data, train_ids, batch_size=batch_size):
            xs.append(_design(b.x, b.batch, b.ptr.numel() - 1))
            ys.append(b.y.double())
        X, Y = torch.cat(xs), torch.cat(ys)
        # lstsq on the CPU in float64 (well defined for any device; 6 columns), by the SVD
        # (gelsd): torch's default CPU driver, gelsy (pivoted QR, MKL), returns last-bit
        # different solutions from one call to the next depending on the process's memory
        # state, which made a run's result depend on what ran before it in the process
        weight = torch.linalg.lstsq(X.cpu(), Y.cpu(), driver="gelsd").solution.to(X.device)
        res = Y - X @ weight
        return cls(weight, res.mean(0).float(), res.std(0).float())

    def predict(self, batch) -> torch.Tensor:
        """The baseline in the targets' units, float64 [G, 19], for a batch with ``x``,
        ``batch`` and ``ptr`` (a :class:`~factorlab.data.qm9.QM9Batch` or a PyG ``Batch``)."""
        return _design(batch.x, batch.batch, batch.ptr.numel() - 1) @ self.weight

    def standardize(self, batch, y: torch.Tensor) -> torch.Tensor:
        """Standardized residuals float32 [G, 19] of targets ``y`` [G, 19] (units)."""
        return ((y.double() - self.predict(batch)).float() - self.res_mean) / self.res_std

    def unstandardize(self, batch, z: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Predictions in units, float32 [G, C], from standardized residuals ``z`` [G, C] of
        target ``columns`` (int64 [C])."""
        base = self.predict(batch).index_select(1, columns)
        res = z.double() * self.res_std.index_select(0, columns).double() + self.res_mean.index_select(0, columns).double()
        return (base + res).float()

    def state(self) -> dict:
        """Plain lists (JSON) of the fitted values, for a run record."""
        return {"weight": self.weight.tolist(), "res_mean": self.res_mean.tolist(), "res_std": self.res_std.tolist()}


@torch.no_grad()
def baseline_mae(baseline: CompositionBaseline, data, ids: torch.Tensor, columns: list[int],
                 batch_size: int = 4096) -> list[float]:
    """Test MAE (targets' units) of the composition baseline alone (plus the residual's training
    mean) on molecules ``ids``, per target column: what a network must improve on."""
    cols = torch.as_tensor(columns, device=data.device)
    total = torch.zeros(len(columns), dtype=torch.float64, device=data.device)
    for b in QM9Loader(data, ids, batch_size=batch_size):
        pred = baseline.unstandardize(b, torch.zeros(b.y.shape[0], len(columns), device=data.device), cols)
        total += (pred - b.y.index_select(1, cols)).abs().sum(0, dtype=torch.float64)
    return (total / ids.numel()).tolist()
