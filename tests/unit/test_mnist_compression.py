"""factorlab.experiments.mnist_compression: the budgets' path-timing switch (the cpu grid keeps
replaying committed records), and the roofline and path helpers of the path-timed timing phase.
The smoke run itself is checked in test_report_mnist_compression.py (its fixture trains it)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from factorlab.experiments import mnist_compression as exp
from factorlab.layers import CPConv2d
from factorlab.layers.paths import Machine, Op
from factorlab.results import config_hash

REPO = Path(__file__).resolve().parents[2]


def test_cpu_grid_replays_committed_records():
    """The registered cpu grid is the one whose records are committed: the one-seed factored
    timing until CPU_PATH_TIMING is flipped (no path_timing key: the old hash), then 3 seeds."""
    cfgs = exp.grid("cpu")
    for c in cfgs:
        assert (REPO / "data" / "results" / exp.NAME / f"{config_hash(c)}.json").is_file(), c["seed"]
    if exp.CPU_PATH_TIMING:
        assert [c["seed"] for c in cfgs] == [0, 1, 2] and all(c["path_timing"] is True for c in cfgs)
    else:
        assert [c["seed"] for c in cfgs] == [0] and all("path_timing" not in c for c in cfgs)


def test_smoke_and_full_time_paths():
    for profile in ("smoke", "full"):
        assert all(c["path_timing"] is True for c in exp.grid(profile))
    assert [c["seed"] for c in exp.grid("full")] == [0, 1, 2]
    # the flag is part of the key: the same run without it is another record
    (smoke,) = exp.grid("smoke")
    assert config_hash(smoke) != config_hash({k: v for k, v in smoke.items() if k != "path_timing"})
    assert exp.Config.from_dict(smoke).path_timing is True


def test_inference_roofline_by_hand():
    m = Machine(peak_flops=1e9, bandwidth=1e9, itemsize=4)
    compute, memory = Op("conv", 2_000_000, 1_000), Op("gconv", 1_000, 1_000_000)
    r = exp.inference_roofline(m, (compute, memory))
    assert r["roofline_s"] == pytest.approx(2e-3 + 4e-3)  # max(2e-3, 4e-6) + max(1e-6, 4e-3)
    assert r["flops"] == 2_001_000 and r["bytes"] == 4 * 1_001_000 and r["bound"] == "memory"
    assert exp.inference_roofline(m, (compute,))["bound"] == "compute"


def test_inference_ops_leave_out_the_prepared_part_and_count_the_format_copy():
    layer = CPConv2d(8, 8, 3, padding=1, rank=4)
    shape = (2, 8, 6, 6)
    cands = layer.candidates(shape)
    assert exp.inference_ops(cands["factored"], shape) == tuple(cands["factored"].ops)
    assert exp.inference_ops(cands["dense"], shape) == tuple(cands["dense"].ops)  # rebuilt weight cached: one conv
    cl = exp.inference_ops(cands["factored_cl"], shape)
    assert cl[:-1] == tuple(cands["factored_cl"].ops) and cl[-1] == Op("copy", 0, 2 * math.prod(shape))


@pytest.mark.parametrize("fast, expected", [
    ({"factored": 0.5}, "factored"),  # faster than the rebuilt weight by far more than the margin
    ({"dense_cl": 0.99}, "dense"),  # within the inference margin: the dense layer's own path is kept
])
def test_eval_path_is_the_measured_choice(monkeypatch, fast, expected):
    """Timings are fixed (1 s each unless ``fast`` says otherwise) so the rule, not the
    machine's noise, decides: a measured timing within the margin once made this test flaky."""
    import factorlab.layers.paths as paths

    monkeypatch.setattr(paths, "time_candidate", lambda cand, *a, **k: fast.get(cand.name, 1.0))
    torch.manual_seed(0)
    layer = CPConv2d(8, 8, 3, padding=1, rank=4)
    layer.autotune = True
    x = torch.randn(2, 8, 6, 6)
    layer.eval()
    with torch.no_grad():
        layer(x)
    layer.train()
    ((label, choice),) = layer.path_choices().items()
    assert "eval no_grad" in label and choice["how"] == "measured"
    assert exp.eval_path(layer, tuple(x.shape)) == choice["path"] == expected
    assert layer.training and len(layer.path_choices()) == 1  # no other key chosen on the way
