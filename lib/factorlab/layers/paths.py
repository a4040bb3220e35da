"""Candidate computations ("paths") of a factorized layer and how one is chosen: measured
(``autotune``) or by a roofline cost model calibrated on the machine.

A factorized layer can compute its output in several ways: each contraction order of the input
with its factors, partial rebuilds (some factors merged into one convolution kernel), and the
rebuilt dense weight followed by one dense product. Every way is a :class:`Candidate`: a
``prepare(factors) -> weights`` part that does not touch the input (cacheable while no
gradient is recorded), an ``apply(x, weights) -> y`` part, and the list of kernel calls
(:class:`Op`: FLOPs and tensor elements read + written) both parts make for one input shape.

Choosing (``FactorizedLayer._choose``), once per key (input shape, dtype, device, training or
inference mode, whether autograd records, memory format):

- ``force_path`` set on the layer: that path;
- measured, when :func:`autotune` is on (globally, ``factorlab.layers.autotune(True)``, usable
  as a context manager like ``torch.autograd.set_grad_enabled``) or the layer's own
  ``autotune`` attribute is True (False opts a layer out; None follows the global switch):
  every candidate is timed (:func:`time_candidate`: forward + backward when autograd records,
  forward with prepared weights otherwise) and the fastest is kept;
- otherwise the calibrated cost model: :func:`calibrate` measures the peak FLOP rate (a
  GEMM), the memory bandwidth (a copy) and the fixed cost of one kernel call, and how much of
  its roofline a typical call of each kind reaches; a path's predicted time is the sum over its
  calls of ``max(FLOPs / peak, bytes / bandwidth) / efficiency + overhead``
  (:meth:`Machine.predict`; the bandwidth of a copy in cache for calls that fit in it; where
  autograd records, each call also pays its backward, :data:`BACKWARD_CALLS` calls of its
  size; an einsum step declares the copies ``torch.einsum`` makes of its operands). The
  candidate with the fewest FLOPs is kept unless another is predicted faster by more than
  :data:`FLOPS_MARGIN` (10 %) of its time. Where no gradient is recorded (inference) the
  reference is the rebuilt weight instead (the dense layer's own product or convolution,
  cached), kept unless another path is predicted faster by more than
  :data:`INFERENCE_MARGIN` (5 %), the tolerance of the promise that an eval-mode factorized
  layer is never slower than the dense one; measured choices (``autotune``) apply the same
  rule to their timings.

Same machine, same choice: the calibration is measured once per machine (:func:`fingerprint`:
CPU model, cores, torch version and threads, device, dtype) and kept in a file
(:func:`calibration_file`: ``$XDG_CACHE_HOME/factorlab/machine-<fingerprint id>.json``, or the
folder in ``FACTORLAB_CACHE_DIR``) that every later process on the machine reads, so two runs
of one configuration pick the same paths and round alike (a corrupt file is measured again,
with a warning; :func:`recalibrate` or deleting the file measures again on purpose). With
``FACTORLAB_PATH_COST=flops`` the FLOP rule chooses instead, the same on every machine.
:func:`cost_model_info` says which rule and calibration a process used (run records keep it
with :func:`model_path_choices`). Measured choices (``autotune``) are timings and may differ
between runs.

FLOP counts: a layer's ``flops(shape)`` is the machine-independent count of its canonical path
(what run records and the book report); ``chosen_flops(shape)`` counts the path chosen here.

``torch.compile`` of a factored forward is not a candidate: inductor compiles work on this
CPU build but take far longer per layer and input shape than timing the eager candidates;
compile the model instead (the choice is made outside the graph, the chosen path's tensor ops
are traced).

When autograd does not record (``torch.no_grad`` or inference), ``prepare`` runs once and its
result is cached until a factor changes (``data_ptr`` and ``_version`` of every factor:
in-place optimizer steps and ``load_state_dict`` bump the version; writing through ``.data``
does not, so call ``layer.clear_path_cache()`` after that). The prepared part of a path is
then free, so an eval-mode layer whose factored paths are slower keeps the rebuilt weight and
costs one dense call.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from factorlab.clock import seconds_per_call, synchronize

_STATE = {"autotune": False, "machine": None}


class autotune:
    """Measured path choice for every factorized layer on (``autotune(True)``) or off
    (``autotune(False)``, the default), like ``torch.backends.cudnn.benchmark``. Takes effect
    when called; as a context manager it restores the previous setting on exit::

        factorlab.layers.autotune(True)          # from now on
        with factorlab.layers.autotune(True):    # only inside the block
            y = model(x)

    A layer's own ``autotune`` attribute (True / False) overrides the switch; None follows it.
    Choices already cached (per key) are kept: call ``layer.clear_path_cache()`` to re-choose.
    """

    def __init__(self, enabled: bool = True):
        if not isinstance(enabled, bool):
            raise ValueError(f"autotune takes True or False, got {enabled!r}")
        self.previous = _STATE["autotune"]
        _STATE["autotune"] = enabled

    def __enter__(self) -> "autotune":
        return self

    def __exit__(self, *exc) -> None:
        _STATE["autotune"] = self.previous


def is_autotune_enabled() -> bool:
    """The global switch set by :class:`autotune`."""
    return bool(_STATE["autotune"])


# -- costs ----------------------------------------------------------------------------------

#: Kinds of kernel call the cost model distinguishes (each has its own measured overhead and
#: efficiency): a pairwise einsum, a matrix product, a batched product of many small matrices
#: (``torch.bmm``), a dense convolution, a depthwise one (``gconv``: one channel in and out
#: per group), a grouped one with several channels in or out per group (``gconv_multi``, as
#: TT's spatial core over r_0 channels: CPU backends have no fast kernel for it), a copy.
OP_KINDS = ("einsum", "mm", "bmm", "conv", "gconv", "gconv_multi", "copy")
#: Kernel calls the backward pass makes per forward call of each kind, each costing about the
#: forward call (same FLOPs, elements and overhead): a product or convolution y = f(x, w)
#: needs the gradients of both operands (two calls of its size); a copy's gradient is one
#: copy back. The cost model's prediction with a gradient recorded is the forward's calls,
#: each times 1 + its backward calls (:meth:`Machine.predict` with ``grad=True``).
BACKWARD_CALLS = {"einsum": 2, "mm": 2, "bmm": 2, "conv": 2, "gconv": 2, "gconv_multi": 2, "copy": 1}


@dataclass(frozen=True)
class Op:
    """One kernel call: its ``kind`` (one of :data:`OP_KINDS`), FLOPs (2 per multiply-add,
    the package's convention) and tensor ``elements`` read and written (inputs + output)."""

    kind: str
    flops: int
    elements: int


@dataclass
class Candidate:
    """One way of computing a layer's output for one input shape.

    ``prepare()`` builds the input-independent tensors (rebuilt or merged weights) from the
    layer's factors; ``apply(x, prepared, bias)`` maps the input to the output, adding
    ``bias`` (None: none) in its last call where it can (a dense product or convolution
    takes it fused, as ``nn.Linear`` / ``nn.Conv2d`` do). ``prep_ops`` and
    ``ops`` are the kernel calls of each part; ``memory_format`` is the format the path
    computes in (an input in another format pays one conversion; the output stays in the
    path's format).
    """

    name: str
    prepare: Callable[[], tuple]
    apply: Callable[..., torch.Tensor]
    prep_ops: tuple[Op, ...]
    ops: tuple[Op, ...]
    memory_format: torch.memory_format = torch.contiguous_format
    #: What ``prepare()``'s result depends on besides the factors (None: the input shape;
    #: a path whose prepared weights are the same for every shape gives a constant).
    prep_key: object = None

    def flops(self, prepared: bool = False) -> int:
        """Forward FLOPs, without the prepared part when ``prepared``."""
        return sum(o.flops for o in (() if prepared else self.prep_ops) + self.ops)

    def elements(self, prepared: bool = False) -> int:
        """Tensor elements read and written by the forward pass (without the prepared part
        when ``prepared``)."""
        return sum(o.elements for o in (() if prepared else self.prep_ops) + self.ops)

    def run(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``apply(x, prepare(), bias)``: the uncached forward."""
        return self.apply(x, self.prepare(), bias)


@dataclass(frozen=True)
class Machine:
    """A roofline of one device and dtype: ``peak_flops`` (FLOP/s of a large GEMM),
    ``bandwidth`` (bytes/s of a large copy, read + write counted), ``overhead_s`` (seconds
    of one tiny call of each kind in :data:`OP_KINDS`), ``itemsize`` in bytes; for the cost
    model also ``cache_bandwidth`` (bytes/s of a copy that fits in cache) for calls moving at
    most ``cache_bytes``, and ``efficiency`` (the fraction of its roofline a typical call of
    each kind reaches: grouped convolutions and batched small products fall well short on
    CPUs; above 1 where the kind's kernels beat the GEMM the peak is measured on, as CPU
    convolutions often do)."""

    peak_flops: float
    bandwidth: float
    overhead_s: dict = field(default_factory=dict)
    itemsize: int = 4
    cache_bandwidth: float | None = None
    cache_bytes: int = 0
    efficiency: dict = field(default_factory=dict)

    def op_time(self, op: Op, overhead: bool = True) -> float:
        """Roofline seconds of one call: max(FLOPs / peak, bytes / bandwidth) (+ overhead)."""
        t = max(op.flops / self.peak_flops, op.elements * self.itemsize / self.bandwidth)
        return t + (self.overhead_s.get(op.kind, 0.0) if overhead else 0.0)

    def time(self, ops: Sequence[Op], overhead: bool = True) -> float:
        """Roofline seconds of a sequence of calls (the sum of :meth:`op_time`; with
        ``overhead=False`` the pure roofline at the large-copy bandwidth)."""
        return sum(self.op_time(o, overhead) for o in ops)

    def predict(self, ops: Sequence[Op], grad: bool = False) -> float:
        """The cost model's seconds of a sequence of forward calls: per call, max(FLOPs /
        peak, bytes / bandwidth) with the cache bandwidth for calls that fit in cache, divided
        by the kind's efficiency, plus its overhead; with ``grad`` (forward + backward, as
        :func:`time_candidate` measures), each call's seconds times 1 + its
        :data:`BACKWARD_CALLS`."""
        total = 0.0
        for op in ops:
            nbytes = op.elements * self.itemsize
            bw = self.cache_bandwidth if self.cache_bandwidth and nbytes <= self.cache_bytes else self.bandwidth
            t = max(op.flops / self.peak_flops, nbytes / bw) / self.efficiency.get(op.kind, 1.0)
            t += self.overhead_s.get(op.kind, 0.0)
            total += t * (1 + BACKWARD_CALLS.get(op.kind, 0)) if grad else t
        return total

    def flop_time(self, ops: Sequence[Op]) -> float:
        """The FLOP-only prediction: total FLOPs / peak."""
        return sum(o.flops for o in ops) / self.peak_flops

    def memory_bound(self, ops: Sequence[Op]) -> bool:
        """Whether the bytes / bandwidth terms outweigh the FLOPs / peak terms (summed over
        the calls, overheads excluded)."""
        compute = sum(o.flops / self.peak_flops for o in ops)
        memory = sum(o.elements * self.itemsize / self.bandwidth for o in ops)
        return memory > compute

    def to_dict(self) -> dict:
        """JSON-ready: peak FLOP/s, bandwidth bytes/s, overheads s, itemsize."""
        return {"peak_flops": self.peak_flops, "bandwidth": self.bandwidth, "overhead_s": dict(self.overhead_s),
                "itemsize": self.itemsize, "cache_bandwidth": self.cache_bandwidth, "cache_bytes": self.cache_bytes,
                "efficiency": dict(self.efficiency)}


# -- calibration ----------------------------------------------------------------------------

def best_time(fn: Callable[[], object], device: torch.device, repeats: int = 3, min_time: float = 2e-4) -> float:
    """Fastest of ``repeats`` samples of ``fn()`` in seconds after one untimed call; each
    sample loops ``fn`` until ``min_time`` seconds have passed and reports the mean per call.
    The minimum, not the median: on a shared machine other work only ever adds time."""
    fn()
    synchronize(device)
    return min(seconds_per_call(fn, device, min_time) for _ in range(repeats))


def calibrate(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, *, gemm: int | None = None,
              copy_elements: int | None = None, repeats: int = 3) -> Machine:
    """Measure a :class:`Machine` now: the FLOP rate of an n x n GEMM (``gemm`` = n; default
    384 on the CPU, 4096 on CUDA), the bandwidth of copying ``copy_elements`` elements
    (default 2**22 on the CPU, 2**27 on CUDA; read + write counted) and of copying 2**17
    (in cache), the time of a tiny einsum, matrix product, batched matrix product,
    convolution, depthwise and grouped convolution and copy (the per-call overheads), and the
    efficiency of a typical convolution, depthwise convolution, grouped convolution with 4
    output channels per group, einsum and batched product of small matrices (a weight
    expanded over the batch, as TT chains run): roofline time / measured time, overhead taken
    off. All forward calls: the backward is :data:`BACKWARD_CALLS` of them."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    n = gemm or (4096 if cuda else 384)
    m = copy_elements or (2 ** 27 if cuda else 2 ** 22)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    peak = 2 * n ** 3 / best_time(lambda: torch.mm(a, b), device, repeats)
    src = torch.randn(m, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    bandwidth = 2 * m * src.element_size() / best_time(lambda: dst.copy_(src), device, repeats)
    small = 2 ** 17
    cache_bw = 2 * small * src.element_size() / best_time(lambda: dst[:small].copy_(src[:small]), device, repeats)
    t2 = torch.randn(2, 2, device=device, dtype=dtype)
    img = torch.randn(1, 2, 2, 2, device=device, dtype=dtype)
    k = torch.randn(2, 2, 1, 1, device=device, dtype=dtype)
    kg = torch.randn(2, 1, 1, 1, device=device, dtype=dtype)
    conv2d = torch.nn.functional.conv2d
    overhead = {
        "einsum": best_time(lambda: torch.einsum("ab,bc->ac", t2, t2), device, repeats),
        "mm": best_time(lambda: torch.mm(t2, t2), device, repeats),
        "bmm": best_time(lambda: torch.bmm(t2[None], t2[None]), device, repeats),
        "conv": best_time(lambda: conv2d(img, k), device, repeats),
        "gconv": best_time(lambda: conv2d(img, kg, groups=2), device, repeats),
        "gconv_multi": best_time(lambda: conv2d(img, kg.repeat(2, 1, 1, 1), groups=2), device, repeats),
        "copy": best_time(lambda: t2.clone(), device, repeats),
    }
    m0 = Machine(peak_flops=peak, bandwidth=bandwidth, overhead_s=overhead, itemsize=src.element_size())
    # Efficiencies: typical calls of the factored paths, timed against their roofline.
    x = torch.randn(8, 32, 16, 16, device=device, dtype=dtype)
    w = torch.randn(32, 32, 3, 3, device=device, dtype=dtype)
    wd = torch.randn(32, 1, 3, 3, device=device, dtype=dtype)
    wm = torch.randn(128, 1, 3, 3, device=device, dtype=dtype)
    a = torch.randn(32, 16, 16, 8, device=device, dtype=dtype)
    b = torch.randn(8, 16, 16, device=device, dtype=dtype)
    mw = torch.randn(32, 16, device=device, dtype=dtype)
    mt = torch.randn(256, 16, 64, device=device, dtype=dtype)
    probes = {
        "conv": (lambda: conv2d(x, w, padding=1), Op("conv", 2 * 8 * 32 * 256 * 32 * 9, 2 * x.numel() + w.numel())),
        "gconv": (lambda: conv2d(x, wd, padding=1, groups=32), Op("gconv", 2 * 8 * 32 * 256 * 9, 2 * x.numel())),
        "gconv_multi": (lambda: conv2d(x, wm, padding=1, groups=32),
                        Op("gconv_multi", 2 * 8 * 128 * 256 * 9, 5 * x.numel())),
        "einsum": (lambda: torch.einsum("bijr,rjk->bik", a, b),
                   Op("einsum", 2 * 32 * 16 * 16 * 8 * 16, a.numel() + b.numel() + 32 * 16 * 16)),
        "bmm": (lambda: torch.bmm(mw.expand(256, 32, 16), mt),
                Op("bmm", 2 * 256 * 32 * 16 * 64, 256 * (32 + 16) * 64 + 32 * 16)),
    }
    efficiency = {}
    for kind, (fn, op) in probes.items():
        spent = best_time(fn, device, repeats) - overhead[kind]
        # Not capped at 1: a kind faster than the GEMM probe (CPU convolutions) is
        # predicted as fast as it runs; at most MAX_EFFICIENCY against a noisy tiny time.
        efficiency[kind] = min(MAX_EFFICIENCY, m0.op_time(op, overhead=False) / max(spent, 1e-9))
    return Machine(peak_flops=peak, bandwidth=bandwidth, overhead_s=overhead, itemsize=src.element_size(),
                   cache_bandwidth=cache_bw, cache_bytes=4 * small * src.element_size(), efficiency=efficiency)


#: Environment variable choosing the cost model, ``roofline`` (the default, calibrated once per
#: machine) or ``flops`` (:data:`FLOP_RULE`: the fewest FLOPs, ties to the first listed path;
#: the same choice on every machine and in every process, for runs that must replay bit for bit).
COST_MODEL_ENV = "FACTORLAB_PATH_COST"
#: Environment variable naming the folder of the calibration files (default
#: ``$XDG_CACHE_HOME/factorlab``, or ``~/.cache/factorlab`` when that is not set).
CACHE_DIR_ENV = "FACTORLAB_CACHE_DIR"
#: Version of what :func:`calibrate` measures; part of the fingerprint, so a new version
#: measures every machine again.
CALIBRATION_VERSION = 3  # 2: the bmm kind, efficiencies above 1; 3: the gconv_multi kind
#: The largest efficiency :func:`calibrate` records (a guard against a probe timed too short).
MAX_EFFICIENCY = 4.0
#: The FLOP rule as a machine (finite peak, free memory traffic, free calls).
FLOP_RULE = Machine(peak_flops=1e12, bandwidth=math.inf, overhead_s={}, itemsize=4)
#: The cost model keeps the candidate with the fewest FLOPs unless another is predicted faster
#: by more than this fraction of its time: calibration noise below it cannot flip a choice.
FLOPS_MARGIN = 0.1
#: Used instead of :data:`FLOPS_MARGIN` where no gradient is recorded, as in inference, where
#: the reference is the cached rebuilt weight (the dense layer's own computation): another
#: path is taken only if predicted (or, autotuned, measured) faster than it by more than this
#: fraction, so an eval-mode layer stays within 5 % of the dense layer (issue 19's target).
INFERENCE_MARGIN = 0.05

_MACHINES: dict = {}  # fingerprint id -> Machine, this process's


def cpu_model() -> str:
    """The CPU's model string (``model name`` of /proc/cpuinfo; ``platform.processor()`` or
    the architecture elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def fingerprint(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
    """What a calibration depends on: CPU model, logical cores, torch version, torch's CPU
    threads, device type (and GPU name on CUDA), dtype, :data:`CALIBRATION_VERSION`. Two
    processes with equal fingerprints share one calibration file."""
    device = torch.device(device)
    fp = {"version": CALIBRATION_VERSION, "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
          "threads": torch.get_num_threads(), "device": device.type, "dtype": str(dtype).replace("torch.", "")}
    if device.type == "cuda":
        fp["gpu"] = torch.cuda.get_device_name(device)
    return fp


def fingerprint_id(fp: dict) -> str:
    """16 hex digits of the SHA-256 of the fingerprint's canonical JSON."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def calibration_file(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Path:
    """Where the calibration of this machine, ``device`` and ``dtype`` is kept:
    ``<cache dir>/machine-<fingerprint id>.json`` (cache dir: :data:`CACHE_DIR_ENV`, else
    ``$XDG_CACHE_HOME/factorlab``, else ``~/.cache/factorlab``). Delete it, or call
    :func:`recalibrate`, to measure again."""
    root = os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "factorlab")
    return Path(root) / f"machine-{fingerprint_id(fingerprint(device, dtype))}.json"


