"""How the chapters write a summary with its spread: one function, so every table and glued
sentence of the book reads "mean ± spread" the same way."""
from __future__ import annotations


def pm(mean: float, spread: float, fmt: str = "+.1f", spread_fmt: str | None = None) -> str:
    """``mean`` in ``fmt`` and `` ± spread`` in ``spread_fmt`` (default ``fmt`` without its
    sign: a spread is never signed), the spread left out when it is NaN (one seed), e.g.
    ``pm(-4.04, 0.577) == "-4.0 ± 0.6"``."""
    sfmt = fmt.lstrip("+") if spread_fmt is None else spread_fmt
    return format(mean, fmt) + ("" if spread != spread else f" ± {format(spread, sfmt)}")


def se_digits(se: float, digits: int = 2) -> int:
    """Decimals to print a standard error ``se`` (and the mean beside it) with: ``digits``, or one
    more where ``se`` would print as zero with ``digits`` (``se_digits(0.004) == 3``: "0.004",
    not "0.00"); ``digits`` for NaN (one seed: no standard error)."""
    return digits + 1 if se == se and se < 0.5 * 10 ** -digits else digits


__all__ = ["pm", "se_digits"]
