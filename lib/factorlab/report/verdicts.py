"""The verdict vocabulary shared by the chapters and the table of claims: the four verdicts and
the rules that turn a measured difference or a count of cases into one.

Its one job is to let a chapter's module (e.g. :mod:`factorlab.report.mnist_multitask`) compute
a verdict without importing :mod:`factorlab.report.claims`, which reads the chapters' verdicts
(a chapter importing it would close an import cycle).

A paired difference is *clear* beyond :data:`CLEAR_SE` standard errors (the threshold of
:mod:`factorlab.report.mnist_baselines`, stated there once).
"""
from __future__ import annotations

import math

from factorlab.report.mnist_baselines import CLEAR_SE

#: The four verdicts, in display order.
VERDICTS = ("reproduced", "partly", "not reproduced", "not measured")
NOT_MEASURED = "not measured"


def clear(mean: float, se: float) -> bool:
    """``|mean| > CLEAR_SE · se`` (False without a standard error: ``se`` NaN)."""
    return bool(mean == mean and se == se and abs(mean) > CLEAR_SE * se)


def paired_outcome(mean: float, se: float, lower: str, higher: str, unclear: str, no_se: str) -> str:
    """The outcome of a paired difference ``mean`` ± ``se`` in a chapter's words: ``no_se``
    without a standard error (one pair), ``unclear`` when it is not :func:`clear`, else
    ``lower`` (negative) or ``higher`` (positive)."""
    if not se == se:
        return no_se
    if not clear(mean, se):
        return unclear
    return lower if mean < 0 else higher


def difference_verdict(ours: float, se: float, journal: float) -> str:
    """The journal's difference ``journal`` between two settings against our paired difference
    ``ours`` ± ``se`` (same units): "not reproduced" when ours has the other sign (or is 0);
    "not measured" without a standard error; "reproduced" when ours is clearly of the journal's
    sign and the journal's value lies within ``CLEAR_SE · se`` of ours; otherwise "partly"
    (the direction, not the size, or the direction in the mean only)."""
    if not ours == ours or ours == 0 or math.copysign(1, ours) != math.copysign(1, journal):
        return "not reproduced"
    if not se == se:
        return NOT_MEASURED
    return "reproduced" if clear(ours, se) and abs(ours - journal) <= CLEAR_SE * se else "partly"


def count_verdict(k: int, n: int) -> str:
    """A claim about every case of a set, of which ``k`` of ``n`` agree: all -> "reproduced",
    some -> "partly", none -> "not reproduced", no case -> "not measured"."""
    if n == 0:
        return NOT_MEASURED
    return "reproduced" if k == n else ("partly" if k > 0 else "not reproduced")


__all__ = ["CLEAR_SE", "NOT_MEASURED", "VERDICTS", "clear", "count_verdict", "difference_verdict",
           "paired_outcome"]