def machine_from_dict(d: dict) -> Machine:
    """The :class:`Machine` of :meth:`Machine.to_dict`; ValueError when a field is missing or
    not a positive finite number."""
    def positive(name, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        return float(v)

    try:
        overhead = {k: positive(f"overhead_s[{k}]", v) for k, v in d["overhead_s"].items()}
        efficiency = {k: positive(f"efficiency[{k}]", v) for k, v in d["efficiency"].items()}
        if set(overhead) != set(OP_KINDS):
            raise ValueError(f"overhead_s has kinds {sorted(overhead)}, not {list(OP_KINDS)}")
        return Machine(peak_flops=positive("peak_flops", d["peak_flops"]),
                       bandwidth=positive("bandwidth", d["bandwidth"]), overhead_s=overhead,
                       itemsize=int(positive("itemsize", d["itemsize"])),
                       cache_bandwidth=positive("cache_bandwidth", d["cache_bandwidth"]),
                       cache_bytes=int(positive("cache_bytes", d["cache_bytes"])), efficiency=efficiency)
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"not a calibrated machine ({type(err).__name__}: {err})") from None


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path``.lock while the block runs (POSIX; nothing elsewhere), so
    that processes starting together measure once and all read the one result."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path.with_suffix(".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_calibration(path: Path, fp: dict) -> Machine | None:
    """The machine stored in ``path`` for fingerprint ``fp``; None when there is no file; a
    one-line warning and None when it cannot be read or belongs to another fingerprint."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("fingerprint") != fp:
            raise ValueError("its fingerprint is not this machine's")
        return machine_from_dict(data["machine"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.warn(f"calibration file {path} is unreadable ({reason}): measuring the machine again", stacklevel=4)
        return None


def _write_calibration(path: Path, fp: dict, m: Machine) -> None:
    """Write ``m`` to ``path`` atomically (a temporary file renamed over it)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"fingerprint": fp, "machine": m.to_dict(),
                               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1))
    os.replace(tmp, path)


