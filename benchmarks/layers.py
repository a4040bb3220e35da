"""Benchmark: forward+backward time of every factorized layer against the dense layer of the
same shape and against TensorLy-Torch at the same rank, in one process.

    python benchmarks/layers.py                 # CPU here (or --device cuda), prints the table
    python benchmarks/layers.py --record        # also stores the table as a run record
    python benchmarks/layers.py --quick         # two configurations, one batch size (smoke)

Each row times, back to back and with the same input: the dense layer, ours (the path its
FLOP rule picks; convolutions also forced to each path) and TensorLy-Torch's
``FactorizedLinear`` / ``FactorizedConv`` (``implementation="factorized"`` and
``"reconstructed"``) built with the rank our layer ended up with. Times are medians after
warm-up, with the device synchronized; the number of repeats adapts so that one
measurement takes about ``--budget`` seconds. Ratios are printed beside the FLOP-predicted
ratio (our FLOPs / dense FLOPs, forward only; backward scales the same way to first order).

TensorLy-Torch (``pip install --no-deps -r benchmarks/requirements.txt``) is optional: without
it the peer columns stay empty.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from factorlab.layers import (CPConv2d, CPLinear, LowRankConv2d, LowRankLinear, SeparableConv2d,  # noqa: E402
                              TTConv2d, TTLinear, TuckerConv2d, TuckerLinear)
from factorlab.layers.conv import conv_flops, conv_output_hw  # noqa: E402
from factorlab.train.device import resolve_device, synchronize  # noqa: E402

try:  # the peer: optional, benchmark-only dependency
    import tltorch  # noqa: E402
except ImportError:  # pragma: no cover - depends on the environment
    tltorch = None

BATCHES = (1, 32, 256)


def measure(fn, device, budget: float) -> float:
    """Median seconds of ``fn()``: 2 warm-up calls (the second also sizes the measurement),
    then as many repeats (3..50) as fit in about ``budget`` seconds."""
    import statistics

    fn()  # warm-up: plans, allocator, lazy initialisation
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    once = max(time.perf_counter() - t0, 1e-7)
    repeats = int(min(50, max(3, budget / once)))
    inner = max(1, int(1e-3 / once))  # loop very short calls to get above clock resolution
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        synchronize(device)
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def fwd_bwd(module: nn.Module, x: torch.Tensor):
    """A closure running one forward and backward pass (loss = sum of outputs)."""
    params = [p for p in module.parameters() if p.requires_grad]

    def step():
        for p in params:
            p.grad = None
        module(x).sum().backward()

    return step


# -- configurations -------------------------------------------------------------------------

def linear_configs(quick: bool) -> list[dict]:
    shapes = [(784, 512, (28, 28), (32, 16), (16, 7, 7), (8, 8, 8))]
    if not quick:
        shapes.append((512, 512, (32, 16), (32, 16), (8, 8, 8), (8, 8, 8)))
    out = []
    for i, o, im2, om2, im3, om3 in shapes:
        for c in ((4,) if quick else (4, 16)):
            fams = [("lowrank", lambda c=c, i=i, o=o: LowRankLinear(i, o, compression=c)),
                    ("cp", lambda c=c, i=i, o=o, im=im2, om=om2: CPLinear(i, o, compression=c, in_modes=im, out_modes=om)),
                    ("tucker", lambda c=c, i=i, o=o, im=im2, om=om2: TuckerLinear(i, o, compression=c, in_modes=im,
                                                                                  out_modes=om)),
                    ("tt", lambda c=c, i=i, o=o, im=im3, om=om3: TTLinear(i, o, compression=c, in_modes=im,
                                                                          out_modes=om))]
            if quick:
                fams = fams[-1:]
            for fam, make in fams:
                out.append({"kind": "linear", "family": fam, "shape": f"{i}->{o}", "compression": c, "make": make,
                            "dense": lambda i=i, o=o: nn.Linear(i, o)})
    return out


def conv_configs(quick: bool) -> list[dict]:
    shapes = [(32, 14)] if quick else [(32, 14), (64, 32)]
    out = []
    for ch, hw in shapes:
        base = {"kind": "conv", "shape": f"{ch}->{ch} 3x3 @{hw}x{hw}", "hw": hw,
                "dense": lambda ch=ch: nn.Conv2d(ch, ch, 3, padding=1)}
        out.append({**base, "family": "separable", "compression": None,
                    "make": lambda ch=ch: SeparableConv2d(ch, ch, 3, padding=1)})
        if quick:
            continue
        for c in (4, 16):
            for fam, cls in (("lowrank", LowRankConv2d), ("cp", CPConv2d), ("tucker", TuckerConv2d), ("tt", TTConv2d)):
                out.append({**base, "family": fam, "compression": c,
                            "make": lambda ch=ch, cls=cls, c=c: cls(ch, ch, 3, padding=1, compression=c)})
    return out


def peer(layer, implementation: str):
    """TensorLy-Torch's layer with the same factorization and rank as ``layer``, or None
    where it has no equivalent (low-rank linear, separable, low-rank and TT convolutions)."""
    if tltorch is None:
        return None
    if isinstance(layer, CPLinear):
        return tltorch.FactorizedLinear(layer.in_modes, layer.out_modes, factorization="cp", rank=layer.rank,
                                        implementation=implementation)
    if isinstance(layer, TuckerLinear):
        return tltorch.FactorizedLinear(layer.in_modes, layer.out_modes, factorization="tucker",
                                        rank=tuple(layer.rank), implementation=implementation)
    if isinstance(layer, TTLinear):
        return tltorch.FactorizedLinear(layer.in_modes, layer.out_modes, factorization="blocktt",
                                        rank=(1, *layer.rank, 1), implementation=implementation)
    if isinstance(layer, CPConv2d):
        return tltorch.FactorizedConv(layer.in_channels, layer.out_channels, layer.kernel_size, order=2,
                                      padding=layer.padding, factorization="cp", rank=layer.rank,
                                      implementation=implementation)
    if isinstance(layer, TuckerConv2d):
        p, q = layer.rank
        return tltorch.FactorizedConv(layer.in_channels, layer.out_channels, layer.kernel_size, order=2,
                                      padding=layer.padding, factorization="tucker",
                                      rank=(p, q, *layer.kernel_size), implementation=implementation)
    return None


def dense_flops(cfg: dict, dense: nn.Module, batch: int) -> int:
    if cfg["kind"] == "linear":
        return 2 * batch * dense.in_features * dense.out_features + batch * dense.out_features
    hw = conv_output_hw((cfg["hw"], cfg["hw"]), dense.kernel_size, dense.stride, dense.padding, dense.dilation)
    return conv_flops(batch, dense.in_channels, dense.out_channels, hw, dense.kernel_size) + \
        batch * dense.out_channels * hw[0] * hw[1]


def run(device: torch.device, quick: bool, budget: float) -> list[dict]:
    rows = []
    batches = (32,) if quick else BATCHES
    for cfg in linear_configs(quick) + conv_configs(quick):
        torch.manual_seed(0)
        ours = cfg["make"]().to(device)
        dense = cfg["dense"]().to(device)
        peers = {impl: peer(ours, impl) for impl in ("factorized", "reconstructed")}
        peers = {k: v.to(device) for k, v in peers.items() if v is not None}
        for batch in batches:
            shape = (batch, dense.in_features) if cfg["kind"] == "linear" else (batch, dense.in_channels, cfg["hw"],
                                                                                 cfg["hw"])
            x = torch.randn(shape, device=device)
            for m in peers.values():
                assert m(x).shape == ours(x).shape, "peer and ours disagree on the output shape"
            row = {"kind": cfg["kind"], "family": cfg["family"], "shape": cfg["shape"],
                   "compression": cfg["compression"], "rank": str(ours.rank), "params": ours.num_params(),
                   "dense_params": ours.dense_params(), "batch": batch,
                   "flop_ratio": ours.flops(shape) / dense_flops(cfg, dense, batch)}
            row["dense_s"] = measure(fwd_bwd(dense, x), device, budget)
            row["ours_s"] = measure(fwd_bwd(ours, x), device, budget)
            if cfg["kind"] == "conv":
                row["path"] = ours.path_for(shape)
                for path in ("factored", "dense"):
                    ours.force_path = path
                    row[f"ours_{path}_s"] = measure(fwd_bwd(ours, x), device, budget)
                ours.force_path = None
            for impl, m in peers.items():
                row[f"tltorch_{impl}_s"] = measure(fwd_bwd(m, x), device, budget)
            rows.append(row)
            print(f"  {cfg['kind']:6s} {cfg['family']:9s} {cfg['shape']:20s} c={cfg['compression']} B={batch}: "
                  f"dense {1e3 * row['dense_s']:.3f} ms, ours {1e3 * row['ours_s']:.3f} ms", flush=True)
    return rows


def summarize(rows: list[dict]):
    """The table (pandas) and the three targets of the issue, checked on the rows."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df["ours/dense"] = df.ours_s / df.dense_s
    df["measured/predicted"] = df["ours/dense"] / df.flop_ratio
    for impl in ("factorized", "reconstructed"):
        col = f"tltorch_{impl}_s"
        if col not in df:
            df[col] = float("nan")
        df[f"tltorch_{impl}/ours"] = df[col] / df.ours_s
    compressed = df[df.params < df.dense_params]
    b1 = compressed[compressed.batch == 1]
    flop_bound = df[df.dense_s >= 1e-3]
    peer_best = df[["tltorch_factorized_s", "tltorch_reconstructed_s"]].min(axis=1) / df.ours_s
    has_peer = peer_best.notna()
    targets = {
        "never slower than dense at batch 1 (compressed)": (int((b1["ours/dense"] <= 1.0).sum()), len(b1)),
        "within 1.5x of the FLOP prediction where dense >= 1 ms": (
            int((flop_bound["measured/predicted"] <= 1.5).sum()), len(flop_bound)),
        "at least 2x faster than TensorLy-Torch (its faster implementation)": (
            int((peer_best[has_peer] >= 2.0).sum()), int(has_peer.sum())),
    }
    return df, targets


