"""Benchmark ``qm9_demo_inference``: the inference time of the saved demo networks of
``qm9_demo_model`` (single-task, hard-shared, grouped), all loaded into one process and timed
there, with repeats interleaved across the networks so that drift in the machine's speed hits
them alike. The entry point is ``benchmarks/qm9_demo_inference.py`` (prints the table); the
record comes from ``run_experiment("qm9_demo_inference", profile)`` like any run.

The training records of ``qm9_demo_model`` time each network right after its own training
(``timing.inference``); this times the same saved files again, together, so that the chapter
"DFT or network?" can compare them on a quiet machine. The config names the networks by their
``qm9_demo_model`` run keys (:func:`demo_keys`: the networks of ``qm9_demo_model``'s grid under
the same profile, the grouped one included once that grid has it); a network whose record or
weights file is missing is a LookupError naming the command that trains it.

Profiles (:data:`BUDGETS`, :data:`PROFILE_DEVICE`): ``smoke`` the smoke networks (300-molecule
fixture), 3 repeats, on the CPU (seconds); ``cpu`` the committed ``cpu`` networks of
``data/models/``, the whole test split (10,831 molecules), 3 repeats on one CPU thread (about
3 minutes on a quiet machine, estimated from the training records' times: a repeat passes the
test split three times through each network); ``full`` the ``full`` networks on a CUDA GPU.

What is timed is :func:`factorlab.experiments.qm9_demo_model.inference_timing`, the function
that timed the training records, once per network and repeat (each call warms up first): the
median seconds of one molecule whose graph is ready (over 64 test molecules), seconds per
molecule over the whole test split at each batch size of
:data:`~factorlab.experiments.qm9_demo_model.BATCH_SIZES`, and seconds per molecule to build the
graphs of 200 test SMILES with RDKit. Each is reported as its median over the repeats
(``batched_s``: the best batch size's median), with every repeat's value kept (``samples``),
and each network's ratio to the single-task network (``"none"``) measured in the same process.
Torch runs on the config's ``threads`` (1, as in the training records).
"""
from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from typing import Literal

import torch

from factorlab.experiments import qm9_demo_model as demo
from factorlab.experiments.benchmark_cli import BenchmarkCommand, one_run_grid
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.train.device import resolve_device

NAME = "qm9_demo_inference"
#: Repeats per profile: each times every network once, in turn.
BUDGETS = {"smoke": {"repeats": 3}, "cpu": {"repeats": 3}, "full": {"repeats": 5}}
#: The device each profile measures on.
PROFILE_DEVICE = {"smoke": "cpu", "cpu": "cpu", "full": "cuda"}
#: Torch CPU threads while measuring (the training records' inference times used one).
THREADS = 1
#: The network every other is compared with.
REFERENCE = "none"
#: Timings per network that have a ratio to :data:`REFERENCE` (seconds per molecule).
RATIO_KEYS = ("single_s", "batched_s")


@dataclass(kw_only=True)
class Config(RunConfig):
    """One benchmark run: the ``qm9_demo_model`` networks ``networks`` (sharing -> run key;
    ``"none"`` required, the reference of the ratios) timed ``repeats`` times each at
    ``batch_sizes`` on ``device`` with ``threads`` torch CPU threads."""

    experiment: str
    profile: Profile
    device: Literal["cpu", "cuda"]
    networks: dict[str, str]
    repeats: int
    threads: int
    batch_sizes: list[int]

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.networks) - set(demo.SHARING))
        if unknown:
            raise ValueError(f"unknown qm9_demo_model sharing {unknown}: choose among {', '.join(demo.SHARING)}")
        if REFERENCE not in self.networks:
            raise ValueError(f"networks must include the single-task network {REFERENCE!r} (the ratios' reference), "
                             f"got {sorted(self.networks)}")
        bad = [k for k in self.networks.values() if not re.fullmatch(r"[0-9a-f]{16}", k)]
        if bad:
            raise ValueError(f"networks must map to qm9_demo_model run keys (16 hex digits), got {bad}")
        if self.repeats < 1 or self.threads < 1:
            raise ValueError(f"repeats and threads must be at least 1, got {self.repeats} and {self.threads}")
        if list(self.batch_sizes) != list(demo.BATCH_SIZES):
            raise ValueError(f"batch_sizes are those of qm9_demo_model.inference_timing, {list(demo.BATCH_SIZES)}; "
                             f"got {self.batch_sizes}")


def demo_keys(profile: str) -> dict[str, str]:
    """Sharing -> run key of each seed-0 network of ``qm9_demo_model``'s grid under ``profile``
    (the networks the demonstration loads; the grouped one only once that grid can choose it, :func:`qm9_demo_model.configs
    <factorlab.experiments.qm9_demo_model.configs>`), in :data:`~factorlab.experiments.qm9_demo_model.SHARING` order."""
    from factorlab.results import config_hash

    return {c.sharing: config_hash(c.to_dict()) for c in demo.configs(profile) if c.seed == 0}  # the loaded networks


