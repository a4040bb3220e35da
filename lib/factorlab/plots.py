"""One seaborn theme for the whole book and the small helpers every chapter uses."""
from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

#: Figure width (inches) that fills the book's text column.
FULL_WIDTH = 9.0


def set_theme() -> None:
    """The book's look: seaborn 'whitegrid', colorblind palette, crisp PNG at 110 dpi."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": "medium"})


def mean_std(values, digits: int = 2, scale: float = 1.0) -> str:
    """``"m ± s"`` of ``values`` times ``scale`` with fixed rounding (sample std, ddof=1; just
    ``"m"`` for a single value), so tables print identically on every replay."""
    import numpy as np

    arr = np.asarray(list(values), dtype=float) * scale
    if arr.size == 0:
        return "n/a"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def close(fig: plt.Figure) -> None:
    """Close ``fig`` after it was displayed, so notebooks print no ``<Figure ...>`` text."""
    plt.close(fig)


def human_count(x: float, _pos=None) -> str:
    """Tick label for counts: 950, 12k, 3.4M."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v = x / div
            return f"{v:.0f}{suffix}" if v >= 10 or v == int(v) else f"{v:.1f}{suffix}"
    return f"{x:g}"


def log_axis(ax, axis: str = "x", counts: bool = True, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Log scale on ``axis`` with readable major labels (``human_count`` or plain numbers)
    and unlabelled minor ticks."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(human_count if counts else (lambda x, _p=None: f"{x:g}")))
    target.set_minor_formatter(NullFormatter())
