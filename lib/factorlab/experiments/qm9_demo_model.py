"""Experiment ``qm9_demo_model``: the networks the demonstration ("DFT or network?") loads.

Three kinds of GINE network for all 19 targets, trained with the QM9 chapters' budget of each
profile (:data:`~factorlab.experiments.qm9_common.BUDGETS`), each with the seeds of
:data:`SEEDS` (seed 0 is the network the demonstration loads; the others give the spread):

- ``sharing="none"``: 19 single-task models trained together as one grouped stack, the best
  kind in the QM9 chapters (hard sharing was worse on most targets there);
- ``sharing="hard"``: one shared encoder with 19 heads, the multitask network (19 times fewer
  encoder parameters, one forward pass);
- ``sharing="grouped"``: the networks of the best grouping of the chapter "Grouping tasks"
  (:func:`best_grouping`: the lowest mean Δm over seeds among the measured partitions of the
  11 benchmark targets into fewer networks than targets), one hard-shared network per group
  (the config's ``groups``), and a single-task network for each of the 8 targets the grouping
  does not cover (the demo predicts all 19; those 8 are trained exactly as in ``"none"``).
  Its members differ in size, so each size trains as one stack (:func:`train_members` needs
  equal members) and the trained members are kept together as one
  :class:`~factorlab.models.stack.ModelStack`, which is what loading rebuilds.

The grouped network's entry depends on the store, as ``qm9_grouping``'s grid does: under
``cpu``/``full`` it is in the grid once :func:`best_grouping` can choose (every ``qm9_pairs``
run, its ``qm9_single_task`` reference and a partition with records in every seed), and
left out before (:func:`grouped_config` then raises
:class:`~factorlab.experiments.registry.GridNeedsRecordsError` naming the commands to run), so
the two other networks, the chapter and the claims that read this grid do not wait for the
grouping grid; ``smoke`` falls back to :data:`SMOKE_GROUPS` (qm9_grouping's smoke partition)
while its records are missing, so CI always trains all three.

Unlike the chapters' runs, these keep their weights (seed 0's; the other seeds' records say
``weights: None``): :func:`train` writes ``<models dir>/qm9_demo_model/<key>.pt`` (:mod:`factorlab.models.qm9_saved`; the ``cpu`` files,
~3 MB and ~0.3 MB, are committed in ``data/models/``) and the record states its SHA-256. The
record also holds what the chapter needs, so the notebook never runs the network:

- ``metrics.test_mae`` etc. as in the QM9 chapters (whole test split);
- ``metrics.sample``: the network's predictions for every molecule of
  :data:`factorlab.experiments.dft_validation.SAMPLE` in the loaded data, with the split the
  molecule belongs to (``train`` = seen in training, ``valid`` = used to pick the epoch,
  ``test``; ``train_unused`` / ``valid_unused`` = in that split but beyond this budget's
  ``n_train`` / ``n_valid``, never used);
- ``timing.inference``: seconds per molecule on the training device, for one molecule at a
  time (median over single-molecule calls) and in batches (the whole test split at each of
  :data:`BATCH_SIZES`; the best is ``batched_s``), and for building graphs from SMILES with
  RDKit (the step a new molecule adds).

Several processes: with ``FACTORLAB_STACK_PROCESSES=P`` (:data:`PROCESSES_ENV`, an execution
setting like the thread count, not part of the config), a network of several equal members
(``"none"``) trains as ``P`` sub-stacks in ``P`` worker processes at once, each with
``threads // P`` torch threads (at least one), and is stacked again afterwards
(:func:`_train_parallel`). A member trains bit for bit as it would in one stack
(``tests/unit/test_stack_invariance.py``), so the weights and errors are the same; only the
clock differs: ``timing.train_s`` is then the wall time of the slowest process and
``timing.process_train_s`` each process's own. Workers keep no epoch checkpoints (a stopped run
starts over). The 19-member stack on all of QM9's training split (``qm9_demo_full``), about
three CPU-hours, fits one session's background time this way on a two-core machine.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import (ALL_TARGETS, BUDGETS, QM9Config, base_config, join_member_metrics,
                                               train_members)
from factorlab.experiments.registry import Experiment, GridNeedsRecordsError

NAME = "qm9_demo_model"
#: Sharing modes, in the order of the grid; the CLI's default is the first.
SHARING = ("none", "hard", "grouped")
#: Seeds per profile. Seed 0 is the network the demonstration loads (the only one whose weights
#: are saved); the others measure how much the test errors depend on the seed.
SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}
#: The grouped network's groups under ``smoke`` while the smoke grouping records are missing:
#: ``qm9_grouping.SMOKE_PARTITIONS`` over the smoke tasks of ``qm9_pairs`` (all three in one).
SMOKE_GROUPS = [["mu", "alpha", "homo"]]


@dataclass(kw_only=True)
class Config(QM9Config):
    """A demo network: ``sharing`` as in the module docstring; ``groups`` (``"grouped"`` only)
    the best grouping's networks, each a list of targets (NASH11 targets, disjoint), every
    other target of ``targets`` a single-task network. ``groups`` is left out of the hashed
    dict while None, so the two older networks keep their keys."""

    sharing: Literal["none", "hard", "grouped"]
    groups: list[list[str]] | None = None
    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("groups",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sharing != "grouped":
            if self.groups is not None:
                raise ValueError(f"groups are for sharing='grouped' only, got sharing={self.sharing!r}")
            return
        if not self.groups or any(not g for g in self.groups):
            raise ValueError("sharing='grouped' needs groups: a non-empty list of non-empty lists of targets")
        flat = [t for g in self.groups for t in g]
        if len(flat) != len(set(flat)) or not set(flat) <= set(self.targets):
            raise ValueError(f"the groups must be disjoint and within the config's targets, got {self.groups}")


def grouped_members(groups: list[list[str]], targets: list[str]) -> list[list[str]]:
    """The members of the grouped network: each group of ``groups``, and a singleton for every
    target of ``targets`` in no group, ordered by their first target's place in ``targets``."""
    covered = {t for g in groups for t in g}
    members = [list(g) for g in groups] + [[t] for t in targets if t not in covered]
    return sorted(members, key=lambda m: targets.index(m[0]))


