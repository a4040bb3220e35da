"""Experiment ``mnist_compression``: compress a *trained* network by decomposing its layers.

One run per seed: train the two-convolution MNIST baseline (``conv2``, the ``l2`` variant:
Adam 1e-3 with L2 5e-4, batch 1000), then for each method (CP after Lebedev et al. 2015,
Tucker-2 after Kim et al. 2016) and rank, replace its second convolution (``features.3``,
32->32, 3x3) by ``from_dense`` of the trained one and record

- test accuracy straight after the decomposition, and after a short fine-tune of the whole
  network (``finetune_epochs`` at ``finetune_lr``);
- the layer's relative reconstruction error, parameters and FLOPs;
- measured inference time (eval mode, no autograd, median of repeats, warm-up excluded) of the
  layer alone on its real input [batch, 32, 14, 14] and of the whole network on a test batch,
  beside the FLOP-predicted speedup; timed after all training, each variant right after the
  dense original (``dense_layer_s``, ``dense_net_s`` in its row), in the same process.

Training, evaluation and fine-tuning always run the decomposition's own factored sequence of
small convolutions (``force_path = "factored"``), so accuracies do not depend on the machine.
What the timing phase times depends on the config's ``path_timing``:

- False (records made before the layers chose their computation path): the factored path
  alone, ``layer_s`` and ``net_s`` (seconds).
- True: per variant, the layer's *own* choice, measured (``layer.autotune = True``: every
  candidate path of :mod:`factorlab.layers.paths` timed once in inference, the fastest kept;
  in eval mode the rebuilt or merged weights are cached), ``layer_s`` / ``net_s``, and which
  path that was (``layer_path``; ``path_choices``: :meth:`path_choices` of the layer with the
  candidates' measured seconds); then the factored path forced again, ``layer_factored_s`` /
  ``net_factored_s``. So ``layer_s`` and ``net_s`` change meaning here: the chosen path, which
  is the factored one only where it was the fastest. Beside the times, the roofline
  predictions at the timing input shape (inference: one forward pass, prepared weights cached,
  call overheads left out): ``dense_roofline_s`` and ``dense_bound`` of the dense layer,
  ``roofline_s`` / ``bound`` of the chosen path, ``factored_roofline_s`` / ``factored_bound``
  and ``paths_roofline_s`` (every candidate), from the machine's peak FLOP rate (a large GEMM)
  and bandwidth (a large copy) measured once per run in the same process just before the
  timings (:func:`factorlab.experiments.layers_benchmark.measure_machine`; stored in the
  record's ``metrics.machine``).

The first convolution (one input channel) and the linear classifier are left dense.

Producing the path-timed ``cpu`` records (issue 19): set :data:`CPU_PATH_TIMING` to True
(the ``cpu`` grid becomes seeds 0, 1, 2 with ``path_timing``), commit, and on a quiet machine
(nothing else training; the run's time is reported) run::

    OMP_NUM_THREADS=1 .venv/bin/python -m factorlab run mnist_compression --profile cpu

CPU cost: the committed seed-0 record (factored timing only) took 781 s of wall time on two
threads of a loaded machine: 145 s training conv2 for 3 epochs, 346 s for the 9 one-epoch
fine-tunes (26-68 s each), 12 s of evaluation and about 210 s of timing. Path timing adds two
timed calls per variant (the forced factored layer and network: about 120 s), the candidates'
measurement (seconds per variant) and the machine's roofline (seconds): about 15-20 minutes per
seed on one thread, 45-60 minutes for the three seeds (an estimate, not yet measured on a
quiet single thread).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from factorlab.data import load_mnist
from factorlab.experiments.layers_benchmark import dense_ops, measure_machine
from factorlab.experiments.mnist_baselines import NETS as BASE_NETS
from factorlab.experiments.mnist_baselines import VARIANTS, MnistConfig, make_optimizer, preprocess
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.layers import reconstruction_error
from factorlab.layers.paths import Machine, Op
from factorlab.layers.replace import factorize_model, get_module
from factorlab.models import build_mnist_model, count_flops, count_params
from factorlab.train import evaluate, fit_classifier, resolve_device, seed_everything, time_inference

NAME = "mnist_compression"
LAYER = "features.3"

#: Whether the registered ``cpu`` grid is the path-timed one: seeds 0, 1, 2 with
#: ``path_timing`` (the layer's measured path choice, the forced factored path and the
#: roofline). False until those records exist, because the committed chapter replays the
#: one-seed record timed with the factored path alone; flipping it is the one-line switch (see
#: the module docstring for the command and its CPU cost).
CPU_PATH_TIMING = True

BUDGETS: dict[str, dict] = {
    "smoke": {"n_train": 512, "n_test": 256, "seeds": [0], "epochs": 1, "finetune_epochs": 1,
              "ranks": {"cp": [4], "tucker": [8]}, "timing_batch": 64, "repeats": 3, "path_timing": True},
    # path-timed: 3 seeds (about 15-20 min each on one quiet thread); until then the 1-seed record
    "cpu": {"n_train": None, "n_test": None, "seeds": [0, 1, 2] if CPU_PATH_TIMING else [0], "epochs": 3,
            "finetune_epochs": 1, "ranks": {"cp": [4, 8, 16, 32, 64], "tucker": [4, 8, 16, 32]},
            "timing_batch": 1000, "repeats": 15, "path_timing": CPU_PATH_TIMING},
    "full": {"n_train": None, "n_test": None, "seeds": [0, 1, 2], "epochs": 20, "finetune_epochs": 2,
             "ranks": {"cp": [2, 4, 8, 16, 32, 64], "tucker": [2, 4, 8, 16, 24, 32]}, "timing_batch": 1000,
             "repeats": 30, "path_timing": True},
}


@dataclass(kw_only=True)
class Config(MnistConfig):
    """A run of ``mnist_compression``: train ``conv2``, then decompose ``layer`` with each
    method at each of its ``ranks``, fine-tune, and time (see the module docstring)."""

    net: Literal["conv2"]
    layer: str
    ranks: dict[str, list[int]]
    finetune_epochs: int
    finetune_lr: float
    timing_batch: int
    timing_repeats: int
    #: Time the layer's own measured path choice and the forced factored path, with the
    #: roofline (True); or the factored path alone (False, records made before; see the module
    #: docstring). A key of the config only when True.
    path_timing: bool = False
    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("path_timing",)


def configs(profile: str) -> list[Config]:
    """One config per seed (every method and rank is evaluated inside the run)."""
    budget = BUDGETS[check_profile(profile)]
    base = {**BASE_NETS["conv2"], **VARIANTS["conv2"]["l2"]}
    return [Config(experiment=NAME, profile=profile, net="conv2", **copy.deepcopy(base), layer=LAYER,
                   epochs=budget["epochs"], n_train=budget["n_train"], n_test=budget["n_test"],
                   seed=seed, ranks=copy.deepcopy(budget["ranks"]), finetune_epochs=budget["finetune_epochs"],
                   finetune_lr=1e-4, timing_batch=budget["timing_batch"], timing_repeats=budget["repeats"],
                   target_loss=None, path_timing=budget["path_timing"])
            for seed in budget["seeds"]]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def _layer_input(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input the factorized layer sees for images ``x``: output of features[:3]."""
    with torch.no_grad():
        return model.features[:3](x)


