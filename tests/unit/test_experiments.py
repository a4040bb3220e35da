"""Experiment grids and the command line."""
from __future__ import annotations

import json

import pytest

from factorlab.cli import main
from factorlab.experiments import get_experiment
from factorlab.experiments.mnist_baselines import grid, make_optimizer, preprocess
from factorlab.results import config_hash


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_grid_is_valid_and_unique(profile):
    configs = grid(profile)
    keys = [config_hash(c) for c in configs]
    assert len(set(keys)) == len(keys)
    assert all(c["profile"] == profile and c["experiment"] == "mnist_baselines" for c in configs)
    json.dumps(configs)  # plain JSON


def test_grid_follows_the_journal():
    by = {(c["net"], c["variant"]): c for c in grid("cpu")}
    assert by["mlp", "journal"]["optimizer"] == "sgd" and by["mlp", "journal"]["lr"] == 0.01
    assert by["mlp", "journal"]["momentum"] == 0.9 and by["mlp", "journal"]["model_kwargs"]["dropout"] == 0.4
    assert by["conv1", "journal"]["lr"] == 1e-4 and by["conv1", "journal"]["weight_decay"] == 0.1
    assert by["conv2", "journal"]["batch_size"] == 1000 and by["conv2", "journal"]["lr"] == 1e-3
    assert by["conv2", "adamw"]["optimizer"] == "adamw" and by["conv2", "adamw"]["weight_decay"] == 0.1
    assert by["conv2", "l2"]["weight_decay"] == 5e-4
    assert len({c["seed"] for c in grid("cpu")}) >= 3


def test_unknown_profile_and_experiment():
    with pytest.raises(ValueError, match="choose one of smoke, cpu, full"):
        grid("huge")
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        get_experiment("nope")


def test_optimizers_couple_or_decouple_weight_decay():
    import torch

    cfg = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.1, "momentum": None}
    assert isinstance(make_optimizer(cfg, [torch.zeros(1, requires_grad=True)]), torch.optim.AdamW)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer({**cfg, "optimizer": "lion"}, [torch.zeros(1, requires_grad=True)])


def test_preprocess_shape_and_scale():
    import torch

    x = torch.full((4, 28, 28), 255, dtype=torch.uint8)
    out = preprocess(x)
    assert out.shape == (4, 1, 28, 28) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full_like(out, (1 - 0.1307) / 0.3081))


def test_cli_rejects_bad_profile_and_lists(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "mnist_baselines", "--profile", "huge"])
    assert exc.value.code == 2
    assert main(["list"]) == 0
    assert "mnist_baselines" in capsys.readouterr().out


def test_cli_cuda_without_gpu_fails_cleanly(capsys, tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    assert main(["run", "mnist_baselines", "--profile", "smoke", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.json"))  # nothing written


# -- factorized-layer experiments -----------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist_factorized", "mnist_compression"])
@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_factorized_grids_are_valid_and_unique(name, profile):
    configs = get_experiment(name).grid(profile)
    assert configs and len({config_hash(c) for c in configs}) == len(configs)
    assert all(c["experiment"] == name and c["profile"] == profile for c in configs)


def test_factorized_models_meet_their_budget_and_infeasible_points_are_left_out():
    import torch

    from factorlab.experiments import mnist_factorized as mf
    from factorlab.layers.replace import get_module

    configs = mf.grid("cpu")
    assert not any(c["net"] == "mlp" and c["family"] == "lowrank" and c["compression"] == 256 for c in configs)
    for cfg in configs:
        if cfg["family"] == "dense":
            continue
        torch.manual_seed(0)
        model = mf.build_model(cfg)
        for name in cfg["layers"]:
            layer = get_module(model, name)
            assert type(layer).__name__.lower().startswith(cfg["family"])
            assert layer.num_params() <= layer.dense_params() / cfg["compression"]
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_select_filters_configs_and_rejects_unknown_keys():
    from factorlab.experiments import select

    configs = get_experiment("mnist_factorized").grid("smoke")
    mlp = select(configs, {"net": "mlp"})
    assert mlp and all(c["net"] == "mlp" for c in mlp) and len(mlp) < len(configs)
    assert select(configs, {"net": "mlp", "family": "cp"})[0]["family"] == "cp"
    with pytest.raises(ValueError, match="no config has the key 'nett'"):
        select(configs, {"nett": "mlp"})


def test_cli_where_needs_key_value(capsys):
    assert main(["run", "mnist_factorized", "--profile", "smoke", "--where", "netmlp"]) == 2
    assert "--where expects KEY=VALUE" in capsys.readouterr().err
