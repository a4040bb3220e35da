"""The roofline view of layers_benchmark (issue 19 item 3): the goals on hand-built rows on both
sides of every threshold (eval ours/dense 1.05, measured/roofline 1.5 where compute-bound,
median TensorLy-Torch/ours 2 for each implementation), the printed report, and the roofline
cells of one real row."""
from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from factorlab.experiments import layers_benchmark as lb
from factorlab.layers import CPConv2d
from factorlab.layers.paths import Machine, Op


def _row(eval_ratio, roofline_ratio, bound, tl=None, path="factored"):
    row = {"kind": "conv", "family": "cp", "shape": "32->32 3x3 @14x14", "compression": 4, "rank": "8",
           "params": 100, "dense_params": 400, "batch": 32, "dense_flops": 1000, "ours_flops": 500, "flop_ratio": 0.5,
           "dense_s": 2e-3, "ours_s": 1e-3, "path": path, "ours_factored_s": 1e-3, "ours_dense_s": 3e-3,
           "flops_factored": 500, "flops_dense": 1000, "tuned_path": "factored", "ours_tuned_s": 1e-3,
           "roofline_s": 1e-3 / roofline_ratio, "flop_only_s": 0.5e-3, "flops": 1500, "bytes": 4000, "bound": bound,
           "roofline_ratio": roofline_ratio, "dense_roofline_s": 1e-3, "dense_bound": "compute",
           "dense_eval_s": 1e-3, "ours_eval_s": eval_ratio * 1e-3, "ours_eval_model_s": 1e-3,
           "eval_model_path": "dense", "eval_path": "dense", "peak_flops": 1e11, "bandwidth": 2e10,
           "paths": {"factored": {}, "dense": {}}}
    if tl:
        row["tltorch_factorized_s"], row["tltorch_reconstructed_s"] = (t * 1e-3 for t in tl)
    return row


def test_goals_on_both_sides_of_their_thresholds():
    rows = [_row(1.04, 1.49, "compute", tl=(2.5, 1.9)), _row(1.06, 1.51, "compute", tl=(2.1, 1.8)),
            _row(0.5, 9.0, "memory", tl=(1.0, 3.0))]
    df, _ = lb.summarize(rows)
    g = list(lb.roofline_goals(df).values())
    assert (g[0]["met"], g[0]["rows_met"], g[0]["rows"]) == (False, 2, 3)  # 1.06 misses 1.05
    assert g[0]["detail"].endswith("the rows over it are slower by 60.0 µs (median), 60.0 µs at most")
    assert (g[1]["met"], g[1]["rows_met"], g[1]["rows"]) == (False, 1, 2)  # the memory-bound row is left out
    assert g[2]["met"] is False and g[2]["rows"] == 3  # factorized median 2.1 meets, reconstructed 1.9 misses
    assert "factorized / ours median 2.10" in g[2]["detail"] and "reconstructed / ours median 1.90" in g[2]["detail"]
    df, _ = lb.summarize([_row(1.0, 1.2, "compute", tl=(2.0, 2.0))])
    assert all(v["met"] for v in lb.roofline_goals(df).values())
    assert "control" not in lb.roofline_goals(df)[lb.GOALS[0]]["detail"]  # rows without the control column


def test_eval_goal_reports_its_control():
    """The dense layer's own copy, timed in the same rounds, says how far timing alone moves a
    ratio: the detail counts the rows where it is within the tolerance; the goal itself is ours'."""
    rows = [_row(1.0, 1.2, "compute"), _row(1.0, 1.2, "compute"), _row(1.2, 1.2, "compute")]
    for row, copy in zip(rows, (1.0, 1.08, 1.02)):
        row["dense_copy_eval_s"] = copy * row["dense_eval_s"]
    df, _ = lb.summarize(rows)
    g = lb.roofline_goals(df)[lb.GOALS[0]]
    assert (g["met"], g["rows_met"], g["rows"]) == (False, 2, 3)
    assert g["detail"].endswith("; control (a copy of the dense layer, timed in the same rounds): within it in "
                                "2 of 3 rows, copy/dense max 1.08")


def test_goals_without_peers_or_roofline_say_not_measured():
    df, _ = lb.summarize([_row(1.0, 1.0, "compute")])
    peer = lb.roofline_goals(df)[lb.GOALS[2]]
    assert peer["met"] is None and "not installed" in peer["detail"]
    old = {k: v for k, v in _row(1.0, 1.0, "compute").items()
           if k in ("kind", "family", "shape", "compression", "rank", "params", "dense_params", "batch",
                    "dense_flops", "ours_flops", "flop_ratio", "dense_s", "ours_s")}
    old["kind"] = "linear"  # a linear row of a record from before the roofline view
    df, _ = lb.summarize([old])
    assert all(v["met"] is None for v in lb.roofline_goals(df).values())
    assert "Roofline view" not in lb.report(df, lb.summarize([old])[1])


