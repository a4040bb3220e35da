"""Experiment grids: each module defines ``NAME``, ``grid(profile) -> list[config]`` and
``train(config, device) -> record parts``. Notebooks and ``python -m factorlab run`` both use
these definitions, so nothing about an experiment lives only inside a notebook."""
from __future__ import annotations

import importlib
from types import ModuleType

from factorlab.experiments.profiles import PROFILES, check_profile

#: Registered experiments: name -> module path.
EXPERIMENTS = {
    "mnist_baselines": "factorlab.experiments.mnist_baselines",
    "mnist_factorized": "factorlab.experiments.mnist_factorized",
    "mnist_compression": "factorlab.experiments.mnist_compression",
    "dft_validation": "factorlab.experiments.dft_validation",
    "qm9_dataset": "factorlab.experiments.qm9_dataset",
    "qm9_single_task": "factorlab.experiments.qm9_single_task",
    "qm9_hard_sharing": "factorlab.experiments.qm9_hard_sharing",
    "qm9_demo_model": "factorlab.experiments.qm9_demo_model",
    "cifar_baselines": "factorlab.experiments.cifar_baselines",
    "cifar_factorized": "factorlab.experiments.cifar_factorized",
    "cifar_long": "factorlab.experiments.cifar_long",
    "cifar_init": "factorlab.experiments.cifar_init",
}


def get_experiment(name: str) -> ModuleType:
    """The module defining experiment ``name``; ValueError listing the valid names otherwise."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: choose one of {', '.join(sorted(EXPERIMENTS))}")
    return importlib.import_module(EXPERIMENTS[name])


def select(configs: list[dict], where: dict[str, str] | None) -> list[dict]:
    """The configs whose value of every key in ``where`` prints as the given string (e.g.
    ``{"net": "mlp"}``); ValueError for a key no config has."""
    if not where:
        return configs
    for key in where:
        if not any(key in c for c in configs):
            raise ValueError(f"no config has the key {key!r}; keys are: {', '.join(sorted(configs[0]))}")
    return [c for c in configs if all(str(c.get(k)) == v for k, v in where.items())]


def run_experiment(name: str, profile: str, device: str = "auto", store=None, log=None,
                   where: dict[str, str] | None = None) -> list[dict]:
    """Every run of experiment ``name`` under ``profile`` (restricted by ``where``, see
    :func:`select`), from the store or trained now.

    ``log(i, n, config, cached)`` is called before each run when given. Returns the records in
    grid order.
    """
    from factorlab.results import RunStore
    from factorlab.train import resolve_device

    exp = get_experiment(name)
    configs = select(exp.grid(check_profile(profile)), where)
    store = store or RunStore()
    dev = str(resolve_device(device))
    records = []
    for i, cfg in enumerate(configs):
        if log is not None:
            log(i, len(configs), cfg, store.get(cfg) is not None)
        records.append(store.run(cfg, lambda c: exp.train(c, dev), device=dev))
    return records


__all__ = ["EXPERIMENTS", "PROFILES", "check_profile", "get_experiment", "run_experiment", "select"]
