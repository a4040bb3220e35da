"""The composition baseline that QM9 networks refine (factorlab.models.qm9_baseline)."""
import pytest
import torch
from torch import nn

from factorlab.data.qm9 import QM9Loader, load_qm9, target_index
from factorlab.models.qm9_baseline import CompositionBaseline, baseline_mae, element_counts
from factorlab.train.qm9_regression import evaluate_mae


@pytest.fixture(scope="module")
def data():
    return load_qm9("cpu", fixture=True)


def test_element_counts_of_methane_and_water(data):
    rows = data.index.tolist()
    methane = rows.index(1)  # QM9 molecule 1 is CH4, 3 is H2O
    water = rows.index(3)
    b = data.batch(torch.tensor([methane, water]))
    counts = element_counts(b.x, b.batch, 2)
    assert counts.dtype == torch.float64
    assert counts.tolist() == [[4, 1, 0, 0, 0], [2, 0, 0, 1, 0]]


def test_fit_recovers_an_exactly_linear_target(data):
    """Replace the targets by a known linear function of composition: the fit recovers the
    weights and the residual vanishes (to float32 rounding of y)."""
    ids = torch.arange(data.num_molecules)
    b = data.batch(ids)
    true_w = torch.tensor([[-13.6, 0.5], [-1030.0, 1.0], [-1480.0, 2.0], [-2040.0, 3.0], [-2710.0, 4.0],
                           [1.5, -7.0]], dtype=torch.float64)  # rows H, C, N, O, F, intercept
    design = torch.cat([element_counts(b.x, b.batch, len(ids)), torch.ones(len(ids), 1, dtype=torch.float64)], 1)
    fake = data.y.clone()
    fake[:, :2] = (design @ true_w).float()
    data2 = type(data)(**{**data.__dict__, "y": fake})
    bl = CompositionBaseline.fit(data2, ids)
    assert torch.allclose(bl.weight[:, :2], true_w, rtol=1e-4, atol=1e-2)
    assert float(bl.res_std[:2].max()) < 1e-2  # eV: float32 resolution of ~-10,000 eV values


def test_standardize_unstandardize_round_trip(data):
    bl = CompositionBaseline.fit(data, data.split["train"])
    b = data.batch(data.split["test"][:16])
    z = bl.standardize(b, b.y)
    cols = torch.arange(19)
    back = bl.unstandardize(b, z, cols)
    scale = b.y.abs().clamp_min(1.0)
    assert torch.all((back - b.y).abs() / scale < 1e-5)


def test_baseline_reduces_the_spread_of_extensive_targets(data):
    bl = CompositionBaseline.fit(data, data.split["train"])
    u0 = target_index("U0")
    # U0 (about -11,000 eV, std ~1,000 eV) is nearly additive in the atoms: the residual is eV-scale
    assert float(bl.res_std[u0]) < 0.01 * float(data.y_std[u0])


class _Zero(nn.Module):
    """Predicts a standardized residual of zero for every column."""

    def __init__(self, columns: int):
        super().__init__()
        self.columns = columns
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, b):
        return torch.zeros(b.ptr.numel() - 1, self.columns) + 0 * self.dummy


def test_zero_residual_model_scores_exactly_the_baseline(data):
    bl = CompositionBaseline.fit(data, data.split["train"])
    cols = [target_index(t) for t in ("mu", "U0_atom", "zpve")]
    ids = data.split["test"]
    mae, _ = evaluate_mae(_Zero(len(cols)), data, ids, cols, baseline=bl)
    assert torch.allclose(mae, torch.tensor(baseline_mae(bl, data, ids, cols), dtype=torch.float64), rtol=1e-6)


def test_loader_batches_and_pyg_batches_give_the_same_baseline(data):
    from torch_geometric.data import Batch, Data

    bl = CompositionBaseline.fit(data, data.split["train"])
    ids = data.split["valid"][:8]
    ours = next(iter(QM9Loader(data, ids, batch_size=8)))
    pyg = Batch.from_data_list([Data(**data.molecule(i)) for i in ids.tolist()])
    assert torch.allclose(bl.predict(ours), bl.predict(pyg))
