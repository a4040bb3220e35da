"""Experiment ``mnist_multitask``: DMTRL's MNIST set-up (Yang & Hospedales, ICLR 2017) — ten
one-vs-all binary tasks ("is the digit t?") on one image, with the network of
:mod:`factorlab.models.mnist_multitask` (conv 32x5x5 -> pool -> conv 64x4x4 -> pool -> FC 512
-> FC 1 per task), over training-set sizes and seeds.

Methods (``method``):

- ``single``: ten independent networks (held as one task-stacked network, trained at once on
  the mean of the ten tasks' losses; the tasks share no parameter, so each network's gradient
  is its own task's, scaled by 1/10). They start from one shared random initialisation
  (``single_init="shared"``, :func:`build_single`). Trained from ten independent
  initialisations for the cpu budget's hundred steps, their task-stacked weights stayed at
  full task rank in every layer at 10 % error (1,000 images, seed 0: LAF rank 10 everywhere,
  the Tucker network 6.8M parameters against the ten networks' 5.6M): the decomposition
  read the initialisations' differences. From one shared initialisation the same run gave
  LAF ranks 3, 9, 9, 8 and a Tucker network of 3.9M parameters.
- ``hard``: one shared trunk (conv, conv, FC 512), ten heads.
- ``laf`` / ``tucker`` / ``tt``: every layer task-factorized (DMTRL), its factors initialised,
  as DMTRL does, by decomposing the trained single-task networks' task-stacked weights at the
  ranks that give ``rel_error`` (10 %) relative reconstruction error, biases copied; then
  trained for ``epochs`` more.
- ``single_long``: the single-task networks of ``single`` (same initialisation and data) trained
  for :data:`LONG_FACTOR` times the epochs: as many epochs as a DMTRL network has seen once
  its pretraining is counted, the control that tells DMTRL's sharing from its extra training.
- ``deep``: the journal's alternative, "simply add more layers": the hard-shared network with
  ``deep_layers`` extra hidden FC layers after FC 512, their width chosen so that the whole
  network has (as nearly as a width allows) the parameter count of the ``deep_match``
  factorized network of the same size and seed (counted from the ranks its ``rel_error``
  search picks, :func:`dmtrl_params`, without decomposing). Trained from scratch.

Where the single-task networks come from: a run record holds no weights, so a factorized or
``deep`` run needs the single-task networks of its training-set size and seed in memory. The
single-task run of the grid keeps its trained network in this process (one at a time); the
grid orders every size and seed's ``single`` run first, so a grid run in one process trains each
single-task network once. Otherwise (a resumed grid, a lone run) it is retrained here from
the same config, which is deterministic on the CPU with one thread: the record stores
``pretrain_train_loss`` (to check against the ``single`` record's ``train_loss``),
``pretrain_s`` (the single-task training seconds, which a DMTRL network costs before its own
training) and ``pretrain_reused``.

Every run records the per-epoch and windowed training loss (mean over the ten tasks' binary
cross-entropies, nats; :func:`factorlab.train.fit_classifier` with logits [B, 2, T], the
two-class form of the binary logit), so that the time and epochs each method takes to reach
the single-task networks' final training loss are read from the record afterwards
(:func:`factorlab.analysis.time_to_target`, censored where never reached); per-task test
errors (%, threshold 0 on the logit), parameters and FLOPs; for the factorized runs the ranks
and the learned sharing of every layer at initialisation and after training
(:func:`factorlab.mtl.factorized.task_sharing`).

Budgets: ``smoke`` 256 training images, one epoch, one seed, decompositions at 50 %
relative error (near-full ranks at 10 % make the Tucker initialisation of FC 512 take a
minute). ``cpu``: sizes 1,000 and 5,000, seeds 0-2, 10 epochs at 1,000 and 4 at 5,000
(batch 100, Adam 1e-3), the per-epoch test curve on 1,000 test images and the final errors on
all 10,000: 42 runs. All 60,000 images are left to ``full`` (on one CPU core a single-task
epoch on them takes about ten CPU-minutes, so five methods x three seeds x enough epochs
exceed the machine's budget). Measured CPU time of the
runs at 1,000 images, seed 0 (one thread, on this 2-core machine while two other trainings
ran; ``single_long`` about twice the single-task time, ~2 CPU-minutes per run at 1,000 images, 6 runs,
added later: 42 runs in all): single-task 104 s, hard sharing 8 s, LAF 107 s, Tucker 150 s (76 s of it the
decomposition), TT 135 s, the deeper network 45 s (its rank search included). That is about
9 CPU-minutes per seed at 1,000 and about twice that at 5,000 (twice the training steps):
about 1.4 CPU-hours for the cpu grid run in one process (single-task networks kept), at most
about 2.4 when every DMTRL and deeper run retrains its single-task networks (a resumed grid). ``full``: 1,000, 5,000 and 60,000 images, 3 seeds, 30 epochs (a GPU).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from factorlab.data import load_mnist
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.mnist_baselines import preprocess
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.layers.task_tensor import factor_count, ranks_for_error
from factorlab.models import count_flops
from factorlab.models.mnist_multitask import (CONV1, CONV2, FLAT, HIDDEN, LAYER_NAMES, MNISTMultitask,
                                              build_mnist_multitask, dmtrl_from_single_task, task_factorized_layers)
from factorlab.mtl.factorized import task_sharing
from factorlab.results.hashing import config_hash
from factorlab.train import fit_classifier, resolve_device, seed_everything

NAME = "mnist_multitask"
#: The methods, in table order.
METHODS = ("single", "hard", "laf", "tucker", "tt", "deep", "single_long")
#: How many times the single-task networks' epochs ``single_long`` trains: a DMTRL network's
#: pretraining plus its own training.
LONG_FACTOR = 2
#: The task-factorized (DMTRL) methods.
FACTORIZED = ("laf", "tucker", "tt")
#: Ten one-vs-all tasks, one per digit.
NUM_TASKS = 10
#: DMTRL's relative reconstruction error of the initial decomposition.
REL_ERROR = 0.1
#: The factorized network whose parameter count ``deep`` matches, and its extra hidden layers.
DEEP_MATCH, DEEP_LAYERS = "tucker", 2
#: How the ten single-task networks are initialised (see :func:`build_single`).
SINGLE_INIT = "shared"
#: HOOI sweeps of a Tucker initialisation (each costs about a minute on FC 512's [10, 512, 1024]
#: on one CPU core; the truncated HOSVD it starts from already meets ``rel_error``).
TUCKER_ITERS = 1

BUDGETS: dict[str, dict] = {
    "smoke": {"sizes": [256], "n_test": 256, "n_test_epoch": 128, "seeds": [0], "epochs": {256: 1},
              "rel_error": 0.5},
    "cpu": {"sizes": [1000, 5000], "n_test": None, "n_test_epoch": 1000, "seeds": [0, 1, 2],
            "epochs": {1000: 10, 5000: 4}, "rel_error": REL_ERROR},
    "full": {"sizes": [1000, 5000, 60000], "n_test": None, "n_test_epoch": 10000, "seeds": [0, 1, 2],
             "epochs": {1000: 30, 5000: 30, 60000: 30}, "rel_error": REL_ERROR},
}
#: Optimisation shared by every method.
TRAINING = {"optimizer": "adam", "lr": 1e-3, "batch_size": 100, "weight_decay": 0.0}


@dataclass(kw_only=True)
class Config(RunConfig):
    """A run of ``mnist_multitask``: ``method`` (:data:`METHODS`) trained on the first
    ``n_train`` MNIST training images for ``epochs`` epochs (Adam, ``lr``, ``batch_size``),
    its test curve (per epoch) taken on the first ``n_test_epoch`` test images and its final
    per-task errors on the first ``n_test`` (None: all 10,000). ``rel_error`` is the initial
    decomposition's relative error (factorized methods and ``deep``; None otherwise),
    ``single_init`` how the single-task networks start (``"independent"``: each task its own
    random initialisation; ``"shared"``: every task the same one, task 0's; None for the
    methods that use none), ``tucker_iters`` the HOOI sweeps after the truncated HOSVD of a Tucker initialisation
    (whose error bound the HOSVD already meets; more sweeps only lower it); ``deep_match`` and
    ``deep_layers`` define ``deep`` (None otherwise)."""

    experiment: str
    profile: Profile
    method: Literal["single", "hard", "laf", "tucker", "tt", "deep", "single_long"]
    num_tasks: int
    n_train: int
    n_test: int | None
    n_test_epoch: int
    epochs: int
    optimizer: Literal["adam"]
    lr: float
    batch_size: int
    weight_decay: float
    seed: int
    single_init: Literal["independent", "shared"] | None
    rel_error: float | None
    tucker_iters: int | None
    deep_match: Literal["laf", "tucker", "tt"] | None
    deep_layers: int | None


def configs(profile: str) -> list[Config]:
    """Every run of ``profile``: per training-set size and seed, ``single`` first (the others
    start from it or match it), then the other methods in :data:`METHODS` order
    (``single_long`` last: added after the first 36 ``cpu`` runs, it extends the grid)."""
    budget = BUDGETS[check_profile(profile)]
    out = []
    for n in budget["sizes"]:
        for seed in budget["seeds"]:
            for method in METHODS:
                out.append(Config(experiment=NAME, profile=profile, method=method, num_tasks=NUM_TASKS, n_train=n,
                                  n_test=budget["n_test"], n_test_epoch=budget["n_test_epoch"],
                                  epochs=budget["epochs"][n] * (LONG_FACTOR if method == "single_long" else 1),
                                  **TRAINING, seed=seed,
                                  single_init=None if method == "hard" else SINGLE_INIT,
                                  rel_error=budget["rel_error"] if method in FACTORIZED + ("deep",) else None,
                                  tucker_iters=TUCKER_ITERS if method == "tucker" else None,
                                  deep_match=DEEP_MATCH if method == "deep" else None,
                                  deep_layers=DEEP_LAYERS if method == "deep" else None))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def single_task_config(cfg: dict) -> dict:
    """The ``single`` run whose trained networks initialise (or size) the run ``cfg``: the same
    data, training and seed."""
    if cfg["method"] == "single_long":
        raise ValueError("single_long starts from nothing: it has no single-task networks to start from")
    return {**cfg, "method": "single", "rel_error": None, "tucker_iters": None, "deep_match": None,
            "deep_layers": None}


class TwoClassLogits(nn.Module):
    """Wraps a multitask binary network (logits z [B, T]) as a T-position two-class classifier:
    logits [B, 2, T] = (0, z), so that cross-entropy against labels [B, T] in {0, 1} is each
    task's binary cross-entropy softplus(-z) / softplus(z), and argmax over dim 1 is z > 0."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return torch.stack([torch.zeros_like(z), z], dim=1)