def format_table(df) -> str:
    cols = ["kind", "family", "shape", "compression", "rank", "batch", "dense_s", "ours_s", "ours/dense", "flop_ratio",
            "measured/predicted", "tltorch_factorized/ours", "tltorch_reconstructed/ours"]
    if "ours_factored_s" in df:
        cols += ["path", "ours_factored_s", "ours_dense_s"]
    out = df[cols].copy()
    for c in [c for c in cols if c.endswith("_s")]:
        out[c] = (1e3 * out[c]).map(lambda v: "" if math.isnan(v) else f"{v:.3f}")
        out = out.rename(columns={c: c[:-2] + " ms"})
    for c in ["ours/dense", "flop_ratio", "measured/predicted", "tltorch_factorized/ours", "tltorch_reconstructed/ours"]:
        out[c] = out[c].map(lambda v: "" if v != v else f"{v:.2f}")
    return out.to_string(index=False)


def config(profile: str, device: torch.device, budget: float = 0.5) -> dict:
    """The run-store config of one benchmark run (``profile`` smoke = the quick subset)."""
    return {"experiment": "layers_benchmark", "profile": profile, "device_kind": device.type,
            "batches": [32] if profile == "smoke" else list(BATCHES), "budget_s": budget}


def measure_record(cfg: dict, device: torch.device) -> dict:
    """Run the benchmark described by ``cfg``; the parts of a run record."""
    t0 = time.perf_counter()
    rows = run(device, cfg["profile"] == "smoke", cfg["budget_s"])
    _, targets = summarize(rows)
    return {"metrics": {"rows": rows, "targets": {k: list(v) for k, v in targets.items()},
                        "tltorch": None if tltorch is None else tltorch.__version__},
            "timing": {"wall_s": time.perf_counter() - t0, "threads": torch.get_num_threads()}}


