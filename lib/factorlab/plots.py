"""One seaborn theme for the whole book and the small helpers every chapter uses.

Figures are drawn at the size they are shown: :data:`FULL_WIDTH` at :data:`DPI` is 700 px, the
width of the book's text column (688 px in a 1280 px window, at most 790 px; the PNG is never
scaled up), and fits an A4 page in print. So a font of ``p`` points appears ``p·DPI/72`` px tall:
tick labels 10 pt (14 px), legends and annotations 9 pt (12.5 px), beside the 16 px body text.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

#: Figure width (inches) that fills the book's text column: 700 px at :data:`DPI`.
FULL_WIDTH = 7.0
#: Pixels per inch of the figures as shown and saved.
DPI = 100
#: Font sizes in points: labels and titles, tick labels, legends, annotations (:data:`SMALL`).
FONT_SIZE, TICK_SIZE, LEGEND_SIZE = 11.0, 10.0, 9.0
#: The smallest text in any figure (annotations, in-plot notes), in points: 12.5 px at :data:`DPI`.
SMALL = 9.0


def set_theme() -> None:
    """The book's look: seaborn 'whitegrid', colorblind palette, :data:`DPI` px per inch, and the
    font sizes above (in place of seaborn's 'notebook' sizes, which assume a larger figure)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", rc={
        "figure.dpi": DPI, "savefig.dpi": DPI,
        "font.size": FONT_SIZE, "axes.labelsize": FONT_SIZE, "axes.titlesize": FONT_SIZE,
        "xtick.labelsize": TICK_SIZE, "ytick.labelsize": TICK_SIZE,
        "legend.fontsize": LEGEND_SIZE, "legend.title_fontsize": LEGEND_SIZE,
        "legend.framealpha": 0.9, "lines.markersize": 5.0})


def legend_below(fig: plt.Figure, ax, ncol: int = 2, under=None, **kwargs) -> None:
    """One legend of ``ax``'s labelled artists (``ax``'s own legend removed), centred under the
    axes ``under`` (default: all of ``fig``'s axes), labels included, in ``ncol`` columns: for
    figures whose legend would hide data or take a panel's width. Labels too long for a column
    of that width wrap at spaces. Call it after ``fig.tight_layout()``; the displayed PNG is
    cropped to what is drawn, legend included."""
    import textwrap

    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_tightbbox(renderer).transformed(fig.transFigure.inverted()) for a in (under or fig.axes)]
    x0, x1, y0 = min(b.x0 for b in boxes), max(b.x1 for b in boxes), min(b.y0 for b in boxes)
    # characters per column: the width in points over ncol at ~0.55 em per character, less the marker
    chars = max(12, int((x1 - x0) * fig.get_figwidth() * 72 / ncol / (0.55 * LEGEND_SIZE)) - 8)
    fig.legend(handles, [textwrap.fill(label, chars) for label in labels], loc="upper center",
               bbox_to_anchor=((x0 + x1) / 2, y0), ncol=ncol, frameon=False, **kwargs)


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


def log_axis_auto(ax, axis: str = "y") -> None:
    """Log scale on ``axis`` with matplotlib's choice of labelled ticks (minor ticks labelled
    too where the axis spans about a decade or less), written as plain numbers (0.3, not
    3×10⁻¹). For data whose range is not known in advance, e.g. training losses."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    target.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
