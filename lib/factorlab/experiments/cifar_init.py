"""Experiment ``cifar_init``: the dense airbench net without its identity (Dirac)
initialisation, at the widths where the CIFAR chapter compares it with the factorized nets.

The chapter's factorized convolutions start from their layers' own random initialisation,
while airbench's dense 3x3 convolutions start with identity filters on their first
``in_channels`` outputs (an implicit residual). This measures how much of the dense nets'
accuracy that initialisation buys: the same configs as ``cifar_baselines`` (same recipe,
data and seeds) with ``"dirac": False``, at the width the factorized variants are cut from
and at the thin widths whose parameter counts bracket theirs. If the dense net without the
identity start falls to the factorized nets' accuracy, the gap between them is mostly the
initialisation; if not, it is not.

Profiles (see :mod:`factorlab.experiments.cifar_common`):

- ``smoke``: the fixture, width 1/8, one epoch (1 run, seconds).
- ``cpu``: widths 1/16, 3/32 and 1/4 (the ``cifar_factorized`` cpu width), 3 seeds (9 runs;
  about 2 minutes on this project's two-core machine).
- ``full``: widths 1/16, 1/8 and 1 (the ``cifar_factorized`` full width), 3 seeds (9 runs;
  estimated at about a minute of one H100).
"""
from __future__ import annotations

from factorlab.experiments.cifar_common import CifarConfig, cifar_config, recipe_for, train_config
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "cifar_init"

#: Per profile: widths of the dense airbench net without Dirac initialisation, seeds.
BUDGETS: dict[str, dict] = {
    "smoke": {"widths": [0.125], "seeds": [0]},
    "cpu": {"widths": [0.0625, 0.09375, 0.25], "seeds": [0, 1, 2]},
    "full": {"widths": [0.0625, 0.125, 1.0], "seeds": [0, 1, 2]},
}


def configs(profile: str) -> list[CifarConfig]:
    """Every run config under ``profile``: per width, each seed."""
    b = BUDGETS[check_profile(profile)]
    recipe = recipe_for("airbench", profile)
    return [cifar_config(NAME, profile, net="airbench", width=w, factorize=None, recipe=recipe, seed=seed, dirac=False)
            for w in b["widths"] for seed in b["seeds"]]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one run; returns the parts of a run record."""
    return train_config(cfg, device)


EXPERIMENT = Experiment(NAME, "experiment", CifarConfig, configs, train, label_keys=("net", "width", "factorize", "wd_mode", "seed"))
