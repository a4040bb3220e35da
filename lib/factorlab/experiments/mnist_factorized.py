"""Experiment ``mnist_factorized``: the MNIST baselines with factorized layers, trained from
scratch, over a range of compression ratios, against width-scaled dense networks.

- ``mlp`` (784-512-512-10, the journal's SGD settings): the two hidden ``nn.Linear`` layers
  (``net.1``: 784->512, ``net.4``: 512->512) become low-rank, CP (2 modes per side),
  Tucker (2 modes) or TT (3 modes) layers at compression ``c`` each; the 512->10 output stays
  dense. Dense reference: the same MLP with hidden width 256 ... 16.
- ``conv2`` (two 3x3 convs of 32 filters with pooling, Adam 1e-3 with L2 5e-4, the
  ``l2`` variant of the baselines): the second convolution (``features.3``, 32->32) becomes
  separable (with a low-rank pointwise when the budget needs it), low-rank, CP, Tucker-2 or
  TT. Dense reference: the same net with 16, 8 or 4 filters.

Every run also watches the training loss for ``target_loss`` (the same target for every
variant of a net), recording the training time and epochs to reach it: the journal claimed a
tensor-factorized network "took 100 times as long to reach the same loss".

A (family, compression) pair whose budget is below the family's rank-1 size is left out of
the grid (e.g. low-rank 784->512 at 256x).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch

from factorlab.experiments.mnist_baselines import NETS as BASE_NETS
from factorlab.experiments.mnist_baselines import VARIANTS, MnistConfig, fit_config, record_parts
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.layers import FactorizedLayer
from factorlab.layers.replace import factorize_model, get_module
from factorlab.models import build_mnist_model

NAME = "mnist_factorized"

#: Per net: base training settings, the layers factorized, the families (with their fixed
#: keyword arguments), the width knob of the dense reference and the training-loss target.
NETS: dict[str, dict] = {
    "mlp": {
        "base": BASE_NETS["mlp"],
        "layers": ["net.1", "net.4"],
        "families": {"lowrank": {}, "cp": {"d": 2}, "tucker": {"d": 2}, "tt": {"d": 3}},
        "width_key": "hidden", "full_width": 512, "target_loss": 0.3,
    },
    "conv2": {
        "base": {**BASE_NETS["conv2"], **VARIANTS["conv2"]["l2"]},
        "layers": ["features.3"],
        "families": {"separable": {}, "lowrank": {}, "cp": {}, "tucker": {}, "tt": {"d": 2}},
        "width_key": "filters", "full_width": 32, "target_loss": 0.3,
    },
}

BUDGETS: dict[str, dict] = {
    "smoke": {"n_train": 512, "n_test": 256, "seeds": [0],
              "epochs": {"mlp": 1, "conv2": 1},
              "compression": {"mlp": [16], "conv2": [4]},
              "widths": {"mlp": [64], "conv2": [8]}},
    "cpu": {"n_train": None, "n_test": None, "seeds": [0, 1, 2],
            "epochs": {"mlp": 10, "conv2": 6},
            "compression": {"mlp": [4, 16, 64, 256], "conv2": [3, 10]},
            "widths": {"mlp": [256, 128, 64, 32, 16], "conv2": [16, 8, 4]}},
    "full": {"n_train": None, "n_test": None, "seeds": [0, 1, 2],
             "epochs": {"mlp": 20, "conv2": 20},
             "compression": {"mlp": [4, 16, 64, 256, 1024], "conv2": [2, 4, 8, 16, 32]},
             "widths": {"mlp": [256, 128, 64, 32, 16, 8], "conv2": [16, 8, 4, 2]}},
}


def build_model(cfg: dict) -> torch.nn.Module:
    """The (possibly factorized) network of ``cfg``, freshly initialised with the global RNG."""
    net = NETS[cfg["net"]]
    kwargs = copy.deepcopy(cfg["model_kwargs"])
    if cfg["family"] == "dense":
        kwargs[net["width_key"]] = [cfg["width"]] * 2 if net["width_key"] == "hidden" else cfg["width"]
        return build_mnist_model(cfg["model"], **kwargs)
    model = build_mnist_model(cfg["model"], **kwargs)
    return factorize_model(model, cfg["layers"], cfg["family"], compression=cfg["compression"],
                           **cfg["family_kwargs"])


@dataclass(kw_only=True)
class Config(MnistConfig):
    """A run of ``mnist_factorized``: the net of :data:`NETS` either dense (``family="dense"``,
    at hidden width or filters ``width``) or with ``layers`` factorized as ``family`` at
    ``compression`` (``family_kwargs`` its fixed arguments)."""

    net: Literal["mlp", "conv2"]
    family: Literal["dense", "lowrank", "cp", "tucker", "tt", "separable"]
    family_kwargs: dict[str, Any]
    compression: int | None
    width: int | None
    layers: list[str]


def _feasible(cfg: dict) -> bool:
    try:
        build_model(cfg)
    except ValueError as err:
        if "even rank 1 needs" in str(err):
            return False
        raise
    return True


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per net, the full-width dense baseline, the dense
    width references, then every feasible (family, compression), for each seed."""
    budget = BUDGETS[check_profile(profile)]
    out = []
    for net_name, net in NETS.items():
        variants = [("dense", {}, None, net["full_width"])]
        variants += [("dense", {}, None, w) for w in budget["widths"][net_name]]
        variants += [(fam, kw, c, None) for fam, kw in net["families"].items() for c in budget["compression"][net_name]]
        for family, fam_kwargs, compression, width in variants:
            for seed in budget["seeds"]:
                cfg = Config(experiment=NAME, profile=profile, net=net_name, **copy.deepcopy(net["base"]),
                             family=family, family_kwargs=dict(fam_kwargs), compression=compression,
                             width=width, layers=list(net["layers"]) if family != "dense" else [],
                             epochs=budget["epochs"][net_name], n_train=budget["n_train"],
                             n_test=budget["n_test"], seed=seed, target_loss=net["target_loss"])
                if family == "dense" or _feasible(cfg.to_dict()):
                    out.append(cfg)
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def describe_layers(model: torch.nn.Module, names: list[str]) -> list[dict]:
    """Type, rank, parameters and dense-equivalent parameters of the named layers."""
    out = []
    for name in names:
        layer = get_module(model, name)
        if isinstance(layer, FactorizedLayer):
            rank = layer.rank
            out.append({"name": name, "type": type(layer).__name__,
                        "rank": list(rank) if isinstance(rank, tuple) else rank,
                        "params": layer.num_params(), "dense_params": layer.dense_params()})
    return out


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run; returns the parts of a run record."""
    model, fit = fit_config(cfg, build_model, device)
    return record_parts(model, fit, factorized_layers=describe_layers(model, cfg["layers"]))


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train,
                        label_keys=("net", "family", "compression", "width", "seed"))
