"""Experiment ``qm9_demo_model``: the networks the demonstration ("DFT or network?") loads.

Two GINE networks for all 19 targets, trained with the QM9 chapters' budget of each profile
(:data:`~factorlab.experiments.qm9_common.BUDGETS`, seed 0):

- ``sharing="none"``: 19 single-task models trained together as one grouped stack, the best
  kind in the QM9 chapters (hard sharing was worse on most targets there);
- ``sharing="hard"``: one shared encoder with 19 heads, the multitask network (19 times fewer
  encoder parameters, one forward pass).

Unlike the chapters' runs, these keep their weights: :func:`train` writes
``<models dir>/qm9_demo_model/<key>.pt`` (:mod:`factorlab.models.qm9_saved`; the ``cpu`` files,
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
"""
from __future__ import annotations

import statistics
import time

import torch

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import ALL_TARGETS, BUDGETS, QM9Config, base_config, train_members
from factorlab.experiments.registry import Experiment

NAME = "qm9_demo_model"
#: Sharing modes, in the order of the grid; the CLI's default is the first.
SHARING = ("none", "hard")
#: Profiles a saved network is taken from, best first (``smoke`` only as a last resort).
PROFILE_PREFERENCE = ("full", "cpu", "smoke")
#: Batch sizes whose inference time per molecule is measured (the best is reported).
BATCH_SIZES = (64, 256, 1024)


def configs(profile: str) -> list[QM9Config]:
    """Both networks under ``profile`` (seed 0, all 19 targets)."""
    budget = BUDGETS[check_profile(profile)]
    return [QM9Config(**base_config(NAME, profile, "gine", budget["gine"]), sharing=sharing,
                      targets=list(ALL_TARGETS), seed=0) for sharing in SHARING]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def members_of(cfg: dict) -> list[list[str]]:
    """Targets per member: one per target (``sharing="none"``) or all in one (``"hard"``)."""
    if cfg["sharing"] == "none":
        return [[t] for t in cfg["targets"]]
    if cfg["sharing"] == "hard":
        return [list(cfg["targets"])]
    raise ValueError(f"unknown sharing {cfg['sharing']!r}: choose one of {', '.join(SHARING)}")


def weights_path(cfg: dict):
    """Where the weights of run ``cfg`` are saved (whether or not they exist)."""
    from factorlab.paths import models_dir
    from factorlab.results import config_hash

    return models_dir() / NAME / f"{config_hash(cfg)}.pt"


def split_names(full_split: dict, used: dict[str, int]) -> dict[int, str]:
    """Row -> split name for every row of the full ``{"train", "valid", "test"}`` split, with
    ``<name>_unused`` for the rows beyond the first ``used[name]`` that a run used."""
    return {int(r): name if k < used[name] else f"{name}_unused"
            for name in ("train", "valid", "test") for k, r in enumerate(full_split[name].tolist())}


def _inference_timing(predictor, data, test_ids: torch.Tensor, smiles: list[str]) -> dict:
    """Seconds per molecule: single molecules, batches (:data:`BATCH_SIZES`), and graphs from SMILES."""
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

    members = members_of(cfg)
    tm = train_members(cfg, members, device)
    if tm.baseline is None:
        raise ValueError("the demo networks need the composition baseline (config 'baseline': 'composition')")
    weights = save_qm9_model(weights_path(cfg), tm.model, members, tm.baseline, cfg, config_hash(cfg))
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
    parts["timing"]["inference"] = _inference_timing(predictor, data, test, smiles)
    parts["model"]["weights"] = weights
    parts["model"]["targets"] = predictor.targets
    return parts


def find_demo_record(sharing: str = "none", store=None) -> dict:
    """The record of the saved network to use: ``sharing`` as given, the best profile of
    :data:`PROFILE_PREFERENCE` whose weights file exists.

    Raises:
        LookupError: no such network has been trained (the message says how to train one).
    """
    from factorlab.results import RunStore

    if sharing not in SHARING:
        raise ValueError(f"unknown network {sharing!r}: choose one of {', '.join(SHARING)}")
    store = store or RunStore()
    records = [r for r in store.records(NAME) if r["config"]["sharing"] == sharing]
    for profile in PROFILE_PREFERENCE:
        for rec in records:
            if rec["config"]["profile"] == profile and weights_path(rec["config"]).is_file():
                return rec
    raise LookupError(f"no trained {NAME} network with sharing={sharing!r} (weights in "
                      f"{weights_path(grid('cpu')[0]).parent}, records in {store.root / NAME}): train one with "
                      f"`python -m factorlab run {NAME} --profile cpu`")


def load_demo_predictor(sharing: str = "none", device: str = "cpu", store=None):
    """The saved network of :func:`find_demo_record`, checked against its record's SHA-256,
    and that record: ``(QM9Predictor, record)``."""
    from factorlab.models.qm9_saved import load_qm9_predictor

    rec = find_demo_record(sharing, store)
    predictor = load_qm9_predictor(weights_path(rec["config"]), device, sha256=rec["model"]["weights"]["sha256"])
    return predictor, rec


EXPERIMENT = Experiment(NAME, "experiment", QM9Config, configs, train, label_keys=("sharing", "seed"))
