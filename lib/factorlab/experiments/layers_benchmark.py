"""Benchmark ``layers_benchmark``: forward+backward time of every factorized layer against the
dense layer of the same shape and against TensorLy-Torch at the same rank, all in one process.
The entry point is ``benchmarks/layers.py`` (prints the tables); the record comes from
``run_experiment("layers_benchmark", profile)`` like any run.

Profiles: ``smoke`` two configurations at batch 32, few repeats, on the CPU (seconds);
``cpu`` every configuration at batch 1, 32 and 256 on the CPU (several minutes on two cores);
``full`` the same on a CUDA GPU. The config names the device it measures on.

What one row is: a layer configuration (shape, family, compression ratio) at one batch size.
For that row, and with the same input, it times back to back

- the dense layer of the same shape (``nn.Linear`` / ``nn.Conv2d``, with bias);
- ours: the automatic forward (the path the layer picks without measuring: the calibrated
  cost model of :mod:`factorlab.layers.paths`; records made before it: the FLOP rule);
  convolutions also forced to ``force_path="factored"`` and ``"dense"`` (the rebuilt weight,
  one convolution);
- TensorLy-Torch's ``FactorizedLinear`` / ``FactorizedConv`` built with the factorization and
  the rank our layer ended up with (``layer.rank``) and the same tensor modes, with both
  ``implementation="factorized"`` and ``"reconstructed"``. It has no equivalent of the low-rank
  linear, separable, low-rank or TT convolution (its TT convolution factorizes the kernel
  (in, kh, kw, out), not channel sub-modes): those peer cells stay empty.

Each time is the median (``factorlab.train.timing.median_time``) of forward + backward passes
(loss = sum of the output; the input requires a gradient, as a hidden layer's does), after one
untimed warm-up call that also sizes the number of repeats to about ``budget_s`` seconds, with
the device synchronized before every clock read. "predicted" is the ratio of forward FLOPs,
ours / dense, from the layers' exact counts (``flops``: the machine-independent count of the
layer's canonical path, as in every run record); dense FLOPs are 2 B in out + B out for a
linear layer and ``conv_flops`` + bias for a convolution. Backward passes scale the same way
to first order. ``ours_chosen_flops`` counts the path the automatic forward ran (``path``,
``chosen_flops``), and the record's timing says which cost rule and calibration chose it
(``path_cost``: :func:`factorlab.layers.paths.cost_model_info`).

TensorLy-Torch (``pip install --no-deps -r benchmarks/requirements.txt``) is optional: without
it the table says so and the peer columns stay empty.

The roofline view (config ``roofline``, on by default in :func:`make_config` and in the
registered grid): the machine's peak FLOP rate (a large GEMM)
and bandwidth (a large copy) are measured in the same process (:func:`measure_machine`), then
for every row every candidate path of the layer is timed forward + backward (``paths``: FLOPs,
bytes, FLOP-only and roofline predictions, measured seconds), the layer is autotuned
(``tuned_path``, ``ours_tuned_s``; ``roofline_s``, ``flop_only_s``, ``bound``,
``roofline_ratio`` of that path) and timed in eval mode without autograd against the dense
layer (``dense_eval_s``; ``ours_eval_model_s`` / ``eval_model_path`` under the cost model,
``ours_eval_s`` / ``eval_path`` autotuned, rebuilt weights cached; the three sampled in
turn, each sample after one untimed call of its own step: config ``eval_timing`` = ``warm``). Predictions count a forward
+ backward pass as :data:`FWD_BWD_PASSES` forward passes and leave out per-call overheads.
:func:`roofline_goals` states the issue's three goals as met / not met.

Commands (the roofline view included; ``--record`` stores the run, a throw-away store for
trials). Quiet CPU, one thread, nothing else running (about 15-25 minutes at the default
budget: every candidate of 64 configurations x 3 batches is timed)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/layers.py --record   # one thread: the config says so (CPU_THREADS)

CUDA, when a GPU is lent (``full`` profile; TensorLy-Torch travels as a file, see
``benchmarks/requirements.txt``)::

    .venv/bin/python benchmarks/layers.py --device cuda --record
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from factorlab.experiments.benchmark_cli import BenchmarkCommand
from factorlab.experiments.config import Profile, RunConfig
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.registry import Experiment
from factorlab.layers import (CPConv2d, CPLinear, LowRankConv2d, LowRankLinear, SeparableConv2d,
                              TTConv2d, TTLinear, TuckerConv2d, TuckerLinear)
from factorlab.layers.conv import conv_flops, conv_output_hw
from factorlab.layers.paths import Machine, Op, calibrate, cost_model_info
from factorlab.train.device import resolve_device, synchronize
from factorlab.train.timing import interleaved_times, median_time

try:  # the peer: optional, benchmark-only dependency
    import tltorch
except Exception:  # pragma: no cover - ImportError, or a broken install: depends on the environment
    tltorch = None

BATCHES = (1, 32, 256)
QUICK_BATCHES = (32,)
IMPLEMENTATIONS = ("factorized", "reconstructed")
#: Table header of the main table (the smoke test looks for it).
HEADER_MARK = "ours/dense"


# -- timing ---------------------------------------------------------------------------------

def fwd_bwd_step(module: nn.Module, x: torch.Tensor):
    """A closure running one forward and backward pass of ``module`` on ``x`` (loss = sum of
    outputs), clearing the gradients of the parameters and of ``x`` first."""
    params = [p for p in module.parameters() if p.requires_grad]

    def step():
        for p in params:
            p.grad = None
        x.grad = None
        module(x).sum().backward()

    return step


def _first_call_s(step, device: torch.device) -> float:
    """Seconds of one warm-up call of ``step`` (at least 1e-7; it sizes the repeats)."""
    synchronize(device)
    t0 = time.perf_counter()
    step()
    synchronize(device)
    return max(time.perf_counter() - t0, 1e-7)


def measure(step, device: torch.device, budget: float, min_repeats: int = 3, max_repeats: int = 30) -> float:
    """Median seconds of ``step()``: one untimed warm-up call (plans, allocator, lazy
    initialisation) that also sizes the repeats (``budget`` / its time, within
    [min_repeats, max_repeats]), then :func:`factorlab.train.timing.median_time`; calls under
    1 ms are looped to at least 1 ms per sample."""
    first = _first_call_s(step, device)
    repeats = int(min(max_repeats, max(min_repeats, budget / first)))
    return median_time(step, device, repeats=repeats, warmup=1 if first < 0.2 else 0,
                       min_time=1e-3 if first < 1e-3 else 0.0)


def measure_interleaved(steps: dict, device: torch.device, budget: float, min_repeats: int = 3,
                        max_repeats: int = 30, warm_each: bool = False) -> dict[str, float]:
    """Median seconds of each of ``steps`` (name -> closure), sampled in turn round by round
    (:func:`factorlab.train.timing.interleaved_times`): one untimed warm-up call of each (which
    also makes a layer's path choice) sizes the rounds (``budget`` / the slowest call, within
    [min_repeats, max_repeats]); calls under 1 ms are looped to at least 1 ms per sample;
    ``warm_each``: each sample after one untimed call of its own step (config ``eval_timing``
    ``warm``)."""
    first = {name: _first_call_s(step, device) for name, step in steps.items()}
    slowest, fastest = max(first.values()), min(first.values())
    repeats = int(min(max_repeats, max(min_repeats, budget / slowest)))
    return interleaved_times(steps, device, repeats=repeats, warmup=1 if slowest < 0.2 else 0,
                             min_time=1e-3 if fastest < 1e-3 else 0.0, warm_each=warm_each)


# -- configurations -------------------------------------------------------------------------

#: Linear shapes: (in, out, 2-mode in, 2-mode out, 3-mode in, 3-mode out). TT uses 3 modes.
LINEAR_SHAPES = [(784, 512, (28, 28), (32, 16), (16, 7, 7), (8, 8, 8)),
                 (512, 512, (32, 16), (32, 16), (8, 8, 8), (8, 8, 8))]
#: Convolution shapes: (channels, input height = width); 3x3, padding 1.
CONV_SHAPES = [(32, 14), (64, 32)]
COMPRESSIONS = (4, 16)


def _linear_maker(family: str, i: int, o: int, modes2, modes3, c: float):
    if family == "lowrank":
        return lambda: LowRankLinear(i, o, compression=c)
    if family == "cp":
        return lambda: CPLinear(i, o, compression=c, in_modes=modes2[0], out_modes=modes2[1])
    if family == "tucker":
        return lambda: TuckerLinear(i, o, compression=c, in_modes=modes2[0], out_modes=modes2[1])
    return lambda: TTLinear(i, o, compression=c, in_modes=modes3[0], out_modes=modes3[1])


def _conv_maker(family: str, ch: int, c: float | None):
    if family == "separable":
        return lambda: SeparableConv2d(ch, ch, 3, padding=1)
    cls = {"lowrank": LowRankConv2d, "cp": CPConv2d, "tucker": TuckerConv2d, "tt": TTConv2d}[family]
    return lambda: cls(ch, ch, 3, padding=1, compression=c)


def configurations(quick: bool) -> list[dict]:
    """Every configuration measured: dicts with kind, family, shape (label), compression
    (None for the plain separable layer), hw (convolutions), and ``make`` / ``dense``
    factories. ``quick``: the TT linear 784->512 and the CP convolution 32->32 at 4x (both
    have a TensorLy-Torch peer; the convolution has both paths)."""
    out = []
    for i, o, im2, om2, im3, om3 in LINEAR_SHAPES:
        for c in COMPRESSIONS:
            for fam in ("lowrank", "cp", "tucker", "tt"):
                out.append({"kind": "linear", "family": fam, "shape": f"{i}->{o}", "compression": c,
                            "make": _linear_maker(fam, i, o, (im2, om2), (im3, om3), c),
                            "dense": lambda i=i, o=o: nn.Linear(i, o)})
    for ch, hw in CONV_SHAPES:
        base = {"kind": "conv", "shape": f"{ch}->{ch} 3x3 @{hw}x{hw}", "hw": hw,
                "dense": lambda ch=ch: nn.Conv2d(ch, ch, 3, padding=1)}
        out.append({**base, "family": "separable", "compression": None, "make": _conv_maker("separable", ch, None)})
        for c in COMPRESSIONS:
            for fam in ("lowrank", "cp", "tucker", "tt"):
                out.append({**base, "family": fam, "compression": c, "make": _conv_maker(fam, ch, c)})
    if quick:
        keep = {("linear", "tt", "784->512", 4), ("conv", "cp", "32->32 3x3 @14x14", 4)}
        out = [c for c in out if (c["kind"], c["family"], c["shape"], c["compression"]) in keep]
    return out


def config_labels(quick: bool) -> list[str]:
    """One readable label per configuration (stored in the run's config)."""
    return [f"{c['kind']} {c['family']} {c['shape']} c={c['compression']}" for c in configurations(quick)]


# -- the peer -------------------------------------------------------------------------------

def peer(layer: nn.Module, implementation: str) -> nn.Module | None:
    """TensorLy-Torch's layer with the same factorization, modes and rank as ``layer``, or
    None where it has no equivalent (low-rank linear, separable, low-rank and TT convolution)
    or is not installed."""
    if tltorch is None:
        return None
    if isinstance(layer, CPLinear):
        return tltorch.FactorizedLinear(layer.in_modes, layer.out_modes, factorization="cp", rank=layer.rank,
                                        implementation=implementation)
    if isinstance(layer, TuckerLinear):  # ranks: output modes then input modes, as its tensor is (out.., in..)
        return tltorch.FactorizedLinear(layer.in_modes, layer.out_modes, factorization="tucker",
                                        rank=tuple(layer.rank), implementation=implementation)
    if isinstance(layer, TTLinear):  # the TT-matrix: cores [r_{k-1}, o_k, i_k, r_k], as ours
        return tltorch.FactorizedLinear(layer.in_modes, layer.out_modes, factorization="blocktt",
                                        rank=(1, *layer.rank, 1), implementation=implementation)
    conv = None
    if isinstance(layer, CPConv2d):  # CP of the [out, in, kh, kw] kernel: 1x1, kx1, 1xk, 1x1
        conv = tltorch.FactorizedConv(layer.in_channels, layer.out_channels, layer.kernel_size, order=2,
                                      padding=layer.padding, factorization="cp", rank=layer.rank, bias=True,
                                      implementation=implementation)
    elif isinstance(layer, TuckerConv2d):  # Tucker with full spatial ranks = Tucker-2 (+ 2 k x k factors)
        p, q = layer.rank
        conv = tltorch.FactorizedConv(layer.in_channels, layer.out_channels, layer.kernel_size, order=2,
                                      padding=layer.padding, factorization="tucker",
                                      rank=(p, q, *layer.kernel_size), bias=True, implementation=implementation)
    if conv is not None:
        # FactorizedConv leaves its factors and bias uninitialised (torch.empty): garbage that
        # may hold denormals or NaN, which slow CPU arithmetic. Initialise like its own from_conv.
        conv.reset_parameters(std=math.sqrt(1.0 / (3 * layer.fan_in)))
    return conv


# -- one row --------------------------------------------------------------------------------

def dense_flops(cfg: dict, dense: nn.Module, batch: int) -> int:
    """Forward FLOPs of the dense layer, bias included (same conventions as the layers)."""
    if cfg["kind"] == "linear":
        return 2 * batch * dense.in_features * dense.out_features + batch * dense.out_features
    hw = conv_output_hw((cfg["hw"], cfg["hw"]), dense.kernel_size, dense.stride, dense.padding, dense.dilation)
    return conv_flops(batch, dense.in_channels, dense.out_channels, hw, dense.kernel_size) + \
        batch * dense.out_channels * hw[0] * hw[1]


def _rank_str(rank) -> str:
    return "" if rank is None else str(rank) if isinstance(rank, int) else "x".join(map(str, rank))


#: Sizes of the roofline measurements: (GEMM n, elements copied) on the CPU and CUDA, and for
#: the smoke profile.
ROOFLINE_SIZES = {"cpu": (2048, 2 ** 26), "cuda": (8192, 2 ** 28), "smoke": (512, 2 ** 22)}
#: A forward + backward pass counted as this many forward passes (FLOPs and bytes): the
#: backward computes the gradients of the input and of every factor, each about one forward.
FWD_BWD_PASSES = 3


def measure_machine(device: torch.device, quick: bool) -> tuple[Machine, dict]:
    """The roofline of ``device`` in float32, measured now (:func:`factorlab.layers.calibrate`
    with the sizes of :data:`ROOFLINE_SIZES`): peak FLOP/s of a large GEMM, bandwidth of a
    large copy, per-call overheads; and the sizes used."""
    n, m = ROOFLINE_SIZES["smoke" if quick else device.type]
    with torch.no_grad():
        machine = calibrate(device, torch.float32, gemm=n, copy_elements=m, repeats=3 if quick else 5)
    return machine, {"gemm_n": n, "copy_elements": m}


def _roofline_cells(machine: Machine, ops: tuple[Op, ...]) -> dict:
    """FLOPs, bytes, FLOP-only and roofline seconds (forward + backward, :data:`FWD_BWD_PASSES`
    forward passes, call overheads excluded) and the bound of one path's forward calls."""
    k = FWD_BWD_PASSES
    return {"flops": k * sum(o.flops for o in ops), "bytes": k * machine.itemsize * sum(o.elements for o in ops),
            "flop_only_s": k * machine.flop_time(ops), "roofline_s": k * machine.time(ops, overhead=False),
            "bound": "memory" if machine.memory_bound(ops) else "compute"}


def dense_ops(cfg: dict, dense: nn.Module, batch: int) -> tuple[Op, ...]:
    """The dense layer's forward as one call (bias add not counted): FLOPs and elements."""
    if cfg["kind"] == "linear":
        i, o = dense.in_features, dense.out_features
        return (Op("mm", 2 * batch * i * o, batch * i + i * o + batch * o),)
    hw = conv_output_hw((cfg["hw"], cfg["hw"]), dense.kernel_size, dense.stride, dense.padding, dense.dilation)
    c, s = dense.in_channels, dense.out_channels
    return (Op("conv", conv_flops(batch, c, s, hw, dense.kernel_size),
               batch * c * cfg["hw"] ** 2 + dense.weight.numel() + batch * s * hw[0] * hw[1]),)


def forward_step(module: nn.Module, x: torch.Tensor):
    """A closure running one inference forward pass (eval mode, no autograd) of ``module``."""
    def step():
        with torch.no_grad():
            module(x)

    return step


def kernel_step(layer: nn.Module, x: torch.Tensor):
    """A closure running only the kernels of ``layer``'s inference forward on ``x`` (no
    autograd), without its Python dispatch: for a factorized layer its chosen path's
    candidate ``apply`` on the cached prepared tensors (no shape check, path lookup or cache
    check; call the layer on ``x`` in eval mode first, so the path is chosen); for
    ``nn.Linear`` / ``nn.Conv2d`` the functional call on its weights (no ``Module.__call__``).
    Both run without autograd, as the eval forward they are compared with does (a dense
    kernel step that recorded autograd paid ~2 µs per call that ours did not, and the
    "dispatch" of the dense layer, eval time minus kernel time, read that much too small)."""
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        w, b = layer.weight, layer.bias
        call = (lambda: F.linear(x, w, b)) if isinstance(layer, nn.Linear) else (lambda: layer._conv_forward(x, w, b))

        def dense_step():
            with torch.no_grad():
                return call()

        return dense_step
    with torch.no_grad():
        cand, prepared = layer._select(x, layer._check_input_shape(x.shape))
    bias = layer.bias

    def step():
        with torch.no_grad():
            return cand.apply(x, prepared, bias)

    return step


def roofline_cells(ours: nn.Module, dense: nn.Module, cfg: dict, x: torch.Tensor, machine: Machine, measure_s,
                   measure_many) -> dict:
    """The roofline view of one row: every candidate path of ``ours`` (forward + backward time
    measured with ``force_path``, FLOPs, bytes, FLOP-only and roofline predictions), the path
    ``autotune`` picks and its time, the dense layer's roofline, and inference (eval mode, no
    autograd) times of the dense layer and of ours under the cost model and under autotune
    (the rebuilt weight cached). ``measure_s(step)`` times a closure; ``measure_many({name:
    step})`` times several in rounds (:func:`measure_interleaved`), as the three inference times
    are, on copies of ``ours`` (cost model, autotuned), so their ratios to the dense layer do not
    depend on when each was measured; with them ``ours_eval_kernel_s`` and
    ``dense_eval_kernel_s``, the autotuned path's and the dense layer's kernels alone
    (:func:`kernel_step`), so each forward minus its kernels is that layer's Python dispatch,
    and ``dense_copy_eval_s``, a deep copy of the dense layer timed in the same rounds: a
    control, since two copies of one layer differ only by where their weights lie and by
    timing noise (on this project's 2-core VM up to ~10 % at batch 1)."""
    shape = tuple(x.shape)
    batch = shape[0]
    out: dict = {"paths": {}}
    for name, cand in ours.candidates(shape).items():
        ours.force_path = name
        cell = _roofline_cells(machine, cand.prep_ops + cand.ops)
        cell["fwd_bwd_s"] = measure_s(fwd_bwd_step(ours, x))
        out["paths"][name] = cell
    ours.force_path = None
    ours.clear_path_cache()
    ours.autotune = True
    ours(x)  # tunes the training key
    out["tuned_path"] = _choice(ours, "train grad")
    out["ours_tuned_s"] = measure_s(fwd_bwd_step(ours, x))
    chosen = out["paths"][out["tuned_path"]]
    out.update({k: chosen[k] for k in ("flops", "bytes", "flop_only_s", "roofline_s", "bound")})
    out["roofline_ratio"] = out["ours_tuned_s"] / out["roofline_s"]
    d = _roofline_cells(machine, dense_ops(cfg, dense, batch))
    out.update({"dense_roofline_s": d["roofline_s"], "dense_bound": d["bound"]})
    xe = x.detach()
    ours.autotune = None
    ours.clear_path_cache()
    model, tuned = copy.deepcopy(ours).eval(), copy.deepcopy(ours).eval()
    model.autotune, tuned.autotune = False, True
    dense.eval()
    control = copy.deepcopy(dense)  # the same layer again: what timing alone makes of "the same"
    forward_step(tuned, xe)()  # tunes the eval key: the kernel step below runs its choice
    times = measure_many({"dense_eval_s": forward_step(dense, xe), "ours_eval_model_s": forward_step(model, xe),
                          "ours_eval_s": forward_step(tuned, xe), "dense_copy_eval_s": forward_step(control, xe),
                          "ours_eval_kernel_s": kernel_step(tuned, xe),
                          "dense_eval_kernel_s": kernel_step(dense, xe)})
    out.update(times)
    out["eval_model_path"] = _choice(model, "eval no_grad")
    out["eval_path"] = _choice(tuned, "eval no_grad")
    dense.train()
    return out


def _choice(layer: nn.Module, mode: str) -> str:
    """The path ``layer`` chose for its one key whose label contains ``mode``."""
    (path,) = {c["path"] for k, c in layer.path_choices().items() if mode in k}
    return path


#: Seconds of untimed work before the first timed row (:func:`warm_up`); the smoke profile's
#: quick run takes a tenth of it.
WARM_UP_S = 3.0


def input_shape(cfg: dict, dense: nn.Module, batch: int) -> tuple[int, ...]:
    """The input of a configuration's layers at ``batch``: ``(batch, in_features)`` for a
    linear one, ``(batch, in_channels, hw, hw)`` for a convolution."""
    if cfg["kind"] == "linear":
        return (batch, dense.in_features)
    return (batch, dense.in_channels, cfg["hw"], cfg["hw"])


def warm_up(cfg: dict, batch: int, device: torch.device, seconds: float) -> int:
    """Untimed work before the first timed row: the forward + backward and the eval forward of
    configuration ``cfg``'s dense and factorized layers at ``batch``, in turn, for about
    ``seconds``. Without it the first rows measured ran slow (a record's first dense
    forward + backward took 1.9 times what the same layer took a few rows later, and its
    first four eval rows were the only ones over the tolerance). Returns the rounds run
    (at least one)."""
    torch.manual_seed(0)
    ours, dense = cfg["make"]().to(device), cfg["dense"]().to(device)
    shape = input_shape(cfg, dense, batch)
    x = torch.randn(shape, device=device, requires_grad=True)
    train = [fwd_bwd_step(dense, x), fwd_bwd_step(ours, x)]
    evals = [forward_step(dense, x), forward_step(ours, x)]
    end, rounds = time.perf_counter() + seconds, 0
    while rounds == 0 or time.perf_counter() < end:
        dense.train(), ours.train()
        for step in train:
            step()
        dense.eval(), ours.eval()
        for step in evals:
            step()
        rounds += 1
    return rounds


def run(device: torch.device, quick: bool, budget: float, log=print, roofline: bool = False,
        eval_timing: str = "warm") -> list[dict]:
    """Measure every configuration at every batch size; one dict per row (times in seconds).
    With ``roofline``, also the machine's roofline (:func:`measure_machine`, in this process)
    and :func:`roofline_cells` for every row, its eval-mode times taken as ``eval_timing``
    says (:class:`Config`: ``warm`` or ``interleaved``)."""
    rows = []
    batches = QUICK_BATCHES if quick else BATCHES
    reps = {"min_repeats": 2, "max_repeats": 5} if quick else {}
    machine = None
    if roofline:
        machine, sizes = measure_machine(device, quick)
        log(f"  machine: peak {machine.peak_flops / 1e9:.1f} GFLOP/s (GEMM n={sizes['gemm_n']}), bandwidth "
            f"{machine.bandwidth / 1e9:.1f} GB/s (copy of {sizes['copy_elements']} floats)", flush=True)
    first = configurations(quick)[0]
    rounds = warm_up(first, batches[0], device, WARM_UP_S / (10 if quick else 1))
    log(f"  warm-up: {rounds} untimed rounds of {first['kind']} {first['family']} {first['shape']} "
        f"at B={batches[0]}", flush=True)
    for cfg in configurations(quick):
        torch.manual_seed(0)
        ours = cfg["make"]().to(device)
        dense = cfg["dense"]().to(device)
        peers = {}
        for impl in IMPLEMENTATIONS:
            try:
                m = peer(ours, impl)
            except Exception as err:  # report, keep measuring the rest
                log(f"  tltorch peer for {cfg['family']} {cfg['shape']} ({impl}) could not be built: {err!r}")
                m = None
            if m is not None:
                peers[impl] = m.to(device)
        for batch in batches:
            shape = input_shape(cfg, dense, batch)
            x = torch.randn(shape, device=device, requires_grad=True)
            with torch.no_grad():
                y = ours(x)
                assert y.shape == dense(x).shape, "ours and dense disagree on the output shape"
                for impl, m in peers.items():
                    assert m(x).shape == y.shape, f"tltorch ({impl}) and ours disagree on the output shape"
            row = {"kind": cfg["kind"], "family": cfg["family"], "shape": cfg["shape"],
                   "compression": cfg["compression"], "rank": _rank_str(ours.rank), "params": ours.num_params(),
                   "dense_params": ours.dense_params(), "batch": batch, "dense_flops": dense_flops(cfg, dense, batch),
                   "ours_flops": ours.flops(shape), "ours_chosen_flops": ours.chosen_flops(shape, grad=True)}
            row["flop_ratio"] = row["ours_flops"] / row["dense_flops"]
            row["dense_s"] = measure(fwd_bwd_step(dense, x), device, budget, **reps)
            if cfg["kind"] == "conv":
                row["path"] = ours.path_for(shape)
                outs = {}
                for path in ("factored", "dense"):
                    ours.force_path = path
                    row[f"flops_{path}"] = ours.flops(shape)
                    with torch.no_grad():
                        outs[path] = ours(x)
                    row[f"ours_{path}_s"] = measure(fwd_bwd_step(ours, x), device, budget, **reps)
                ours.force_path = None
                scale = outs["dense"].abs().max().item()
                assert torch.allclose(outs["factored"], outs["dense"], rtol=1e-3, atol=1e-4 * max(scale, 1.0)), \
                    "the factored and the rebuilt-weight paths disagree"
                if row["path"] in ("factored", "dense"):
                    row["ours_s"] = row[f"ours_{row['path']}_s"]  # the automatic forward runs this path
                else:  # a partial rebuild or a channels-last path: time the automatic forward
                    row["ours_s"] = measure(fwd_bwd_step(ours, x), device, budget, **reps)
            else:
                row["path"] = ours.path_for(shape)
                row["ours_s"] = measure(fwd_bwd_step(ours, x), device, budget, **reps)
            for impl, m in peers.items():
                row["tltorch_params"] = sum(p.numel() for p in m.parameters())
                row[f"tltorch_{impl}_s"] = measure(fwd_bwd_step(m, x), device, budget, **reps)
            if machine is not None:
                row.update(roofline_cells(ours, dense, cfg, x, machine,
                                          lambda step: measure(step, device, budget, **reps),
                                          lambda steps: measure_interleaved(steps, device, budget, **reps,
                                                                            warm_each=eval_timing == "warm")))
                row.update({"peak_flops": machine.peak_flops, "bandwidth": machine.bandwidth})
            rows.append(row)
            peer_txt = "".join(f", tltorch {impl[:4]}. {1e3 * row[f'tltorch_{impl}_s']:.3f} ms" for impl in peers)
            log(f"  {cfg['kind']:6s} {cfg['family']:9s} {cfg['shape']:18s} c={cfg['compression']} B={batch}: "
                f"dense {1e3 * row['dense_s']:.3f} ms, ours {1e3 * row['ours_s']:.3f} ms{peer_txt}", flush=True)
    return rows


# -- tables and targets ---------------------------------------------------------------------

def summarize(rows: list[dict]):
    """``(df, targets)``: the rows as a DataFrame with the ratio columns added, and the
    issue's three targets as ``{name: (rows meeting it, rows it applies to)}``:

    1. compressed rows (fewer parameters than dense) at batch 1: ours/dense <= 1;
    2. rows where FLOPs dominate (dense time >= 1 ms): measured/predicted <= 1.5;
    3. rows with a TensorLy-Torch peer: its faster implementation / ours >= 2.
    """
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in ["tltorch_factorized_s", "tltorch_reconstructed_s", "tltorch_params", "path", "ours_factored_s",
                "ours_dense_s"]:
        if col not in df:
            df[col] = float("nan")
    df["ours/dense"] = df.ours_s / df.dense_s
    df["measured/predicted"] = df["ours/dense"] / df.flop_ratio
    for impl in IMPLEMENTATIONS:
        df[f"tltorch_{impl}/ours"] = df[f"tltorch_{impl}_s"] / df.ours_s
    df["tltorch_best/ours"] = df[[f"tltorch_{impl}_s" for impl in IMPLEMENTATIONS]].min(axis=1) / df.ours_s
    b1 = df[(df.params < df.dense_params) & (df.batch == 1)]
    flop_bound = df[df.dense_s >= 1e-3]
    has_peer = df["tltorch_best/ours"].notna()
    targets = {
        "never slower than dense at batch 1 (compressed configs)": (
            int((b1["ours/dense"] <= 1.0).sum()), len(b1)),
        "within 1.5x of the FLOP prediction where dense >= 1 ms (measured/predicted <= 1.5)": (
            int((flop_bound["measured/predicted"] <= 1.5).sum()), len(flop_bound)),
        "at least 2x faster than TensorLy-Torch at equal rank (its faster implementation)": (
            int((df.loc[has_peer, "tltorch_best/ours"] >= 2.0).sum()), int(has_peer.sum())),
    }
    return df, targets


def _ms(v) -> str:
    return "" if v is None or v != v else f"{1e3 * v:.3f}"


def _x(v) -> str:
    return "" if v is None or v != v else f"{v:.2f}"


def format_table(df) -> str:
    """The main table: one line per row, times in ms (forward + backward)."""
    import pandas as pd

    t = pd.DataFrame({
        "layer": df["kind"] + " " + df["shape"],
        "family": df.family,
        "c": df.compression.map(lambda v: "-" if v is None or v != v else f"{v:g}"),
        "c_actual": (df.dense_params / df.params).map(lambda v: f"{v:.1f}"),
        "rank": df["rank"].map(lambda v: v if v else "-"),
        "B": df.batch,
        "dense ms": df.dense_s.map(_ms),
        "ours ms": df.ours_s.map(_ms),
        "ours/dense": df["ours/dense"].map(_x),
        "predicted": df.flop_ratio.map(_x),
        "meas/pred": df["measured/predicted"].map(_x),
        "tl-fact ms": df.tltorch_factorized_s.map(_ms),
        "tl-rec ms": df.tltorch_reconstructed_s.map(_ms),
        "tl-fact/ours": df["tltorch_factorized/ours"].map(_x),
        "tl-rec/ours": df["tltorch_reconstructed/ours"].map(_x),
    })
    t = t.rename(columns={"ours/dense": HEADER_MARK})
    return t.to_string(index=False)


def format_paths(df) -> str:
    """The convolution path table: the FLOP rule's choice against both paths timed."""
    import pandas as pd

    conv = df[df.kind == "conv"]
    if conv.empty:
        return ""
    faster = conv.apply(lambda r: "factored" if r.ours_factored_s <= r.ours_dense_s else "dense", axis=1)
    # The automatic forward runs ``path``; with the roofline view it may be a partial rebuild.
    chosen = conv.apply(lambda r: r[f"ours_{r.path}_s"] if r.path in ("factored", "dense") else r.ours_s, axis=1)
    best = conv[["ours_factored_s", "ours_dense_s"]].min(axis=1)
    t = pd.DataFrame({
        "layer": conv["shape"], "family": conv.family,
        "c": conv.compression.map(lambda v: "-" if v is None or v != v else f"{v:g}"), "B": conv.batch,
        "factored ms": conv.ours_factored_s.map(_ms), "rebuilt ms": conv.ours_dense_s.map(_ms),
        "FLOPs fact/rebuilt": (conv.flops_factored / conv.flops_dense).map(_x),
        "FLOP rule": conv.path, "faster": faster, "agree": (conv.path == faster).map({True: "yes", False: "NO"}),
        "chosen/best": (chosen / best).map(_x),
    })
    return t.to_string(index=False)


def report(df, targets) -> str:
    """Tables, the targets and the path summary, as printed."""
    lines = [format_table(df), ""]
    paths = format_paths(df)
    if paths:
        lines += ["Convolutions: the path the layer picks without measuring (records before the roofline view: "
                  "the FLOP rule) against both paths timed (rebuilt = force_path='dense')", paths, ""]
    for name, (met, total) in targets.items():
        lines.append(f"target: {name}: met in {met} of {total} rows" + (" -- MET" if met == total and total else ""))
    has_peer = df["tltorch_best/ours"].notna()
    if has_peer.any():
        for impl in IMPLEMENTATIONS:
            r = df.loc[has_peer, f"tltorch_{impl}/ours"]
            lines.append(f"  tltorch {impl} / ours: median {r.median():.2f}, range {r.min():.2f}..{r.max():.2f}, "
                         f">= 2 in {int((r >= 2).sum())} of {len(r)} rows")
    else:
        lines.append("  tltorch not installed: peer column empty")
    flop_bound = df[df.dense_s >= 1e-3]
    if len(flop_bound):
        r = flop_bound["measured/predicted"]
        lines.append(f"  measured/predicted where dense >= 1 ms: median {r.median():.2f}; within 1.5x both ways "
                     f"(1/1.5..1.5) in {int(((r <= 1.5) & (r >= 1 / 1.5)).sum())} of {len(r)} rows")
    conv = df[df.kind == "conv"]
    if len(conv):
        faster = (conv.ours_factored_s <= conv.ours_dense_s).map({True: "factored", False: "dense"})
        lines.append(f"  conv path: the unmeasured choice is the faster of factored / rebuilt in "
                     f"{int((conv.path == faster).sum())} of {len(conv)} rows")
    if "roofline_s" in df and df.roofline_s.notna().any():
        lines += ["", format_roofline_report(df)]
    return "\n".join(lines)


# -- the roofline view ----------------------------------------------------------------------

#: The issue's goals for the roofline view, in print order.
GOALS = ("eval-mode factorized never slower than dense (within 5 %)",
         "chosen path within 1.5x of its roofline prediction where compute-bound",
         "median >= 2x over TensorLy-Torch at equal rank, forward+backward (factorized and reconstructed each)")
#: Tolerance of the eval-mode goal: ours / dense at most this.
EVAL_TOLERANCE = 1.05
#: Largest measured / roofline time of a compute-bound row that meets the roofline goal.
ROOFLINE_FACTOR = 1.5
#: Smallest median TensorLy-Torch / ours that meets the peer goal.
PEER_FACTOR = 2.0


def roofline_goals(df) -> dict[str, dict]:
    """The three goals of the roofline view from a frame of rows measured with it: ``{goal:
    {"met": True / False / None (not measured), "rows_met", "rows", "detail"}}``:

    1. every row: ours in eval mode (autotuned, rebuilt weight cached) / dense in eval mode
       <= :data:`EVAL_TOLERANCE` (the detail says by how many microseconds the rows over it
       are slower: a constant excess is the layer's Python dispatch, not its arithmetic; and,
       where rows have ``dense_copy_eval_s``, how often the dense layer's own copy is within
       the tolerance of it: the goal's noise floor);
    2. compute-bound rows (the autotuned path's FLOP terms outweigh its byte terms):
       measured forward+backward / roofline prediction <= :data:`ROOFLINE_FACTOR`;
    3. rows with a TensorLy-Torch peer: the median of its time / ours (autotuned) >=
       :data:`PEER_FACTOR`, for ``factorized`` and for ``reconstructed`` separately.
    """
    import numpy as np

    out = {}
    d = df[df.get("ours_eval_s", np.nan) == df.get("ours_eval_s", np.nan)] if "ours_eval_s" in df else df.iloc[:0]
    r = d.ours_eval_s / d.dense_eval_s if len(d) else d.index.to_series()
    met = int((r <= EVAL_TOLERANCE).sum()) if len(d) else 0
    detail = "" if not len(d) else f"ours/dense in eval: median {r.median():.2f}, max {r.max():.2f}"
    if met < len(d):
        over = (d.ours_eval_s - d.dense_eval_s)[r > EVAL_TOLERANCE] * 1e6
        detail += f"; the rows over it are slower by {over.median():.1f} µs (median), {over.max():.1f} µs at most"
    if len(d) and "dense_copy_eval_s" in d and d.dense_copy_eval_s.notna().all():
        rc = d.dense_copy_eval_s / d.dense_eval_s
        detail += (f"; control (a copy of the dense layer, timed in the same rounds): within it in "
                   f"{int((rc <= EVAL_TOLERANCE).sum())} of {len(d)} rows, copy/dense max {rc.max():.2f}")
    out[GOALS[0]] = {"met": None if not len(d) else met == len(d), "rows_met": met, "rows": len(d), "detail": detail}
    c = d[d.bound == "compute"] if len(d) else d
    rr = c.roofline_ratio if len(c) else c.index.to_series()
    met = int((rr <= ROOFLINE_FACTOR).sum()) if len(c) else 0
    out[GOALS[1]] = {"met": None if not len(c) else met == len(c), "rows_met": met, "rows": len(c),
                     "detail": "" if not len(c) else f"measured/roofline: median {rr.median():.2f}, "
                                                    f"max {rr.max():.2f}"}
    medians, rows = {}, 0
    for impl in IMPLEMENTATIONS:
        col = f"tltorch_{impl}_s"
        if col in d and d[col].notna().any():
            p = (d[col] / d.ours_tuned_s).dropna()
            medians[impl], rows = float(p.median()), max(rows, len(p))
    out[GOALS[2]] = {"met": None if not medians else all(v >= PEER_FACTOR for v in medians.values()),
                     "rows_met": sum(v >= PEER_FACTOR for v in medians.values()), "rows": rows,
                     "detail": "tltorch not measured (not installed)" if not medians else
                     ", ".join(f"{k} / ours median {v:.2f}" for k, v in medians.items())}
    return out


def format_roofline(df) -> str:
    """The roofline table: per row the path the layer picks unmeasured (cost model) and
    autotuned, the tuned path's forward+backward FLOPs and bytes, its FLOP-only and roofline
    predictions, the measured time and their ratio, and its bound."""
    import pandas as pd

    d = df[df.roofline_s.notna()]
    t = pd.DataFrame({
        "layer": d["kind"] + " " + d["shape"], "family": d.family,
        "c": d.compression.map(lambda v: "-" if v is None or v != v else f"{v:g}"), "B": d.batch,
        "model path": d.path, "tuned path": d.tuned_path,
        "GFLOP": (d.flops / 1e9).map(lambda v: f"{v:.4f}"), "MB": (d["bytes"] / 1e6).map(lambda v: f"{v:.2f}"),
        "FLOP-only ms": d.flop_only_s.map(_ms), "roofline ms": d.roofline_s.map(_ms),
        "model ms": d.ours_s.map(_ms), "tuned ms": d.ours_tuned_s.map(_ms),
        "tuned/roofline": d.roofline_ratio.map(_x), "bound": d.bound,
        "dense roofline ms": d.dense_roofline_s.map(_ms), "dense ms": d.dense_s.map(_ms),
    })
    return t.to_string(index=False)


def format_eval(df) -> str:
    """The inference table (eval mode, no autograd): dense, ours under the cost model and
    autotuned (the rebuilt weight cached when that path wins), with the paths."""
    import pandas as pd

    d = df[df.ours_eval_s.notna()]
    t = pd.DataFrame({
        "layer": d["kind"] + " " + d["shape"], "family": d.family,
        "c": d.compression.map(lambda v: "-" if v is None or v != v else f"{v:g}"), "B": d.batch,
        "dense ms": d.dense_eval_s.map(_ms), "model ms": d.ours_eval_model_s.map(_ms),
        "model path": d.eval_model_path, "tuned ms": d.ours_eval_s.map(_ms), "tuned path": d.eval_path,
        "tuned/dense": (d.ours_eval_s / d.dense_eval_s).map(_x),
    })
    return t.to_string(index=False)


def format_roofline_report(df) -> str:
    """The machine, the roofline and inference tables, medians and the goals, as printed."""
    d = df[df.roofline_s.notna()]
    first = d.iloc[0]
    lines = [f"Roofline view: peak {first.peak_flops / 1e9:.1f} GFLOP/s (large GEMM), bandwidth "
             f"{first.bandwidth / 1e9:.1f} GB/s (large copy), measured in this process; forward+backward counted as "
             f"{FWD_BWD_PASSES} forward passes; bound = which term of max(FLOPs/peak, bytes/bandwidth) is larger",
             format_roofline(d), "", "Inference (eval mode, no autograd; rebuilt or merged weights cached)",
             format_eval(d), ""]
    for col, label in (("ours_s", "cost model"), ("ours_tuned_s", "autotuned")):
        r = d[col] / d.dense_s
        lines.append(f"  forward+backward ours/dense ({label}): median {r.median():.2f}, faster than dense in "
                     f"{int((r < 1).sum())} of {len(r)} rows")
    lines.append(f"  memory-bound rows (tuned path): {int((d.bound == 'memory').sum())} of {len(d)}; "
                 f"the dense layer: {int((d.dense_bound == 'memory').sum())} of {len(d)}")
    for name, g in roofline_goals(d).items():
        status = "not measured" if g["met"] is None else "met" if g["met"] else "NOT met"
        lines.append(f"goal: {name}: {status} ({g['rows_met']} of {g['rows']}; {g['detail']})")
    return "\n".join(lines)


# -- the run record -------------------------------------------------------------------------

NAME = "layers_benchmark"
#: The device each profile measures on.
PROFILE_DEVICE = {"smoke": "cpu", "cpu": "cpu", "full": "cuda"}


@dataclass(kw_only=True)
class Config(RunConfig):
    """One benchmark run: the configurations (labels of :func:`configurations`) at each of
    ``batches`` on ``device``, about ``budget_s`` seconds per measurement."""

    experiment: str
    profile: Profile
    device: Literal["cpu", "cuda"]
    batches: list[int]
    configs: list[str]
    budget_s: float
    input_requires_grad: bool
    #: Also measure the roofline view (machine peak and bandwidth, every candidate path,
    #: autotune, eval-mode times). Omitted from the hashed dict while False, so records made
    #: before it existed keep their keys.
    roofline: bool = False
    #: How the roofline view's eval-mode times are taken: ``warm`` (sampled in turn, each sample
    #: after one untimed call of its own step, :func:`measure_interleaved`), ``interleaved`` (in
    #: turn without that call: a step that follows one on other tensors of cache size pays their
    #: misses, one that follows a step on the same weight does not, a bias of several
    #: microseconds per call at batch 1 on this project's CPU) or ``sequential`` (one after the
    #: other, as records before both were; omitted from the hashed dict, so they keep their keys).
    eval_timing: Literal["sequential", "interleaved", "warm"] = "sequential"
    #: torch CPU threads the measurement runs with (set for its duration, then restored); None:
    #: whatever the process had (records before it; omitted from the hashed dict, so they keep
    #: their keys). A record's ratios depend on it, so it is part of the key.
    threads: int | None = None

    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("roofline", "eval_timing", "threads")


#: Threads of a CPU measurement with the roofline view unless asked otherwise: the chapter's
#: records are single-threaded (one core measured, the other left to the machine).
CPU_THREADS = 1


def default_budget(profile: str) -> float:
    """Seconds per measurement unless given: 0.02 for the smoke profile, else 0.3."""
    return 0.02 if profile == "smoke" else 0.3


def make_config(profile: str, device: str | torch.device | None = None, budget: float | None = None,
                roofline: bool = True, threads: int | None = None) -> Config:
    """The config of one benchmark run (``profile`` "smoke" = the quick subset; "cpu" or
    "full" = everything) on ``device``'s kind (default: the profile's,
    :data:`PROFILE_DEVICE`), at ``budget`` seconds per measurement (default
    :func:`default_budget`), with the roofline view unless ``roofline`` is False, on
    ``threads`` torch threads (default :data:`CPU_THREADS` on the CPU with the roofline view;
    else None: the process's own, as the records from before it)."""
    quick = check_profile(profile) == "smoke"
    device = PROFILE_DEVICE[profile] if device is None else torch.device(device).type
    budget = default_budget(profile) if budget is None else budget
    if threads is None and roofline and device == "cpu":
        threads = CPU_THREADS
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return Config(experiment=NAME, profile=profile, device=device, batches=list(QUICK_BATCHES if quick else BATCHES),
                  configs=config_labels(quick), budget_s=budget, input_requires_grad=True, roofline=roofline,
                  eval_timing="warm" if roofline else "sequential", threads=threads)


def config(profile: str, device: torch.device, budget: float | None = None) -> dict:
    """:func:`make_config` as the dict the run store hashes."""
    return make_config(profile, device, budget).to_dict()


def configs(profile: str) -> list[Config]:
    """The grid: one run per profile, on the profile's device, at the default budget, with
    the roofline view (the record measured before it existed stays in the store: the chapter
    reads it for the before/after medians, :func:`factorlab.report.layers_benchmark.
    load_before_record`)."""
    return [make_config(profile)]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


def measure_record(cfg: dict, device: torch.device, log=print) -> dict:
    """Run the benchmark described by ``cfg`` on ``device`` (with ``cfg["threads"]`` torch
    threads where it names them, restored after); the parts of a run record."""
    t0 = time.perf_counter()
    before = torch.get_num_threads()
    if cfg.get("threads") is not None:
        torch.set_num_threads(cfg["threads"])
    try:
        rows = run(device, cfg["profile"] == "smoke", cfg["budget_s"], log=log, roofline=cfg.get("roofline", False),
                   eval_timing=cfg.get("eval_timing", "sequential"))
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    df, targets = summarize(rows)
    metrics = {"rows": rows, "targets": {k: list(v) for k, v in targets.items()},
               "tltorch": None if tltorch is None else tltorch.__version__, "threads": threads}
    if cfg.get("roofline", False):
        metrics["goals"] = {k: v for k, v in roofline_goals(df).items()}
    return {"metrics": metrics, "timing": {"wall_s": time.perf_counter() - t0, "threads": threads,
                                           "path_cost": cost_model_info()}}


def train(cfg: dict, device: str = "auto") -> dict:
    """Measure ``cfg`` on the device it names (``device`` is not used: the profile chose it)."""
    return measure_record(cfg, resolve_device(cfg["device"]))


def record(profile: str, device: str = "auto", store=None, budget: float | None = None) -> dict:
    """The stored record of ``profile`` on ``device``'s kind (at ``budget``, default the
    profile's), measured now if missing. Notebooks: ``run_experiment("layers_benchmark",
    profile)[0]`` is the same record where ``device`` is the profile's."""
    from factorlab.experiments.registry import run_config

    return run_config(NAME, make_config(profile, resolve_device(device), budget), device, store)


EXPERIMENT = Experiment(NAME, "benchmark", Config, configs, train, label_keys=("device", "budget_s"),
                        measures_on="device")


def _options(parser) -> None:
    parser.add_argument("--budget", type=float, default=None,
                        help="about this many seconds per measurement (default 0.3; 0.02 with --quick)")


def _header(cfg: Config, device: str) -> str:
    peer = "tltorch not installed: peer column empty" if tltorch is None else f"tltorch {tltorch.__version__}"
    return f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {peer}"


def _table(rec: dict, cfg: Config) -> str:
    df, targets = summarize(rec["metrics"]["rows"])
    return "\n" + report(df, targets)


#: ``benchmarks/layers.py`` (:func:`factorlab.experiments.benchmark_cli.benchmark_main`).
COMMAND = BenchmarkCommand(
    make_config=lambda profile, device, args: make_config(profile, device, args.budget, threads=args.threads),
    measure=lambda cfg, device: measure_record(cfg.to_dict(), resolve_device(device)),
    table=_table, header=_header, quick="two configurations, batch 32, few repeats (smoke test)",
    devices=("auto", "cpu", "cuda"), threads=True, options=_options,
)
