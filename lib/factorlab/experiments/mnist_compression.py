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

The first convolution (one input channel) and the linear classifier are left dense.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch

from factorlab.data import load_mnist
from factorlab.experiments.mnist_baselines import NETS as BASE_NETS
from factorlab.experiments.mnist_baselines import VARIANTS, MnistConfig, make_optimizer, preprocess
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.layers import reconstruction_error
from factorlab.layers.replace import factorize_model, get_module
from factorlab.models import build_mnist_model, count_flops, count_params
from factorlab.train import evaluate, fit_classifier, resolve_device, seed_everything, time_inference

NAME = "mnist_compression"
LAYER = "features.3"

BUDGETS: dict[str, dict] = {
    "smoke": {"n_train": 512, "n_test": 256, "seeds": [0], "epochs": 1, "finetune_epochs": 1,
              "ranks": {"cp": [4], "tucker": [8]}, "timing_batch": 64, "repeats": 3},
    "cpu": {"n_train": None, "n_test": None, "seeds": [0], "epochs": 3, "finetune_epochs": 1,
            "ranks": {"cp": [4, 8, 16, 32, 64], "tucker": [4, 8, 16, 32]}, "timing_batch": 1000, "repeats": 15},
    "full": {"n_train": None, "n_test": None, "seeds": [0, 1, 2], "epochs": 20, "finetune_epochs": 2,
             "ranks": {"cp": [2, 4, 8, 16, 32, 64], "tucker": [2, 4, 8, 16, 24, 32]}, "timing_batch": 1000,
             "repeats": 30},
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


def configs(profile: str) -> list[Config]:
    """One config per seed (every method and rank is evaluated inside the run)."""
    budget = BUDGETS[check_profile(profile)]
    base = {**BASE_NETS["conv2"], **VARIANTS["conv2"]["l2"]}
    return [Config(experiment=NAME, profile=profile, net="conv2", **copy.deepcopy(base), layer=LAYER,
                   epochs=budget["epochs"], n_train=budget["n_train"], n_test=budget["n_test"],
                   seed=seed, ranks=copy.deepcopy(budget["ranks"]), finetune_epochs=budget["finetune_epochs"],
                   finetune_lr=1e-4, timing_batch=budget["timing_batch"], timing_repeats=budget["repeats"],
                   target_loss=None)
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
    for row, small in zip(rows, decomposed):
        row["dense_layer_s"] = time_inference(dense_layer, layer_x, **timing_kw)
        row["layer_s"] = time_inference(get_module(small, cfg["layer"]), layer_x, **timing_kw)
        row["dense_net_s"] = time_inference(model, images, **timing_kw)
        row["net_s"] = time_inference(small, images, **timing_kw)

    return {
        "metrics": {"baseline_acc": fit.metrics["test_acc"], "results": rows, "dense_layer": dense},
        "history": fit.history,
        "timing": {**fit.timing, "timing_batch": cfg["timing_batch"]},
        "model": {"params": dense["net_params"], "flops_per_sample": dense["net_flops_per_sample"]},
    }


def dense_layer_wrapper(layer: torch.nn.Module) -> torch.nn.Module:
    """``layer`` inside a Sequential, so :func:`count_flops` can run it on its own input shape."""
    return torch.nn.Sequential(layer)


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("net", "seed"))