def calibrated(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, *,
               remeasure: bool = False) -> Machine:
    """The calibrated :class:`Machine` of this machine, ``device`` and ``dtype``: read from
    :func:`calibration_file` when it exists, else measured by :func:`calibrate` and written there, so
    every later process on the same machine uses the same numbers and makes the same
    choices. Kept per process after the first call. ``remeasure``: measure and overwrite even
    when the file exists (:func:`recalibrate`). A file that cannot be read (corrupt, another
    fingerprint) is measured again with a one-line warning; where the cache folder cannot be
    written the file is read if it exists, else this process measures on its own (warned)."""
    device = torch.device(device)
    fp = fingerprint(device, dtype)
    key = fingerprint_id(fp)
    if key in _MACHINES and not remeasure:
        return _MACHINES[key]
    path = calibration_file(device, dtype)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            m = None if remeasure else _read_calibration(path, fp)
            if m is None:
                with torch.no_grad():
                    m = calibrate(device, dtype)
                _write_calibration(path, fp, m)
    except OSError as err:  # a read-only cache: read the file if there is one, else measure here
        m = None if remeasure else _read_calibration(path, fp)
        if m is None:
            warnings.warn(f"calibration cache {path.parent} is not writable ({err}): this process measures on its "
                          "own", stacklevel=2)
            with torch.no_grad():
                m = calibrate(device, dtype)
    _MACHINES[key] = m
    return m