def _network_errors(profile: str, store) -> dict[int, dict[tuple[str, ...], dict[str, float]]]:
    """Per seed: each recorded network's test MAE per member, by its targets: the singletons
    (``qm9_single_task``, :func:`~factorlab.experiments.qm9_pairs.reference_errors`), the pairs
    (``qm9_pairs``), the groups (``qm9_grouping``) and the group of all 11
    (:func:`~factorlab.experiments.qm9_grouping.whole_set_configs`). Never trains."""
    from factorlab.experiments import qm9_grouping, qm9_pairs

    out: dict[int, dict[tuple[str, ...], dict[str, float]]] = {}
    for seed, (pair, single) in qm9_pairs.pair_errors(profile, store, "test").items():
        nets = out.setdefault(seed, {})
        nets.update({(t,): {t: mae} for t, mae in single.items()})
        nets.update(pair)
    configs = [c.to_dict() for c in qm9_grouping.configs(profile)] + qm9_grouping.whole_set_configs(profile)
    for cfg in configs:
        rec = store.get(cfg)
        if rec is not None and cfg["seed"] in out:
            out[cfg["seed"]][tuple(cfg["targets"])] = {t: rec["metrics"]["test_mae"][t] for t in cfg["targets"]}
    return out


def best_grouping(profile: str, store=None) -> dict:
    """The best grouping of ``qm9_grouping`` under ``profile``: among the distinct partitions
    its sources chose (:func:`~factorlab.experiments.qm9_grouping.chosen_partitions`) into
    fewer networks than tasks whose every network has a test record in every seed of
    ``qm9_pairs.SEEDS``, the one with the lowest mean Δm (%, against ``qm9_single_task`` of the
    same seed, :func:`~factorlab.mtl.grouping.grouping_delta_m`), ties broken by the worst seed,
    then by (k, groups): the choice of the grouping chapter's aim
    (:func:`factorlab.report.qm9_grouping.aim_verdict`'s ``best``). Returns ``groups`` (lists
    of target names), ``k``, ``delta_m`` (mean), ``worst`` (the worst seed's Δm), ``seeds``,
    ``sources`` (the ``(source, search)`` pairs that chose it). Never trains.

    Raises:
        GridNeedsRecordsError: the partitions cannot be chosen yet, or no candidate has
            records in every seed (the message names the commands to run).
    """
    import numpy as np

    from factorlab.experiments import qm9_grouping, qm9_pairs
    from factorlab.mtl.grouping import grouping_delta_m
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    chosen = qm9_grouping.chosen_partitions(profile, store)
    tasks = qm9_grouping.tasks(profile)
    seeds = qm9_pairs.SEEDS[profile]
    errors = _network_errors(profile, store)
    found: dict[tuple[tuple[str, ...], ...], dict] = {}
    for (source, search, k), part in chosen.items():
        groups = tuple(tuple(g) for g in part.names(tasks))
        if k >= len(tasks):
            continue
        if groups in found:
            found[groups]["sources"].append((source, search))
            continue
        if not all(s in errors and all(g in errors[s] for g in groups) for s in seeds):
            continue
        dm = [grouping_delta_m({g: errors[s][g] for g in groups}, {t: errors[s][(t,)][t] for t in tasks}, tasks)
              for s in seeds]
        found[groups] = {"groups": [list(g) for g in groups], "k": len(groups), "delta_m": float(np.mean(dm)),
                         "worst": float(max(dm)), "seeds": list(seeds), "sources": [(source, search)]}
    if not found:
        raise GridNeedsRecordsError(
            f"{NAME} ({profile}): no grouping of qm9_grouping into fewer than {len(tasks)} networks has records in "
            f"every seed yet: run `python -m factorlab run qm9_grouping --profile {profile}` first")
    def order(c: dict) -> tuple:  # the report's groups text breaks the last ties
        return c["delta_m"], c["worst"], c["k"], " | ".join(",".join(g) for g in c["groups"])

    return min(found.values(), key=order)


