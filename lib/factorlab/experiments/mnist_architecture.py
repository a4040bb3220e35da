"""Experiment ``mnist_architecture``: the architecture details the thesis journal leaves
unstated for its convolutional MNIST baselines, each trained as a variant of the net the
chapter "MNIST baselines" chose (:mod:`factorlab.experiments.mnist_baselines`).

Every run uses the journal's training settings, the ``journal`` variant of
``mnist_baselines`` unchanged (Adam with its ``weight_decay`` 0.1 as a coupled L2 term, the
same learning rate, batch size, normalisation, data, epochs and last-epoch evaluation), and
changes one architecture detail, ``arch`` (:data:`ARCHS`):

- ``conv1`` / ``pool``: 2x2 max-pooling after the convolution, before the dense 100 layer
  (the chapter's net has none; the journal states none);
- ``conv2`` / ``kernel5``: 5x5 kernels instead of 3x3 in both convolutions;
- ``conv2`` / ``dense100``: a hidden dense layer of 100 units (ReLU) before the output;
- ``conv2`` / ``kernel5_dense100``: both conv2 changes together.

A config's ``model_kwargs`` hold the whole architecture, so its key pins it. Seeds pair the
runs with the ``journal`` runs of ``mnist_baselines`` of the same net and profile (same seed,
same batch order); the profiles are those of ``mnist_baselines`` (:data:`BUDGETS`, shared):
``smoke`` 512 training and 256 test images, 1 epoch, seed 0 (4 runs); ``cpu`` all the data,
30 epochs, seeds 0-2 (12 runs); ``full`` the same with seeds 0-4 (20 runs).

Cost: a 30-epoch conv2 run of ``mnist_baselines`` (journal settings) took about 25-35 minutes
on one thread of this 2-core machine beside other trainings, conv1 about the same order. Per
training step the variants cost about as much as their base net on the CPU (conv1 with
pooling about three quarters of conv1: its dense layer shrinks fourfold; the conv2 variants
within the noise of conv2, 5x5 kernels at most about 1.3 times), so a run takes about 20-40
minutes: the ``cpu`` grid is about 12 x 0.5 = 6 CPU-hours (4-8), ``full`` about 10 (meant for
a GPU). Run it with::

    python -m factorlab run mnist_architecture --profile cpu

(``--executor processes`` runs two at a time for throughput; the chapter reports no time of
these runs).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from factorlab.experiments.mnist_baselines import BUDGETS, NETS, VARIANTS, MnistConfig, train
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "mnist_architecture"

#: The training settings of every run: this variant of ``mnist_baselines``.
VARIANT = "journal"

#: Per net, architecture variant -> the :func:`~factorlab.models.build_mnist_model` keyword
#: arguments it changes from the net's in :data:`~factorlab.experiments.mnist_baselines.NETS`.
ARCHS: dict[str, dict[str, dict]] = {
    "conv1": {"pool": {"pool": True}},
    "conv2": {"kernel5": {"kernel": 5}, "dense100": {"hidden": 100}, "kernel5_dense100": {"kernel": 5, "hidden": 100}},
}


@dataclass(kw_only=True)
class Config(MnistConfig):
    """A run of ``mnist_architecture``: a net of ``mnist_baselines`` with the settings of its
    ``variant`` and the architecture change ``arch`` of :data:`ARCHS` (in ``model_kwargs``)."""

    variant: Literal["journal"]
    arch: Literal["pool", "kernel5", "dense100", "kernel5_dense100"]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch not in ARCHS.get(self.net, {}):
            raise ValueError(f"mnist_architecture.Config: arch {self.arch!r} is not a variant of {self.net!r}; "
                             f"its variants are {sorted(ARCHS.get(self.net, {}))}")


def configs(profile: str) -> list[Config]:
    """Every run config of this experiment under ``profile``, in a fixed order (net, arch,
    seed)."""
    budget = BUDGETS[check_profile(profile)]
    out = []
    for net, archs in ARCHS.items():
        base = {**copy.deepcopy(NETS[net]), **VARIANTS[net][VARIANT]}
        for arch, changes in archs.items():
            for seed in budget["seeds"]:
                out.append(Config(experiment=NAME, profile=profile, net=net, variant=VARIANT, arch=arch,
                                  **{**base, "model_kwargs": {**base["model_kwargs"], **changes}},
                                  epochs=budget["epochs"][net], n_train=budget["n_train"],
                                  n_test=budget["n_test"], seed=seed, target_loss=None))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


# ``train`` is mnist_baselines' (build the net of the config's model_kwargs, train it as the
# config says): imported above, so that both experiments train exactly alike.

EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("net", "arch", "seed"))

__all__ = ["ARCHS", "Config", "EXPERIMENT", "NAME", "VARIANT", "configs", "grid", "train"]
