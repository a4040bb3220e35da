"""Training loop, devices, seeding and model counting."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from factorlab.models import ConvNet1, ConvNet2, MLP, build_mnist_model, count_flops, count_params
from factorlab.train import DeviceError, fit_classifier, resolve_device, seed_everything


def _toy_data(n: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
    y = (x.float().mean(dim=(1, 2)) > 127.5).long()  # learnable: brightness threshold
    return x, y


def _pre(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255.0 - 0.5).unsqueeze(1)


def _fit(seed: int, epochs: int = 2, target_loss=None):
    seed_everything(seed)
    model = MLP(hidden=(32,), dropout=0.2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = _toy_data()
    return fit_classifier(model, opt, (x[:192], y[:192]), (x[192:], y[192:]), epochs=epochs,
                          batch_size=32, device=torch.device("cpu"), seed=seed, preprocess=_pre,
                          target_loss=target_loss)


def test_fit_records_the_path_each_factorized_layer_ran(tmp_path, monkeypatch):
    """A model with factorized layers: timing holds every layer's path choice (training with
    autograd, evaluation without) and the cost rule with its calibration file; a dense model's
    timing has neither."""
    import json

    from factorlab.layers import CPLinear, TTLinear
    from factorlab.layers import paths

    monkeypatch.setenv("FACTORLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("FACTORLAB_PATH_COST", raising=False)
    monkeypatch.setattr(paths, "_MACHINES", {})  # this process has calibrated nothing yet
    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), TTLinear(784, 16, 2), nn.ReLU(), CPLinear(16, 2, 3))
    x, y = _toy_data(96)
    r = fit_classifier(model, torch.optim.SGD(model.parameters(), lr=0.01), (x[:64], y[:64]), (x[64:], y[64:]),
                       epochs=1, batch_size=32, device=torch.device("cpu"), seed=0, preprocess=_pre)
    assert set(r.timing["paths"]) == {"1", "3"}
    assert set(r.timing["paths"]["1"]) == {"32x784 float32 cpu train grad", "32x784 float32 cpu eval no_grad"}
    for choice in r.timing["paths"]["1"].values():
        assert choice["how"] == "model" and choice["path"] in model[1].candidates((32, 784))
    calibration = paths.calibration_file("cpu", torch.float32)
    assert r.timing["path_cost"] == {"cost": "roofline", "autotune": False, "calibrations": [calibration.name]}
    assert calibration.exists()
    json.dumps(r.timing)
    monkeypatch.setenv("FACTORLAB_PATH_COST", "flops")
    model[1].clear_path_cache()
    model[3].clear_path_cache()
    r = fit_classifier(model, torch.optim.SGD(model.parameters(), lr=0.01), (x[:64], y[:64]), (x[64:], y[64:]),
                       epochs=1, batch_size=32, device=torch.device("cpu"), seed=0, preprocess=_pre)
    assert r.timing["path_cost"] == {"cost": "flops", "autotune": False}
    assert "paths" not in _fit(0, epochs=1).timing and "path_cost" not in _fit(0, epochs=1).timing


def test_resolve_device_choices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="choose one of auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the error cannot occur")
def test_cuda_requested_without_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU is available.*device='auto' or device='cpu'"):
        resolve_device("cuda")


def test_seed_rejects_negative():
    with pytest.raises(ValueError, match="non-negative"):
        seed_everything(-1)


def test_fit_is_deterministic_on_cpu():
    a, b = _fit(3), _fit(3)
    assert a.history["train_loss"] == b.history["train_loss"]
    assert a.metrics["test_acc"] == b.metrics["test_acc"]
    c = _fit(4)
    assert c.history["train_loss"] != a.history["train_loss"]


def test_fit_history_and_timing_shapes():
    r = _fit(0, epochs=3)
    assert r.history["epoch"] == [1, 2, 3]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "train_s"):
        assert len(r.history[key]) == 3
    assert r.history["train_s"] == sorted(r.history["train_s"])  # cumulative
    assert r.timing["steps"] == 3 * 6  # 192 / 32 batches per epoch
    assert r.timing["precision"] == "fp32"
    assert 0.0 <= r.metrics["test_acc"] <= 1.0
    assert r.metrics["train_loss"] < r.history["train_loss"][0]  # it learns


def test_time_to_target_reached_and_not_reached():
    reached = _fit(0, epochs=3, target_loss=10.0)  # any loss is below 10 nats
    assert reached.metrics["time_to_target_s"] is not None
    assert 0 < reached.metrics["epochs_to_target"] <= 1.0
    missed = _fit(0, epochs=1, target_loss=1e-9)
    assert missed.metrics["time_to_target_s"] is None and missed.metrics["epochs_to_target"] is None


def test_fit_records_the_windowed_training_loss_with_its_clock():
    r = _fit(0, epochs=2, target_loss=1.6)
    h, t = r.history, r.timing
    assert (t["steps_per_epoch"], t["window_steps"]) == (6, 1)  # 6 steps // 10 checks -> windows of 1 step
    assert len(h["window_loss"]) == len(h["window_s"]) == len(h["window_epoch"]) == 12
    assert h["window_epoch"] == [k / 6 for k in range(1, 13)]
    assert h["window_s"] == sorted(h["window_s"]) and h["window_s"][-1] <= h["train_s"][-1]
    assert h["window_s"][5] <= h["train_s"][0] <= h["window_s"][6]  # epoch 1 ends between its windows and epoch 2's
    # windows of one step: the epoch's loss is their batch-size-weighted mean (192 = 6 batches of 32)
    assert h["train_loss"][0] == pytest.approx(sum(h["window_loss"][:6]) / 6, rel=1e-12)
    # the target metrics are read from the windows: the first at or below the target
    k = next(i for i, v in enumerate(h["window_loss"]) if v <= 1.6)
    assert k > 0 and h["window_loss"][k - 1] > 1.6
    assert r.metrics["time_to_target_s"] == h["window_s"][k] and r.metrics["epochs_to_target"] == h["window_epoch"][k]


def test_windows_cover_whole_windows_of_each_epoch_only():
    seed_everything(0)
    model = MLP(hidden=(16,), dropout=0.0)
    x, y = _toy_data(n=45 * 8)
    r = fit_classifier(model, torch.optim.SGD(model.parameters(), lr=0.05), (x, y), (x[:8], y[:8]), epochs=2,
                       batch_size=8, device=torch.device("cpu"), seed=0, preprocess=_pre, checks_per_epoch=10)
    assert (r.timing["steps_per_epoch"], r.timing["window_steps"]) == (45, 4)  # 11 windows, the 45th step in none
    assert len(r.history["window_loss"]) == 22
    assert r.history["window_epoch"][10:12] == [44 / 45, 1 + 4 / 45]
    assert r.timing["allocator"] in ("glibc, freed memory kept", "system default")


def test_fit_rejects_zero_epochs():
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        _fit(0, epochs=0)


@pytest.mark.parametrize("name,params", [
    ("mlp", 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10),
    ("conv1", 32 * 25 + 32 + 32 * 28 * 28 * 100 + 100 + 100 * 10 + 10),
    ("conv2", 32 * 9 + 32 + 32 * 32 * 9 + 32 + 32 * 7 * 7 * 10 + 10),
])
def test_baseline_parameter_counts(name, params):
    model = build_mnist_model(name)
    assert count_params(model) == params
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_flop_counts_match_formulas():
    mlp = MLP()
    assert count_flops(mlp, (1, 28, 28)) == (2 * 784 * 512 + 512) + (2 * 512 * 512 + 512) + (2 * 512 * 10 + 10)
    conv2 = ConvNet2()
    expected = 28 * 28 * 32 * (2 * 9 + 1) + 14 * 14 * 32 * (2 * 9 * 32 + 1) + (2 * 1568 * 10 + 10)
    assert count_flops(conv2, (1, 28, 28)) == expected
    assert count_flops(ConvNet1(), (1, 28, 28)) == 28 * 28 * 32 * (2 * 25 + 1) + (2 * 25088 * 100 + 100) + (2 * 100 * 10 + 10)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="choose one of"):
        build_mnist_model("resnet")
