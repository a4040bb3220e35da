"""Benchmark ``memory_format_benchmark``: a CIFAR-10 training step in the NCHW and the
channels-last memory format, one process. The entry point is ``benchmarks/memory_format.py``
(prints the table); the record comes from ``run_experiment("memory_format_benchmark",
profile)`` like any run.

:func:`factorlab.train.fit_fast` puts the model and every batch in channels-last memory
format (recipe key ``channels_last``, default True). Until the CPU comparison with airbench94
(``cifar_anchor``, profile ``cpu``) it did so only on CUDA; airbench94 does it everywhere,
which made it faster on the CPU. This measures the choice: for every distinct net of the
grids of ``cifar_baselines``, ``cifar_factorized`` and ``cifar_long`` under the profile (the
dense ResNet-9 and airbench nets at their widths, every factorized variant), the median time
of one training step (forward, summed cross-entropy, backward, SGD step with Nesterov
momentum) on the same random batch of the recipe's size, in both formats, back to back from
the same initial weights (:func:`factorlab.train.timing.median_time`: warm-up excluded, device
synchronized). The ratio NCHW / channels-last above 1 means channels-last is faster. Run it on
an otherwise idle machine.

Profiles: ``smoke`` two small nets at batch 16 on the CPU (:data:`QUICK`; seconds); ``cpu``
the 17 nets of the cpu grids from width 1/8 up (:data:`MIN_WIDTH`) at batch 128 on the CPU
(about 2 minutes on an idle machine);
``full`` the nets of the full grids on a CUDA GPU, each at its recipe's batch size (the full
recipes use 1024 and 512, so the config's ``batch_size`` is None and each net names its own).
"""
from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from factorlab.experiments.benchmark_cli import BenchmarkCommand
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "memory_format_benchmark"
GRIDS = ("cifar_baselines", "cifar_factorized", "cifar_long")
#: ``smoke``: (net, width, factorize), batch size.
QUICK = ([("airbench", 0.125, None), ("airbench", 0.125, {"family": "separable_tt", "d": 2, "rank": 4})], 16)
#: The device each profile measures on.
PROFILE_DEVICE = {"smoke": "cpu", "cpu": "cpu", "full": "cuda"}
#: The narrowest net measured per profile: the cpu record was taken before ``cifar_baselines``
#: gained its dense airbench widths 1/32, 1/16 and 3/32, so the cpu config leaves them out
#: (and keeps the key of that record).
MIN_WIDTH = {"smoke": 0.0, "cpu": 0.125, "full": 0.0}


@dataclass(kw_only=True)
class Config(RunConfig):
    """One benchmark run: a training step of each of ``nets`` (dicts of ``net``, ``width``,
    ``factorize``, and ``batch_size`` where the config's is None) in both memory formats,
    ``repeats`` timed steps each, on ``device``."""

    experiment: str
    profile: Profile
    device: Literal["cpu", "cuda"]
    batch_size: int | None
    nets: list[dict[str, Any]]
    repeats: int


def cases(profile: str) -> list[tuple[str, float, dict | None, int]]:
    """The distinct (net, width, factorize, batch size of its recipe) of the ``profile`` grids
    at widths from :data:`MIN_WIDTH` up (``smoke``: :data:`QUICK`)."""
    if check_profile(profile) == "smoke":
        return [(n, w, copy.deepcopy(f), QUICK[1]) for n, w, f in QUICK[0]]
    from factorlab.experiments import get_experiment

    seen, out = set(), []
    for name in GRIDS:
        for c in get_experiment(name).grid(profile):
            key = (c["net"], c["width"], repr(c["factorize"]))
            if key not in seen and c["width"] >= MIN_WIDTH[profile]:
                seen.add(key)
                out.append((c["net"], c["width"], c["factorize"], c["recipe"]["batch_size"]))
    return out


def make_config(profile: str, device: str | None = None) -> Config:
    """The config of ``profile`` on ``device`` (default: the profile's, :data:`PROFILE_DEVICE`).
    One batch size for all nets is the config's ``batch_size``; several are named per net."""
    nets = cases(profile)
    batches = {b for *_, b in nets}
    shared = batches.pop() if len(batches) == 1 else None
    specs = [{"net": n, "width": w, "factorize": f, **({} if shared is not None else {"batch_size": b})}
             for n, w, f, b in nets]
    return Config(experiment=NAME, profile=profile, device=PROFILE_DEVICE[profile] if device is None else device,
                  batch_size=shared, nets=specs, repeats=5 if profile == "smoke" else 15)


