"""Benchmark ``cifar_anchor``: airbench94 itself beside our airbench-style baseline, same
data, same device, one process. The anchor of the chapter "Factorized convolutions in fast
CIFAR-10 training". The entry point is ``benchmarks/airbench_anchor.py`` (prints the table);
the record comes from ``run_experiment("cifar_anchor", profile)`` like any run.

Profiles (the grid, :func:`make_config` with the profile's defaults): ``full`` 3 seeds on a CUDA
GPU with the installed torchvision; ``cpu`` 5 seeds on the CPU at ``cifar_baselines``' cpu
scale, ``smoke`` 1 seed on the fixture, both with the torchvision stand-in (the CPU machines'
torchvision does not import beside their torch). The command line's options make other
configs (``--runs``, ``--acc-tolerance``, ``--ours``). ``--profile cpu --ours cifar_fulldata``
is the comparison at full-data scale on the CPU: airbench94 beside ``cifar_fulldata``'s dense
width-1/2 net (all 50,000 images, airbench94's own 9.9 epochs at batch 1024, seeds 0-2;
hours), recorded with ``--record`` like any other config. Through the store it resumes seed by
seed (:func:`measure`): stop it between seeds and start it again later, each pair's own
``load`` says whether that stretch was quiet.

    python benchmarks/airbench_anchor.py                # on a CUDA GPU: 3 runs of each, prints the table
    python benchmarks/airbench_anchor.py --record       # ... through the run store (record cifar_anchor)
    python benchmarks/airbench_anchor.py --runs 5       # seeds 0..4
    python benchmarks/airbench_anchor.py --profile cpu --torchvision-shim --record   # this CPU machine
    python benchmarks/airbench_anchor.py --profile cpu --ours cifar_fulldata --torchvision-shim --record

``--profile full`` (the default) is the comparison the chapter's target is about and needs a
CUDA GPU (airbench94 trains in fp16 with ``.half().cuda()`` and times with CUDA events);
without one it exits with a one-line error (status 2). ``--profile cpu`` and ``--profile
smoke`` run the same comparison on the CPU at the reduced scale of ``cifar_baselines``' profile
of that name (see "On the CPU" below). Needs the pip package
``airbench==0.1.8`` (``benchmarks/requirements.txt``; not vendored: it is imported, never
copied) and the torchvision that pairs with the machine's torch (airbench's ``utils`` imports
it; it uses only ``transforms.Normalize`` and, for a download we never make,
``datasets.CIFAR10``). The lent GPU machines have torch 2.11.0 with torchvision 0.26.0, so only
airbench travels. On such a machine, from the repository root (prepared here first):

    .venv/bin/pip wheel -q --no-deps --no-binary airbench -w tmp/wheels airbench==0.1.8   # here, once
    # device run, carry ["tmp/wheels", "data/raw/cifar10/cifar10-jpeg-q75.tar.xz"], timeout_s 600:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site tmp/wheels/airbench-0.1.8-py3-none-any.whl && PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 timeout 540 python3 benchmarks/airbench_anchor.py --record && tar czf $OUT/cifar_anchor.tgz data/results/cifar_anchor

(``tmp/`` is git-ignored; about 3 minutes there: 20 s to decode the JPEG archive into the
cache, then 3 runs of each.) If torchvision cannot be imported there, ``--torchvision-shim``
puts stand-ins for exactly those two names in its place (``Normalize`` computes
``(x - mean) / std`` per channel in the input's dtype, as torchvision's does; ``CIFAR10``
raises) and the record says so.

**Data.** Both methods see the same images: the ``full`` profile's data of
``cifar_baselines`` (``cifar_common.load_data``: by default the project's JPEG quality-75
re-encoding of CIFAR-10, **lossy**, labelled so in the table and the record). airbench's
``CifarLoader(path)`` reads ``<path>/train.pt`` and ``<path>/test.pt`` when they exist (else
it downloads through torchvision, which the GPU machine cannot): dicts of ``images`` uint8
[N, 32, 32, 3], ``labels`` int64 [N] and ``classes``. :func:`write_airbench_data` writes our
cache in that form into ``<tmp>/cifar10/`` and the runs execute with ``<tmp>`` as the working
directory, because airbench's ``train`` opens its test set as ``CifarLoader('cifar10',
train=False)``, relative to it. The training set is written in a seeded random order:
airbench whitens on ``images[:5000]``, the canonical file's first 5,000 (in random order),
while our image tree is sorted by class. airbench normalizes with its built-in CIFAR-10 mean
and std; ours with the training set's own.

**On the CPU.** ``cpu``: the 5,000-image training subset, 2,000 test images, the airbench
net at width 1/2 (channels 32/128/128), 4 epochs at batch 128 (``cifar_baselines`` cpu, seeds
0-4); ``smoke``: the committed fixture, width 1/8, one epoch (seconds; the tests run it).
airbench94's own code runs there unchanged apart from where it puts tensors, through
:func:`cpu_runtime`: its net is built by its ``make_net94`` with the widths of our config, in
fp32 and left on the CPU (``Module.half``/``Module.cuda`` do nothing while it is built); its
``CifarLoader`` loads onto the CPU and holds its images (its fp16 values) in fp32; its CUDA
events read the wall clock and ``torch.cuda.synchronize`` does nothing. Its recipe is given
our config's batch size and epochs (at full scale those are its own defaults, 1024 and 9.9);
lr, momentum, decay, label smoothing, whitening, Lookahead and TTA are its own. What this
measures: whether our re-implementation reaches airbench94's accuracy on the same images at
the same budget, and how their CPU times compare. It says nothing about the GPU time target.

**What runs.** airbench94 exactly as its README says, ``airbench.warmup94()`` once (its
warm-up: the whitening and one step), then per seed ``torch.manual_seed(seed);
airbench.train94(loader)`` with the loader ``train94`` would build itself (batch 1024,
flip + translate 2, alternating flip); and our ``cifar_baselines`` ``full`` config of the
airbench net at width 1 (``cifar_common.train_config``, warm-up on random data inside each
run), alternating airbench and ours seed by seed.

**Timing.** airbench94: its own CUDA-event total (whitening + training epochs + the final TTA
evaluation, read from its printed table), and our synchronized wall clock around the whole
``train94`` call minus its per-epoch logging evaluations (so it also counts what the events
leave out: building the net, loading the test set). Ours: ``timing.total_s`` of
:func:`factorlab.train.cifar_recipe.fit_fast` (whitening + training steps + the final TTA evaluation,
synchronized; warm-up and per-epoch evaluations excluded), the same span as airbench's events.
Accuracy: TTA level 2 (mirror + translate) on the whole test set for both. The ratio ours /
airbench94 of the median times is the headline (target: at most 1.2x "at the same accuracy",
taken as our mean accuracy no more than ``--acc-tolerance`` below airbench94's). airbench
trains fp16 weights; ours fp32 weights under bf16 autocast, channels-last; neither compiled.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import math
import os
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from factorlab.data.cifar10 import VARIANTS, is_lossy
from factorlab.experiments.benchmark_cli import BenchmarkCommand
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.results.checkpoints import next_slot
from factorlab.results.load import load_snapshot, load_summary
from factorlab.results.provenance import utc_iso

AIRBENCH_VERSION = "0.1.8"
NAME = "cifar_anchor"
TARGET_RATIO = 1.2
#: Default tolerance of "the same accuracy" (fraction): airbench94's seed-to-seed std is ~0.0014.
ACC_TOLERANCE = 0.002
MAX_RUNS = 5  # the seeds of cifar_baselines' full (and cpu) airbench runs at the largest width
#: airbench's log columns (airbench/utils.py ``logging_columns_list``, stripped).
LOG_COLUMNS = ("run", "epoch", "train_loss", "train_acc", "val_acc", "tta_val_acc", "total_time_seconds")


class AnchorError(RuntimeError):
    """The anchor cannot run here (no CUDA, airbench or torchvision missing); one line."""


# -- what can be checked without a GPU ------------------------------------------------------

def cuda_error(available: bool | None = None) -> str | None:
    """The one-line reason the anchor cannot run here, or None when a CUDA GPU is available."""
    if available is None:
        available = torch.cuda.is_available()
    if available:
        return None
    built = torch.version.cuda or "none (CPU-only build)"
    return (f"airbench_anchor needs a CUDA GPU: airbench94 runs only on CUDA in fp16 (.half().cuda(), CUDA events), "
            f"and none is available here (torch {torch.__version__}, CUDA build: {built}); run it on a GPU machine "
            "as benchmarks/README.md shows")


def airbench_split(x: torch.Tensor, y: torch.Tensor, classes, order: torch.Tensor | None = None) -> dict:
    """One split in the form of airbench's ``train.pt``/``test.pt`` (what its ``CifarLoader``
    saves from torchvision's CIFAR10 and reads back): ``images`` uint8 [N, 32, 32, 3] (HWC),
    ``labels`` int64 [N], ``classes`` (list of str), from our uint8 images ``x`` [N, 3, 32, 32]
    and int64 labels ``y`` [N], taken in ``order`` (indices; default as they are).

    Raises:
        ValueError: wrong dtypes or shapes.
    """
    if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != (3, 32, 32):
        raise ValueError(f"images must be uint8 [N, 3, 32, 32], got {x.dtype} {tuple(x.shape)}")
    if y.dtype != torch.int64 or tuple(y.shape) != (x.shape[0],):
        raise ValueError(f"labels must be int64 [{x.shape[0]}], got {y.dtype} {tuple(y.shape)}")
    if order is not None:
        x, y = x[order], y[order]
    return {"images": x.permute(0, 2, 3, 1).contiguous().cpu(), "labels": y.contiguous().cpu(),
            "classes": list(classes)}


def write_airbench_data(data, root: str | os.PathLike, seed: int = 0) -> Path:
    """Write ``data`` (a :class:`factorlab.data.cifar10.CIFAR10Data`) as airbench's
    ``<root>/cifar10/train.pt`` and ``test.pt``; the training set in the random order of
    ``seed`` (airbench whitens on its first 5,000 images), the test set as it is. Returns the
    folder ``<root>/cifar10``."""
    folder = Path(root) / "cifar10"
    folder.mkdir(parents=True, exist_ok=True)
    order = torch.randperm(data.train_y.shape[0], generator=torch.Generator().manual_seed(seed))
    torch.save(airbench_split(data.train_x.cpu(), data.train_y.cpu(), data.classes, order), folder / "train.pt")
    torch.save(airbench_split(data.test_x.cpu(), data.test_y.cpu(), data.classes), folder / "test.pt")
    return folder


def parse_airbench_log(text: str) -> dict:
    """airbench's printed table (``train94(verbose=True)``) as ``{"epochs": [row, ...],
    "final": row}``: one dict per row with the keys of :data:`LOG_COLUMNS` (numbers as float,
    the epoch as int, empty cells None); ``final`` is the ``eval`` row (``tta_val_acc`` and
    ``total_time_seconds``, its CUDA-event time).

    Raises:
        ValueError: no header or no ``eval`` row (airbench's output changed, or it stopped early).
    """
    rows, header_seen = [], False
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")):
            continue
        cells = [c.strip() for c in line[1:-1].split("|")]
        if tuple(cells) == LOG_COLUMNS:
            header_seen = True
            continue
        if header_seen and len(cells) == len(LOG_COLUMNS):
            row = {}
            for name, cell in zip(LOG_COLUMNS, cells):
                if cell == "":
                    row[name] = None
                elif name in ("run", "epoch"):
                    row[name] = int(cell) if cell.lstrip("-").isdigit() else cell
                else:
                    row[name] = float(cell)
            rows.append(row)
    if not header_seen:
        raise ValueError(f"no airbench table header {LOG_COLUMNS} in its output:\n{text}")
    final = [r for r in rows if r["epoch"] == "eval"]
    if not final or final[-1]["total_time_seconds"] is None or final[-1]["tta_val_acc"] is None:
        raise ValueError(f"airbench's output has no final 'eval' row with tta_val_acc and total_time_seconds:\n{text}")
    return {"epochs": [r for r in rows if isinstance(r["epoch"], int)], "final": final[-1]}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        raise ValueError("no values")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _stats(runs: list[dict], keys: tuple[str, ...]) -> dict:
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in runs]
        out[f"{k}_mean"], out[f"{k}_std"] = mean_std(vals)
        out[f"{k}_median"] = statistics.median(vals)
    return out


def summarize(airbench_runs: list[dict], ours_runs: list[dict], target: float = TARGET_RATIO,
              acc_tolerance: float = ACC_TOLERANCE) -> dict:
    """The comparison. ``airbench_runs``: dicts with ``time_s`` (its CUDA-event total),
    ``wall_s`` (our clock) and ``acc``; ``ours_runs``: ``time_s`` (``total_s``) and ``acc``
    (fractions). Returns per-method mean/std/median of each, ``ratio`` (ours / airbench94 of
    the median times: the headline), ``ratio_mean`` (of the means), ``ratio_wall`` (ours /
    airbench94's wall clock, medians), ``acc_diff`` (ours - airbench94, means) and
    ``acc_diff_se`` (its standard error, from the two sample standard deviations; 0 with one
    run each), ``time_ok``
    (``ratio <= target``), ``acc_ok`` (``acc_diff >= -acc_tolerance``) and ``target_met``."""
    if not airbench_runs or not ours_runs:
        raise ValueError("need at least one run of each method")
    a = _stats(airbench_runs, ("time_s", "wall_s", "acc"))
    o = _stats(ours_runs, ("time_s", "acc"))
    ratio = o["time_s_median"] / a["time_s_median"]
    acc_diff = o["acc_mean"] - a["acc_mean"]
    acc_diff_se = math.sqrt(a["acc_std"] ** 2 / len(airbench_runs) + o["acc_std"] ** 2 / len(ours_runs))
    time_ok, acc_ok = ratio <= target, acc_diff >= -acc_tolerance
    return {"airbench": a, "ours": o, "ratio": ratio, "ratio_mean": o["time_s_mean"] / a["time_s_mean"],
            "ratio_wall": o["time_s_median"] / a["wall_s_median"], "acc_diff": acc_diff, "acc_diff_se": acc_diff_se,
            "target_ratio": target,
            "acc_tolerance": acc_tolerance, "time_ok": time_ok, "acc_ok": acc_ok, "target_met": time_ok and acc_ok,
            "n_airbench": len(airbench_runs), "n_ours": len(ours_runs)}


def data_label(variant: str) -> str:
    """The data line of the table: the variant, and LOSSY where it is the JPEG re-encoding."""
    desc = VARIANTS.get(variant, variant)
    if is_lossy(variant):
        return (f"data: {variant}, LOSSY ({desc}): not the canonical CIFAR-10, so accuracies are not comparable "
                "with published ones (expect 1 to 3 points lower); both methods see the same images")
    return f"data: {variant} ({desc}); both methods see the same images"


def format_table(s: dict, variant: str, header: str = "", device: str = "cuda", width: float = 1.0,
                 ours: str = "cifar_baselines") -> str:
    """The printed comparison of :func:`summarize`'s ``s``: time (s) and test accuracy (%,
    TTA level 2) per method as mean ± std and median, then the ratio and the target (which is
    about the GPU: on the CPU, ``device="cpu"``, the table says so); ``ours`` names the
    experiment of our side in its row."""
    a, o = s["airbench"], s["ours"]

    def t(d, k):
        return f"{d[k + '_mean']:7.3f} ± {d[k + '_std']:6.3f} {d[k + '_median']:8.3f}"

    def acc(d):
        return f"{100 * d['acc_mean']:6.2f} ± {100 * d['acc_std']:4.2f}"

    w = 46
    lines = [header] if header else []
    lines += [
        data_label(variant),
        f"{'method':{w}s} {'time s: mean ± std':>17s} {'median':>8s}   {'test acc %':>13s}",
        f"{'airbench94 (airbench package, ' + ('CUDA events)' if device == 'cuda' else 'on the CPU)'):{w}s} "
        f"{t(a, 'time_s')}   {acc(a)}",
        f"{'airbench94, our wall clock':{w}s} {t(a, 'wall_s')}",
        f"{'ours: ' + ours + ' airbench, width ' + format(width, 'g'):{w}s} {t(o, 'time_s')}   {acc(o)}",
        f"ratio ours / airbench94 (median times): {s['ratio']:.2f}x (of means {s['ratio_mean']:.2f}x; against "
        f"airbench94's wall clock {s['ratio_wall']:.2f}x)"
        + (f"; target <= {s['target_ratio']:g}x: {'met' if s['time_ok'] else 'NOT met'}" if device == "cuda" else ""),
        f"accuracy ours - airbench94: {100 * s['acc_diff']:+.2f} ± {100 * s['acc_diff_se']:.2f} points (standard "
        "error)" + (f"; the same accuracy (at most {100 * s['acc_tolerance']:.2f} points below): "
                    f"{'yes' if s['acc_ok'] else 'NO'}" if device == "cuda" else ""),
        f"runs: {s['n_airbench']} airbench94, {s['n_ours']} ours"]
    if device == "cuda":
        lines.append(f"target (within {s['target_ratio']:g}x of airbench94's time at the same accuracy): "
                     f"{'met' if s['target_met'] else 'NOT met'}")
    else:
        lines.append("on the CPU at reduced scale: no verdict on the 1.2x target, which is about the GPU; this compares "
                     "the two implementations at equal budget")
    return "\n".join(lines)


def torchvision_shim() -> types.ModuleType:
    """A stand-in ``torchvision`` module with the two names airbench 0.1.8 uses:
    ``transforms.Normalize`` (per channel ``(x - mean) / std`` in ``x``'s dtype and device,
    not in place, as torchvision's tensor path computes it) and ``datasets.CIFAR10`` (raises:
    the anchor always provides the data files). Only for a machine whose torchvision cannot
    be imported (see :func:`install_torchvision_shim`); the record says when it was used."""
    class Normalize:
        def __init__(self, mean, std, inplace: bool = False):
            self.mean, self.std = mean, std

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            return x.sub(mean).div(std)

    class CIFAR10:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision shim: no CIFAR-10 download; airbench_anchor writes train.pt/test.pt")

    tv = types.ModuleType("torchvision")
    tv.__version__ = "shim"
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.Normalize = Normalize
    tv.datasets = types.ModuleType("torchvision.datasets")
    tv.datasets.CIFAR10 = CIFAR10
    return tv


def install_torchvision_shim() -> None:
    """Replace any (broken) ``torchvision`` in ``sys.modules`` by :func:`torchvision_shim`."""
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    tv = torchvision_shim()
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                        "torchvision.datasets": tv.datasets})


def import_airbench(shim: bool = False, force_shim: bool = False):
    """``(airbench, torchvision version or "shim")``; ``shim``: use the stand-in where
    torchvision cannot be imported; ``force_shim``: use it in any case (a config that says it
    was used).

    Raises:
        AnchorError: airbench is missing or not version 0.1.8, torchvision cannot be imported
            (and ``shim`` is off), or airbench was already imported with the real torchvision
            where ``force_shim`` asks for the stand-in.
    """
    try:
        version = importlib.metadata.version("airbench")
    except importlib.metadata.PackageNotFoundError:
        raise AnchorError(f"airbench is not installed: pip install --no-deps airbench=={AIRBENCH_VERSION} "
                          "(benchmarks/requirements.txt; on a GPU machine carry its wheel, see benchmarks/README.md)")
    if version != AIRBENCH_VERSION:
        raise AnchorError(f"airbench {version} is installed; the anchor is pinned to {AIRBENCH_VERSION}")
    if force_shim:
        current = sys.modules.get("torchvision")
        if "airbench" in sys.modules and getattr(current, "__version__", None) != "shim":
            raise AnchorError("airbench was imported with the real torchvision in this process, and the config "
                              "asks for the torchvision stand-in; run it in a fresh process")
        if getattr(current, "__version__", None) != "shim":
            install_torchvision_shim()
        tv_version = "shim"
    else:
        try:
            import torchvision
            tv_version = torchvision.__version__
        except Exception as err:  # ImportError, or torchvision built for another torch
            if not shim:
                raise AnchorError(f"airbench imports torchvision, which cannot be imported here "
                                  f"({type(err).__name__}: {err}); install the torchvision of this torch, or pass "
                                  "--torchvision-shim") from err
            install_torchvision_shim()
            tv_version = "shim"
    import airbench
    return airbench, tv_version


# -- on the GPU -----------------------------------------------------------------------------

#: Where each profile runs (the comparison at full scale is about a GPU).
PROFILE_DEVICE = {"full": "cuda", "cpu": "cpu", "smoke": "cpu"}


#: The experiments whose dense airbench configs can be our side of the comparison.
OURS_EXPERIMENTS = ("cifar_baselines", "cifar_fulldata")


def anchor_pool(profile: str = "full", experiment: str = "cifar_baselines") -> list[dict]:
    """Every ``profile`` config of ``experiment``'s dense airbench net at the width with the
    most seeds (the largest such), by seed (see :func:`anchor_configs`)."""
    from factorlab.experiments import get_experiment

    if experiment not in OURS_EXPERIMENTS:
        raise ValueError(f"our side of the anchor comes from one of {', '.join(OURS_EXPERIMENTS)}, not {experiment!r}")
    grid = [c for c in get_experiment(experiment).grid(profile) if c["net"] == "airbench" and c["factorize"] is None]
    seeds: dict[float, int] = {}
    for c in grid:
        seeds[c["width"]] = seeds.get(c["width"], 0) + 1
    width = max(seeds, key=lambda w: (seeds[w], w))
    return sorted((c for c in grid if c["width"] == width), key=lambda c: c["seed"])


def anchor_configs(n: int, profile: str = "full", experiment: str = "cifar_baselines") -> list[dict]:
    """The first ``n`` (by seed) ``profile`` configs of ``experiment``'s dense airbench net at
    the width with the most seeds (the largest such): our side of the comparison. For
    ``cifar_baselines`` that is its largest width (1 in ``full``, 1/2 in ``cpu``); for
    ``cifar_fulldata`` (``cpu``: all 50,000 images, airbench94's own schedule) width 1/2."""
    configs = anchor_pool(profile, experiment)
    if not 1 <= n <= len(configs):
        raise ValueError(f"--runs must be in 1..{len(configs)} (the seeds of those configs), got {n}")
    return configs[:n]


class WallClockEvent:
    """Stands in for ``torch.cuda.Event(enable_timing=True)`` on the CPU: ``record()`` reads
    the wall clock, ``elapsed_time(end)`` is in milliseconds, as CUDA events give it."""

    def __init__(self, enable_timing: bool = False, **kwargs):
        self.t = None

    def record(self, *args) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, end: "WallClockEvent") -> float:
        return 1e3 * (end.t - self.t)


@contextlib.contextmanager
def cpu_runtime(airbench):
    """Run airbench94's own code on the CPU (see "On the CPU" in the module docstring):
    inside, ``torch.cuda.Event`` is :class:`WallClockEvent`, ``torch.cuda.synchronize`` does
    nothing, and ``airbench.utils.CifarLoader`` (which ``train`` uses for the test set) loads
    onto the CPU and holds fp32 images; everything is put back on exit. Yields the loader
    class."""
    utils = airbench.utils
    base = utils.CifarLoader

    class CpuCifarLoader(base):
        def __init__(self, path, train=True, batch_size=500, aug=None, drop_last=None, shuffle=None, altflip=False,
                     gpu="cpu"):
            super().__init__(path, train, batch_size, aug, drop_last, shuffle, altflip, gpu)
            # its fp16 pixel values (uint8 / 255 in fp16, as on the GPU) held in fp32, set before the
            # first epoch (airbench allows it then)
            self.images = self.images.float()

    saved = (torch.cuda.Event, torch.cuda.synchronize)
    torch.cuda.Event, torch.cuda.synchronize = WallClockEvent, lambda *a, **k: None
    utils.CifarLoader = CpuCifarLoader
    try:
        yield CpuCifarLoader
    finally:
        torch.cuda.Event, torch.cuda.synchronize = saved
        utils.CifarLoader = base


def cpu_make_net(airbench, channels: tuple[int, int, int]):
    """A ``make_net`` for ``train94``: airbench94's ``make_net94`` with block widths
    ``channels``, fp32, on the CPU (its ``.half().cuda()`` do nothing while it builds)."""
    def make_net():
        module = torch.nn.Module
        saved = (module.half, module.cuda)
        module.half = module.cuda = lambda self, *a, **k: self
        try:
            return airbench.lib_airbench94.make_net94(
                widths={"block1": channels[0], "block2": channels[1], "block3": channels[2]})
        finally:
            module.half, module.cuda = saved
    return make_net


def run_airbench_once(airbench, loader, seed: int, log=print, *, device: torch.device | None = None,
                      **train_kwargs) -> dict:
    """One ``train94`` run (seeded) with its table captured: its CUDA-event time and TTA
    accuracy, our wall clock without the per-epoch logging evaluations, the table.
    ``train_kwargs`` go to ``train94`` (the CPU run's ``epochs`` and ``make_net``)."""
    from factorlab.train.device import synchronize

    device = device or torch.device("cuda")
    utils = airbench.utils
    real_evaluate = utils.evaluate
    evals: list[tuple[float, float]] = []  # (seconds, accuracy) of every evaluate() call

    def timed_evaluate(*args, **kwargs):
        synchronize(device)
        t0 = time.perf_counter()
        acc = real_evaluate(*args, **kwargs)
        synchronize(device)
        evals.append((time.perf_counter() - t0, acc))
        return acc

    out = io.StringIO()
    torch.manual_seed(seed)
    utils.evaluate = timed_evaluate  # train() looks evaluate up in airbench.utils at call time
    try:
        with contextlib.redirect_stdout(out):
            synchronize(device)
            t0 = time.perf_counter()
            model = airbench.train94(loader, verbose=True, **train_kwargs)
            synchronize(device)
            wall = time.perf_counter() - t0
    finally:
        utils.evaluate = real_evaluate
    text = out.getvalue()
    log(text.rstrip())
    parsed = parse_airbench_log(text)
    logging_s = sum(s for s, _ in evals[:-1])  # all but the last call: the per-epoch val_acc rows
    acc = float(evals[-1][1])  # the final TTA evaluation, unrounded
    if abs(acc - parsed["final"]["tta_val_acc"]) > 1e-4:
        raise RuntimeError(f"airbench's printed tta_val_acc {parsed['final']['tta_val_acc']} != evaluated {acc}")
    return {"seed": seed, "time_s": parsed["final"]["total_time_seconds"], "wall_s": wall - logging_s,
            "wall_total_s": wall, "logging_eval_s": logging_s, "acc": acc,
            "params_all": sum(p.numel() for p in model.parameters()), "epochs": parsed["epochs"]}


def resumed_pairs(slot, seeds: list[int]) -> tuple[list[dict], list[dict]]:
    """The (airbench94, ours) runs an earlier process of the same record saved in ``slot`` (a
    :class:`factorlab.results.checkpoints.Slot`, or None: nothing), when they are the first
    seeds of ``seeds`` on both sides; else two empty lists (the comparison starts over)."""
    saved = slot.load() if slot is not None else None
    if not saved:
        return [], []
    a, o = list(saved["airbench_runs"]), list(saved["ours_runs"])
    done = [r["seed"] for r in a]
    if [r["seed"] for r in o] != done or done != seeds[:len(done)]:
        return [], []
    return a, o


def measure(cfg: dict, log=print) -> dict:
    """Run the anchor described by the run config ``cfg``; the parts of a run record.

    Resumable seed by seed: inside the run store (``--record``), each finished pair of runs
    (airbench94's and ours, one seed) is saved in the run's checkpoint slot
    (:mod:`factorlab.results.checkpoints`, used only by the same code version), and a comparison
    started again measures only the seeds still missing, so the hours of ``--ours
    cifar_fulldata`` can fill over several quiet stretches. Each run says how busy the machine
    was during its pair (``load``, :func:`factorlab.results.load.load_summary`: its own
    ``quiet`` flag) and when the process that measured it started (``process_started``)."""
    from factorlab.experiments import cifar_common as cc

    airbench, tv_version = import_airbench(force_shim=cfg["torchvision"] == "shim")
    dev = torch.device(cfg["device"])
    configs = anchor_configs(cfg["runs"], cfg["profile"], cfg["ours_experiment"])
    recipe = configs[0]["recipe"]
    channels = tuple(cc.build_model(configs[0]).channels)
    hyp = airbench.lib_airbench94.hyp
    if dev.type == "cuda":  # airbench94 exactly as published: its own net and defaults
        if channels != tuple(hyp["net"]["widths"].values()) or recipe["batch_size"] != hyp["opt"]["batch_size"] \
                or recipe["epochs"] != hyp["opt"]["train_epochs"]:
            raise RuntimeError(f"our config (channels {channels}, batch {recipe['batch_size']}, epochs "
                               f"{recipe['epochs']}) is not airbench94's own")
        runtime, train_kwargs = contextlib.nullcontext(), {}
    else:
        runtime = cpu_runtime(airbench)
        train_kwargs = {"epochs": recipe["epochs"], "make_net": cpu_make_net(airbench, channels)}
    data = cc.load_data(configs[0], torch.device("cpu"))
    if data.variant != cfg["dataset_variant"]:
        raise RuntimeError(f"data variant {data.variant!r} != config's {cfg['dataset_variant']!r}")
    slot = next_slot()
    airbench_runs, ours_runs = resumed_pairs(slot, [c["seed"] for c in configs])
    if airbench_runs:
        log(f"resuming: seeds {[r['seed'] for r in airbench_runs]} of both measured by an earlier process")
    with tempfile.TemporaryDirectory(prefix="airbench_anchor_") as tmp:
        write_airbench_data(data, tmp, seed=0)
        n_train, n_test = int(data.train_y.shape[0]), int(data.test_y.shape[0])
        del data
        # airbench's train() opens CifarLoader('cifar10', train=False), relative to the working directory
        with contextlib.chdir(tmp), runtime as cpu_loader_cls:
            loader_cls = airbench.CifarLoader if dev.type == "cuda" else cpu_loader_cls
            loader = loader_cls("cifar10", train=True, batch_size=recipe["batch_size"], aug=hyp["aug"],
                                altflip=True)  # what train94() builds by default (batch 1024 at full scale)
            todo = configs[len(airbench_runs):]
            if todo:
                with contextlib.redirect_stdout(io.StringIO()):
                    airbench.warmup94(loader, **train_kwargs)
            process = utc_iso(time.time())
            for c in todo:
                start = load_snapshot()
                log(f"airbench94, seed {c['seed']}:")
                ab = run_airbench_once(airbench, loader, c["seed"], log, device=dev, **train_kwargs)
                log(f"ours ({cc.family_of(c['factorize'])} airbench net, width {c['width']:g}), seed {c['seed']}:")
                rec = cc.train_config(c, str(dev))
                run = {"seed": c["seed"], "time_s": rec["timing"]["total_s"], "acc": rec["metrics"]["test_acc"],
                       "train_s": rec["timing"]["train_s"], "tta_s": rec["timing"]["tta_s"],
                       "test_acc_tta0": rec["metrics"]["test_acc_tta0"], "params_all": rec["model"]["params_all"]}
                log(f"  time {run['time_s']:.3f} s, test acc {100 * run['acc']:.2f} %")
                pair = {"load": load_summary(start), "process_started": process}
                airbench_runs.append({**ab, **pair})
                ours_runs.append({**run, **pair})
                if slot is not None:
                    slot.save({"airbench_runs": airbench_runs, "ours_runs": ours_runs})
            del loader
    s = summarize(airbench_runs, ours_runs, cfg["target_ratio"], cfg["acc_tolerance"])
    cuda = dev.type == "cuda"
    timing = {"device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
              "threads": torch.get_num_threads(),
              "airbench_precision": "fp16 (weights .half())" if cuda else "fp32 (on the CPU, see cpu_runtime)",
              "ours_precision": "bf16-autocast" if cuda else "fp32", "compiled": False, "torch": torch.__version__,
              "torchvision": tv_version, "airbench": importlib.metadata.version("airbench"),
              "airbench_time": ("CUDA events" if cuda else "its CUDA events read the wall clock") +
                               ": whitening + epochs + final TTA (its printed total_time_seconds)",
              "ours_time": "fit_fast total_s: whitening + training + final TTA, synchronized"}
    metrics = {**s, "dataset_variant": cfg["dataset_variant"], "lossy_data": is_lossy(cfg["dataset_variant"]),
               "n_train": n_train, "n_test": n_test, "airbench_runs": airbench_runs, "ours_runs": ours_runs,
               "pairs_quiet": sum(bool(r["load"]["quiet"]) for r in ours_runs),
               "processes": len({r["process_started"] for r in ours_runs})}
    return {"metrics": metrics, "timing": timing,
            "model": {"airbench_params_all": airbench_runs[0]["params_all"],
                      "ours_params_all": ours_runs[0]["params_all"], "channels": list(channels)}}


#: Seeds per method in each profile's grid config.
DEFAULT_RUNS = {"full": 3, "cpu": 5, "smoke": 1}
#: The torchvision of each profile's grid config: the GPU machines have one, the CPU machines
#: use the stand-in (their PyPI torchvision does not import beside their torch).
DEFAULT_TORCHVISION = {"full": "installed", "cpu": "shim", "smoke": "shim"}


@dataclass(kw_only=True)
class Config(RunConfig):
    """One anchor comparison: ``runs`` seeds (``seeds``) of airbench94 and of our
    ``cifar_baselines`` configs (``ours_keys``, their recipe ``ours_recipe``) on ``device``,
    the data variant, the airbench version and entry point, the target ratio and accuracy
    tolerance, and whether torchvision was the stand-in."""

    experiment: str
    profile: Profile
    device: Literal["cpu", "cuda"]
    runs: int
    seeds: list[int]
    dataset_variant: str
    airbench_version: str
    airbench_entry: str
    ours_experiment: str
    ours_keys: list[str]
    ours_recipe: dict[str, Any]
    target_ratio: float
    acc_tolerance: float
    torchvision: Literal["installed", "shim"]


def make_config(runs: int | None = None, torchvision: str | None = None, acc_tolerance: float = ACC_TOLERANCE,
                profile: str = "full", ours_experiment: str = "cifar_baselines") -> Config:
    """The config of one anchor comparison at ``profile``'s scale (its device:
    :data:`PROFILE_DEVICE`) against ``ours_experiment``'s dense airbench configs
    (:func:`anchor_configs`); ``runs`` and ``torchvision`` default to the profile's
    (:data:`DEFAULT_RUNS`, at most the seeds those configs have; :data:`DEFAULT_TORCHVISION`)."""
    from factorlab.data.cifar10 import default_variant
    from factorlab.results import config_hash

    check_profile(profile)
    if runs is None:
        runs = min(DEFAULT_RUNS[profile], len(anchor_pool(profile, ours_experiment)))
    configs = anchor_configs(runs, profile, ours_experiment)
    return Config(experiment=NAME, profile=profile, device=PROFILE_DEVICE[profile], runs=runs,
                  seeds=[c["seed"] for c in configs], dataset_variant=default_variant(),
                  airbench_version=AIRBENCH_VERSION, airbench_entry="warmup94(loader), then train94(loader) per seed",
                  ours_experiment=ours_experiment, ours_keys=[config_hash(c) for c in configs],
                  ours_recipe=configs[0]["recipe"], target_ratio=TARGET_RATIO, acc_tolerance=acc_tolerance,
                  torchvision=DEFAULT_TORCHVISION[profile] if torchvision is None else torchvision)


def config(runs: int, torchvision: str = "installed", acc_tolerance: float = ACC_TOLERANCE,
           profile: str = "full") -> dict:
    """:func:`make_config` as the dict the run store hashes."""
    return make_config(runs, torchvision, acc_tolerance, profile).to_dict()


def configs(profile: str) -> list[Config]:
    """The grid: one comparison per profile, with the profile's defaults (the comparison with
    ``cifar_fulldata`` is the script's ``--ours cifar_fulldata``, off the grid)."""
    return [make_config(profile=profile)]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def train(cfg: dict, device: str = "auto") -> dict:
    """Run the comparison of ``cfg`` on the device it names (``device`` is not used: the
    profile chose it); AnchorError (one line) where it cannot run."""
    problem = cuda_error() if cfg["device"] == "cuda" else None
    if problem:
        raise AnchorError(problem)
    return measure(cfg)


EXPERIMENT = Experiment(NAME, "benchmark", Config, configs, train, label_keys=("device", "runs", "torchvision"),
                        measures_on="device")


# -- the script benchmarks/airbench_anchor.py ------------------------------------------------

def _options(parser) -> None:
    parser.add_argument("--runs", type=int, default=None,
                        help=f"seeds per method: 1..{MAX_RUNS} (full, cpu) or 1 (smoke); default the profile's "
                             f"({', '.join(f'{p} {n}' for p, n in DEFAULT_RUNS.items())})")
    parser.add_argument("--acc-tolerance", type=float, default=ACC_TOLERANCE,
                        help="'the same accuracy': ours at most this far (a fraction) below airbench94's mean")
    parser.add_argument("--ours", choices=OURS_EXPERIMENTS, default="cifar_baselines",
                        help="the experiment whose dense airbench configs are our side (cifar_fulldata: all 50,000 "
                             "images at airbench94's own schedule, width 1/2 on the CPU)")
    parser.add_argument("--torchvision-shim", action="store_true",
                        help="stand in for torchvision's Normalize where torchvision cannot be imported")


def _command_config(profile: str, device: str, args) -> Config:
    """The script's config; AnchorError (or ValueError: bad ``--runs``) before any data are read."""
    problem = cuda_error() if device == "cuda" else None
    if problem:
        raise AnchorError(problem)
    ours = getattr(args, "ours", "cifar_baselines")
    if args.runs is not None:
        anchor_configs(args.runs, profile, ours)  # ValueError for a number of runs the grid has no seeds for
    _, tv_version = import_airbench(args.torchvision_shim)  # fail early, before the data are read
    return make_config(args.runs, "shim" if tv_version == "shim" else "installed", args.acc_tolerance, profile, ours)


def _command_header(cfg: Config, device: str) -> str:
    _, tv_version = import_airbench(cfg.torchvision == "shim")  # imported already: the version in use
    device_name = torch.cuda.get_device_name(0) if cfg.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return (f"profile {cfg.profile}, device {device_name}, torch {torch.__version__}, airbench {AIRBENCH_VERSION}, "
            f"torchvision {tv_version}, {cfg.runs} runs each")


def _command_table(rec: dict, cfg: Config) -> str:
    m = rec["metrics"]
    return "\n" + format_table(m, m["dataset_variant"], header=f"profile {cfg.profile}, device "
                               f"{rec['timing']['device_name']}, seeds {cfg.seeds}", device=cfg.device,
                               width=anchor_configs(1, cfg.profile, cfg.ours_experiment)[0]["width"],
                               ours=cfg.ours_experiment)


#: ``benchmarks/airbench_anchor.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`): the
#: profile (default ``full``, on a CUDA GPU) chooses the device.
COMMAND = BenchmarkCommand(make_config=_command_config, measure=lambda cfg, device: measure(cfg.to_dict()),
                           table=_command_table, header=_command_header, profile_device=PROFILE_DEVICE,
                           options=_options, errors=(ValueError, AnchorError))