def record(profile: str, device: str = "auto", store=None, budget: float = 0.5) -> dict:
    """The stored benchmark record of ``profile`` on ``device``'s kind, measured now if missing
    (this is what the book's benchmark chapter calls)."""
    from factorlab.results import RunStore

    dev = resolve_device(device)
    store = store or RunStore()
    return store.run(config(profile, dev, budget), lambda c: measure_record(c, dev), device=str(dev))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--quick", action="store_true", help="two configurations, batch 32 (a smoke test)")
    parser.add_argument("--record", action="store_true", help="store the table as a run record (experiment "
                        "layers_benchmark)")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per measurement (default 0.5)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"TensorLy-Torch {'not installed: peer columns empty' if tltorch is None else tltorch.__version__}")
    profile = "smoke" if args.quick else "cpu" if device.type == "cpu" else "full"
    cfg = config(profile, device, args.budget)
    if args.record:
        from factorlab.results import RunStore

        store = RunStore()
        store.path(cfg).unlink(missing_ok=True)  # a new measurement replaces the old one
        rec = record(profile, str(device), store, args.budget)
        rows = rec["metrics"]["rows"]
        print(f"recorded: {store.path(cfg)}")
    else:
        rows = measure_record(cfg, device)["metrics"]["rows"]
    df, targets = summarize(rows)
    print()
    print(format_table(df))
    print()
    for name, (met, total) in targets.items():
        print(f"target: {name}: met in {met} of {total} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
