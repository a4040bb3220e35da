"""The parts of the airbench94 anchor (:mod:`factorlab.experiments.cifar_anchor`, entry point
``benchmarks/airbench_anchor.py``) that need no GPU (nor airbench): our cache in
the form of airbench's ``train.pt``/``test.pt``, reading airbench's printed table, the
summary and its ratio, the printed table, the stand-in torchvision, the run configs, and the
one-line error without CUDA."""
from __future__ import annotations

import importlib.metadata
import json
import math
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from factorlab.data.cifar10 import CLASSES, load_cifar10
from factorlab.experiments import cifar_anchor as A
from factorlab.experiments import cifar_common as cc
from factorlab.experiments import get_experiment
from factorlab.results import config_hash

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "airbench_anchor.py"

#: airbench 0.1.8's printed table of one train94(verbose=True) run, as it printed it (1.2 epochs on
#: the fixture in a CPU dry run, so the numbers are small).
AIRBENCH_LOG = """\
------------------------------------------------------------------------------------------------------
|  run     |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  |  total_time_seconds  |
------------------------------------------------------------------------------------------------------
|       0  |      0  |      2.2971  |     0.0800  |   0.1400  |               |              1.9110  |
|          |      1  |      2.2820  |     0.2400  |   0.1400  |               |              2.2119  |
|          |   eval  |      2.2820  |     0.2400  |   0.1400  |       0.1700  |              3.5191  |
------------------------------------------------------------------------------------------------------
"""


@pytest.fixture(scope="module")
def data():
    return load_cifar10(source=cc.FIXTURE)


def test_airbench_split_is_hwc_uint8_with_the_same_labels(data):
    out = A.airbench_split(data.test_x, data.test_y, data.classes)
    assert set(out) == {"images", "labels", "classes"}
    assert out["images"].dtype == torch.uint8 and out["images"].shape == (100, 32, 32, 3)
    assert out["labels"].dtype == torch.int64 and torch.equal(out["labels"], data.test_y)
    assert out["classes"] == list(CLASSES)
    assert torch.equal(out["images"].permute(0, 3, 1, 2), data.test_x)  # HWC of the same pixels
    assert out["images"][7, 5, 9, 2] == data.test_x[7, 2, 5, 9]
    order = torch.tensor([3, 0, 99])
    picked = A.airbench_split(data.test_x, data.test_y, data.classes, order)
    assert torch.equal(picked["labels"], data.test_y[order])
    assert torch.equal(picked["images"].permute(0, 3, 1, 2), data.test_x[order])
    with pytest.raises(ValueError, match=r"uint8 \[N, 3, 32, 32\]"):
        A.airbench_split(data.test_x.float(), data.test_y, data.classes)
    with pytest.raises(ValueError, match="labels must be int64"):
        A.airbench_split(data.test_x, data.test_y.int(), data.classes)


def test_write_airbench_data_in_cifarloaders_format(data, tmp_path):
    folder = A.write_airbench_data(data, tmp_path, seed=0)
    assert folder == tmp_path / "cifar10"
    train = torch.load(folder / "train.pt", weights_only=True)  # as airbench's CifarLoader loads it
    test = torch.load(folder / "test.pt", weights_only=True)
    assert train["images"].shape == (250, 32, 32, 3) and test["images"].shape == (100, 32, 32, 3)
    assert train["images"].dtype == test["images"].dtype == torch.uint8
    assert train["labels"].dtype == test["labels"].dtype == torch.int64 and train["classes"] == list(CLASSES)
    # the test set as it is; the training set a seeded permutation of the same (image, label) pairs
    assert torch.equal(test["images"].permute(0, 3, 1, 2), data.test_x) and torch.equal(test["labels"], data.test_y)
    order = torch.randperm(250, generator=torch.Generator().manual_seed(0))
    assert torch.equal(train["labels"], data.train_y[order])
    assert torch.equal(train["images"].permute(0, 3, 1, 2), data.train_x[order])
    assert not torch.equal(order, torch.arange(250))
    # our fixture is sorted by class; airbench whitens on the first images, which must be mixed
    assert torch.equal(data.train_y, data.train_y.sort().values)
    assert len(set(train["labels"][:25].tolist())) >= 6
    # what CifarLoader makes of it: (images.half() / 255).permute(0, 3, 1, 2) is our x / 255
    x = (train["images"].half() / 255).permute(0, 3, 1, 2)
    assert torch.equal(x, data.train_x[order].half() / 255)