def test_report_prints_the_roofline_tables_and_goals():
    rows = [_row(1.04, 1.49, "compute"), _row(1.06, 1.51, "memory", path="depthwise")]
    df, targets = lb.summarize(rows)
    text = lb.report(df, targets)
    assert "Roofline view: peak 100.0 GFLOP/s" in text and "bandwidth 20.0 GB/s" in text
    assert text.count("goal: ") == 3 and "goal: eval-mode factorized never slower than dense (within 5 %): NOT met" in text
    assert "tuned/roofline" in text and "tuned/dense" in text


def test_roofline_cells_of_a_real_row():
    torch.manual_seed(0)
    ours, dense = CPConv2d(4, 4, 3, padding=1, rank=2), nn.Conv2d(4, 4, 3, padding=1)
    cfg = {"kind": "conv", "hw": 6}
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    machine = Machine(peak_flops=1e9, bandwidth=1e9, overhead_s={}, itemsize=4)
    calls, many = [], []

    def measure_many(steps):
        many.append(list(steps))
        return {name: (step(), 2e-3)[-1] for name, step in steps.items()}

    cells = lb.roofline_cells(ours, dense, cfg, x, machine, lambda step: (step(), calls.append(1), 1e-3)[-1],
                              measure_many)
    assert set(cells["paths"]) == set(ours.candidates(x.shape)) and len(calls) == len(cells["paths"]) + 1
    # the three inference times are taken together (in rounds), on copies of the layer
    # (and the control: a copy of the dense layer, timed beside them)
    assert many == [["dense_eval_s", "ours_eval_model_s", "ours_eval_s", "dense_copy_eval_s", "ours_eval_kernel_s",
                     "dense_eval_kernel_s"]]
    assert cells["dense_eval_s"] == cells["ours_eval_model_s"] == cells["ours_eval_s"] == cells["ours_eval_kernel_s"]
    assert cells["tuned_path"] in cells["paths"] and cells["eval_path"] in cells["paths"]
    assert cells["eval_model_path"] in cells["paths"]
    d = cells["paths"]["dense"]
    cand = ours.candidates(x.shape)["dense"]
    assert d["flops"] == lb.FWD_BWD_PASSES * cand.flops()
    assert d["bytes"] == lb.FWD_BWD_PASSES * 4 * cand.elements()
    assert d["roofline_s"] == pytest.approx(lb.FWD_BWD_PASSES * sum(max(o.flops, 4 * o.elements) / 1e9
                                                                    for o in cand.prep_ops + cand.ops))
    (op,) = lb.dense_ops(cfg, dense, 2)
    assert op == Op("conv", 2 * 2 * 4 * 36 * 4 * 9, 2 * 4 * 36 + 144 + 2 * 4 * 36)
    assert cells["dense_roofline_s"] == pytest.approx(3 * max(op.flops, 4 * op.elements) / 1e9)
    assert ours.training and ours.autotune is None and ours.force_path is None and not ours.path_choices()
    assert math.isclose(cells["roofline_ratio"], cells["ours_tuned_s"] / cells["roofline_s"])


def test_a_smoke_record_keeps_the_canonical_flops_and_says_how_paths_were_chosen(monkeypatch):
    """ours_flops is the machine-independent count (what the committed records hold); the path
    the automatic forward ran is counted apart (ours_chosen_flops: under the FLOP rule, the
    fewest), and timing names the cost rule."""
    monkeypatch.setenv("FACTORLAB_PATH_COST", "flops")
    rec = lb.measure_record({"profile": "smoke", "budget_s": 0.002, "roofline": False}, torch.device("cpu"),
                            log=lambda *a, **k: None)
    assert rec["timing"]["path_cost"] == {"cost": "flops", "autotune": False}
    rows = rec["metrics"]["rows"]
    assert len(rows) == len(lb.configurations(True)) * len(lb.QUICK_BATCHES)
    for row in rows:
        (cfg,) = [c for c in lb.configurations(True) if (c["family"], c["shape"]) == (row["family"], row["shape"])]
        layer, dense = cfg["make"](), cfg["dense"]()
        shape = ((row["batch"], dense.in_features) if cfg["kind"] == "linear"
                 else (row["batch"], dense.in_channels, cfg["hw"], cfg["hw"]))
        assert row["ours_flops"] == layer.flops(shape)
        assert row["ours_chosen_flops"] == layer.chosen_flops(shape, grad=True) <= row["ours_flops"]
        assert row["path"] == layer.path_for(shape, grad=True)


