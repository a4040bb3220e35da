"""Experiment ``cifar_fulldata``: the fourth journal's CIFAR-10 comparison points on all
50,000 training images, with the airbench94 recipe's own schedule, so that the chapter can
set its accuracies beside the journal's (dense 94 %, separable 92 %, separable + low-rank
factor 2 81.2 %, factor 10 78.3 % scaled / 77.8 % usual weight decay: the journal's, on the
canonical CIFAR-10, with cifar10-fast's ResNet on a GPU).

Variants (:data:`VARIANTS`; every 3x3 convolution but the first, see
:func:`factorlab.models.cifar.conv_factory`), the airbench94-style net:

- ``dense`` (usual weight decay);
- ``separable``: depthwise 3x3 + full pointwise (usual);
- ``separable_lowrank`` factor 2 and factor 10: a pointwise bottleneck of rank
  ``in_channels // factor``, each with ``wd_mode`` ``"usual"`` and ``"scaled"`` (weight decay
  multiplied by the layer's compression, the journal's ablation);
- ``separable_tt``: a tensor-train pointwise over d = 3 channel modes, internal rank 16
  (at width 1/2 about the size of the factor-2 and factor-10 nets' middle: 27,222
  parameters against 59,536 and 16,128).

Recipe: :func:`~factorlab.experiments.cifar_common.airbench_recipe` unchanged (batch 1024,
9.9 epochs, triangular lr, Lookahead/EMA, label smoothing 0.2, TTA level 2), all 50,000
training and 10,000 test images (the JPEG quality-75 copy: lossy, labelled so).

Profiles:

- ``smoke``: the fixture (250 training, 100 test images), width 1/8, one epoch at batch 50,
  the seven variants once (7 runs, seconds). Never published.
- ``cpu``: the seven variants at width 1/2 with seeds 0, 1, 2 (21 runs), then at width 1
  with seed 0 (7 runs), all data, the recipe's own 9.9 epochs at batch 1024 (476 steps). What
  each run cost is in its record (the chapter's table shows the training minutes with the
  machine's quiet flag); the store resumes a partly finished grid, and airbench94's anchor
  beside the dense width-1/2 net (``benchmarks/airbench_anchor.py --profile cpu --ours
  cifar_fulldata --record``: 3 seeds of each, to be run alone) resumes seed pair by seed pair.
- ``full``: the same grid on one GPU (28 runs); estimated on one H100
  (:func:`~factorlab.experiments.cifar_common.estimate_seconds`) at about 4 minutes.

    python -m factorlab run cifar_fulldata --profile cpu --where width=0.5   # 21 runs
    python -m factorlab run cifar_fulldata --profile cpu --where width=1.0   # 7 runs
"""
from __future__ import annotations

from factorlab.experiments.cifar_common import SCALE, CifarConfig, airbench_recipe, cifar_config, train_config
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "cifar_fulldata"

#: The journal's comparison points: (name, factorize spec, weight-decay mode), in table order.
VARIANTS: list[tuple[str, dict | None, str]] = [
    ("dense", None, "usual"),
    ("separable", {"family": "separable"}, "usual"),
    ("lowrank2_usual", {"family": "separable_lowrank", "factor": 2}, "usual"),
    ("lowrank2_scaled", {"family": "separable_lowrank", "factor": 2}, "scaled"),
    ("lowrank10_usual", {"family": "separable_lowrank", "factor": 10}, "usual"),
    ("lowrank10_scaled", {"family": "separable_lowrank", "factor": 10}, "scaled"),
    ("tt", {"family": "separable_tt", "d": 3, "rank": 16}, "usual"),
]

#: Per profile: (width, seeds) pairs, the data overrides of cifar_common.DATA, and the recipe.
BUDGETS: dict[str, dict] = {
    "smoke": {"widths": [(SCALE["smoke"]["width"], [0])], "data": {},
              "recipe": airbench_recipe(epochs=1, batch_size=50, warmup_steps=1)},
    "cpu": {"widths": [(0.5, [0, 1, 2]), (1.0, [0])], "data": {"n_train": None, "n_test": None},
            "recipe": airbench_recipe(warmup_steps=1)},
    "full": {"widths": [(0.5, [0, 1, 2]), (1.0, [0])], "data": {}, "recipe": airbench_recipe()},
}


def variant_name(cfg: dict) -> str:
    """The name in :data:`VARIANTS` of a config (its ``factorize`` and ``wd_mode``).

    Raises:
        ValueError: the config is none of the comparison points.
    """
    for name, spec, wd_mode in VARIANTS:
        if cfg.get("factorize") == spec and cfg.get("wd_mode") == wd_mode:
            return name
    raise ValueError(f"factorize={cfg.get('factorize')!r} with wd_mode={cfg.get('wd_mode')!r} is none of "
                     f"{NAME}'s variants: {', '.join(n for n, _, _ in VARIANTS)}")


def configs(profile: str) -> list[CifarConfig]:
    """Every run config under ``profile``: per width (smallest first), each variant of
    :data:`VARIANTS`, each seed."""
    b = BUDGETS[check_profile(profile)]
    return [cifar_config(NAME, profile, net="airbench", width=width, factorize=spec, recipe=b["recipe"], seed=seed,
                         wd_mode=wd_mode, data=b["data"])
            for width, seeds in b["widths"] for _, spec, wd_mode in VARIANTS for seed in seeds]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run; returns the parts of a run record."""
    variant_name(cfg)  # ValueError for a config off the comparison points
    return train_config(cfg, device)


EXPERIMENT = Experiment(NAME, "experiment", CifarConfig, configs, train,
                        label_keys=("net", "width", "factorize", "wd_mode", "seed"))
