"""Experiment ``cifar_baselines``: the two dense baselines of the CIFAR-10 chapter, over a
width sweep (the dense reference curve of accuracy against parameters).

- ``resnet9``: Page's ResNet-9 with its 24-epoch recipe
  (:func:`~factorlab.experiments.cifar_common.resnet9_recipe`);
- ``airbench``: the airbench94-style net with its ~10-epoch recipe
  (:func:`~factorlab.experiments.cifar_common.airbench_recipe`); at width 1 with more seeds,
  for the side-by-side comparison with airbench94 itself (``benchmarks/airbench_anchor.py``
  trains seeds 0-2 of these configs beside airbench94 in one process on the same GPU).

Every config carries ``dataset_variant``: on this project's machines the lossy JPEG
(quality 75) re-encoding, which every table and figure must say.

Profiles (see :mod:`factorlab.experiments.cifar_common`):

- ``smoke``: the fixture, width 1/8, one epoch, both nets (2 runs, ~2 s).
- ``cpu``: 5,000 training images (class-balanced), 2,000 test, 4 epochs at batch 128;
  airbench at widths 1/32, 1/16, 3/32, 1/8, 1/4, 1/2 (down to the size of the smallest
  factorized variants of ``cifar_factorized``, so that they meet a dense net of their own
  size) and ResNet-9 at 1/8, 1/4; 3 seeds, and 5 for airbench at width 1/2, the net of the
  CPU comparison with airbench94 itself (26 runs). On this project's two-core machine, one
  run at a time, a run takes 10 to 50 s and the grid about 10 minutes (each record holds its
  own times). **Not comparable to the literature** (a tenth
  of the data, at most half the channels, 4 epochs).
- ``full``: the whole dataset and the published recipes; airbench at widths 1/16, 1/8, 1/4,
  1/2, 3/4, 1 and ResNet-9 at 1/8, 1/4, 1/2, 3/4, 1 (the small widths meet the factorized
  variants of the full grid at their sizes); 3 seeds per point and 5 for airbench at width 1
  (35 runs). Estimated on one H100
  (:func:`~factorlab.experiments.cifar_common.estimate_seconds`, conservative): about
  10 minutes (ResNet-9 at width 1: 58 s a run, at 1/4: 14 s; airbench at width 1: 12 s).
"""
from __future__ import annotations

from factorlab.experiments.cifar_common import CifarConfig, cifar_config, recipe_for, train_config
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "cifar_baselines"

#: Per profile: net -> (widths, seeds), and extra seeds of airbench at the largest width.
BUDGETS: dict[str, dict] = {
    "smoke": {"widths": {"airbench": [0.125], "resnet9": [0.125]}, "seeds": [0], "anchor_seeds": []},
    "cpu": {"widths": {"airbench": [0.03125, 0.0625, 0.09375, 0.125, 0.25, 0.5], "resnet9": [0.125, 0.25]},
            "seeds": [0, 1, 2], "anchor_seeds": [3, 4]},
    "full": {"widths": {"airbench": [0.0625, 0.125, 0.25, 0.5, 0.75, 1.0], "resnet9": [0.125, 0.25, 0.5, 0.75, 1.0]},
             "seeds": [0, 1, 2], "anchor_seeds": [3, 4]},
}


def configs(profile: str) -> list[CifarConfig]:
    """Every run config under ``profile``: per net and width, each seed; then the extra
    airbench seeds at the largest width."""
    budget = BUDGETS[check_profile(profile)]
    out = []
    for net, widths in budget["widths"].items():
        recipe = recipe_for(net, profile)
        for width in widths:
            for seed in budget["seeds"]:
                out.append(cifar_config(NAME, profile, net=net, width=width, factorize=None, recipe=recipe, seed=seed))
        if net == "airbench":
            for seed in budget["anchor_seeds"]:
                out.append(cifar_config(NAME, profile, net=net, width=max(widths), factorize=None, recipe=recipe,
                                        seed=seed))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run; returns the parts of a run record."""
    return train_config(cfg, device)


EXPERIMENT = Experiment(NAME, "experiment", CifarConfig, configs, train, label_keys=("net", "width", "factorize", "wd_mode", "seed"))