def test_interleaved_times_sample_each_callable_in_turn():
    """Round by round, one sample of each callable in the order given; medians per name."""
    from factorlab.train.timing import interleaved_times

    order = []
    got = interleaved_times({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b"] + ["a", "b"] * 3 and set(got) == {"a", "b"} and all(v >= 0 for v in got.values())


def test_warm_each_calls_a_callable_once_untimed_before_each_of_its_samples():
    """With warm_each, each sample is preceded by a call of the same callable (so it starts
    from its own data in cache), in the same round-by-round order."""
    from factorlab.train.timing import interleaved_times

    order = []
    interleaved_times({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=2, warmup=1,
                      warm_each=True)
    assert order == ["a", "b"] + ["a", "a", "b", "b"] * 2


def test_the_roofline_config_times_eval_mode_warm():
    cfg = lb.make_config("cpu")
    assert cfg.eval_timing == "warm" and lb.make_config("cpu", roofline=False).to_dict().get("eval_timing") is None


def test_measure_interleaved_sizes_rounds_by_the_slowest_call(monkeypatch):
    seen = {}
    monkeypatch.setattr(lb, "interleaved_times", lambda steps, device, **kw: seen.update(kw) or {n: 1.0 for n in steps})
    steps = {"fast": lambda: None, "slow": lambda: time.sleep(0.05)}
    assert lb.measure_interleaved(steps, torch.device("cpu"), budget=0.2, max_repeats=30) == {"fast": 1.0, "slow": 1.0}
    assert 3 <= seen["repeats"] <= 4 and seen["warmup"] == 1 and seen["min_time"] == 1e-3
    assert seen["warm_each"] is False


@pytest.mark.parametrize("make, x", [(lambda: CPConv2d(4, 4, 3, padding=1, rank=2), torch.randn(2, 4, 6, 6)),
                                     (lambda: __import__("factorlab.layers", fromlist=["CPLinear"]).CPLinear(12, 8, rank=3),
                                      torch.randn(5, 12))])
def test_kernel_step_computes_the_layers_output_without_its_dispatch(make, x):
    """The kernel step runs the chosen path's kernels on the cached prepared tensors: the
    same output as the layer's eval forward."""
    layer = make().eval()
    with torch.no_grad():
        want = layer(x)
    torch.testing.assert_close(lb.kernel_step(layer, x)(), want)


@pytest.mark.parametrize("dense, x", [(nn.Linear(12, 8), torch.randn(5, 12)),
                                      (nn.Conv2d(4, 6, 3, padding=1), torch.randn(2, 4, 6, 6))])
def test_kernel_step_of_a_dense_module_is_its_functional_call(dense, x):
    with torch.no_grad():
        torch.testing.assert_close(lb.kernel_step(dense, x)(), dense(x))
    x = x.requires_grad_()  # as the benchmark's inputs: the kernel step still records no autograd, as ours does
    out = lb.kernel_step(dense, x)()
    layer = CPConv2d(4, 6, 3, padding=1, rank=2).eval() if x.dim() == 4 else \
        __import__("factorlab.layers", fromlist=["CPLinear"]).CPLinear(12, 8, rank=3).eval()
    with torch.no_grad():
        layer(x)
    assert not out.requires_grad and not lb.kernel_step(layer, x)().requires_grad


def test_warm_up_runs_both_layers_in_both_modes_untimed(monkeypatch):
    cfg = lb.configurations(True)[0]
    calls = []
    real_fb, real_fwd = lb.fwd_bwd_step, lb.forward_step
    monkeypatch.setattr(lb, "fwd_bwd_step", lambda m, x: (lambda f=real_fb(m, x): calls.append(("train", m.training)) or f()))
    monkeypatch.setattr(lb, "forward_step", lambda m, x: (lambda f=real_fwd(m, x): calls.append(("eval", m.training)) or f()))
    rounds = lb.warm_up(cfg, 1, torch.device("cpu"), 0.0)
    assert rounds == 1 and calls == [("train", True)] * 2 + [("eval", False)] * 2


def test_a_cpu_record_names_its_threads_and_measures_with_them(monkeypatch):
    """The thread count changes every ratio, so the config carries it: one thread on the CPU
    with the roofline view (whatever the process has), set for the measurement and restored."""
    cfg = lb.make_config("cpu")
    assert cfg.threads == lb.CPU_THREADS == 1 and cfg.to_dict()["threads"] == 1
    assert "threads" not in lb.make_config("cpu", roofline=False).to_dict()  # the before-record keeps its key
    assert lb.make_config("full").threads is None and lb.make_config("cpu", threads=2).threads == 2
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        lb.make_config("cpu", threads=0)
    seen = []
    monkeypatch.setattr(lb, "run", lambda *a, **k: seen.append(torch.get_num_threads()) or [])
    monkeypatch.setattr(lb, "summarize", lambda rows: (None, {}))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rec = lb.measure_record({"profile": "smoke", "budget_s": 0.01, "threads": 1}, torch.device("cpu"))
        assert seen == [1] and rec["metrics"]["threads"] == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