def train(cfg: dict, device: str = "auto") -> dict:
    """Train the baseline, decompose, fine-tune and time; returns the parts of a run record."""
    dev = resolve_device(device)
    data = load_mnist(device=dev, n_train=cfg["n_train"], n_test=cfg["n_test"])
    test = (data.test_x, data.test_y)
    seed_everything(cfg["seed"])
    model = build_mnist_model(cfg["model"], **cfg["model_kwargs"]).to(dev)
    fit = fit_classifier(model, make_optimizer(cfg, model.parameters()), (data.train_x, data.train_y), test,
                         epochs=cfg["epochs"], batch_size=cfg["batch_size"], device=dev, seed=cfg["seed"],
                         preprocess=preprocess)
    images = preprocess(data.test_x[: cfg["timing_batch"]])
    layer_x = _layer_input(model, images)
    dense_layer = get_module(model, cfg["layer"])
    timing_kw = {"repeats": cfg["timing_repeats"], "warmup": 3}
    dense = {"params": sum(p.numel() for p in dense_layer.parameters()),
             "flops": count_flops(dense_layer_wrapper(dense_layer), tuple(layer_x.shape[1:])),
             "net_params": count_params(model), "net_flops_per_sample": count_flops(model, (1, 28, 28))}

    rows, decomposed = [], []
    for method, ranks in cfg["ranks"].items():
        for rank in ranks:
            small = factorize_model(copy.deepcopy(model), [cfg["layer"]], method, from_dense=True, rank=rank)
            layer = get_module(small, cfg["layer"])
            layer.force_path = "factored"  # time the decomposition itself, not a rebuilt weight
            row = {"method": method, "rank": rank if isinstance(rank, int) else list(rank),
                   "rel_error": reconstruction_error(layer, dense_layer),
                   "params": layer.num_params(), "flops": layer.flops(tuple(layer_x.shape)) // layer_x.shape[0],
                   "net_params": count_params(small), "net_flops_per_sample": count_flops(small, (1, 28, 28))}
            _, row["acc_decomposed"] = evaluate(small, *test, preprocess=preprocess, device=dev)
            decomposed.append(copy.deepcopy(small))  # timed at the end, beside the dense original
            seed_everything(cfg["seed"])
            tuned = fit_classifier(small, torch.optim.Adam(small.parameters(), lr=cfg["finetune_lr"]),
                                   (data.train_x, data.train_y), test, epochs=cfg["finetune_epochs"],
                                   batch_size=cfg["batch_size"], device=dev, seed=cfg["seed"] + 1000,
                                   preprocess=preprocess)
            row["acc_finetuned"] = tuned.metrics["test_acc"]
            row["finetune_s"] = tuned.timing["train_s"]
            rows.append(row)

    # Timing, after all training: each variant right after the dense original (paired), so
    # that drift or a busy machine affects both sides of every ratio alike.
    metrics = {"baseline_acc": fit.metrics["test_acc"], "results": rows, "dense_layer": dense}
    if cfg.get("path_timing", False):
        metrics["machine"] = time_paths(rows, decomposed, model, cfg["layer"], layer_x, images, dev,
                                        quick=cfg["profile"] == "smoke", **timing_kw)
    else:
        for row, small in zip(rows, decomposed):
            row["dense_layer_s"] = time_inference(dense_layer, layer_x, **timing_kw)
            row["layer_s"] = time_inference(get_module(small, cfg["layer"]), layer_x, **timing_kw)
            row["dense_net_s"] = time_inference(model, images, **timing_kw)
            row["net_s"] = time_inference(small, images, **timing_kw)

    return {
        "metrics": metrics,
        "history": fit.history,
        "timing": {**fit.timing, "timing_batch": cfg["timing_batch"]},
        "model": {"params": dense["net_params"], "flops_per_sample": dense["net_flops_per_sample"]},
    }


