"""Small, tested analysis helpers shared by the chapters: Pareto frontiers, the largest
compression within an accuracy tolerance, and flattening run records into tables."""
from __future__ import annotations

import pandas as pd


def pareto_front(df: pd.DataFrame, x: str = "params", y: str = "acc") -> pd.DataFrame:
    """Rows of ``df`` not dominated by another row with ``x`` <= and ``y`` >= (one strictly),
    i.e. the best ``y`` reachable at each ``x`` budget; sorted by ``x`` ascending."""
    if df.empty:
        return df.copy()
    ordered = df.sort_values([x, y], ascending=[True, False])
    keep, best = [], float("-inf")
    for idx, val in ordered[y].items():
        if val > best:
            keep.append(idx)
            best = val
    return ordered.loc[keep]


def largest_compression_within(df: pd.DataFrame, reference: float, tolerance: float, *,
                               group: str = "family", compression: str = "compression",
                               y: str = "acc") -> pd.DataFrame:
    """Per ``group``, the largest ``compression`` whose mean ``y`` is at least ``reference -
    tolerance`` (``NaN`` when none is). ``df`` has one row per run; returns one row per group
    with the compression and the mean ``y`` there."""
    means = df.groupby([group, compression], as_index=False)[y].mean()
    rows = []
    for name, g in means.groupby(group, sort=False):
        ok = g[g[y] >= reference - tolerance]
        if ok.empty:
            rows.append({group: name, compression: float("nan"), y: float("nan")})
        else:
            best = ok.loc[ok[compression].idxmax()]
            rows.append({group: name, compression: best[compression], y: best[y]})
    return pd.DataFrame(rows)


def factorized_runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run of ``mnist_factorized``: net, family, compression (of the factorized
    layers, None for dense), width, seed, test accuracy (%), parameters, FLOPs per sample,
    training seconds and the time/epochs to the target training loss."""
    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        layers = r["model"].get("factorized_layers", [])
        rows.append({
            "net": c["net"], "family": c["family"], "compression": c["compression"], "width": c["width"],
            "seed": c["seed"], "epochs": c["epochs"], "acc": 100 * m["test_acc"], "train_loss": m["train_loss"],
            "params": r["model"]["params"], "flops": r["model"]["flops_per_sample"],
            "layer_params": sum(L["params"] for L in layers) or None,
            "layer_dense_params": sum(L["dense_params"] for L in layers) or None,
            "ranks": "; ".join(str(L["rank"]) for L in layers),
            "train_s": r["timing"]["train_s"], "target_loss": m["target_loss"],
            "time_to_target_s": m["time_to_target_s"], "epochs_to_target": m["epochs_to_target"],
        })
    return pd.DataFrame(rows)


def interpolate_log(x_known, y_known, x) -> "np.ndarray":
    """``y`` at ``x``, interpolated linearly in ``log(x)`` between the points (``x_known``,
    ``y_known``) (any order; ``x`` > 0), and NaN outside their range: a reference curve such as
    accuracy against parameters, read at other sizes without extrapolating.

    Raises:
        ValueError: no known points, mismatched lengths, or a non-positive ``x``.
    """
    import numpy as np

    xk, yk = np.asarray(x_known, float), np.asarray(y_known, float)
    xq = np.atleast_1d(np.asarray(x, float))
    if xk.size == 0 or xk.shape != yk.shape:
        raise ValueError(f"need matching, non-empty known points, got {xk.shape} and {yk.shape}")
    if (xk <= 0).any() or (xq <= 0).any():
        raise ValueError("x must be positive (it is interpolated in log x)")
    order = np.argsort(xk)
    lx, ly, lq = np.log(xk[order]), yk[order], np.log(xq)
    return np.where((lq >= lx[0]) & (lq <= lx[-1]), np.interp(lq, lx, ly), np.nan)


def paired_difference(a: pd.Series, b: pd.Series) -> tuple[float, float, int]:
    """Mean, standard error and count of the paired differences ``a - b``.

    ``a`` and ``b`` are indexed by the pairing key (e.g. the seed); only keys present in both
    (and not NaN) pair up. The standard error is ``sd(d, ddof=1) / sqrt(n)``, NaN for one
    pair. ValueError when no key pairs up.
    """
    d = (a - b).dropna()
    if d.empty:
        raise ValueError(f"no paired values: keys {sorted(a.index)} and {sorted(b.index)} share none")
    n = int(d.shape[0])
    se = float(d.std(ddof=1) / n ** 0.5) if n > 1 else float("nan")
    return float(d.mean()), se, n


def first_window_reaching(window_loss, target: float) -> int | None:
    """Index of the first window whose mean training loss is at or below ``target`` (nats),
    None when none is (a NaN or infinite mean never reaches)."""
    for i, loss in enumerate(window_loss):
        if loss is not None and loss <= target:  # NaN compares False
            return i
    return None


def time_to_target(window_loss, window_s, target: float, total_s: float | None = None) -> tuple[float, bool]:
    """Training seconds until the windowed training loss first reaches ``target``, censored.

    ``window_loss`` [W]: mean training loss of each window (nats; None or NaN where it was not
    finite), ``window_s`` [W]: cumulative training seconds at the end of each window (as
    recorded by :func:`factorlab.train.fit_classifier`). Returns ``(seconds, censored)``: the
    time at the end of the first window at or below ``target`` and False; or, when no window
    reaches it, the run's whole training time ``total_s`` (default: the last window's time;
    NaN without windows) and True, meaning the time to target is at least that.
    """
    if len(window_loss) != len(window_s):
        raise ValueError(f"{len(window_loss)} window losses but {len(window_s)} window times")
    i = first_window_reaching(window_loss, target)
    if i is not None:
        return float(window_s[i]), False
    if total_s is not None:
        return float(total_s), True
    return (float(window_s[-1]) if len(window_s) else float("nan")), True