def make_config(profile: str, device: str | torch.device | None = None) -> Config:
    """The config of ``profile`` on ``device``'s kind (default: the profile's,
    :data:`PROFILE_DEVICE`), naming the networks of :func:`demo_keys`."""
    budget = BUDGETS[check_profile(profile)]
    device = PROFILE_DEVICE[profile] if device is None else torch.device(device).type
    return Config(experiment=NAME, profile=profile, device=device, networks=demo_keys(profile),
                  repeats=budget["repeats"], threads=THREADS, batch_sizes=list(demo.BATCH_SIZES))


#: ``config(profile, device)``, ``configs(profile)`` (one run, on the profile's device) and ``grid(profile)``.
config, configs, grid = one_run_grid(make_config)


def train_command(profile: str, sharings: list[str]) -> str:
    """The command that trains the ``qm9_demo_model`` networks ``sharings`` of ``profile`` (all
    of its grid when they are all of it; the grouped one of ``cpu``/``full`` after the grouping
    grid it is chosen from)."""
    first = (f"`python -m factorlab run qm9_grouping --profile {profile}` (its best grouping), then "
             if "grouped" in sharings and profile != "smoke" else "")
    where = f" --where sharing={sharings[0]}" if len(sharings) == 1 else ""
    return f"{first}`python -m factorlab run {demo.NAME} --profile {profile}{where}`"


def demo_records(cfg: dict, store=None) -> dict[str, dict]:
    """Sharing -> the ``qm9_demo_model`` record of each network ``cfg`` names, checked to have
    its weights file.

    Raises:
        LookupError: records or weights are missing (one line naming the networks, their keys
            and the command that trains them).
    """
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    by_key = {r["key"]: r for r in store.records(demo.NAME)}
    no_record = [s for s, k in cfg["networks"].items() if k not in by_key]
    no_weights = [s for s, k in cfg["networks"].items()
                  if k in by_key and not demo.weights_path(by_key[k]["config"]).is_file()]
    missing = no_record + no_weights
    if missing:
        what = ", ".join(f"{s} ({cfg['networks'][s]})" for s in missing)
        reasons = [f"no record in {store.root / demo.NAME}"] if no_record else []
        if no_weights:
            reasons.append(f"no weights file in {demo.weights_path(by_key[cfg['networks'][no_weights[0]]]['config']).parent}")
        raise LookupError(f"{NAME} ({cfg['profile']}) times the {demo.NAME} networks {what}, with "
                          f"{' and '.join(reasons)}: train them with {train_command(cfg['profile'], missing)}")
    return {s: by_key[cfg["networks"][s]] for s in demo.SHARING if s in cfg["networks"]}


def _medians(samples: list[dict]) -> dict:
    """The repeats of one network (each an :func:`~factorlab.experiments.qm9_demo_model.inference_timing`
    dict) as one such dict of medians (``batched_s``/``batch_size``: the batch size of the
    smallest median), with the repeats' values under ``samples``."""
    sizes = list(samples[0]["batched_by_size_s"])
    by_size = {s: statistics.median(x["batched_by_size_s"][s] for x in samples) for s in sizes}
    best = min(by_size, key=by_size.get)
    first = samples[0]
    return {"single_s": statistics.median(x["single_s"] for x in samples), "single_n": first["single_n"],
            "batched_s": by_size[best], "batch_size": int(best), "batched_by_size_s": by_size,
            "batched_n": first["batched_n"], "featurize_s": statistics.median(x["featurize_s"] for x in samples),
            "featurize_n": first["featurize_n"], "threads": first["threads"], "device": first["device"],
            "samples": {"single_s": [x["single_s"] for x in samples],
                        "batched_by_size_s": {s: [x["batched_by_size_s"][s] for x in samples] for s in sizes},
                        "featurize_s": [x["featurize_s"] for x in samples]}}


