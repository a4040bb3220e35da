"""Experiment ``cifar_long``: can the compressed networks overfit at all? The dense ResNet-9
and two compressed variants trained for a long cosine schedule, recording the clean
training loss (eval mode, no augmentation, on a fixed subset of the training images) and the
test loss after every epoch (the fourth journal's question).

Variants (every 3x3 convolution but the first, see :mod:`factorlab.models.cifar`): dense;
``separable_lowrank`` with factor 4 (rank in_channels // 4, about 15x fewer parameters in
the replaced layers); ``separable_lowrank`` with factor 20 (about 50x). Recipe
(:func:`~factorlab.experiments.cifar_common.long_recipe`): Nesterov SGD 0.9, peak lr 0.4 per
example at batch 512, weight decay 5e-4 (the usual mode), 2 warm-up epochs (a tenth of
training when that is shorter) then cosine annealing to 0, pad-4 crop + flip, no label
smoothing.

Profiles:

- ``smoke``: the fixture, width 1/8, 2 epochs (3 runs, seconds).
- ``cpu``: ResNet-9 at width 1/4 on 2,000 training images (all of them evaluated each
  epoch) and 1,000 test images, 100 epochs (the issue's length) at batch 128; 3 seeds (9 runs).
  On this project's two-core machine: 3 to 6 minutes a run, about 40 minutes in all. A small training set on
  purpose: overfitting shows within the budget. Not comparable to the literature.
- ``full``: width 1, all 50,000 training images (10,000 of them evaluated each epoch),
  100 epochs; 1 seed (3 runs), so that the chapter's whole ``full`` grid fits two 30-minute GPU
  leases. Estimated on one H100 (``cifar_common.estimate_seconds``): about 12 minutes, 4 a run.
"""
from __future__ import annotations

from factorlab.experiments.cifar_common import SCALE, CifarConfig, cifar_config, long_recipe, train_config
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "cifar_long"

VARIANTS = [None, {"family": "separable_lowrank", "factor": 4}, {"family": "separable_lowrank", "factor": 20}]

#: Per profile: data overrides, epochs, batch, training images evaluated per epoch, seeds.
BUDGETS: dict[str, dict] = {
    "smoke": {"data": {}, "epochs": 2, "batch_size": 50, "eval_train_n": 250, "seeds": [0]},
    "cpu": {"data": {"n_train": 2000, "n_test": 1000}, "epochs": 100, "batch_size": 128, "eval_train_n": 2000,
            "seeds": [0, 1, 2]},
    # full: one seed, so that the chapter's full grid fits two 30-minute GPU leases (test_budget_estimate)
    "full": {"data": {}, "epochs": 100, "batch_size": 512, "eval_train_n": 10000, "seeds": [0]},
}


def configs(profile: str) -> list[CifarConfig]:
    """Every run config under ``profile``: each variant, each seed."""
    b = BUDGETS[check_profile(profile)]
    recipe = long_recipe(b["epochs"], b["batch_size"], b["eval_train_n"], SCALE[profile]["warmup_steps"])
    return [cifar_config(NAME, profile, net="resnet9", width=SCALE[profile]["width"], factorize=v, recipe=recipe,
                         seed=seed, data=b["data"])
            for v in VARIANTS for seed in b["seeds"]]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run; returns the parts of a run record."""
    return train_config(cfg, device)


EXPERIMENT = Experiment(NAME, "experiment", CifarConfig, configs, train, label_keys=("net", "width", "factorize", "wd_mode", "seed"))
