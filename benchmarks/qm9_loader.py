"""Benchmark: one training epoch on QM9 with the on-device loader against PyTorch Geometric's
``DataLoader``, same model, same molecules, in one process.

    python benchmarks/qm9_loader.py                   # CPU here (or --device cuda), prints the table
    python benchmarks/qm9_loader.py --record          # also stores it as a run record for the book
    python benchmarks/qm9_loader.py --quick           # the 300-molecule fixture, seconds (smoke)

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

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from factorlab.data.qm9 import QM9Loader, load_qm9  # noqa: E402
from factorlab.train.device import resolve_device, synchronize  # noqa: E402

#: Molecules in the epoch per profile (None = the whole training split) and repeats.
PROFILES = {"smoke": {"n_molecules": None, "repeats": 1},
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


def config(profile: str, device: torch.device) -> dict:
    """The run-store config of one benchmark run."""
    p = PROFILES[profile]
    return {"experiment": "qm9_loader_benchmark", "profile": profile, "device": device.type,
            "n_molecules": p["n_molecules"], "repeats": p["repeats"], "batch_size": BATCH_SIZE,
            "model": dict(MODEL), "fixture": profile == "smoke"}


def record(profile: str, device: str = "auto", store=None, log=print) -> dict:
    """The stored record of ``profile`` on ``device``'s kind, measured now if missing (what the
    book calls)."""
    from factorlab.experiments import check_profile
    from factorlab.results import RunStore

    dev = resolve_device(device)
    cfg = config(check_profile(profile), dev)
    store = store or RunStore()
    return store.run(cfg, lambda c: run(c, dev, c["fixture"], log), device=dev)


def report(metrics: dict) -> str:
    """The printed table: median epoch seconds per loader and phase, and pyg / ours."""
    lines = [f"{metrics['n_molecules']} molecules, {metrics['n_batches']} batches per epoch",
             f"{'phase':6s} {'ours s':>9s} {'pyg s':>9s} {'pyg/ours':>9s}"]
    for phase in PHASES:
        lines.append(f"{phase:6s} {metrics[f'ours_{phase}_s']:9.3f} {metrics[f'pyg_{phase}_s']:9.3f} "
                     f"{metrics[f'{phase}_ratio']:9.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--quick", action="store_true", help="the committed 300-molecule fixture (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help="store the result as a run record (experiment qm9_loader_benchmark), replacing an old one")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    profile = "smoke" if args.quick else "cpu" if device.type == "cpu" else "full"
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, profile {profile}",
          flush=True)
    cfg = config(profile, device)
    if args.record:
        from factorlab.results import RunStore

        store = RunStore()
        store.path(cfg).unlink(missing_ok=True)
        metrics = record(profile, str(device), store)["metrics"]
        print(f"recorded: {store.path(cfg)}")
    else:
        metrics = run(cfg, device, cfg["fixture"])["metrics"]
    print(report(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