def ratios(inference: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Each network's :data:`RATIO_KEYS` divided by the single-task network's (:data:`REFERENCE`)."""
    ref = inference[REFERENCE]
    return {s: {k: inf[k] / ref[k] for k in RATIO_KEYS} for s, inf in inference.items()}


def run(cfg: dict, device: torch.device, store=None, log=print) -> dict:
    """Load every network ``cfg`` names (SHA-256 checked) and time them, repeats interleaved
    (repeat ``r`` starts at the ``r``-th network, in turn); the parts of a run record (seconds
    per molecule)."""
    from factorlab.data.qm9 import load_qm9
    from factorlab.models.qm9_saved import load_qm9_predictor

    recs = demo_records(cfg, store)
    data_of = {(r["config"]["data"], r["config"]["n_test"]) for r in recs.values()}
    if len(data_of) != 1:
        raise ValueError(f"the networks {cfg['networks']} were tested on different data {sorted(map(str, data_of))}")
    ((data_name, n_test),) = data_of
    predictors = {s: load_qm9_predictor(demo.weights_path(r["config"]), device, sha256=r["model"]["weights"]["sha256"])
                  for s, r in recs.items()}
    data = load_qm9(device, fixture=data_name == "fixture")
    test = data.split["test"] if n_test is None else data.split["test"][:n_test]
    smiles = [data.smiles[r] for r in test[:min(200, test.numel())].tolist()]
    order = [s for s in demo.SHARING if s in cfg["networks"]]
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg["threads"])
    samples: dict[str, list[dict]] = {s: [] for s in order}
    try:
        used_threads = torch.get_num_threads()
        for rep in range(cfg["repeats"]):
            for s in order[rep % len(order):] + order[:rep % len(order)]:
                samples[s].append(demo.inference_timing(predictors[s], data, test, smiles))
                x = samples[s][-1]
                log(f"  repeat {rep}: {s:8s} single {1e3 * x['single_s']:8.3f} ms  batched "
                    f"{1e6 * x['batched_s']:9.1f} us (batch {x['batch_size']})")
    finally:
        torch.set_num_threads(threads)
    inference = {s: _medians(samples[s]) for s in order}
    nets = {s: {"key": recs[s]["key"], "sha256": recs[s]["model"]["weights"]["sha256"],
                "members": len(predictors[s].members), "targets": len(predictors[s].targets),
                "params": sum(p.numel() for p in predictors[s].model.parameters())} for s in order}
    return {"metrics": {"inference": inference, "ratio_to_none": ratios(inference), "repeats": cfg["repeats"],
                        "n_test": int(test.numel()), "threads": used_threads},
            "timing": {"threads": used_threads}, "model": {"networks": nets}}


def matching_records(networks: dict[str, str], store=None) -> list[dict]:
    """The stored records of this benchmark that timed every network of ``networks`` (sharing
    -> ``qm9_demo_model`` run key) under that key, oldest first. Never measures."""
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    out = [r for r in store.records(NAME)
           if all(r["config"]["networks"].get(s) == k for s, k in networks.items())]
    return sorted(out, key=lambda r: r.get("provenance", {}).get("started", ""))


def train(cfg: dict, device: str = "auto") -> dict:
    """Measure ``cfg`` on the device it names (``device`` is not used: the profile chose it)."""
    Config.from_dict(cfg)
    return run(cfg, resolve_device(cfg["device"]))


def report(metrics: dict, cfg: dict | None = None) -> str:
    """The printed table: per network the median ms for one molecule, µs per molecule at the
    best batch size and ms to featurize, each time with its ratio to the single-task network."""
    inf, rat = metrics["inference"], metrics["ratio_to_none"]
    head = f"{len(inf)} networks, {metrics['n_test']:,} test molecules, {metrics['repeats']} repeats, " \
           f"{metrics['threads']} thread(s); ratios to the single-task network ({REFERENCE!r}), same process"
    lines = [head, f"{'network':8s} {'key':16s} {'single ms':>9s} {'x none':>7s} {'batched us':>10s} {'batch':>5s} "
                   f"{'x none':>7s} {'featurize ms':>12s}"]
    for s in sorted(inf, key=demo.SHARING.index):
        x = inf[s]
        key = cfg["networks"][s] if cfg else ""
        lines.append(f"{s:8s} {key:16s} {1e3 * x['single_s']:9.3f} {rat[s]['single_s']:7.2f} "
                     f"{1e6 * x['batched_s']:10.1f} {x['batch_size']:5d} {rat[s]['batched_s']:7.2f} "
                     f"{1e3 * x['featurize_s']:12.3f}")
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "benchmark", Config, configs, train, label_keys=("device", "repeats"),
                        measures_on="device")

#: ``benchmarks/qm9_demo_inference.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`).
COMMAND = BenchmarkCommand(
    make_config=lambda profile, device, args: make_config(profile, device),
    header=lambda cfg, device: (f"device {device}, torch {torch.__version__}, {cfg.threads} thread(s), "
                                f"profile {cfg.profile}, {demo.NAME} networks "
                                + ", ".join(f"{s}={k}" for s, k in cfg.networks.items())),
    measure=lambda cfg, device: run(cfg.to_dict(), torch.device(device)),
    table=lambda rec, cfg: report(rec["metrics"], cfg.to_dict()),
    quick="the smoke networks of qm9_demo_model (smoke test; train them first)",
    devices=("auto", "cpu", "cuda"),
    errors=(ValueError, LookupError),
)
