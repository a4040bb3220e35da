"""The book's figure style (factorlab.plots): figures drawn at the column's width, text sizes."""
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from factorlab import plots  # noqa: E402

REPORT = Path(plots.__file__).parent / "report"
#: Report modules not yet moved to the theme's sizes, with the reason (remove an entry once converted).
NOT_YET: dict[str, str] = {}


@pytest.fixture
def theme():
    with matplotlib.rc_context():
        plots.set_theme()
        yield
    plt.close("all")


def test_a_full_width_figure_is_as_wide_as_the_book_column(theme):
    fig, _ = plt.subplots(figsize=(plots.FULL_WIDTH, 3))
    width_px = fig.get_figwidth() * fig.dpi
    assert width_px == 700  # the column: 688 px in a 1280 px window, at most 790 px
    rc = matplotlib.rcParams
    assert rc["savefig.dpi"] == rc["figure.dpi"] == plots.DPI
    sizes = [rc[k] for k in ("font.size", "axes.labelsize", "axes.titlesize", "xtick.labelsize",
                             "ytick.labelsize", "legend.fontsize", "legend.title_fontsize")]
    assert min(sizes) == plots.SMALL and min(sizes) * plots.DPI / 72 >= 12  # px as shown


def test_legend_below_puts_one_wrapped_legend_under_the_axes(theme):
    fig, axes = plt.subplots(1, 2, figsize=(plots.FULL_WIDTH, 3))
    long = "a label much too long for one of two columns of a figure as wide as the column of the book"
    axes[1].plot([1, 2], [1, 2], label=long)
    axes[1].plot([1, 2], [2, 1], label="short")
    axes[1].legend()
    fig.tight_layout()
    plots.legend_below(fig, axes[1], ncol=2)
    assert axes[1].get_legend() is None and len(fig.legends) == 1
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [" ".join(t.split()) for t in texts] == [long, "short"] and "\n" in texts[0]
    renderer = fig.canvas.get_renderer()
    legend, ax0 = fig.legends[0].get_window_extent(renderer), axes[0].get_tightbbox(renderer)
    assert legend.y1 <= ax0.y0 + 1  # under the x labels, not over the data


def test_legend_below_one_column_centres_under_that_column(theme):
    fig, axes = plt.subplots(1, 3, figsize=(plots.FULL_WIDTH, 3))
    axes[2].plot([1, 2], [1, 2], label="x")
    fig.tight_layout()
    plots.legend_below(fig, axes[2], ncol=1, under=[axes[2]])
    renderer = fig.canvas.get_renderer()
    legend, ax = fig.legends[0].get_window_extent(renderer), axes[2].get_tightbbox(renderer)
    assert ax.x0 <= (legend.x0 + legend.x1) / 2 <= ax.x1


def test_log_axis_auto_labels_a_narrow_range_with_plain_numbers(theme):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [0.3, 0.42])
    plots.log_axis_auto(ax, "y")
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    shown = [t.get_text() for t in ax.get_yticklabels(minor=True) + ax.get_yticklabels()
             if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert ax.get_yscale() == "log" and shown == ["0.3", "0.4"]


def test_report_figures_use_no_font_smaller_than_the_theme_allows():
    """Relative sizes ("x-small") and hand-set point sizes below plots.SMALL shrink text the
    theme sized for the column; use the theme's sizes or plots.SMALL."""
    offenders = []
    for path in sorted(p for p in REPORT.glob("*.py") if p.name not in NOT_YET):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(r"(?:fontsize|labelsize)\s*=\s*([^,)\s]+)", line):
                value = m.group(1)
                if value.strip("\"'") in {"xx-small", "x-small", "small", "smaller"} or \
                        (re.fullmatch(r"[0-9.]+", value) and float(value) < plots.SMALL):
                    offenders.append(f"{path.name}:{n}: {m.group(0)}")
    assert not offenders, "fonts below plots.SMALL:\n" + "\n".join(offenders)