def one_vs_all(y: torch.Tensor, num_tasks: int = NUM_TASKS) -> torch.Tensor:
    """Digit labels [N] -> int64 task labels [N, T]: column t is 1 where the digit is t."""
    return (y[:, None] == torch.arange(num_tasks, device=y.device)).long()


@torch.no_grad()
def task_errors(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> list[float]:
    """Per-task test error (%) of ``net`` (logits [B, T]) on stored images ``x`` and digit labels
    ``y`` [N]: the share of images whose one-vs-all answer (logit > 0) is wrong."""
    was = net.training
    net.eval()
    wrong = None
    for i in range(0, x.shape[0], batch_size):
        z = net(preprocess(x[i:i + batch_size]))
        w = ((z > 0).long() != one_vs_all(y[i:i + batch_size], z.shape[1])).sum(0)
        wrong = w if wrong is None else wrong + w
    net.train(was)
    return [100.0 * float(v) / x.shape[0] for v in wrong]


def deep_width(target_params: int, layers: int = DEEP_LAYERS, num_tasks: int = NUM_TASKS) -> int:
    """The width w of ``layers`` extra hidden FC layers (512 -> w -> ... -> w, then heads
    w -> T) whose hard-shared network's parameter count is nearest ``target_params`` (at least
    1)."""
    if layers < 1:
        raise ValueError(f"deep_layers must be >= 1, got {layers}")
    return min(range(1, 8193), key=lambda w: abs(deep_params(w, layers, num_tasks) - target_params))


def deep_params(width: int, layers: int = DEEP_LAYERS, num_tasks: int = NUM_TASKS) -> int:
    """Parameters of the hard-shared network with ``layers`` extra hidden layers of ``width``."""
    trunk = (CONV1[0] * CONV1[1] * CONV1[2] ** 2 + CONV1[1]) + (CONV2[0] * CONV2[1] * CONV2[2] ** 2 + CONV2[1]) \
        + (FLAT * HIDDEN + HIDDEN)
    extra = (HIDDEN * width + width) + (layers - 1) * (width * width + width)
    return trunk + extra + width * num_tasks + num_tasks


def build_single(single_init: str, num_tasks: int = NUM_TASKS) -> MNISTMultitask:
    """The freshly initialised single-task networks (global RNG): ``"independent"`` each task's
    layers initialised on their own (as ``nn.Conv2d`` / ``nn.Linear``), ``"shared"`` every task
    starting from task 0's weights and biases (still ten networks trained apart: no task sees
    another's data or gradient; their task-stacked weights then differ only by what training
    changed, which is what DMTRL's decomposition reads)."""
    if single_init not in ("independent", "shared"):
        raise ValueError(f"single_init must be 'independent' or 'shared', got {single_init!r}")
    net = build_mnist_multitask("single", num_tasks=num_tasks)
    if single_init == "shared":
        with torch.no_grad():
            for layer in net.layers():
                layer.weight.copy_(layer.weight[:1].expand_as(layer.weight))
                layer.bias.copy_(layer.bias[:1].expand_as(layer.bias))
    return net


def dmtrl_params(single: MNISTMultitask, method: str, rel_error: float) -> int:
    """Parameters of the DMTRL network :func:`~factorlab.models.mnist_multitask.dmtrl_from_single_task`
    would build from ``single`` at ``rel_error``, from the ranks its search picks
    (:func:`~factorlab.layers.task_tensor.ranks_for_error`) without decomposing: every layer's
    factors plus its T x out biases."""
    total = 0
    for layer in single.layers():
        w = layer.weight.detach().double()
        ranks = ranks_for_error(method, w, rel_error)
        total += factor_count(method, tuple(w.shape), ranks) + layer.bias.numel()
    return total


def build_deep(width: int, layers: int = DEEP_LAYERS, num_tasks: int = NUM_TASKS) -> MNISTMultitask:
    """The hard-shared network with ``layers`` extra hidden FC layers of ``width`` after FC 512
    (ReLU between), heads ``nn.Linear(width, T)``; freshly initialised."""
    hard = build_mnist_multitask("hard", num_tasks=num_tasks)
    mods: list[nn.Module] = [hard.fc1]
    d = HIDDEN
    for _ in range(layers):
        mods += [nn.ReLU(), nn.Linear(d, width)]
        d = width
    return MNISTMultitask("hard", num_tasks, hard.conv1, hard.conv2, nn.Sequential(*mods), nn.Linear(width, num_tasks))


#: The last single-task network trained in this process: (config hash, state dict, summary).
_SINGLE: dict[str, tuple[dict, dict]] = {}


def _fit(cfg: dict, net: nn.Module, data, dev) -> tuple[nn.Module, object]:
    """Train ``net`` as ``cfg`` says on ``data``; (net, FitResult)."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    k = cfg["n_test_epoch"]
    fit = fit_classifier(TwoClassLogits(net), opt, (data.train_x, one_vs_all(data.train_y, cfg["num_tasks"])),
                         (data.test_x[:k], one_vs_all(data.test_y[:k], cfg["num_tasks"])), epochs=cfg["epochs"],
                         batch_size=cfg["batch_size"], device=dev, seed=cfg["seed"], preprocess=preprocess)
    return net, fit


def pretrained_single(cfg: dict, data, dev) -> tuple[MNISTMultitask, dict]:
    """The trained single-task networks of ``cfg``'s size and seed (:func:`single_task_config`):
    kept from this process's ``single`` run, or trained now. Returns (network, {"pretrain_s",
    "pretrain_train_loss", "pretrain_reused"})."""
    scfg = single_task_config(cfg)
    key = config_hash(scfg)
    net = build_single(scfg["single_init"], cfg["num_tasks"])
    if key in _SINGLE:
        state, info = _SINGLE[key]
        net.load_state_dict(state)
        return net.to(dev), {**info, "pretrain_reused": True}
    seed_everything(scfg["seed"])
    net, fit = _fit(scfg, build_single(scfg["single_init"], cfg["num_tasks"]).to(dev), data, dev)
    info = _remember(scfg, net, fit)
    return net, {**info, "pretrain_reused": False}


def _remember(scfg: dict, net: nn.Module, fit) -> dict:
    """Keep ``net`` (the only one kept) as the trained single-task networks of ``scfg``."""
    info = {"pretrain_s": fit.timing["train_s"], "pretrain_train_loss": fit.metrics["train_loss"]}
    _SINGLE.clear()
    _SINGLE[config_hash(scfg)] = ({k: v.detach().clone() for k, v in net.state_dict().items()}, info)
    return info


def _layers_info(net: MNISTMultitask) -> list[dict]:
    """Per task-factorized layer: name, ranks, parameters, dense (task-stacked) parameters."""
    return [{"name": name, "rank": list(layer.rank), "params": layer.num_params(),
             "dense_params": layer.dense_params()} for name, layer in task_factorized_layers(net).items()]


def _sharing(net: MNISTMultitask) -> list[dict]:
    """:func:`factorlab.mtl.factorized.task_sharing` of ``net`` as dicts, named by layer."""
    names = {id(m): n for n, m in zip(LAYER_NAMES, net.layers())}
    out = []
    for s, layer in zip(task_sharing(net), task_factorized_layers(net).values()):
        d = s.as_dict()
        d.update(name=names[id(layer)], ranks=list(d["ranks"]), singular_values=list(d["singular_values"]))
        out.append(d)
    return out


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run; returns the parts of its run record (see the module docstring)."""
    dev = resolve_device(device)
    data = load_mnist(device=dev, n_train=cfg["n_train"], n_test=cfg["n_test"])
    extra: dict = {}
    model_info: dict = {}
    method = cfg["method"]
    if method == "deep":
        single, extra = pretrained_single(cfg, data, dev)
        match_params = dmtrl_params(single, cfg["deep_match"], cfg["rel_error"])
        width = deep_width(match_params, cfg["deep_layers"], cfg["num_tasks"])
        model_info.update(match_params=match_params, width=width)
        seed_everything(cfg["seed"])
        net = build_deep(width, cfg["deep_layers"], cfg["num_tasks"])
    elif method in FACTORIZED:
        single, extra = pretrained_single(cfg, data, dev)
        t0 = time.perf_counter()
        dmtrl = dmtrl_from_single_task(single.cpu().double(), method, rel_error=cfg["rel_error"],
                                       n_iter_max=cfg["tucker_iters"] or 100)
        extra["decompose_s"] = time.perf_counter() - t0
        with torch.no_grad():
            init_errors = [float((f.task_weights() - s.weight).norm() / s.weight.norm())
                           for f, s in zip(dmtrl.layers(), single.layers())]
        net = dmtrl.float()
        model_info.update(layers=_layers_info(net), init_rel_error=init_errors, sharing_init=_sharing(net))
        seed_everything(cfg["seed"])
    else:
        seed_everything(cfg["seed"])
        net = build_single(cfg["single_init"], cfg["num_tasks"]) if method in ("single", "single_long") else \
            build_mnist_multitask(method, num_tasks=cfg["num_tasks"])
    net, fit = _fit(cfg, net.to(dev), data, dev)
    if method == "single":
        _remember(single_task_config(cfg), net, fit)
    errors = task_errors(net, data.test_x, data.test_y)
    if method in FACTORIZED:
        model_info["sharing_final"] = _sharing(net)
    flops = count_flops(net, (1, 28, 28)) if method == "deep" else net.flops(1)
    metrics = {**fit.metrics, "task_error": errors, "mean_error": sum(errors) / len(errors)}
    return {"metrics": metrics, "history": fit.history, "timing": {**fit.timing, **extra},
            "model": {"params": net.num_params(), "flops_per_sample": flops, **model_info}}


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("method", "n_train", "seed"))

__all__ = ["BUDGETS", "Config", "EXPERIMENT", "FACTORIZED", "METHODS", "NAME", "REL_ERROR", "TwoClassLogits",
           "build_deep", "build_single", "configs", "deep_params", "deep_width", "grid", "one_vs_all", "pretrained_single",
           "single_task_config", "task_errors", "train"]