def test_parse_airbench_log():
    parsed = A.parse_airbench_log("warm-up noise\n" + AIRBENCH_LOG)
    assert parsed["final"]["total_time_seconds"] == 3.5191 and parsed["final"]["tta_val_acc"] == 0.17
    assert parsed["final"]["epoch"] == "eval" and parsed["final"]["run"] is None
    assert [r["epoch"] for r in parsed["epochs"]] == [0, 1] and parsed["epochs"][0]["run"] == 0
    assert parsed["epochs"][1]["val_acc"] == 0.14 and parsed["epochs"][1]["tta_val_acc"] is None
    with pytest.raises(ValueError, match="no airbench table header"):
        A.parse_airbench_log("| a | b |\n")
    without_eval = "\n".join(line for line in AIRBENCH_LOG.splitlines() if "eval" not in line)
    with pytest.raises(ValueError, match="no final 'eval' row"):
        A.parse_airbench_log(without_eval)


def test_mean_std():
    assert A.mean_std([2.0]) == (2.0, 0.0)
    m, s = A.mean_std([1.0, 2.0, 3.0])
    assert m == 2.0 and s == 1.0  # sample standard deviation
    with pytest.raises(ValueError):
        A.mean_std([])


def _runs():
    airbench = [{"time_s": t, "wall_s": t + 0.2, "acc": a} for t, a in ((3.0, 0.930), (3.2, 0.932), (4.0, 0.934))]
    ours = [{"time_s": t, "acc": a} for t, a in ((3.3, 0.929), (3.5, 0.931), (3.4, 0.933))]
    return airbench, ours


def test_summarize_ratio_and_target():
    airbench, ours = _runs()
    s = A.summarize(airbench, ours)
    assert s["airbench"]["time_s_median"] == 3.2 and s["ours"]["time_s_median"] == 3.4
    assert math.isclose(s["ratio"], 3.4 / 3.2) and math.isclose(s["ratio_mean"], 3.4 / (10.2 / 3))
    assert math.isclose(s["ratio_wall"], 3.4 / 3.4)
    assert math.isclose(s["airbench"]["acc_mean"], 0.932) and math.isclose(s["ours"]["acc_mean"], 0.931)
    assert math.isclose(s["acc_diff"], -0.001) and math.isclose(s["ours"]["acc_std"], 0.002)
    assert s["time_ok"] and s["acc_ok"] and s["target_met"] and s["target_ratio"] == 1.2
    assert s["n_airbench"] == s["n_ours"] == 3
    slow = A.summarize(airbench, [{**r, "time_s": r["time_s"] * 1.2} for r in ours])
    assert math.isclose(slow["ratio"], 1.275) and not slow["time_ok"] and not slow["target_met"]
    worse = A.summarize(airbench, [{**r, "acc": r["acc"] - 0.002} for r in ours])
    assert worse["time_ok"] and not worse["acc_ok"] and not worse["target_met"]  # 0.3 points below
    assert A.summarize(airbench, ours, target=1.0)["time_ok"] is False
    with pytest.raises(ValueError, match="at least one run"):
        A.summarize(airbench, [])


def test_format_table_labels_the_lossy_data():
    airbench, ours = _runs()
    text = A.format_table(A.summarize(airbench, ours), "cifar10-jpeg-q75", header="device X")
    assert text.splitlines()[0] == "device X"
    assert "cifar10-jpeg-q75" in text and "LOSSY" in text and "JPEG quality 75" in text
    assert "1.06x" in text and "target <= 1.2x: met" in text and "-0.10 ± 0.16 points" in text
    assert "93.20 ± 0.20" in text and "93.10 ± 0.20" in text
    assert "target (within 1.2x of airbench94's time at the same accuracy): met" in text
    slow = A.format_table(A.summarize(airbench, [{**r, "time_s": 9.0} for r in ours]), "cifar10")
    assert "NOT met" in slow and "LOSSY" not in slow and "cifar10 (canonical" in slow
    cpu = A.format_table(A.summarize(airbench, ours), "cifar10", device="cpu", width=0.5)
    assert "on the CPU" in cpu and "width 0.5" in cpu and "no verdict on the 1.2x target" in cpu
    assert re.search(r"\bmet\b", cpu) is None  # no verdict either way


def test_torchvision_shim_normalizes_like_torchvision():
    tv = A.torchvision_shim()
    assert tv.__version__ == "shim"
    x = torch.rand(4, 3, 5, 5).half()
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    y = tv.transforms.Normalize(mean, std)(x)
    m = torch.tensor(mean).half().view(1, 3, 1, 1)
    s = torch.tensor(std).half().view(1, 3, 1, 1)
    assert y.dtype == torch.float16 and torch.equal(y, (x - m) / s)
    assert not torch.equal(y, x)  # not in place
    with pytest.raises(RuntimeError, match="no CIFAR-10 download"):
        tv.datasets.CIFAR10("cifar10", download=True)


