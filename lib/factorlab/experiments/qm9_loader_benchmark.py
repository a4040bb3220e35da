"""Benchmark ``qm9_loader_benchmark``: one training epoch on QM9 with the on-device loader
against PyTorch Geometric's ``DataLoader``, same model, same molecules, in one process. The
entry point is ``benchmarks/qm9_loader.py`` (prints the table); the record comes from
``run_experiment("qm9_loader_benchmark", profile)`` like any run.

Profiles (:data:`BUDGETS`): ``smoke`` the 300-molecule fixture, one repeat, on the CPU
(seconds); ``cpu`` 20,000 training molecules on the CPU, 3 repeats (a few minutes); ``full``
the whole training split on a CUDA GPU. The config names the device it measures on.

What is timed, for each loader and each phase, with the device synchronized before every
clock read:

- ``ours``: :class:`factorlab.data.qm9.QM9Loader`, the dataset resident on the device as flat
  arrays, each batch gathered there by index (no Python loop over molecules);
- ``pyg``: ``torch_geometric.loader.DataLoader`` over a list of PyG ``Data`` objects (one per
  molecule, built once from the same arrays and kept on the CPU, as PyG's ``QM9`` dataset
  keeps them), collated per step by ``Batch.from_data_list`` and moved to the device with
  ``.to(device)``, ``num_workers=0`` (the usual set-up);

and the phases

- ``load``: iterate one epoch of shuffled batches and touch each (``batch.x.sum()``), no model;
- ``train``: one epoch of forward, MSE loss on the standardized targets, backward and Adam step
  of the same model (:class:`factorlab.models.qm9.QM9GINE`, re-initialised to the same
  weights before each loader's epoch).

Each (loader, phase) is measured ``--repeats`` times after one untimed warm-up epoch on a few
batches; the medians are reported with the ratio pyg / ours. Building the ``Data`` list is
timed separately and not counted in the epoch (PyG's dataset does it once, at processing).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Literal

import torch

from factorlab.data.qm9 import QM9Loader, load_qm9
from factorlab.experiments.benchmark_cli import BenchmarkCommand, one_run_grid
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.train.device import resolve_device, synchronize

NAME = "qm9_loader_benchmark"

#: Molecules in the epoch per profile (None = the whole training split) and repeats.
BUDGETS = {"smoke": {"n_molecules": None, "repeats": 1},
            "cpu": {"n_molecules": 20_000, "repeats": 3},
            "full": {"n_molecules": None, "repeats": 3}}
MODEL = {"name": "gine", "hidden": 128, "layers": 4}
BATCH_SIZE = 128
LOADERS = ("ours", "pyg")
PHASES = ("load", "train")


def pyg_data_list(data, ids: torch.Tensor) -> list:
    """PyG ``Data`` objects (on the CPU) of molecules ``ids``, with the same fields as
    :class:`~factorlab.data.qm9.QM9Batch`."""
    from torch_geometric.data import Data

    out = []
    for i in ids.tolist():
        m = data.molecule(i)
        out.append(Data(x=m["x"].cpu(), pos=m["pos"].cpu(), edge_index=m["edge_index"].cpu(),
                        edge_attr=m["edge_attr"].cpu(), y=m["y"].cpu()))
    return out


def _epoch(batches, device: torch.device, step) -> float:
    """Seconds of one pass over ``batches`` (an iterable), calling ``step(batch)`` on each."""
    synchronize(device)
    t0 = time.perf_counter()
    for b in batches:
        step(b)
    synchronize(device)
    return time.perf_counter() - t0


def run(cfg: dict, device: torch.device, fixture: bool, log=print) -> dict:
    """Measure every (loader, phase); the parts of a run record (times in seconds)."""
    from torch_geometric.loader import DataLoader

    from factorlab.models.qm9 import build_qm9_model

    data = load_qm9(device, fixture=fixture)
    ids = data.split["train"] if not fixture else torch.arange(data.num_molecules, device=device)
    if cfg["n_molecules"] is not None:
        ids = ids[: cfg["n_molecules"]]
    t0 = time.perf_counter()
    data_list = pyg_data_list(data, ids)
    build_s = time.perf_counter() - t0
    log(f"{len(data_list)} molecules; PyG Data list built in {build_s:.1f} s (not counted in the epochs)")

    torch.manual_seed(0)
    model = build_qm9_model(cfg["model"]["name"], 19, hidden=cfg["model"]["hidden"],
                            layers=cfg["model"]["layers"]).to(device)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mean, std = data.y_mean, data.y_std

    def touch(b):
        b.x.sum()

    def make_train():
        model.load_state_dict(init)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(b):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(b), (b.y - mean) / std)
            loss.backward()
            opt.step()
        return step

    def batches(loader: str, seed: int):
        if loader == "ours":
            return QM9Loader(data, ids, batch_size=cfg["batch_size"], shuffle=True, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        return (b.to(device) for b in DataLoader(data_list, batch_size=cfg["batch_size"], shuffle=True,
                                                 generator=gen))

    def warm(loader: str):
        step = make_train()
        for k, b in enumerate(batches(loader, 99)):
            step(b)
            if k == 3:
                break

    times = {f"{loader}_{phase}_s": [] for loader in LOADERS for phase in PHASES}
    for loader in LOADERS:
        warm(loader)
    for rep in range(cfg["repeats"]):
        for phase in PHASES:
            for loader in LOADERS:  # alternate loaders within each repeat: drift hits both alike
                step = touch if phase == "load" else make_train()
                t = _epoch(batches(loader, rep), device, step)
                times[f"{loader}_{phase}_s"].append(t)
                log(f"  repeat {rep}: {loader:4s} {phase:5s} {t:8.3f} s")
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {f"{phase}_ratio": med[f"pyg_{phase}_s"] / med[f"ours_{phase}_s"] for phase in PHASES}
    n_batches = -(-len(data_list) // cfg["batch_size"])
    return {"metrics": {**med, **ratios, "samples": times, "n_molecules": len(data_list), "n_batches": n_batches,
                        "data_list_build_s": build_s, "threads": torch.get_num_threads()},
            "timing": {"threads": torch.get_num_threads()}}


#: The device each profile measures on.
PROFILE_DEVICE = {"smoke": "cpu", "cpu": "cpu", "full": "cuda"}


@dataclass(kw_only=True)
class Config(RunConfig):
    """One benchmark run: ``n_molecules`` training molecules (None = all; the fixture's 300
    when ``fixture``), ``repeats`` epochs of each (loader, phase) at ``batch_size``, the
    ``model`` (name, hidden, layers), on ``device``."""

    experiment: str
    profile: Profile
    device: Literal["cpu", "cuda"]
    n_molecules: int | None
    repeats: int
    batch_size: int
    model: dict[str, Any]
    fixture: bool


def make_config(profile: str, device: str | torch.device | None = None) -> Config:
    """The config of ``profile`` on ``device``'s kind (default: the profile's,
    :data:`PROFILE_DEVICE`)."""
    p = BUDGETS[check_profile(profile)]
    device = PROFILE_DEVICE[profile] if device is None else torch.device(device).type
    return Config(experiment=NAME, profile=profile, device=device, n_molecules=p["n_molecules"],
                  repeats=p["repeats"], batch_size=BATCH_SIZE, model=dict(MODEL), fixture=profile == "smoke")


#: ``config(profile, device)``, ``configs(profile)`` (one run, on the profile's device) and ``grid(profile)``.
config, configs, grid = one_run_grid(make_config)


def train(cfg: dict, device: str = "auto") -> dict:
    """Measure ``cfg`` on the device it names (``device`` is not used: the profile chose it)."""
    return run(cfg, resolve_device(cfg["device"]), cfg["fixture"])


def record(profile: str, device: str = "auto", store=None) -> dict:
    """The stored record of ``profile`` on ``device``'s kind, measured now if missing.
    Notebooks: ``run_experiment("qm9_loader_benchmark", profile)[0]`` is the same record
    where ``device`` is the profile's."""
    from factorlab.experiments.registry import run_config

    return run_config(NAME, make_config(profile, resolve_device(device)), device, store)


def report(metrics: dict) -> str:
    """The printed table: median epoch seconds per loader and phase, and pyg / ours."""
    lines = [f"{metrics['n_molecules']} molecules, {metrics['n_batches']} batches per epoch",
             f"{'phase':6s} {'ours s':>9s} {'pyg s':>9s} {'pyg/ours':>9s}"]
    for phase in PHASES:
        lines.append(f"{phase:6s} {metrics[f'ours_{phase}_s']:9.3f} {metrics[f'pyg_{phase}_s']:9.3f} "
                     f"{metrics[f'{phase}_ratio']:9.2f}")
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "benchmark", Config, configs, train, label_keys=("device", "n_molecules"),
                        measures_on="device")

#: ``benchmarks/qm9_loader.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`).
COMMAND = BenchmarkCommand(
    make_config=lambda profile, device, args: make_config(profile, device),
    header=lambda cfg, device: (f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
                                f"profile {cfg.profile}"),
    measure=lambda cfg, device: run(cfg.to_dict(), torch.device(device), cfg.fixture),
    table=lambda rec, cfg: report(rec["metrics"]),
    quick="the committed 300-molecule fixture (smoke test)",
    devices=("auto", "cpu", "cuda"),
    threads=True,
)
