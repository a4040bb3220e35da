"""Benchmark ``train_throughput``: :func:`factorlab.train.fit_classifier` against a plain
PyTorch loop, on the same net, data and threads, in one process. The entry point is
``benchmarks/train_throughput.py`` (prints the table); the record comes from
``run_experiment("train_throughput", profile)`` like any run.

For each MNIST baseline net (``mlp``, ``conv1``, ``conv2`` of
:data:`factorlab.experiments.mnist_baselines.NETS`, journal settings and batch sizes), both
loops train a fresh copy of the net (seed 0) for one epoch over the first ``steps`` batches of
MNIST's training set:

- ``fit``: :func:`~factorlab.train.fit_classifier` as the experiments call it (its training
  time ``train_s``, which excludes its evaluation; the test set is one image);
- ``plain``: the loop a person would write for the same trajectory: one shuffled order per
  epoch from a generator seeded like the loader's, index, preprocess, forward (in the
  device's autocast), cross-entropy, ``zero_grad(set_to_none=True)``, backward, step; no
  statistics.

Both start from the same weights, see the same batches in the same order and end with
bit-identical weights (checked: ``same_weights``), so the time difference is the bookkeeping
of ``fit_classifier``. Repetitions alternate (fit, plain, plain, fit, ...) after one untimed
warm-up pair; the reported per-step seconds are medians over repetitions, and the ratio is
median fit / median plain (``pair_ratio`` is the median of the repetitions' own ratios). The
process CPU seconds per step and the page faults per step (``resource.getrusage``) are recorded
beside the wall times: they are less disturbed by other processes than the wall clock. Both
loops run under the allocator setting of every training process
(:func:`factorlab.train.allocator.retain_freed_memory`, set here too). Run it on an otherwise idle machine.

Profiles: ``smoke`` a few steps per net, 2 repetitions (seconds); ``cpu`` on one thread,
7 repetitions of 200 / 60 / 15 steps (mlp / conv1 / conv2); ``full`` on a CUDA GPU.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from factorlab.experiments.benchmark_cli import BenchmarkCommand
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment

NAME = "train_throughput"
NETS_MEASURED = ["mlp", "conv1", "conv2"]
#: The ratio fit_classifier / plain loop the training loop is held to.
TARGET_RATIO = 1.1
#: Per profile: device, torch threads (None: the device's default), steps per repetition per
#: net, timed repetitions per loop.
BUDGETS: dict[str, dict] = {
    "smoke": {"device": "cpu", "threads": 1, "steps": {"mlp": 2, "conv1": 2, "conv2": 1}, "repeats": 2},
    "cpu": {"device": "cpu", "threads": 1, "steps": {"mlp": 200, "conv1": 60, "conv2": 15}, "repeats": 7},
    "full": {"device": "cuda", "threads": None, "steps": {"mlp": 400, "conv1": 400, "conv2": 60}, "repeats": 7},
}
#: Steps of the untimed warm-up run of each loop, per net.
WARMUP_STEPS = 2


@dataclass(kw_only=True)
class Config(RunConfig):
    """One benchmark run: each of ``nets`` trained by both loops ``repeats`` times for
    ``steps[net]`` steps on ``device`` with ``threads`` torch threads (None: default)."""

    experiment: str
    profile: Profile
    device: Literal["cpu", "cuda"]
    threads: int | None
    nets: list[str]
    steps: dict[str, int]
    repeats: int


def make_config(profile: str) -> Config:
    """The config of ``profile`` (:data:`BUDGETS`)."""
    b = BUDGETS[check_profile(profile)]
    return Config(experiment=NAME, profile=profile, device=b["device"], threads=b["threads"],
                  nets=list(NETS_MEASURED), steps=dict(b["steps"]), repeats=b["repeats"])


def configs(profile: str) -> list[Config]:
    """The grid: one run per profile."""
    return [make_config(profile)]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def _usage() -> tuple[float, int]:
    """(process CPU seconds, minor page faults so far); faults 0 where ``resource`` is missing."""
    try:
        import resource
    except ImportError:  # not on Windows
        return time.process_time(), 0
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_minflt


def _fresh(net: str, device: torch.device):
    """The net of :data:`~factorlab.experiments.mnist_baselines.NETS` from seed 0, on
    ``device``, with its journal optimizer."""
    from factorlab.experiments.mnist_baselines import NETS, make_optimizer
    from factorlab.models import build_mnist_model
    from factorlab.seed import seed_everything

    seed_everything(0)
    model = build_mnist_model(NETS[net]["model"], **NETS[net]["model_kwargs"]).to(device)
    return model, make_optimizer(NETS[net], model.parameters())


def fit_loop(net: str, model, opt, x: torch.Tensor, y: torch.Tensor, test: tuple, device: torch.device) -> float:
    """Train ``model`` (a ``net``) on ``(x, y)`` for one epoch with ``fit_classifier``: its
    training seconds."""
    from factorlab.experiments.mnist_baselines import NETS, preprocess
    from factorlab.train import fit_classifier

    fit = fit_classifier(model, opt, (x, y), test, epochs=1, batch_size=NETS[net]["batch_size"], device=device,
                         seed=0, preprocess=preprocess)
    return fit.timing["train_s"]


def plain_loop(net: str, model, opt, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """Train ``model`` (a ``net``) on ``(x, y)`` for one epoch with a minimal loop that follows
    ``fit_classifier``'s trajectory: its training seconds."""
    from factorlab.experiments.mnist_baselines import NETS, preprocess
    from factorlab.train import autocast, synchronize

    bs, n = NETS[net]["batch_size"], x.shape[0]
    gen = torch.Generator(device=device).manual_seed(0)  # as DeviceLoader(seed=0)
    model.train()
    synchronize(device)
    t0 = time.perf_counter()
    order = torch.randperm(n, device=device, generator=gen)
    for lo in range(0, n, bs):
        idx = order[lo:lo + bs]
        with autocast(device):
            loss = F.cross_entropy(model(preprocess(x[idx])).float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(device)
    return time.perf_counter() - t0


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def measure_net(net: str, steps: int, repeats: int, data, device: torch.device, log=print) -> dict:
    """Both loops on ``net`` for ``steps`` steps, ``repeats`` times each, alternating, each
    time from a fresh copy (seed 0): one row of the record (seconds per step are medians
    over the repetitions; ``same_weights``: the two loops ended with identical weights, in
    the warm-up and in the first repetition)."""
    from factorlab.experiments.mnist_baselines import NETS

    bs = NETS[net]["batch_size"]
    x, y = data.train_x[:bs * steps], data.train_y[:bs * steps]
    test = (data.test_x[:1], data.test_y[:1])

    def train_once(which: str, xx: torch.Tensor, yy: torch.Tensor):
        model, opt = _fresh(net, device)
        c0, f0 = _usage()
        seconds = (fit_loop(net, model, opt, xx, yy, test, device) if which == "fit"
                   else plain_loop(net, model, opt, xx, yy, device))
        c1, f1 = _usage()
        return seconds, c1 - c0, f1 - f0, model

    warm = bs * min(steps, WARMUP_STEPS)
    same = _same_weights(train_once("fit", x[:warm], y[:warm])[3], train_once("plain", x[:warm], y[:warm])[3])
    wall: dict[str, list[float]] = {"fit": [], "plain": []}
    cpu: dict[str, list[float]] = {"fit": [], "plain": []}
    faults: dict[str, list[float]] = {"fit": [], "plain": []}
    first: dict[str, torch.nn.Module] = {}
    for r in range(repeats):
        for which in (("fit", "plain") if r % 2 == 0 else ("plain", "fit")):
            seconds, cpu_s, n_faults, model = train_once(which, x, y)
            wall[which].append(seconds / steps)
            cpu[which].append(cpu_s / steps)
            faults[which].append(n_faults / steps)
            first.setdefault(which, model)
    same = same and _same_weights(first["fit"], first["plain"])
    med = {k: statistics.median(v) for k, v in wall.items()}
    row = {"net": net, "batch_size": bs, "steps": steps, "fit_s": med["fit"], "plain_s": med["plain"],
           "ratio": med["fit"] / med["plain"],
           "pair_ratio": statistics.median(f / p for f, p in zip(wall["fit"], wall["plain"])),
           "fit_cpu_s": statistics.median(cpu["fit"]), "plain_cpu_s": statistics.median(cpu["plain"]),
           "fit_faults": statistics.median(faults["fit"]), "plain_faults": statistics.median(faults["plain"]),
           "same_weights": same, "fit_reps_s": wall["fit"], "plain_reps_s": wall["plain"]}
    row["cpu_ratio"] = row["fit_cpu_s"] / row["plain_cpu_s"]
    log(f"  {net}: fit_classifier {1e3 * row['fit_s']:.2f} ms/step, plain {1e3 * row['plain_s']:.2f} ms/step, "
        f"{row['ratio']:.3f}x")
    return row


def run(cfg: dict, log=print) -> dict:
    """Measure every net of ``cfg`` (threads set for the run, then restored); the parts of a
    run record."""
    from factorlab.data import load_mnist
    from factorlab.experiments.mnist_baselines import NETS
    from factorlab.train.allocator import retain_freed_memory
    from factorlab.train.device import resolve_device

    dev = resolve_device(cfg["device"])
    allocator = retain_freed_memory() if dev.type == "cpu" else "caching (CUDA)"  # the same for both loops
    threads_before = torch.get_num_threads()
    if cfg["threads"] is not None:
        torch.set_num_threads(cfg["threads"])
    try:
        n = max(NETS[net]["batch_size"] * cfg["steps"][net] for net in cfg["nets"])
        data = load_mnist(device=dev, n_train=n, n_test=1)
        rows = [measure_net(net, cfg["steps"][net], cfg["repeats"], data, dev, log) for net in cfg["nets"]]
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads_before)
    ratios = [r["ratio"] for r in rows]
    return {"metrics": {"rows": rows, "ratio_max": max(ratios), "target_ratio": TARGET_RATIO,
                        "n_within_target": sum(r <= TARGET_RATIO for r in ratios), "n": len(rows),
                        "all_same_weights": all(r["same_weights"] for r in rows)},
            "timing": {"threads": threads, "allocator": allocator,
                       "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}}


def train(cfg: dict, device: str = "auto") -> dict:
    """Measure ``cfg`` on the device it names (``device`` is not used: the profile chose it)."""
    return run(cfg)


def report(metrics: dict, threads: int | None = None) -> str:
    """The printed table: per net, wall ms per step of each loop, their ratio (median fit /
    median plain) and the median of the repetitions' own ratios, the same ratio of process CPU
    time, page faults per step of each loop, whether the weights matched; then the summary
    against :data:`TARGET_RATIO`."""
    lines = [f"{'net':6s} {'batch':>5s} {'steps':>5s} {'fit ms':>8s} {'plain ms':>8s} {'ratio':>6s} {'pairs':>6s} "
             f"{'cpu ratio':>9s} {'faults/step fit, plain':>22s}  same weights"]
    for r in metrics["rows"]:
        faults = f"{r['fit_faults']:.0f}, {r['plain_faults']:.0f}"
        lines.append(f"{r['net']:6s} {r['batch_size']:5d} {r['steps']:5d} {1e3 * r['fit_s']:8.2f} "
                     f"{1e3 * r['plain_s']:8.2f} {r['ratio']:6.3f} {r['pair_ratio']:6.3f} {r['cpu_ratio']:9.3f} "
                     f"{faults:>22s}  {'yes' if r['same_weights'] else 'NO'}")
    where = "" if threads is None else f" ({threads} thread{'s' if threads != 1 else ''})"
    lines.append(f"fit_classifier / plain loop{where}: at most {metrics['ratio_max']:.3f}x; "
                 f"{metrics['n_within_target']} of {metrics['n']} nets within {metrics['target_ratio']:g}x")
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "benchmark", Config, configs, train, label_keys=("device", "threads"),
                        measures_on="device")


def _header(cfg: Config, device: str) -> str:
    steps = ", ".join(f"{n} {cfg.steps[n]}" for n in cfg.nets)
    return (f"fit_classifier against a plain loop, profile {cfg.profile}, steps per repetition: {steps}, "
            f"{cfg.repeats} repetitions each, device {cfg.device}")


#: ``benchmarks/train_throughput.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`).
COMMAND = BenchmarkCommand(
    make_config=lambda profile, device, args: make_config(profile),
    header=_header,
    measure=lambda cfg, device: run(cfg.to_dict()),
    table=lambda rec, cfg: report(rec["metrics"], rec["timing"]["threads"]),
    quick="a few steps per net (smoke test)",
    devices=("cpu", "cuda"),
)