def test_anchor_configs_are_cifar_baselines_full_airbench_width_1():
    configs = A.anchor_configs(3)
    assert [c["seed"] for c in configs] == [0, 1, 2]
    full = {config_hash(c) for c in get_experiment("cifar_baselines").grid("full")}
    for c in configs:
        assert config_hash(c) in full
        assert c["net"] == "airbench" and c["width"] == 1.0 and c["factorize"] is None and c["profile"] == "full"
        assert c["n_train"] is None and c["recipe"] == cc.airbench_recipe()
    assert len(A.anchor_configs(A.MAX_RUNS)) == 5
    with pytest.raises(ValueError, match="--runs must be in 1..5"):
        A.anchor_configs(6)
    cpu = A.anchor_configs(5, "cpu")
    assert [c["seed"] for c in cpu] == [0, 1, 2, 3, 4] and {c["width"] for c in cpu} == {0.5}
    assert all(c["recipe"] == cc.recipe_for("airbench", "cpu") and c["n_train"] == 5000 for c in cpu)
    assert {config_hash(c) for c in cpu} <= {config_hash(c) for c in get_experiment("cifar_baselines").grid("cpu")}
    assert A.config(5, profile="cpu")["device"] == "cpu" and A.config(1, profile="smoke")["profile"] == "smoke"
    cfg = A.config(3)
    assert cfg["experiment"] == "cifar_anchor" and cfg["airbench_version"] == "0.1.8" and cfg["seeds"] == [0, 1, 2]
    assert cfg["ours_keys"] == [config_hash(c) for c in configs] and cfg["dataset_variant"] == "cifar10-jpeg-q75"
    json.dumps(cfg)


def test_cuda_error_message():
    assert A.cuda_error(True) is None
    msg = A.cuda_error(False)
    assert msg.startswith("airbench_anchor needs a CUDA GPU") and "fp16" in msg and "\n" not in msg


def test_import_airbench_names_the_pin_when_missing_or_wrong(monkeypatch):
    def version(name, real=importlib.metadata.version):
        if name == "airbench":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(A.AnchorError, match=r"airbench is not installed: pip install --no-deps airbench==0\.1\.8"):
        A.import_airbench()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.2.0")
    with pytest.raises(A.AnchorError, match=r"airbench 0\.2\.0 is installed; the anchor is pinned to 0\.1\.8"):
        A.import_airbench()


@pytest.fixture(scope="module")
def airbench():
    """airbench 0.1.8 (requirements.txt), with the stand-in torchvision where none is installed."""
    module, _ = A.import_airbench(shim=True)
    return module


def test_wall_clock_event_reads_milliseconds():
    start, end = A.WallClockEvent(enable_timing=True), A.WallClockEvent(enable_timing=True)
    start.record()
    end.record()
    start.t, end.t = 10.0, 10.25  # the clock readings, pinned
    assert end.elapsed_time(end) == 0 and start.elapsed_time(end) == 250.0


def test_cpu_runtime_patches_and_restores(airbench, data, tmp_path):
    event, sync, loader = torch.cuda.Event, torch.cuda.synchronize, airbench.utils.CifarLoader
    folder = A.write_airbench_data(data, tmp_path)
    with A.cpu_runtime(airbench) as cpu_loader:
        assert torch.cuda.Event is A.WallClockEvent and torch.cuda.synchronize() is None
        assert airbench.utils.CifarLoader is cpu_loader and issubclass(cpu_loader, loader)
        test = cpu_loader(str(folder), train=False, batch_size=40)
        assert test.images.dtype == torch.float32 and test.images.device.type == "cpu"
        # airbench's own pixel values (scaled in fp16, as on the GPU), held in fp32
        assert torch.equal(test.images, (data.test_x.half() / 255).float()) and torch.equal(test.labels, data.test_y)
    assert (torch.cuda.Event, torch.cuda.synchronize, airbench.utils.CifarLoader) == (event, sync, loader)
    with pytest.raises(RuntimeError, match="boom"), A.cpu_runtime(airbench):
        raise RuntimeError("boom")
    assert (torch.cuda.Event, torch.cuda.synchronize, airbench.utils.CifarLoader) == (event, sync, loader)


