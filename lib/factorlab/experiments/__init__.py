"""Everything that writes a run record, experiments and benchmarks, registered one way
(:mod:`factorlab.experiments.registry`): a typed config per experiment
(:mod:`factorlab.experiments.config`) whose ``to_dict()`` is the dict the run store hashes, a
grid per profile, a ``train`` (or measure) function and a progress label. Notebooks,
``python -m factorlab run`` and the benchmark scripts all use these definitions, so nothing
about a run lives only inside a notebook or a script.

    run_experiment("cifar_baselines", "cpu")        # the records of a grid (trains what is missing)
    run_experiment("layers_benchmark", "cpu")[0]    # a benchmark's record, the same way
    get("mnist_baselines").grid("smoke")            # typed configs
"""
from __future__ import annotations

import importlib
from types import ModuleType

from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import PROFILES, check_profile
from factorlab.experiments.registry import (EXPERIMENTS, KINDS, Experiment, check_name, get, names, run_config,
                                            run_experiment, select)


def get_experiment(name: str) -> ModuleType:
    """The module defining registered ``name`` (its ``grid(profile)`` gives config dicts, its
    ``train(config, device)`` record parts); ValueError listing the valid names otherwise."""
    return importlib.import_module(EXPERIMENTS[check_name(name)])


__all__ = ["EXPERIMENTS", "KINDS", "PROFILES", "Experiment", "Profile", "RunConfig", "check_profile", "get",
           "get_experiment", "names", "run_config", "run_experiment", "select"]
