"""Experiment ``mnist_baselines``: the three MNIST baselines of the thesis journal, as written
and with conventional weight decay.

Nets (journal settings):

- ``mlp``: 784-512-512-10, dropout 0.4, SGD lr 0.01 momentum 0.9 (no weight decay stated).
- ``conv1``: one 5x5 conv of 32 filters, dense 100; Adam lr 1e-4, weight decay 0.1
  (journal: 80.1 % test accuracy).
- ``conv2``: two convs of 32 filters with 2x2 max-pooling; batch 1000; Adam lr 1e-3, weight
  decay 0.1 (journal: 97.1 %).

Variants: ``journal`` (as written: Adam's ``weight_decay`` is an L2 term added to the
gradient), ``l2`` (the same optimizer with a conventional 5e-4), and, for the Adam nets,
``adamw`` (the journal's 0.1 applied as decoupled weight decay, AdamW). The journal gives no
batch size for (a) and (b) nor any epoch counts: we use batch 128 and the epochs of the
profile.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch

from factorlab.data import load_mnist
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.models import build_mnist_model, count_flops, count_params
from factorlab.train import fit_classifier, resolve_device, seed_everything

NAME = "mnist_baselines"

#: Normalisation of MNIST pixels (mean and std of the training set, on the [0, 1] scale).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

#: The journal's reported test accuracies (%), cited, not measured.
JOURNAL_ACCURACY = {"mlp": None, "conv1": 80.1, "conv2": 97.1}

NETS: dict[str, dict] = {
    "mlp": {"model": "mlp", "model_kwargs": {"hidden": [512, 512], "dropout": 0.4},
            "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 128},
    "conv1": {"model": "conv1", "model_kwargs": {"filters": 32, "kernel": 5, "hidden": 100},
              "optimizer": "adam", "lr": 1e-4, "momentum": None, "weight_decay": 0.1, "batch_size": 128},
    "conv2": {"model": "conv2", "model_kwargs": {"filters": 32, "kernel": 3},
              "optimizer": "adam", "lr": 1e-3, "momentum": None, "weight_decay": 0.1, "batch_size": 1000},
}

#: Per-net variant -> overrides of the journal settings.
VARIANTS: dict[str, dict[str, dict]] = {
    "mlp": {"journal": {}, "l2": {"weight_decay": 5e-4}},
    "conv1": {"journal": {}, "l2": {"weight_decay": 5e-4}, "adamw": {"optimizer": "adamw"}},
    "conv2": {"journal": {}, "l2": {"weight_decay": 5e-4}, "adamw": {"optimizer": "adamw"}},
}

#: Budget per profile: data subset (None = all), epochs per net, seeds.
BUDGETS: dict[str, dict] = {
    "smoke": {"n_train": 512, "n_test": 256, "epochs": {"mlp": 1, "conv1": 1, "conv2": 1}, "seeds": [0]},
    # cpu: 30 epochs for every net, 3 seeds (a conv2 run took about 25-35 min on one loaded thread)
    "cpu": {"n_train": None, "n_test": None, "epochs": {"mlp": 30, "conv1": 30, "conv2": 30}, "seeds": [0, 1, 2]},
    "full": {"n_train": None, "n_test": None, "epochs": {"mlp": 30, "conv1": 30, "conv2": 30}, "seeds": [0, 1, 2, 3, 4]},
}


@dataclass(kw_only=True)
class MnistConfig(RunConfig):
    """What every MNIST run config has: the net and its :func:`~factorlab.models.build_mnist_model`
    arguments, the optimizer (:func:`make_optimizer`), epochs, the data subset (None = all of
    it), the seed and the training-loss target (None: none watched)."""

    experiment: str
    profile: Profile
    net: Literal["mlp", "conv1", "conv2"]
    model: str
    model_kwargs: dict[str, Any]
    optimizer: Literal["sgd", "adam", "adamw"]
    lr: float
    momentum: float | None
    weight_decay: float
    batch_size: int
    epochs: int
    n_train: int | None
    n_test: int | None
    seed: int
    target_loss: float | None


@dataclass(kw_only=True)
class Config(MnistConfig):
    """A run of ``mnist_baselines``: a net of :data:`NETS` with the overrides of one of its
    :data:`VARIANTS`."""

    variant: Literal["journal", "l2", "adamw"]


def configs(profile: str) -> list[Config]:
    """Every run config of this experiment under ``profile``, in a fixed order."""
    budget = BUDGETS[check_profile(profile)]
    out = []
    for net, base in NETS.items():
        for variant, overrides in VARIANTS[net].items():
            for seed in budget["seeds"]:
                out.append(Config(experiment=NAME, profile=profile, net=net, variant=variant,
                                  **{**copy.deepcopy(base), **overrides},
                                  epochs=budget["epochs"][net], n_train=budget["n_train"],
                                  n_test=budget["n_test"], seed=seed, target_loss=None))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 images [B, 28, 28] -> normalised float32 [B, 1, 28, 28]."""
    return ((x.float() / 255.0 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    """The optimizer named in ``cfg``: ``sgd`` (momentum, coupled L2), ``adam`` (coupled L2,
    PyTorch's ``weight_decay``) or ``adamw`` (decoupled)."""
    name, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"] or 0.0, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}: choose sgd, adam or adamw")


def fit_config(cfg: dict, build, device: str = "auto"):
    """Load MNIST, seed, build ``build(cfg)`` and train it as ``cfg`` says: (model, FitResult).
    Shared by every MNIST experiment."""
    dev = resolve_device(device)
    data = load_mnist(device=dev, n_train=cfg["n_train"], n_test=cfg["n_test"])
    seed_everything(cfg["seed"])
    model = build(cfg).to(dev)
    optimizer = make_optimizer(cfg, model.parameters())
    fit = fit_classifier(
        model, optimizer, (data.train_x, data.train_y), (data.test_x, data.test_y),
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], device=dev, seed=cfg["seed"],
        preprocess=preprocess, target_loss=cfg["target_loss"],
    )
    return model, fit


def record_parts(model, fit, **model_info) -> dict:
    """The parts of a run record of a trained MNIST classifier."""
    return {
        "metrics": fit.metrics,
        "history": fit.history,
        "timing": fit.timing,
        "model": {"params": count_params(model), "flops_per_sample": count_flops(model, (1, 28, 28)), **model_info},
    }


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run of the grid; returns the parts of a run record (see factorlab.results)."""
    model, fit = fit_config(cfg, lambda c: build_mnist_model(c["model"], **c["model_kwargs"]), device)
    return record_parts(model, fit)


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("net", "variant", "seed"))
