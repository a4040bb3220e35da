"""factorlab.mtl.factorized: the learned-sharing report over a network's task-factorized layers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from factorlab.mtl.factorized import TaskFactorizedConv2d, from_task_weights, layer_sharing, task_sharing


def test_task_sharing_reports_every_task_factorized_layer_in_order():
    shared = torch.randn(1, 4, 6, dtype=torch.float64).expand(5, 4, 6).clone()  # one weight for all tasks
    torch.manual_seed(0)
    unrelated = torch.randn(5, 3, 4, dtype=torch.float64)
    model = nn.Sequential(TaskFactorizedConv2d(5, 1, 2, 3, "tucker", 1).double(),
                          from_task_weights(shared, method="laf", rel_error=0.05),
                          nn.ReLU(), from_task_weights(unrelated, method="tt", rank=(5, 3)))
    rows = task_sharing(model)
    assert [r.name for r in rows] == ["0", "1", "3"]
    assert [r.method for r in rows] == ["tucker", "laf", "tt"]
    first, middle, last = rows
    assert first.task_rank == 1 and first.leading_share == pytest.approx(1.0)
    assert middle.task_rank == 1 and middle.effective_rank == pytest.approx(1.0)
    assert middle.leading_share == pytest.approx(1.0)
    assert last.task_rank == 5 and len(last.singular_values) == 5
    assert 1 / 5 <= last.leading_share < 0.6 and last.effective_rank > 3
    assert list(last.singular_values) == sorted(last.singular_values, reverse=True)
    assert layer_sharing(model[3], "head").as_dict()["name"] == "head"