def config(profile: str, device: str) -> dict:
    """:func:`make_config` as the dict the run store hashes."""
    return make_config(profile, device).to_dict()


def configs(profile: str) -> list[Config]:
    """The grid: one run per profile, on the profile's device."""
    return [make_config(profile)]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def step_time(net: str, width: float, factorize: dict | None, batch: int, channels_last: bool,
              device: torch.device, repeats: int) -> float:
    """Median seconds of one training step of the net, freshly built from seed 0."""
    from factorlab.models.cifar import build_cifar_model
    from factorlab.train.timing import median_time

    torch.manual_seed(0)
    model = build_cifar_model(net, width, factorize).to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6, momentum=0.9, nesterov=True)

    def step():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_time(step, device, repeats=repeats, warmup=2)


def run(cfg: dict, log=print) -> dict:
    """Time every net in both formats (alternating which goes first); the parts of a run record."""
    from factorlab.train.device import resolve_device

    dev = resolve_device(cfg["device"])
    rows = []
    for k, spec in enumerate(cfg["nets"]):
        batch = spec.get("batch_size", cfg["batch_size"])
        times = {}
        for cl in ((False, True) if k % 2 == 0 else (True, False)):
            times[cl] = step_time(spec["net"], spec["width"], spec["factorize"], batch, cl, dev, cfg["repeats"])
        row = {**spec, "family": "dense" if spec["factorize"] is None else spec["factorize"]["family"],
               "nchw_s": times[False], "channels_last_s": times[True], "speedup": times[False] / times[True]}
        rows.append(row)
        log(f"  {row_label(row)}: NCHW {1e3 * row['nchw_s']:.1f} ms, channels-last {1e3 * row['channels_last_s']:.1f} "
            f"ms, {row['speedup']:.2f}x")
    s = [r["speedup"] for r in rows]
    return {"metrics": {"rows": rows, "speedup_min": min(s), "speedup_median": statistics.median(s),
                        "speedup_max": max(s), "n_faster": sum(v > 1 for v in s), "n": len(s)},
            "timing": {"threads": torch.get_num_threads(),
                       "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}}


def train(cfg: dict, device: str = "auto") -> dict:
    """Measure ``cfg`` on the device it names (``device`` is not used: the profile chose it)."""
    return run(cfg)


def row_label(row: dict) -> str:
    """``net width family (knobs)`` of one measured net."""
    f = row["factorize"] or {}
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(f.items()) if k != "family")
    return f"{row['net']} {row['width']:g} {row['family']}" + (f" ({knobs})" if knobs else "")


def report(metrics: dict, batch: int | None) -> str:
    """The printed table: step time per format (ms) and the ratio, per net; then the summary.
    ``batch``: the batch size of every net (None: each net's own, shown per row)."""
    what = f"batch {batch}" if batch is not None else "each net at its recipe's batch"
    lines = [f"{'net':58s} {'NCHW ms':>8s} {'ch-last ms':>10s} {'ratio':>6s}   (training step, {what})"]
    for r in metrics["rows"]:
        name = row_label(r) + (f" [batch {r['batch_size']}]" if "batch_size" in r else "")
        lines.append(f"{name:58s} {1e3 * r['nchw_s']:8.1f} {1e3 * r['channels_last_s']:10.1f} {r['speedup']:6.2f}")
    lines.append(f"channels-last faster for {metrics['n_faster']} of {metrics['n']} nets; ratio NCHW / channels-last "
                 f"{metrics['speedup_min']:.2f} to {metrics['speedup_max']:.2f} (median {metrics['speedup_median']:.2f})")
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "benchmark", Config, configs, train, label_keys=("device", "batch_size"),
                        measures_on="device")


def _header(cfg: Config, device: str) -> str:
    batch = cfg.batch_size if cfg.batch_size is not None else "per net"
    return (f"training step, NCHW against channels-last, profile {cfg.profile}, {len(cfg.nets)} nets, batch {batch}, "
            f"device {device} ({torch.get_num_threads()} threads)")


#: ``benchmarks/memory_format.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`).
COMMAND = BenchmarkCommand(
    make_config=lambda profile, device, args: make_config(profile, device),
    header=_header,
    measure=lambda cfg, device: run(cfg.to_dict()),
    table=lambda rec, cfg: report(rec["metrics"], cfg.batch_size),
    quick="two small nets at batch 16 (smoke test)",
    devices=("cpu", "cuda"),
)
