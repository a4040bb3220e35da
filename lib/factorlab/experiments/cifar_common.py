"""What the CIFAR-10 experiments share: the two published recipes (ResNet-9, airbench94)
and the long cosine one, the data of each profile, the config layout, one function that trains
a config into the parts of a run record, and the GPU budget estimate.

**Config** (a plain JSON-able dict; the run store keys on its hash)::

    experiment, profile, dataset_variant ("cifar10-jpeg-q75": lossy, label every result so),
    data_source ("fixture" for smoke, else None), n_train, n_test, subset_seed,
    net ("resnet9" | "airbench"), width, family ("dense" or the factorize family),
    factorize (None or the spec of factorlab.models.cifar.conv_factory), wd_mode
    ("usual" | "scaled"), recipe (factorlab.train.cifar_recipe, without wd_mode), seed

``dataset_variant`` is :func:`factorlab.data.cifar10.default_variant` when the grid is made
(``FACTORLAB_CIFAR10_VARIANT``, else the JPEG mirror's variant, which all of this project's
records use).

**Profiles.** ``smoke``: the committed 350-image fixture (250 train, 100 test), width 1/8,
one epoch, batch 50: seconds, CI only, never published. ``cpu``: a reduced-width net on a
class-balanced subset for a few epochs, sized so each experiment's whole cpu grid takes at
most about 15 minutes on this project's two-core machine: its accuracies are far below the
published ones and are **not comparable to the literature**. ``full``: the published recipes on the whole training set
(50,000 images, 10,000 test), meant for one GPU.

**Budget estimate** (:func:`estimate_seconds`): a run of the ``full`` profile on one H100
is estimated as a fixed 4 s (model build, data to the device, warm-up and cuDNN autotuning,
FLOP count) + 3 ms per optimizer step (eager kernel launches) + the training FLOPs (3 x the
forward FLOPs per image x images x epochs) at 60 TFLOP/s + the evaluation FLOPs (per-epoch
test pass, the final passes at TTA levels 0, 1 and 2 = 9 forward passes of the test set, and
the long schedule's per-epoch training-subset pass) at 120 TFLOP/s. A factorized net is
charged the FLOPs of the dense net of the same width (depthwise and 1x1 stages are memory
bound on a GPU: assume no speed-up). For scale: airbench94 itself reaches 94 TFLOP/s
effective on an A100 (0.36 PFLOP in 3.83 s, fp16, uncompiled), so 60 TFLOP/s for our
uncompiled bf16-autocast nets on an H100 is meant to err on the slow side. Each experiment's
docstring gives its total; calibrate with the first records (``timing.train_s``) before
planning a second lease.

Estimated ``full`` totals: ``cifar_baselines`` 9.8 min (35 runs), ``cifar_factorized``
27.1 min (100 runs: airbench 17.3, ResNet-9 9.7), ``cifar_long`` 11.7 min (3 runs),
``cifar_init`` 1.1 min (9 runs): about 50 minutes. A task is now lent at most 15 minutes
of device time in all (start-up included), so the grid spans several sessions with a GPU.
Each command stays under the 10-minute limit of one call (``timeout 570 python -m factorlab
run ... --profile full --device cuda``; a run cut short writes nothing and is redone by the
next call, finished runs are skipped). In order of value, with the estimate of each part:

1. the airbench94 anchor (``benchmarks/airbench_anchor.py``, 2 to 3 minutes; see
   ``benchmarks/README.md``), ``cifar_baselines --where net=airbench`` (20 runs, 2.6 min)
   and ``cifar_init`` (9 runs, 1.1 min): one call, which also calibrates this estimate;
2. ``cifar_factorized --where net=airbench --where seed=0`` (30 runs, 5.8 min), then
   ``seed=1`` and ``seed=2`` (5.8 min each);
3. ``cifar_baselines --where net=resnet9`` (15 runs, 7.2 min), ``cifar_factorized --where
   net=resnet9`` (10 runs, 9.7 min), ``cifar_long`` (3 runs, 11.7 min: one call each).

What travels (64 MiB per call): the working tree and ``data/raw/cifar10/cifar10-jpeg-q75.tar.xz``
(18 MB; decoded there into the cache in about 20 s). The GPU machine's image has torch,
torch-geometric, opt-einsum and torchvision (the device library's KINDS.md); the anchor
needs the airbench sdist built into a wheel and carried (see ``benchmarks/README.md``).
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from factorlab.data.cifar10 import default_variant, is_lossy, load_cifar10
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.models import count_flops, count_params
from factorlab.models.cifar import build_cifar_model, check_width, describe_factorized
from factorlab.paths import REPO_ROOT
from factorlab.train import resolve_device, seed_everything
from factorlab.train.cifar_recipe import check_recipe, fit_fast

#: The committed smoke/test fixture (see its README).
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "cifar10_fixture" / "cifar10-fixture.tar.xz"

#: Data per profile: source (None = the full dataset via its cache), subset sizes (None =
#: all), the seed of the class-balanced subsets.
DATA: dict[str, dict] = {
    "smoke": {"data_source": "fixture", "n_train": None, "n_test": None, "subset_seed": 0},
    "cpu": {"data_source": None, "n_train": 5000, "n_test": 2000, "subset_seed": 0},
    "full": {"data_source": None, "n_train": None, "n_test": None, "subset_seed": 0},
}

#: Per profile: the width that plays "1x" for each net, and the reduced training.
SCALE: dict[str, dict] = {
    "smoke": {"width": 0.125, "batch_size": 50, "warmup_steps": 1, "resnet9_epochs": 1, "airbench_epochs": 1},
    "cpu": {"width": 0.25, "batch_size": 128, "warmup_steps": 1, "resnet9_epochs": 4, "airbench_epochs": 4},
    "full": {"width": 1.0, "batch_size": None, "warmup_steps": 3, "resnet9_epochs": 24, "airbench_epochs": 9.9},
}

#: airbench94's hyper-parameters in its own "decoupled" form: lr 11.5 and weight decay 0.0153
#: per 1024 examples, Nesterov momentum 0.85. Its SGD step is lr_sgd = 11.5 / (1024 (1 + 1 /
#: (1 - 0.85))) on a summed loss; in our per-example convention (lr / batch on a summed loss)
#: that is lr = 11.5 / (1 + 1 / 0.15) = 1.5, and its coupled decay wd / lr_sgd per 1024
#: examples is weight_decay = 0.0153 / 11.5 per example.
AIRBENCH_MOMENTUM = 0.85
AIRBENCH_LR = 11.5 / (1 + 1 / (1 - AIRBENCH_MOMENTUM))
AIRBENCH_WD = 0.0153 / 11.5


def resnet9_recipe(epochs: float = 24, batch_size: int = 512, label_smoothing: float = 0.0,
                   warmup_steps: int = 3) -> dict:
    """Page's ResNet-9 recipe: batch 512, SGD with Nesterov momentum 0.9, lr rising linearly
    from 0 to 0.4 at 5/24 of training then down to 0 (per example, summed loss, so 0.4/512 per
    step), weight decay 5e-4 x batch, pad-4 reflect crop + flip + 8x8 cutout, no TTA. Another
    batch size scales the lr linearly (batch / 512)."""
    return {"epochs": epochs, "batch_size": batch_size, "lr": 0.4 * batch_size / 512, "weight_decay": 5e-4,
            "momentum": 0.9, "nesterov": True,
            "schedule": {"kind": "piecewise", "epochs": [0, 5 * epochs / 24, epochs], "values": [0.0, 1.0, 0.0]},
            "norm_lr_scale": 1.0, "label_smoothing": label_smoothing,
            "augment": {"pad": 4, "pad_mode": "reflect", "flip": "random", "cutout": 8},
            "ema": None, "whiten_bias_epochs": None, "tta": 0, "warmup_steps": warmup_steps}


def airbench_recipe(epochs: float = 9.9, batch_size: int = 1024, warmup_steps: int = 3) -> dict:
    """airbench94's recipe: batch 1024, Nesterov SGD (momentum 0.85), lr 1.5 and weight decay
    0.0153/11.5 per example (see :data:`AIRBENCH_LR`), BatchNorm shifts at 64x the lr,
    triangular schedule (0.2 -> 1 at 23 % -> 0.07), label smoothing 0.2, pad-2 reflect
    translation + alternating flip, Lookahead/EMA every 5 steps from the start (copied into the
    model at the last step, as airbench 0.1.8), whitening bias frozen after 3 epochs, mirror +
    translate TTA. Another batch size scales the lr linearly."""
    return {"epochs": epochs, "batch_size": batch_size, "lr": AIRBENCH_LR * batch_size / 1024,
            "weight_decay": AIRBENCH_WD, "momentum": AIRBENCH_MOMENTUM, "nesterov": True,
            "schedule": {"kind": "triangle", "start": 0.2, "peak": 0.23, "end": 0.07},
            "norm_lr_scale": 64.0, "label_smoothing": 0.2,
            "augment": {"pad": 2, "pad_mode": "reflect", "flip": "alternating", "cutout": 0},
            "ema": {"every": 5, "decay_base": 0.95, "decay_pow": 3.0},
            "whiten_bias_epochs": 3, "tta": 2, "warmup_steps": warmup_steps}


def long_recipe(epochs: float = 100, batch_size: int = 512, eval_train_n: int = 10000, warmup_steps: int = 3) -> dict:
    """The long schedule: ResNet-9's optimizer (Nesterov SGD 0.9, peak lr 0.4 per example at
    batch 512, weight decay 5e-4) with a linear warm-up (2 epochs, or a tenth of training if
    shorter) then cosine annealing to 0,
    pad-4 crop + flip (no cutout), no label smoothing; per epoch the clean loss on
    ``eval_train_n`` training images beside the test loss."""
    r = resnet9_recipe(epochs, batch_size, 0.0, warmup_steps)
    r.update(schedule={"kind": "cosine", "warmup_epochs": min(2, epochs / 10), "final": 0.0},
             augment={"pad": 4, "pad_mode": "reflect", "flip": "random", "cutout": 0}, eval_train_n=eval_train_n)
    return r


def recipe_for(net: str, profile: str) -> dict:
    """The recipe of ``net`` scaled to ``profile`` (epochs, batch, warm-up steps)."""
    s = SCALE[check_profile(profile)]
    kw = {"warmup_steps": s["warmup_steps"]}
    if s["batch_size"] is not None:
        kw["batch_size"] = s["batch_size"]
    if net == "resnet9":
        return resnet9_recipe(epochs=s["resnet9_epochs"], **kw)
    if net == "airbench":
        return airbench_recipe(epochs=s["airbench_epochs"], **kw)
    raise ValueError(f"unknown CIFAR net {net!r}: choose resnet9 or airbench")


def rebuild_recipe(recipe: dict, *, epochs: float, batch_size: int, warmup_steps: int,
                   eval_train_n: int | None = None) -> dict:
    """The same kind of recipe as ``recipe`` (told by its schedule: ``"piecewise"`` ResNet-9,
    ``"triangle"`` airbench, ``"cosine"`` the long schedule) at another budget, made by the
    recipe's own function, so that everything tied to the budget (the piecewise knots, the
    cosine warm-up, the lr scaled with the batch) follows. ``eval_train_n`` (the long schedule
    only) defaults to the recipe's own.

    Raises:
        ValueError: ``recipe`` is not what its function gives at its own budget (an edited or
            unknown recipe, which this would silently change).
    """
    kind = recipe.get("schedule", {}).get("kind")

    def make(e: float, b: int, w: int, n: int | None) -> dict:
        if kind == "piecewise":
            return resnet9_recipe(e, b, recipe.get("label_smoothing", 0.0), w)
        if kind == "triangle":
            return airbench_recipe(e, b, w)
        if kind == "cosine":
            return long_recipe(e, b, recipe.get("eval_train_n", 0) if n is None else n, w)
        raise ValueError(f"recipe with schedule kind {kind!r} is none of resnet9_recipe, airbench_recipe, "
                         "long_recipe")

    if make(recipe["epochs"], recipe["batch_size"], recipe["warmup_steps"], None) != recipe:
        raise ValueError(f"recipe is not {kind!r}'s recipe function at its own budget (edited by hand?): {recipe!r}")
    return make(epochs, batch_size, warmup_steps, eval_train_n)


def smoke_variant(cfg: dict, *, n_train: int = 20, n_test: int = 10, batch_size: int = 10, epochs: float = 1,
                  warmup_steps: int = 1) -> dict:
    """A seconds-long stand-in of any run config (meant for the ``full`` grids): the same net,
    width, factorization, weight-decay mode, recipe kind, seed and ``dataset_variant``, on the
    ``smoke`` profile's committed fixture (class-balanced subsets of ``n_train`` training and
    ``n_test`` test images), for ``epochs`` at ``batch_size`` (``n_train // batch_size`` steps
    an epoch) after ``warmup_steps`` warm-up steps; the long schedule evaluates all
    ``n_train`` training images per epoch. Its net is exactly the full config's (same
    parameter count), so training it proves that the full configuration builds, gets its
    optimizer groups and trains, without the full budget. Never a published run."""
    recipe = rebuild_recipe(cfg["recipe"], epochs=epochs, batch_size=batch_size, warmup_steps=warmup_steps,
                            eval_train_n=n_train if "eval_train_n" in cfg["recipe"] else None)
    out = make_config(cfg["experiment"], "smoke", net=cfg["net"], width=cfg["width"], factorize=cfg["factorize"],
                      recipe=recipe, seed=cfg["seed"], wd_mode=cfg["wd_mode"],
                      data={"n_train": n_train, "n_test": n_test}, dirac=cfg.get("dirac", True))
    out["dataset_variant"] = cfg["dataset_variant"]
    return out


def family_of(factorize: dict | None) -> str:
    return "dense" if factorize is None else factorize["family"]


@dataclass(kw_only=True)
class CifarConfig(RunConfig):
    """A CIFAR-10 run config (the layout of the module docstring), shared by
    ``cifar_baselines``, ``cifar_factorized``, ``cifar_long`` and ``cifar_init``. ``dirac``
    is a key only when False (configs made before it existed keep their hashes)."""

    experiment: str
    profile: Profile
    dataset_variant: str
    data_source: Literal["fixture"] | None
    n_train: int | None
    n_test: int | None
    subset_seed: int
    net: Literal["resnet9", "airbench"]
    width: float
    family: str
    factorize: dict[str, Any] | None
    wd_mode: Literal["usual", "scaled"]
    recipe: dict[str, Any]
    seed: int
    dirac: bool = True

    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("dirac",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.family != family_of(self.factorize):
            raise ValueError(f"cifar_common.CifarConfig.family must be {family_of(self.factorize)!r} (from factorize), "
                             f"got {self.family!r}")
        if not self.dirac and (self.net != "airbench" or self.factorize is not None):
            raise ValueError(f"dirac=False applies to the dense airbench net only (its 3x3 convolutions start as "
                             f"the identity), not to {self.net!r} with factorize={self.factorize!r}")


def cifar_config(experiment: str, profile: str, *, net: str, width: float, factorize: dict | None, recipe: dict,
                 seed: int, wd_mode: str = "usual", data: dict | None = None, dirac: bool = True) -> CifarConfig:
    """One run config (see the module docstring); ``data`` overrides keys of the profile's
    :data:`DATA` (e.g. a smaller ``n_train``). ``dirac=False`` (the dense airbench net only)
    initialises its 3x3 convolutions without the identity (Dirac) filters and adds
    ``"dirac": False`` to the config; the default adds nothing, so other configs keep their
    keys (and hashes).

    Raises:
        ValueError: wrong data keys, or ``dirac=False`` for another net or a factorized one.
    """
    check_profile(profile)
    data = {**DATA[profile], **(data or {})}
    if set(data) != set(DATA[profile]):
        raise ValueError(f"data keys must be {sorted(DATA[profile])}, got {sorted(data)}")
    return CifarConfig(experiment=experiment, profile=profile, dataset_variant=default_variant(), **data, net=net,
                       width=check_width(width), family=family_of(factorize), factorize=copy.deepcopy(factorize),
                       wd_mode=wd_mode, recipe=copy.deepcopy(recipe), seed=seed, dirac=dirac)


def make_config(experiment: str, profile: str, **kwargs) -> dict:
    """:func:`cifar_config` as the dict the run store hashes (same arguments)."""
    return cifar_config(experiment, profile, **kwargs).to_dict()


def load_data(cfg: dict, device: torch.device):
    """The data of ``cfg`` on ``device``."""
    source = FIXTURE if cfg["data_source"] == "fixture" else None
    if cfg["data_source"] not in (None, "fixture"):
        raise ValueError(f"data_source must be None or 'fixture', got {cfg['data_source']!r}")
    return load_cifar10(device, cfg["dataset_variant"], source=source, n_train=cfg["n_train"], n_test=cfg["n_test"],
                        subset_seed=cfg["subset_seed"])


def build_model(cfg: dict) -> torch.nn.Module:
    """The (possibly factorized) net of ``cfg``, freshly initialised from the global RNG
    (without the Dirac initialisation where ``cfg["dirac"]`` is False)."""
    kwargs = {"dirac": False} if cfg.get("dirac", True) is False else {}
    return build_cifar_model(cfg["net"], cfg["width"], cfg["factorize"], **kwargs)


def model_info(model: torch.nn.Module, cfg: dict) -> dict:
    """Parameter counts, forward FLOPs per image, the factorized layers, and the compression
    of the whole net against the dense net of the same width.

    ``params`` counts the parameters trainable at the end of training (``model`` is the
    trained net): for airbench that leaves out the 24 whitening biases, frozen after 3
    epochs (its whitening weights and BatchNorm scales never train); ``params_all`` counts
    every parameter; ``dense_params`` is the trainable count of a freshly built dense net of
    the same width (whitening biases included), so ``compression = dense_params / params``
    reads 1.0002 for a dense airbench run, not 1."""
    params = count_params(model)
    dense = count_params(build_cifar_model(cfg["net"], cfg["width"], None))
    return {"params": params, "params_all": count_params(model, trainable_only=False),
            "flops_per_sample": count_flops(model, (3, 32, 32)), "channels": list(model.channels),
            "dense_params": dense, "compression": dense / params, "factorized": describe_factorized(model)}


def train_config(cfg: dict, device: str = "auto") -> dict:
    """Train one CIFAR config; returns the parts of a run record."""
    dev = resolve_device(device)
    data = load_data(cfg, dev)
    seed_everything(cfg["seed"])
    model = build_model(cfg)
    fit = fit_fast(model, data, {**cfg["recipe"], "wd_mode": cfg["wd_mode"]}, device=dev, seed=cfg["seed"])
    metrics = {**fit.metrics, "dataset_variant": data.variant, "lossy_data": is_lossy(data.variant),
               "n_train": int(data.train_y.shape[0]), "n_test": int(data.test_y.shape[0])}
    return {"metrics": metrics, "history": fit.history, "timing": fit.timing, "model": model_info(model.cpu(), cfg)}


# --------------------------------------------------------------------------- GPU budget

#: Assumptions of :func:`estimate_seconds` (see the module docstring).
H100_TRAIN_FLOPS = 60e12
H100_EVAL_FLOPS = 120e12
STEP_OVERHEAD_S = 3e-3
RUN_OVERHEAD_S = 4.0
FULL_TRAIN, FULL_TEST = 50000, 10000


@functools.lru_cache(maxsize=None)
def dense_flops(net: str, width: float) -> int:
    """Forward FLOPs per image of the dense ``net`` at ``width``."""
    return count_flops(build_cifar_model(net, width, None), (3, 32, 32))


def estimate_seconds(cfg: dict) -> float:
    """Estimated seconds of one run of ``cfg`` on one H100 (the assumptions are in the
    module docstring; the smoke fixture counts as the full dataset)."""
    r = check_recipe({**cfg["recipe"], "wd_mode": cfg["wd_mode"]})
    n_train = cfg["n_train"] or FULL_TRAIN
    n_test = cfg["n_test"] or FULL_TEST
    flops = dense_flops(cfg["net"], cfg["width"])
    steps = math.ceil((n_train // r["batch_size"]) * r["epochs"])
    epochs = math.ceil(r["epochs"])
    train_flops = 3 * flops * r["batch_size"] * steps
    eval_images = n_test * (epochs + 9) + min(r["eval_train_n"], n_train) * epochs
    return RUN_OVERHEAD_S + steps * STEP_OVERHEAD_S + train_flops / H100_TRAIN_FLOPS + \
        flops * eval_images / H100_EVAL_FLOPS


def estimate_grid_seconds(configs: list[dict]) -> float:
    """Sum of :func:`estimate_seconds` over ``configs``."""
    return sum(estimate_seconds(c) for c in configs)