def inference_roofline(machine: Machine, ops: tuple[Op, ...]) -> dict:
    """Roofline of one inference forward pass made of the kernel calls ``ops``: ``flops``,
    ``bytes`` moved, ``roofline_s`` (the sum over calls of max(FLOPs / peak, bytes /
    bandwidth), call overheads left out) and ``bound`` ("memory" or "compute")."""
    return {"flops": sum(o.flops for o in ops), "bytes": machine.itemsize * sum(o.elements for o in ops),
            "roofline_s": machine.time(ops, overhead=False),
            "bound": "memory" if machine.memory_bound(ops) else "compute"}


def inference_ops(candidate, input_shape: tuple[int, ...]) -> tuple[Op, ...]:
    """The kernel calls of ``candidate`` in inference on a contiguous input of ``input_shape``
    [B, C, H, W]: its ``ops`` (the prepared part is cached in eval mode, so free), plus one copy
    of the input into the path's memory format where it computes in another one (as the cost
    model counts it)."""
    extra = (Op("copy", 0, 2 * math.prod(input_shape)),) if candidate.memory_format != torch.contiguous_format else ()
    return tuple(candidate.ops) + extra


def eval_path(layer: torch.nn.Module, input_shape: tuple[int, ...]) -> str:
    """The path ``layer`` runs in inference (eval mode, no autograd) on a contiguous input of
    ``input_shape``: its cached choice (measured when it was made under autotune)."""
    was_training = layer.training
    layer.eval()
    try:
        return layer.path_for(input_shape, grad=False)
    finally:
        layer.train(was_training)


