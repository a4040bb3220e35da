"""One registry for everything that writes a run record: the experiments the chapters train and
the benchmarks whose measurements the chapters quote.

Each registered module ``factorlab.experiments.<name>`` defines

- ``Config``: its typed config (a :class:`~factorlab.experiments.config.RunConfig` dataclass,
  possibly shared with sibling experiments) whose ``to_dict()`` is the dict the store hashes;
- ``configs(profile) -> list[Config]``: the grid, built through ``Config``;
- ``grid(profile) -> list[dict]``: the same configs as dicts (what older callers use);
- ``train(config: dict, device: str) -> record parts`` (``metrics``, ``history``, ``timing``,
  ``model``);
- ``EXPERIMENT``: an :class:`Experiment` tying these together, with its ``kind``
  (``"experiment"`` or ``"benchmark"``) and the config keys of its progress label.

``python -m factorlab list`` shows every registered name, ``python -m factorlab run NAME``
runs any of them through the store (:func:`run_experiment`), and ``make reproduce`` replays
the benchmarks before the notebooks.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

from factorlab.experiments.config import RunConfig
from factorlab.experiments.profiles import check_profile

#: What a registered name produces: training runs, or measurements of speed.
KINDS = ("experiment", "benchmark")

#: Every registered name -> its module. Benchmarks keep the experiment names their records
#: have always had.
EXPERIMENTS: dict[str, str] = {name: f"factorlab.experiments.{name}" for name in (
    "mnist_baselines", "mnist_architecture", "mnist_factorized", "mnist_compression",
    "dft_validation",
    "qm9_dataset", "qm9_single_task", "qm9_hard_sharing", "qm9_soft_sharing", "qm9_relatedness", "qm9_weighting",
    "qm9_demo_model", "qm9_demo_full", "qm9_pairs", "qm9_grouping", "qm9_tensor_mtl",
    "cifar_baselines", "cifar_factorized", "cifar_long", "cifar_init", "cifar_fulldata",
    "mnist_multitask",
    # benchmarks (entry points in benchmarks/)
    "layers_benchmark", "qm9_loader_benchmark", "dft_threads_benchmark", "memory_format_benchmark",
    "cifar_anchor", "train_throughput", "qm9_demo_inference",
)}


class GridNeedsRecordsError(ValueError):
    """An experiment whose grid is chosen from other experiments' records (``qm9_grouping``)
    cannot build it yet: the message names the command that makes the missing records."""


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered record producer.

    Args:
        name: the experiment name (the ``experiment`` of every config, the store's folder).
        kind: ``"experiment"`` or ``"benchmark"``.
        config: the typed config class (:class:`RunConfig` subclass).
        make_grid: ``profile -> list[config]``, the grid in a fixed order.
        train_fn: ``(config dict, device) -> record parts``.
        label_keys: the config keys of :meth:`label`, in order.
        measures_on: for a benchmark whose config names the device it measures on, that
            config key (the run then executes there, whatever device was asked for).
    """

    name: str
    kind: str
    config: type[RunConfig]
    make_grid: Callable[[str], list[RunConfig]]
    train_fn: Callable[[dict, str], dict]
    label_keys: tuple[str, ...] = ()
    measures_on: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind of {self.name!r} must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def grid(self, profile: str) -> list[RunConfig]:
        """Every run config under ``profile`` (ValueError naming the profiles otherwise)."""
        configs = self.make_grid(check_profile(profile))
        for c in configs:
            if not isinstance(c, self.config) or c.experiment != self.name:
                raise TypeError(f"{self.name}'s grid returned {c!r}, not a {self.config.__name__} of {self.name!r}")
        return configs

    def from_dict(self, data: dict) -> RunConfig:
        """The typed config of the dict ``data`` (a record's ``config``); ValueError when it
        belongs to another experiment or does not fit :attr:`config`."""
        if not isinstance(data, dict) or data.get("experiment") != self.name:
            got = data.get("experiment") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a config of {self.name!r} (its experiment is {got!r})")
        return self.config.from_dict(data)

    def train(self, config: RunConfig | dict, device: str = "auto") -> dict:
        """Train (or measure) one config; the parts of its run record."""
        return self.train_fn(_as_dict(config), device)

    def label(self, config: RunConfig | dict) -> str:
        """A short progress label: ``key=value`` for each of :attr:`label_keys` the config has
        (not None)."""
        d = _as_dict(config)
        return " ".join(f"{k}={_short(d[k])}" for k in self.label_keys if d.get(k) is not None)

    def device_for(self, config: RunConfig | dict, device: str = "auto") -> str:
        """Where a run of ``config`` executes when ``device`` (``auto``, ``cpu``, ``cuda``) is
        asked for: that device, resolved (DeviceError where it is missing); for a benchmark
        that measures on the device its config names, that one (``auto`` defers to it; another
        device is a ValueError naming the profile to use instead)."""
        from factorlab.train import resolve_device

        if self.measures_on is None:
            return str(resolve_device(device))
        own = str(_as_dict(config)[self.measures_on])
        if str(device).strip().lower() != "auto" and resolve_device(device).type != own.split(":")[0]:
            profile = _as_dict(config).get("profile")
            raise ValueError(f"{self.name}'s {profile} profile measures on {own}, not {device}: on a GPU use "
                             "--profile full, on the CPU --profile cpu (or smoke)")
        return own


