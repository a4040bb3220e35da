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
- otherwise the calibrated cost model: :func:`machine` measures, once per process, device and
  dtype, the peak FLOP rate (a GEMM), the memory bandwidth (a copy) and the fixed cost of one
  kernel call, and how much of its roofline a typical call of each kind reaches; a path's
  predicted time is the sum over its calls of ``max(FLOPs / peak, bytes / bandwidth) /
  efficiency + overhead`` (:meth:`Machine.predict`; the bandwidth of a copy in cache for calls
  that fit in it).

``torch.compile`` of a factored forward is not a candidate: inductor compiles work on this
CPU build but take tens of seconds per layer and input shape (34 and 74 s for a TT linear and
a CP convolution, measured on a loaded 2-core machine), far more than timing the eager
candidates; compile the model instead (the choice is made outside the graph, the chosen
path's tensor ops are traced).

When autograd does not record (``torch.no_grad`` or inference), ``prepare`` runs once and its
result is cached until a factor changes (``data_ptr`` and ``_version`` of every factor:
in-place optimizer steps and ``load_state_dict`` bump the version; writing through ``.data``
does not, so call ``layer.clear_path_cache()`` after that). The prepared part of a path is
then free, so an eval-mode layer whose factored paths are slower keeps the rebuilt weight and
costs one dense call.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

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
#: efficiency): a pairwise einsum, a matrix product, a dense and a grouped (depthwise)
#: convolution, a copy.
OP_KINDS = ("einsum", "mm", "conv", "gconv", "copy")


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
    each kind reaches, at most 1: grouped convolutions and permuting einsums fall well short
    on CPUs)."""

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

    def predict(self, ops: Sequence[Op]) -> float:
        """The cost model's seconds of a sequence of calls: per call, max(FLOPs / peak,
        bytes / bandwidth) with the cache bandwidth for calls that fit in cache, divided by
        the kind's efficiency, plus its overhead."""
        total = 0.0
        for op in ops:
            nbytes = op.elements * self.itemsize
            bw = self.cache_bandwidth if self.cache_bandwidth and nbytes <= self.cache_bytes else self.bandwidth
            total += max(op.flops / self.peak_flops, nbytes / bw) / self.efficiency.get(op.kind, 1.0)
            total += self.overhead_s.get(op.kind, 0.0)
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

def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (CUDA); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, repeats: int = 3, min_time: float = 2e-4) -> float:
    """Fastest of ``repeats`` samples of ``fn()`` in seconds after one untimed call; each
    sample loops ``fn`` until ``min_time`` seconds have passed and reports the mean per call.
    The minimum, not the median: on a shared machine other work only ever adds time."""
    fn()
    synchronize(device)
    best = math.inf
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            synchronize(device)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        best = min(best, elapsed / n)
    return best


def calibrate(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, *, gemm: int | None = None,
              copy_elements: int | None = None, repeats: int = 3) -> Machine:
    """Measure a :class:`Machine` now: the FLOP rate of an n x n GEMM (``gemm`` = n; default
    384 on the CPU, 4096 on CUDA), the bandwidth of copying ``copy_elements`` elements
    (default 2**22 on the CPU, 2**27 on CUDA; read + write counted) and of copying 2**17
    (in cache), the time of a tiny einsum, matrix product, convolution, grouped convolution
    and copy (the per-call overheads), and the efficiency of a typical convolution, depthwise
    convolution and permuting einsum (roofline time / measured time, overhead taken off)."""
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
        "conv": best_time(lambda: conv2d(img, k), device, repeats),
        "gconv": best_time(lambda: conv2d(img, kg, groups=2), device, repeats),
        "copy": best_time(lambda: t2.clone(), device, repeats),
    }
    m0 = Machine(peak_flops=peak, bandwidth=bandwidth, overhead_s=overhead, itemsize=src.element_size())
    # Efficiencies: typical calls of the factored paths, timed against their roofline.
    x = torch.randn(8, 32, 16, 16, device=device, dtype=dtype)
    w = torch.randn(32, 32, 3, 3, device=device, dtype=dtype)
    wd = torch.randn(32, 1, 3, 3, device=device, dtype=dtype)
    a = torch.randn(32, 16, 16, 8, device=device, dtype=dtype)
    b = torch.randn(8, 16, 16, device=device, dtype=dtype)
    probes = {
        "conv": (lambda: conv2d(x, w, padding=1), Op("conv", 2 * 8 * 32 * 256 * 32 * 9, 2 * x.numel() + w.numel())),
        "gconv": (lambda: conv2d(x, wd, padding=1, groups=32), Op("gconv", 2 * 8 * 32 * 256 * 9, 2 * x.numel())),
        "einsum": (lambda: torch.einsum("bijr,rjk->bik", a, b),
                   Op("einsum", 2 * 32 * 16 * 16 * 8 * 16, a.numel() + b.numel() + 32 * 16 * 16)),
    }
    efficiency = {}
    for kind, (fn, op) in probes.items():
        spent = best_time(fn, device, repeats) - overhead[kind]
        efficiency[kind] = min(1.0, m0.op_time(op, overhead=False) / max(spent, 1e-9))
    return Machine(peak_flops=peak, bandwidth=bandwidth, overhead_s=overhead, itemsize=src.element_size(),
                   cache_bandwidth=cache_bw, cache_bytes=4 * small * src.element_size(), efficiency=efficiency)


_MACHINES: dict = {}


#: Environment variable choosing the cost model: ``roofline`` (default: calibrated on the
#: machine) or ``flops`` (:data:`FLOP_RULE`: the fewest FLOPs, ties to the first listed path;
#: the same choice on every machine and in every process, for runs that must replay bit for bit).
COST_MODEL_ENV = "FACTORLAB_PATH_COST"
#: The FLOP rule as a machine: finite peak, free memory traffic, free calls.
FLOP_RULE = Machine(peak_flops=1e12, bandwidth=math.inf, overhead_s={}, itemsize=4)


def machine(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Machine:
    """The cost model's :class:`Machine` for ``device`` and ``dtype``: the one set by
    :func:`use_machine` if any; :data:`FLOP_RULE` when the environment variable
    :data:`COST_MODEL_ENV` is ``flops``; else :func:`calibrate`\\ d once per process (and per
    CPU thread count) and cached. The calibrated choice can differ between machines and, for
    near ties, between processes (paths differ in rounding only)."""
    if _STATE["machine"] is not None:
        return _STATE["machine"]
    how = os.environ.get(COST_MODEL_ENV, "roofline")
    if how not in ("roofline", "flops"):
        raise ValueError(f"{COST_MODEL_ENV}={how!r}: use 'roofline' (default) or 'flops'")
    if how == "flops":
        return FLOP_RULE
    device = torch.device(device)
    key = (str(device), dtype, torch.get_num_threads() if device.type == "cpu" else 0)
    if key not in _MACHINES:
        with torch.no_grad():
            _MACHINES[key] = calibrate(device, dtype)
    return _MACHINES[key]


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