def recalibrate(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Machine:
    """Measure this machine again and overwrite its calibration file (e.g. after a change
    the fingerprint does not see). Layers keep the choices they made: call
    ``layer.clear_path_cache()`` to choose again in this process."""
    return calibrated(device, dtype, remeasure=True)


def cost_mode() -> str:
    """The cost model's mode from :data:`COST_MODEL_ENV`: ``roofline`` (default) or ``flops``;
    ValueError naming the two for anything else."""
    how = os.environ.get(COST_MODEL_ENV, "roofline")
    if how not in ("roofline", "flops"):
        raise ValueError(f"{COST_MODEL_ENV}={how!r}: use 'roofline' (default) or 'flops'")
    return how


def machine(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Machine:
    """The cost model's :class:`Machine` for ``device`` and ``dtype``: the one set by
    :func:`use_machine` if any; :data:`FLOP_RULE` when the environment variable
    :data:`COST_MODEL_ENV` is ``flops``; else this machine's :func:`calibrated` one (measured
    once per machine and kept in a file: every process on the machine chooses alike)."""
    if _STATE["machine"] is not None:
        return _STATE["machine"]
    if cost_mode() == "flops":
        return FLOP_RULE
    return calibrated(device, dtype)


def cost_model_info() -> dict:
    """How paths are chosen in this process, JSON-ready for run records: ``cost`` (``roofline``,
    ``flops`` or ``given``: a :func:`use_machine` block), ``autotune`` (the global switch) and,
    for the roofline, ``calibrations``: the calibration file names used so far
    (``machine-<fingerprint id>.json``, one per device and dtype)."""
    out = {"cost": "given" if _STATE["machine"] is not None else cost_mode(), "autotune": is_autotune_enabled()}
    if out["cost"] == "roofline":
        out["calibrations"] = sorted(f"machine-{k}.json" for k in _MACHINES)
    return out


@contextlib.contextmanager
def use_machine(m: Machine | None):
    """Inside the block the cost model uses ``m`` for every device and dtype (None: the
    calibrated ones); for reproducible choices in tests and for what-if tables."""
    previous = _STATE["machine"]
    _STATE["machine"] = m
    try:
        yield m
    finally:
        _STATE["machine"] = previous


def model_path_choices(model: torch.nn.Module) -> dict[str, dict]:
    """``{submodule name: layer.path_choices()}`` for every factorized layer of ``model`` that
    has chosen a path (JSON-ready, for run records)."""
    return {name: m.path_choices() for name, m in model.named_modules()
            if callable(getattr(m, "path_choices", None)) and m.path_choices()}


def model_path_record(model: torch.nn.Module) -> dict:
    """What a run record keeps of how ``model``'s factorized layers computed (its timing
    section; never its config): ``paths`` (:func:`model_path_choices`) and ``path_cost``
    (:func:`cost_model_info`); empty when no factorized layer has chosen a path (a dense
    model's record is unchanged). Call it before moving the model (``.to`` clears choices)."""
    choices = model_path_choices(model)
    return {"paths": choices, "path_cost": cost_model_info()} if choices else {}


# -- measuring candidates -------------------------------------------------------------------

def time_candidate(candidate: Candidate, x: torch.Tensor, params: Sequence[torch.Tensor], grad: bool,
                   repeats: int = 3) -> float:
    """Seconds of one call of ``candidate`` on (a detached copy of) ``x``: forward + backward
    (``torch.autograd.grad`` of the output's sum with respect to the input, when it requires a
    gradient, and every parameter in ``params`` that does; no ``.grad`` is touched) when
    ``grad``, else forward alone with the prepared part computed once beforehand. ``params``
    are the tensors the candidate reads (the layer's factors; the bias is added outside).
    :func:`best_time` of ``repeats`` samples."""
    device = x.device
    if grad:
        xx = x.detach().requires_grad_(x.requires_grad)
        wrt = [p for p in params if p.requires_grad] + ([xx] if xx.requires_grad else [])

        def step():
            with torch.enable_grad():
                y = candidate.run(xx)
                if wrt:
                    torch.autograd.grad(y, wrt, grad_outputs=torch.ones_like(y), allow_unused=True)
    else:
        xx = x.detach()
        with torch.no_grad():
            prepared = candidate.prepare()

        def step():
            with torch.no_grad():
                candidate.apply(xx, prepared, None)
    return best_time(step, device, repeats, min_time=1e-3)