@pytest.mark.parametrize("width", [0.125, 0.5, 1.0])
def test_airbench_net_on_the_cpu_is_ours_in_size(airbench, width):
    ours = cc.build_model(cc.make_config("x", "cpu", net="airbench", width=width, factorize=None,
                                         recipe=cc.recipe_for("airbench", "cpu"), seed=0))
    half, cuda = torch.nn.Module.half, torch.nn.Module.cuda
    net = A.cpu_make_net(airbench, tuple(ours.channels))()
    assert (torch.nn.Module.half, torch.nn.Module.cuda) == (half, cuda)  # put back
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in net.parameters())
    assert [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)][1::2] == list(ours.channels)
    # the same architecture: every parameter tensor of airbench94's net has its twin in ours
    assert sorted(p.numel() for p in net.parameters()) == sorted(p.numel() for p in ours.parameters())
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is available")
def test_without_cuda_the_script_exits_with_one_line(tmp_path):
    env = {**os.environ, "FACTORLAB_RESULTS_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--record"], capture_output=True, text=True, env=env,
                         timeout=300, cwd=REPO)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: airbench_anchor needs a CUDA GPU") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr and not any(tmp_path.iterdir())  # nothing recorded


def test_grid_configs_take_each_profiles_defaults():
    full, cpu, smoke = (A.configs(p)[0] for p in ("full", "cpu", "smoke"))
    assert (full.runs, full.device, full.torchvision) == (3, "cuda", "installed")
    assert (cpu.runs, cpu.device, cpu.torchvision, cpu.seeds) == (5, "cpu", "shim", [0, 1, 2, 3, 4])
    assert (smoke.runs, smoke.device, smoke.torchvision) == (1, "cpu", "shim")
    assert A.make_config(5, "shim", profile="cpu") == cpu and A.make_config(3, "shim") != full
    assert A.config(3, "installed") == full.to_dict()


def test_a_config_that_says_shim_gets_the_shim(airbench):
    if getattr(sys.modules.get("torchvision"), "__version__", None) != "shim":  # airbench came with a real one
        with pytest.raises(A.AnchorError, match="asks for the torchvision stand-in; run it in a fresh process"):
            A.import_airbench(force_shim=True)
        return
    module, tv = A.import_airbench(force_shim=True)
    assert module is airbench and tv == "shim" and sys.modules["torchvision"].__version__ == "shim"


def test_a_killed_comparison_resumes_with_the_seeds_it_has(airbench, tmp_path, monkeypatch):
    """Inside the run store's checkpoints, a process killed after its pairs keeps them: the next
    process measures nothing again (neither side trains) and returns the same runs."""
    from factorlab.results.checkpoints import Slot, run_checkpoints

    cfg = A.config(1, "shim", profile="smoke")
    folder = tmp_path / "ckpt"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after the last pair")

    with run_checkpoints(folder, "c0ffee"), monkeypatch.context() as m:
        m.setattr(A, "summarize", killed)
        with pytest.raises(KeyboardInterrupt):
            A.measure(cfg, log=lambda *a: None)
    saved = Slot(folder / "fit0.pt", "c0ffee").load()
    (a,), (o,) = saved["airbench_runs"], saved["ours_runs"]
    assert a["seed"] == o["seed"] == 0 and a["load"] == o["load"] and isinstance(a["load"]["quiet"], bool)

    def trains(*args, **kwargs):
        raise AssertionError("a saved seed trained again")

    monkeypatch.setattr(A, "run_airbench_once", trains)
    monkeypatch.setattr(cc, "train_config", trains)
    monkeypatch.setattr(airbench, "warmup94", trains)
    with run_checkpoints(folder, "c0ffee"):
        rec = A.measure(cfg, log=lambda *a: None)
    m = rec["metrics"]
    assert m["airbench_runs"] == [a] and m["ours_runs"] == [o] and m["processes"] == 1
    assert m["pairs_quiet"] == int(a["load"]["quiet"]) and m["ratio"] == o["time_s"] / a["time_s"]
    # another code version's slot is not used: the comparison starts over (and here would train)
    with run_checkpoints(folder, "beef"), pytest.raises(AssertionError, match="a saved seed trained again"):
        A.measure(cfg, log=lambda *a: None)


def test_resumed_pairs_keeps_only_a_prefix_of_the_seeds(tmp_path):
    from factorlab.results.checkpoints import Slot

    slot = Slot(tmp_path / "fit0.pt", "c0ffee")
    assert A.resumed_pairs(None, [0, 1]) == ([], []) and A.resumed_pairs(slot, [0, 1]) == ([], [])
    runs = [{"seed": 0, "time_s": 1.0}]
    slot.save({"airbench_runs": runs, "ours_runs": runs})
    assert A.resumed_pairs(slot, [0, 1, 2]) == (runs, runs)
    assert A.resumed_pairs(slot, [1, 2]) == ([], [])  # not this comparison's first seed
    slot.save({"airbench_runs": runs, "ours_runs": []})
    assert A.resumed_pairs(slot, [0, 1]) == ([], [])  # a torn pair