def grouped_config(profile: str, store=None, seed: int = 0) -> QM9Config:
    """The grouped network's config under ``profile`` and ``seed``: the groups of
    :func:`best_grouping`; ``smoke`` falls back to :data:`SMOKE_GROUPS` while its records are
    missing.

    Raises:
        GridNeedsRecordsError: ``cpu``/``full`` before the grouping records exist (names the
            commands to run).
    """
    try:
        groups = best_grouping(profile, store)["groups"]
    except GridNeedsRecordsError as err:
        if profile != "smoke":
            raise GridNeedsRecordsError(f"{NAME}'s grouped network ({profile}) is the best grouping's, whose "
                                        f"records are missing: {err}; then `python -m factorlab run qm9_grouping "
                                        f"--profile {profile}`") from None
        groups = [list(g) for g in SMOKE_GROUPS]
    budget = BUDGETS[profile]
    return Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing="grouped", groups=groups,
                  targets=list(ALL_TARGETS), seed=seed)
#: Profiles a saved network is taken from, best first (``smoke`` only as a last resort).
PROFILE_PREFERENCE = ("full", "cpu", "smoke")
#: Batch sizes whose inference time per molecule is measured (the best is reported).
BATCH_SIZES = (64, 256, 1024)


def configs(profile: str) -> list[QM9Config]:
    """The networks under ``profile`` (all 19 targets, each seed of :data:`SEEDS`): single-task
    and hard-shared, seed by seed, then the grouped one per seed when :func:`grouped_config`
    can choose it (always under ``smoke``)."""
    budget = BUDGETS[check_profile(profile)]
    out = [Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing=sharing,
                  targets=list(ALL_TARGETS), seed=seed)
           for seed in SEEDS[profile] for sharing in SHARING if sharing != "grouped"]
    try:
        out.extend(grouped_config(profile, seed=seed) for seed in SEEDS[profile])
    except GridNeedsRecordsError:  # the grouping records are missing: the grouped network waits for them
        pass
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def members_of(cfg: dict) -> list[list[str]]:
    """Targets per member: one per target (``sharing="none"``), all in one (``"hard"``), or
    the groups and a singleton per other target (``"grouped"``, :func:`grouped_members`)."""
    if cfg["sharing"] == "none":
        return [[t] for t in cfg["targets"]]
    if cfg["sharing"] == "hard":
        return [list(cfg["targets"])]
    if cfg["sharing"] == "grouped":
        return grouped_members(cfg["groups"], list(cfg["targets"]))
    raise ValueError(f"unknown sharing {cfg['sharing']!r}: choose one of {', '.join(SHARING)}")


def weights_path(cfg: dict):
    """Where the weights of run ``cfg`` are saved (whether or not they exist): the folder of
    its experiment (``qm9_demo_model``, or ``qm9_demo_full`` whose runs train through
    :func:`train`), the file its key."""
    from factorlab.paths import models_dir
    from factorlab.results import config_hash

    return models_dir() / cfg.get("experiment", NAME) / f"{config_hash(cfg)}.pt"


def split_names(full_split: dict, used: dict[str, int]) -> dict[int, str]:
    """Row -> split name for every row of the full ``{"train", "valid", "test"}`` split, with
    ``<name>_unused`` for the rows beyond the first ``used[name]`` that a run used."""
    return {int(r): name if k < used[name] else f"{name}_unused"
            for name in ("train", "valid", "test") for k, r in enumerate(full_split[name].tolist())}