def _as_dict(config: RunConfig | dict) -> dict:
    return config.to_dict() if isinstance(config, RunConfig) else config


def _short(value: Any) -> str:
    """A config value for a label: lists of names joined, dicts as ``k:v`` pairs."""
    if isinstance(value, dict):
        return ",".join(f"{k}:{_short(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(_short(v) for v in value) if len(value) <= 4 else f"{len(value)} items"
    return str(value)


def check_name(name: str) -> str:
    """``name`` if registered, else a ValueError listing the valid names."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: choose one of {', '.join(sorted(EXPERIMENTS))}")
    return name


def get(name: str) -> Experiment:
    """The registered :class:`Experiment` ``name`` (ValueError listing the names otherwise)."""
    exp = importlib.import_module(EXPERIMENTS[check_name(name)]).EXPERIMENT
    if exp.name != name:
        raise RuntimeError(f"module {EXPERIMENTS[name]} registers {exp.name!r}, not {name!r}")
    return exp


def names(kind: str | None = None) -> list[str]:
    """The registered names (of ``kind`` when given), sorted."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
    return sorted(n for n in EXPERIMENTS if kind is None or get(n).kind == kind)


def select(configs: list[dict], where: dict[str, str] | None) -> list[dict]:
    """The configs whose value of every key in ``where`` prints as the given string (e.g.
    ``{"net": "mlp"}``); ValueError for a key no config has."""
    if not where:
        return configs
    for key in where:
        if not any(key in c for c in configs):
            keys = sorted({k for c in configs for k in c})
            raise ValueError(f"no config has the key {key!r}; keys are: {', '.join(keys)}")
    return [c for c in configs if all(str(c.get(k)) == v for k, v in where.items())]


def run_config(name: str, config: RunConfig | dict, device: str = "auto", store=None) -> dict:
    """The record of one config of experiment ``name``: from the store, or trained (measured)
    now and written. Use it for a config off the grid (e.g. a benchmark's command-line
    options); ``device`` as in :func:`run_experiment`."""
    from factorlab.results import RunStore

    exp = get(name)
    cfg = exp.from_dict(_as_dict(config)).to_dict()
    store = store if store is not None else RunStore()
    dev = exp.device_for(cfg, device)
    return store.run(cfg, lambda c: _train_here(exp, c, dev), device=dev)


def _train_here(exp: Experiment, cfg: dict, device: str) -> dict:
    """``exp.train(cfg, device)`` in this process, which becomes a training process: the C
    allocator is set first (once per process; a notebook's kernel, a benchmark's ``--record``;
    :func:`factorlab.train.allocator.retain_freed_memory`)."""
    from factorlab.train.allocator import retain_freed_memory

    retain_freed_memory()
    return exp.train(cfg, device)


def run_experiment(name: str, profile: str, device: str = "auto", store=None, log=None,
                   where: dict[str, str] | None = None) -> list[dict]:
    """Every run of registered ``name`` (an experiment or a benchmark) under ``profile``
    (restricted by ``where``, see :func:`select`), from the store or trained now, in grid order.

    ``device`` (``auto``, ``cpu``, ``cuda``) is where training runs; a benchmark whose config
    names its device measures there instead (its profile chose it). ``log(i, n, config,
    cached)`` is called before each run when given.
    """
    from factorlab.results import RunStore
    from factorlab.train import resolve_device

    exp = get(name)
    configs = select([c.to_dict() for c in exp.grid(profile)], where)
    store = store if store is not None else RunStore()
    if exp.measures_on is None:
        device = str(resolve_device(device))  # fail before the first run on a device this machine lacks
    records = []
    for i, cfg in enumerate(configs):
        if log is not None:
            log(i, len(configs), cfg, store.get(cfg) is not None)
        dev = exp.device_for(cfg, device)
        records.append(store.run(cfg, lambda c: _train_here(exp, c, dev), device=dev))
    return records


def record_run(name: str, config: RunConfig | dict, device: str = "auto", store=None, say=print) -> dict:
    """:func:`run_config`, then ``say`` where the record is and whether it was stored before
    (a benchmark script's ``--record``: the stored measurement stands until its file is
    deleted)."""
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    cfg = _as_dict(config)
    cached = store.get(cfg) is not None
    rec = run_config(name, cfg, device, store)
    path = store.path(cfg)
    say(f"stored record (measured earlier; delete it to measure again): {path}" if cached else f"recorded: {path}")
    return rec
