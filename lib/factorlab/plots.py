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