def inference_timing(predictor, data, test_ids: torch.Tensor, smiles: list[str]) -> dict:
    """Seconds per molecule of ``predictor`` (a :class:`~factorlab.models.qm9_saved.QM9Predictor`
    on ``data``'s device): ``single_s``, the median over single-molecule calls on the first 64
    of ``test_ids`` (after 8 untimed); ``batched_by_size_s``, the whole of ``test_ids`` in
    batches of each of :data:`BATCH_SIZES` (after one untimed batch of that size), the best
    being ``batched_s`` at ``batch_size``; ``featurize_s``, building the graphs of ``smiles``
    with RDKit on the CPU. The record's ``timing.inference``; the benchmark
    ``qm9_demo_inference`` calls it again on the saved networks."""
    from factorlab.data.qm9 import graphs_for_prediction
    from factorlab.train.device import synchronize

    dev = data.device
    singles = test_ids[:min(64, test_ids.numel())]
    for r in singles[:8]:  # warm-up
        predictor.predict_batch(data.batch(r.view(1)))
    samples = []
    for r in singles:
        synchronize(dev)
        t0 = time.perf_counter()
        predictor.predict_batch(data.batch(r.view(1)))
        synchronize(dev)
        samples.append(time.perf_counter() - t0)
    batched = {}
    for size in BATCH_SIZES:
        predictor.predict(data, test_ids[:size], batch_size=size)  # warm-up at the batch size
        synchronize(dev)
        t0 = time.perf_counter()
        predictor.predict(data, test_ids, batch_size=size)
        synchronize(dev)
        batched[size] = (time.perf_counter() - t0) / test_ids.numel()
    best = min(batched, key=batched.get)
    t0 = time.perf_counter()
    graphs_for_prediction(smiles, device="cpu")
    featurize = (time.perf_counter() - t0) / len(smiles)
    return {"single_s": statistics.median(samples), "single_n": len(samples), "batched_s": batched[best],
            "batch_size": best, "batched_by_size_s": {str(k): v for k, v in batched.items()},
            "batched_n": int(test_ids.numel()), "featurize_s": featurize,
            "featurize_n": len(smiles), "threads": torch.get_num_threads(), "device": str(dev)}


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one network, save its weights, and record its errors, the sample's predictions and
    its inference times (see the module docstring)."""
    from factorlab.experiments.dft_validation import SAMPLE
    from factorlab.models.qm9_saved import QM9Predictor, save_qm9_model
    from factorlab.results import config_hash

    Config.from_dict(cfg)
    members = members_of(cfg)
    processes = stack_processes(len(members))
    if len({len(m) for m in members}) != 1:
        tm = _train_sizes(cfg, members, device)
    elif processes > 1:
        tm = _train_parallel(cfg, members, device, processes)
    else:
        tm = train_members(cfg, members, device)
    if tm.baseline is None:
        raise ValueError("the demo networks need the composition baseline (config 'baseline': 'composition')")
    # seed 0 is the demonstration's network: only its weights are kept (the other seeds measure the spread)
    weights = (save_qm9_model(weights_path(cfg), tm.model, members, tm.baseline, cfg, config_hash(cfg))
               if cfg["seed"] == 0 else None)
    predictor = QM9Predictor(tm.model, members, tm.baseline, cfg, config_hash(cfg))
    data = tm.data
    row_of = {int(i): r for r, i in enumerate(data.index.tolist())}
    sample_rows = [(k, idx, row_of[idx]) for k in sorted(SAMPLE) for idx in SAMPLE[k] if idx in row_of]
    split_of = split_names(data.split, {k: v.numel() for k, v in tm.split.items()})
    sample = {}
    if sample_rows:
        pred = predictor.predict(data, torch.tensor([r for _, _, r in sample_rows])).tolist()
        for (k, idx, r), values in zip(sample_rows, pred):
            sample[str(idx)] = {"heavy_atoms": k, "split": split_of[r], "smiles": data.smiles[r],
                                "network": dict(zip(predictor.targets, values))}
    test = tm.split["test"]
    smiles = [data.smiles[r] for r in test[:min(200, test.numel())].tolist()]
    parts = tm.parts
    parts["metrics"]["sample"] = sample
    parts["timing"]["inference"] = inference_timing(predictor, data, test, smiles)
    parts["model"]["weights"] = weights
    parts["model"]["targets"] = predictor.targets
    return parts


def _train_sizes(cfg: dict, members: list[list[str]], device: str):
    """Members of unequal sizes (the grouped network): each size trained as one stack by
    :func:`train_members` (a member trains as it would alone), then all members, unstacked, as
    one :class:`~factorlab.models.stack.ModelStack` in ``members`` order, with the parts of the
    record merged: per-target metrics joined, ``params`` and ``members`` summed, the seconds of
    training summed, ``history`` and the rest per size (``by_size``)."""
    from factorlab.models.stack import ModelStack, unstack

    done, parts, last = {}, [], None
    for size in sorted({len(m) for m in members}):
        same = [m for m in members if len(m) == size]
        last = train_members(cfg, same, device)
        trained = unstack(last.model) if len(same) > 1 else [last.model]
        done.update({tuple(m): net for m, net in zip(same, trained)})
        parts.append((size, last.parts))
    model = ModelStack([done[tuple(m)] for m in members])
    metrics = join_member_metrics([p for _, p in parts], [t for m in members for t in m])
    first = parts[0][1]
    timing = {k: sum(p["timing"][k] for _, p in parts) for k in ("train_s", "eval_s", "test_s", "steps")
              if all(k in p["timing"] for _, p in parts)}
    timing.update(threads=first["timing"].get("threads"), members=len(members),
                  by_size={str(size): p["timing"] for size, p in parts})
    info = {**first["model"], "members": len(members), "params": sum(p["model"]["params"] for _, p in parts),
            "params_per_member": {",".join(m): sum(x.numel() for x in done[tuple(m)].parameters()) for m in members},
            "repr": repr(model)}
    history = {str(size): p["history"] for size, p in parts}
    last.parts = {"metrics": metrics, "history": history, "timing": timing, "model": info}
    last.model, last.members = model, members
    return last


#: The environment variable that sets how many processes train a network of several equal
#: members at once (default 1: one process, one stack).
PROCESSES_ENV = "FACTORLAB_STACK_PROCESSES"


def stack_processes(n_members: int) -> int:
    """The worker processes for a network of ``n_members`` equal members: :data:`PROCESSES_ENV`
    (default 1), at most ``n_members``. ValueError (naming the variable) for a value that is
    not a positive integer."""
    import os

    raw = os.environ.get(PROCESSES_ENV, "1").strip() or "1"
    try:
        p = int(raw)
    except ValueError:
        p = 0
    if p < 1:
        raise ValueError(f"{PROCESSES_ENV} must be a positive integer (processes that train a stack's members), "
                         f"got {raw!r}")
    return min(p, n_members)


def _chunks(members: list[list[str]], parts: int) -> list[list[list[str]]]:
    """``members`` in ``parts`` contiguous runs of sizes differing by at most one, in order."""
    q, r = divmod(len(members), parts)
    out, start = [], 0
    for k in range(parts):
        size = q + (k < r)
        out.append(members[start:start + size])
        start += size
    return out


def _train_chunk(cfg: dict, chunk: list[list[str]], device: str, threads: int) -> tuple[list[dict], dict]:
    """In a worker process: :func:`train_members` on ``chunk`` with ``threads`` torch threads;
    the trained members' state dicts (on the CPU) and the record's parts."""
    from factorlab.models.stack import unstack
    from factorlab.train.allocator import retain_freed_memory

    retain_freed_memory()
    torch.set_num_threads(threads)
    tm = train_members(cfg, chunk, device)
    nets = unstack(tm.model) if len(chunk) > 1 else [tm.model]
    return [{k: v.detach().cpu().clone() for k, v in n.state_dict().items()} for n in nets], tm.parts


def _train_parallel(cfg: dict, members: list[list[str]], device: str, processes: int):
    """Train ``members`` (equal sizes) as ``processes`` sub-stacks in worker processes at once
    (:func:`_chunks`, :func:`_train_chunk`, ``spawn``), then stack them again in ``members``
    order, as :func:`train_members` would have trained them in one stack (bit for bit: see the
    module docstring). Returns that :class:`~factorlab.experiments.qm9_common.TrainedMembers`
    with the parts merged: per-target metrics, history and best epochs joined (``epoch`` and
    ``lr`` are the same in every process), ``timing.train_s`` / ``eval_s`` / ``test_s`` the
    slowest process's (wall), ``process_train_s`` each process's, ``processes`` and ``threads``
    (per process)."""
    import concurrent.futures as cf
    import multiprocessing

    from factorlab.data.qm9 import load_qm9, target_index
    from factorlab.experiments.qm9_common import TrainedMembers, _baseline, member_split
    from factorlab.models.qm9_saved import build_member_models, stack_or_single
    from factorlab.train import resolve_device

    chunks = _chunks(members, processes)
    threads = max(1, torch.get_num_threads() // processes)
    with cf.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(_train_chunk, [cfg] * processes, chunks, [device] * processes, [threads] * processes))
    states = [st for sts, _ in done for st in sts]
    parts = [p for _, p in done]
    models = build_member_models(cfg, members)
    for net, st in zip(models, states):
        net.load_state_dict(st)
    dev = resolve_device(device)
    model = stack_or_single(models).to(dev)
    data = load_qm9(dev, fixture=cfg["data"] == "fixture")
    split = member_split(cfg, data)
    columns = [target_index(t) for m in members for t in m]
    merged = _merge_chunk_parts(parts, members, threads)
    return TrainedMembers(model, members, data, split, _baseline(cfg, data, split["train"]), columns, merged)


def _merge_chunk_parts(parts: list[dict], members: list[list[str]], threads: int) -> dict:
    """The record's parts of one network from its processes' ``parts`` (see
    :func:`_train_parallel`)."""
    metrics = join_member_metrics(parts, [t for m in members for t in m])
    first = parts[0]
    history: dict = {}
    for key, value in first["history"].items():
        if isinstance(value, dict):
            history[key] = {k: v for p in parts for k, v in p["history"][key].items()}
        elif key == "train_s":
            history[key] = [max(v) for v in zip(*(p["history"][key] for p in parts))]
        else:
            history[key] = value
    timing = dict(first["timing"])
    for key in ("train_s", "eval_s", "test_s", "epoch_s"):
        if all(key in p["timing"] for p in parts):
            timing[key] = max(p["timing"][key] for p in parts)
    timing.update(process_train_s=[p["timing"]["train_s"] for p in parts], processes=len(parts), threads=threads,
                  members=len(members))
    model = dict(first["model"])
    model.update(members=len(members), params=sum(p["model"]["params"] for p in parts))
    return {"metrics": metrics, "history": history, "timing": timing, "model": model}


def find_demo_record(sharing: str = "none", store=None, experiment: str = NAME,
                     networks: tuple[str, ...] | None = None, what: str = "") -> dict:
    """The record of the saved network to use: ``sharing`` as given, of ``experiment``
    (``qm9_demo_model``, or ``qm9_demo_full``: the same networks on the whole training split),
    the best profile of :data:`PROFILE_PREFERENCE` whose weights file exists. ``networks``: the
    sharings ``experiment`` trains (default :data:`SHARING`); ``what``: words on those networks
    for the messages.

    Raises:
        ValueError: ``sharing`` is not one of ``networks``.
        LookupError: no such network has been trained (the message says how to train one).
    """
    from factorlab.paths import models_dir
    from factorlab.results import RunStore

    networks = SHARING if networks is None else networks
    if sharing not in networks:
        raise ValueError(f"unknown network {sharing!r}{what}: choose one of {', '.join(networks)}")
    store = store or RunStore()
    records = sorted((r for r in store.records(experiment) if r["config"]["sharing"] == sharing
                      and r["model"].get("weights")), key=lambda r: r["config"].get("seed", 0))
    for profile in PROFILE_PREFERENCE:
        for rec in records:
            if rec["config"]["profile"] == profile and weights_path(rec["config"]).is_file():
                return rec
    first = ("`python -m factorlab run qm9_grouping --profile cpu` (its best grouping), then "
             if sharing == "grouped" else "")
    raise LookupError(f"no trained {experiment} network with sharing={sharing!r}{what} (weights in "
                      f"{models_dir() / experiment}, records in {store.root / experiment}): train one with "
                      f"{first}`python -m factorlab run {experiment} --profile cpu --where sharing={sharing}`")


def load_demo_predictor(sharing: str = "none", device: str = "cpu", store=None, experiment: str = NAME, **lookup):
    """The saved network of :func:`find_demo_record` (same arguments), checked against its
    record's SHA-256, and that record: ``(QM9Predictor, record)``."""
    from factorlab.models.qm9_saved import load_qm9_predictor

    rec = find_demo_record(sharing, store, experiment, **lookup)
    predictor = load_qm9_predictor(weights_path(rec["config"]), device, sha256=rec["model"]["weights"]["sha256"])
    return predictor, rec


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("sharing", "seed"))
