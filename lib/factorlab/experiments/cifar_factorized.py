"""Experiment ``cifar_factorized``: factorized 3x3 convolutions inside fast CIFAR-10
training, with the weight-decay ablation of the fourth journal.

Every 3x3 convolution but the first layer is replaced (the head stays dense) by one of
(:func:`factorlab.models.cifar.conv_factory`):

- ``separable``: depthwise 3x3 + full pointwise;
- ``separable_lowrank``: depthwise 3x3 + a pointwise bottleneck of rank
  ``in_channels // factor``, factors 2, 4, 10, 20 (the journal's);
- ``separable_tt``: depthwise 3x3 + a tensor-train pointwise over d = 2, 3, 4 channel
  modes, internal ranks 4 and 16;
- ``tucker`` (Tucker-2) and ``cp`` at compression 8 and 32 of each layer.

Each variant is trained twice, with ``wd_mode="usual"`` (the compressed layers decay like
every other parameter) and ``"scaled"`` (their weight decay multiplied by the layer's
compression ratio): the ablation the journal attempted. The dense references (width sweep)
are the runs of ``cifar_baselines`` with the same profile.

Nets: the main grid uses the airbench94-style net and recipe (today's fast recipe); the
journal's own setting, ResNet-9 with its 24-epoch recipe, gets the separable family only.

Profiles:

- ``smoke``: the fixture, width 1/8, one epoch: each family once (separable_tt at d = 2,
  3, 4), separable_lowrank with both weight-decay modes, one ResNet-9 run (9 runs, seconds).
- ``cpu``: airbench at width 1/4 (the cpu profile's "1x" in ``cifar_baselines``) on 5,000
  training / 2,000 test images, 4 epochs at batch 128; the 10 variants separable,
  separable_lowrank 2/4/10/20, separable_tt d = 2/3/4 at rank 4, tucker 8, cp 8, each with
  both weight-decay modes; 3 seeds (60 runs). On this project's two-core machine, one run at
  a time: about 15 s a run, 15 minutes in all. Not comparable to the literature.
- ``full``: airbench (width 1) with all 15 variants x 2 weight-decay modes x 3 seeds (90
  runs), and ResNet-9 (width 1) with separable and separable_lowrank 2/4/10/20 x 2 modes x 1
  seed (10 runs). Estimated on one H100 (``cifar_common.estimate_seconds``, charging each
  factorized net the dense net's time): about 27 minutes (airbench 17.3, ResNet-9 9.7), more
  than one 10-minute call: run it in parts, e.g. ``--where net=airbench --where
  wd_mode=usual``, then ``wd_mode=scaled``, then ``--where net=resnet9`` (the store skips
  finished runs, so an interrupted call loses at most the run in progress).
"""
from __future__ import annotations

from factorlab.experiments.cifar_common import SCALE, CifarConfig, cifar_config, recipe_for, train_config
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "cifar_factorized"

SEPARABLE = [{"family": "separable"}] + [{"family": "separable_lowrank", "factor": f} for f in (2, 4, 10, 20)]
TT = [{"family": "separable_tt", "d": d, "rank": r} for d in (2, 3, 4) for r in (4, 16)]
TUCKER_CP = [{"family": fam, "compression": c} for fam in ("tucker", "cp") for c in (8, 32)]
#: All variants of the main grid.
VARIANTS = SEPARABLE + TT + TUCKER_CP
WD_MODES = ("usual", "scaled")

#: Per profile: net -> list of (variant, weight-decay modes), seeds, width.
BUDGETS: dict[str, dict] = {
    "smoke": {"airbench": [({"family": "separable"}, ["usual"]),
                           ({"family": "separable_lowrank", "factor": 4}, ["usual", "scaled"]),
                           *[({"family": "separable_tt", "d": d, "rank": 4}, ["usual"]) for d in (2, 3, 4)],
                           ({"family": "tucker", "compression": 8}, ["usual"]),
                           ({"family": "cp", "compression": 8}, ["usual"])],
              "resnet9": [({"family": "separable_lowrank", "factor": 4}, ["scaled"])],
              "seeds": {"airbench": [0], "resnet9": [0]}},
    "cpu": {"airbench": [(v, list(WD_MODES)) for v in SEPARABLE
                         + [{"family": "separable_tt", "d": d, "rank": 4} for d in (2, 3, 4)]
                         + [{"family": "tucker", "compression": 8}, {"family": "cp", "compression": 8}]],
            "resnet9": [],
            "seeds": {"airbench": [0, 1, 2], "resnet9": []}},
    "full": {"airbench": [(v, list(WD_MODES)) for v in VARIANTS],
             "resnet9": [(v, list(WD_MODES)) for v in SEPARABLE],
             "seeds": {"airbench": [0, 1, 2], "resnet9": [0]}},
}


def configs(profile: str) -> list[CifarConfig]:
    """Every run config under ``profile``: per net, variant and weight-decay mode, each seed."""
    budget = BUDGETS[check_profile(profile)]
    width = SCALE[profile]["width"]
    out = []
    for net in ("airbench", "resnet9"):
        recipe = recipe_for(net, profile)
        for variant, modes in budget[net]:
            for wd_mode in modes:
                for seed in budget["seeds"][net]:
                    out.append(cifar_config(NAME, profile, net=net, width=width, factorize=variant, recipe=recipe,
                                            seed=seed, wd_mode=wd_mode))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run; returns the parts of a run record."""
    return train_config(cfg, device)


EXPERIMENT = Experiment(NAME, "experiment", CifarConfig, configs, train, label_keys=("net", "width", "factorize", "wd_mode", "seed"))