def time_paths(rows: list[dict], decomposed: list[torch.nn.Module], model: torch.nn.Module, name: str,
               layer_x: torch.Tensor, images: torch.Tensor, device: torch.device, quick: bool, **timing_kw) -> dict:
    """The path-timed timing phase (``path_timing``; see the module docstring): adds to each
    row (one per network of ``decomposed``, whose layer ``name`` replaced the one of the dense
    ``model``) the inference seconds of the dense layer and network, of the layer's measured
    choice (``layer_s``, ``net_s``, ``layer_path``, ``path_choices``) and of the forced factored
    path (``layer_factored_s``, ``net_factored_s``), each variant right after the dense
    original, and the roofline predictions at ``layer_x``'s shape [B, C, H, W] (``*_roofline_s``,
    ``*_bound``, ``paths_roofline_s``). Returns the machine measured for them (peak FLOP/s,
    bandwidth in bytes/s, ..., and the GEMM and copy sizes; ``quick``: the smoke sizes)."""
    machine, sizes = measure_machine(device, quick)
    dense_layer = get_module(model, name)
    shape = tuple(layer_x.shape)
    dense_roof = inference_roofline(machine, dense_ops({"kind": "conv", "hw": shape[-1]}, dense_layer, shape[0]))
    for row, small in zip(rows, decomposed):
        layer = get_module(small, name)
        layer.force_path, layer.autotune = None, True
        layer.clear_path_cache()
        row["dense_layer_s"] = time_inference(dense_layer, layer_x, **timing_kw)
        row["layer_s"] = time_inference(layer, layer_x, **timing_kw)  # the first warm-up call measures the paths
        row["layer_path"] = path = eval_path(layer, shape)
        layer.force_path = "factored"
        row["layer_factored_s"] = time_inference(layer, layer_x, **timing_kw)
        layer.force_path = None
        row["dense_net_s"] = time_inference(model, images, **timing_kw)
        row["net_s"] = time_inference(small, images, **timing_kw)  # the layer's cached choice
        layer.force_path = "factored"
        row["net_factored_s"] = time_inference(small, images, **timing_kw)
        layer.force_path = None
        row["path_choices"] = layer.path_choices()
        roof = {n: inference_roofline(machine, inference_ops(c, shape)) for n, c in layer.candidates(shape).items()}
        row.update(dense_roofline_s=dense_roof["roofline_s"], dense_bound=dense_roof["bound"],
                   roofline_s=roof[path]["roofline_s"], bound=roof[path]["bound"],
                   factored_roofline_s=roof["factored"]["roofline_s"], factored_bound=roof["factored"]["bound"],
                   paths_roofline_s={n: r["roofline_s"] for n, r in roof.items()})
    return {**machine.to_dict(), **sizes}


def dense_layer_wrapper(layer: torch.nn.Module) -> torch.nn.Module:
    """``layer`` inside a Sequential, so :func:`count_flops` can run it on its own input shape."""
    return torch.nn.Sequential(layer)


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("net", "seed"))
