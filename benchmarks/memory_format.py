"""Benchmark: a CIFAR-10 training step in the NCHW and the channels-last memory format, one process.

    python benchmarks/memory_format.py                # every net of the cpu grids, prints the table (~3 min)
    python benchmarks/memory_format.py --record       # ... and stores it as one run record for the book
    python benchmarks/memory_format.py --quick        # two small nets, batch 16: seconds (smoke test)
    python benchmarks/memory_format.py --device cuda  # on a GPU

:func:`factorlab.train.cifar_recipe.fit_fast` puts the model and every batch in channels-last memory
format (recipe key ``channels_last``, default True). Until the CPU comparison with airbench94
(``airbench_anchor.py --profile cpu``) it did so only on CUDA; airbench94 does it everywhere,
which made it faster on the CPU. This measures the choice: for every distinct net of the
``cpu`` grids of ``cifar_baselines``, ``cifar_factorized`` and ``cifar_long`` (the dense
ResNet-9 and airbench nets at their widths, every factorized variant), the median time of one
training step (forward, summed cross-entropy, backward, SGD step with Nesterov momentum) on
the same random batch of the recipe's size, in both formats, back to back from the same
initial weights (:func:`factorlab.train.timing.median_time`: warm-up excluded, device
synchronized). The ratio NCHW / channels-last above 1 means channels-last is faster. Run it
on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

EXPERIMENT = "memory_format_benchmark"
GRIDS = ("cifar_baselines", "cifar_factorized", "cifar_long")
#: ``--quick``: (net, width, factorize), batch size.
QUICK = ([("airbench", 0.125, None), ("airbench", 0.125, {"family": "separable_tt", "d": 2, "rank": 4})], 16)


def cases(profile: str) -> tuple[list[tuple[str, float, dict | None]], int]:
    """The distinct (net, width, factorize) of the ``profile`` grids (``smoke``: :data:`QUICK`)
    and the batch size of their recipes."""
    if profile == "smoke":
        return [(n, w, copy.deepcopy(f)) for n, w, f in QUICK[0]], QUICK[1]
    from factorlab.experiments import get_experiment

    seen, out, batch = set(), [], set()
    for name in GRIDS:
        for c in get_experiment(name).grid(profile):
            key = (c["net"], c["width"], repr(c["factorize"]))
            batch.add(c["recipe"]["batch_size"])
            if key not in seen:
                seen.add(key)
                out.append((c["net"], c["width"], c["factorize"]))
    if len(batch) != 1:
        raise RuntimeError(f"the {profile} grids use several batch sizes {sorted(batch)}")
    return out, batch.pop()


def config(profile: str, device: str) -> dict:
    """The run-store config of one benchmark run."""
    nets, batch = cases(profile)
    return {"experiment": EXPERIMENT, "profile": profile, "device": device, "batch_size": batch,
            "nets": [{"net": n, "width": w, "factorize": f} for n, w, f in nets], "repeats": 5 if profile == "smoke"
            else 15}


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
    dev = torch.device(cfg["device"])
    rows = []
    for k, spec in enumerate(cfg["nets"]):
        times = {}
        for cl in ((False, True) if k % 2 == 0 else (True, False)):
            times[cl] = step_time(spec["net"], spec["width"], spec["factorize"], cfg["batch_size"], cl, dev,
                                  cfg["repeats"])
        row = {**spec, "family": "dense" if spec["factorize"] is None else spec["factorize"]["family"],
               "nchw_s": times[False], "channels_last_s": times[True], "speedup": times[False] / times[True]}
        rows.append(row)
        log(f"  {label(row)}: NCHW {1e3 * row['nchw_s']:.1f} ms, channels-last {1e3 * row['channels_last_s']:.1f} ms, "
            f"{row['speedup']:.2f}x")
    s = [r["speedup"] for r in rows]
    return {"metrics": {"rows": rows, "speedup_min": min(s), "speedup_median": statistics.median(s),
                        "speedup_max": max(s), "n_faster": sum(v > 1 for v in s), "n": len(s)},
            "timing": {"threads": torch.get_num_threads(),
                       "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}}


def label(row: dict) -> str:
    f = row["factorize"] or {}
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(f.items()) if k != "family")
    return f"{row['net']} {row['width']:g} {row['family']}" + (f" ({knobs})" if knobs else "")


def report(metrics: dict, batch: int) -> str:
    """The printed table: step time per format (ms) and the ratio, per net; then the summary."""
    lines = [f"{'net':58s} {'NCHW ms':>8s} {'ch-last ms':>10s} {'ratio':>6s}   (training step, batch {batch})"]
    for r in metrics["rows"]:
        lines.append(f"{label(r):58s} {1e3 * r['nchw_s']:8.1f} {1e3 * r['channels_last_s']:10.1f} {r['speedup']:6.2f}")
    lines.append(f"channels-last faster for {metrics['n_faster']} of {metrics['n']} nets; ratio NCHW / channels-last "
                 f"{metrics['speedup_min']:.2f} to {metrics['speedup_max']:.2f} (median {metrics['speedup_median']:.2f})")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small nets at batch 16 (smoke test)")
    parser.add_argument("--record", action="store_true",
                        help=f"store the result as a run record (experiment {EXPERIMENT}), replacing an old one")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available here", file=sys.stderr)
        return 2
    profile = "smoke" if args.quick else ("full" if args.device == "cuda" else "cpu")
    cfg = config(profile, args.device)
    print(f"training step, NCHW against channels-last, profile {profile}, {len(cfg['nets'])} nets, batch "
          f"{cfg['batch_size']}, device {args.device} ({torch.get_num_threads()} threads)", flush=True)
    if args.record:
        from factorlab.results import RunStore

        store = RunStore()
        store.path(cfg).unlink(missing_ok=True)  # a new measurement replaces the old one
        metrics = store.run(cfg, run, device=args.device)["metrics"]
        print(f"recorded: {store.path(cfg)}")
    else:
        metrics = run(cfg)["metrics"]
    print(report(metrics, cfg["batch_size"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
