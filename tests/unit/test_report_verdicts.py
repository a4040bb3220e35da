"""factorlab.report.verdicts: the shared verdict rules on each branch and at their thresholds,
and report.claims re-exporting the same objects for the modules that still import them there."""
from __future__ import annotations

import math

import pytest

from factorlab.report import verdicts


@pytest.mark.parametrize("ours, se, journal, expected", [
    (-2.0, 0.4, -2.5, "reproduced"),         # clear, the journal's value within 2 SE
    (-20.0, 0.5, -2.0, "partly"),            # clear, right direction, wrong size
    (-1.0, 0.6, -2.0, "partly"),             # right direction in the mean only
    (1.0, 0.1, -2.0, "not reproduced"),      # other sign
    (0.0, 0.1, 0.5, "not reproduced"),       # no difference
    (-1.0, math.nan, -2.0, "not measured"),  # one seed
])
def test_difference_verdict_branches(ours, se, journal, expected):
    assert verdicts.difference_verdict(ours, se, journal) == expected


def test_difference_verdict_at_the_threshold():
    se = 1.0
    assert verdicts.difference_verdict(-2.0 * se - 1e-9, se, -2.0) == "reproduced"
    assert verdicts.difference_verdict(-2.0 * se + 1e-9, se, -2.0) == "partly"


def test_count_verdict_branches():
    assert [verdicts.count_verdict(k, n) for k, n in [(3, 3), (1, 3), (0, 3), (0, 0)]] == \
        ["reproduced", "partly", "not reproduced", "not measured"]


def test_clear_is_strictly_beyond_clear_se_standard_errors():
    assert verdicts.CLEAR_SE == 2
    assert verdicts.clear(-2.0 - 1e-9, 1.0) and not verdicts.clear(2.0, 1.0)
    assert not verdicts.clear(5.0, math.nan) and not verdicts.clear(math.nan, 1.0)


def test_the_verdicts_and_claims_share_one_vocabulary():
    from factorlab.report import claims

    assert verdicts.VERDICTS == ("reproduced", "partly", "not reproduced", "not measured")
    assert verdicts.NOT_MEASURED == verdicts.VERDICTS[-1]
    assert claims.VERDICTS is verdicts.VERDICTS and claims.NOT_MEASURED is verdicts.NOT_MEASURED
    assert claims.clear is verdicts.clear and claims.count_verdict is verdicts.count_verdict


def test_paired_outcome_names_each_branch_in_the_chapters_words():
    words = ("better", "worse", "no clear difference", "one seed")
    assert verdicts.paired_outcome(-3.0, 1.0, *words) == "better"
    assert verdicts.paired_outcome(3.0, 1.0, *words) == "worse"
    assert verdicts.paired_outcome(2.0, 1.0, *words) == "no clear difference"  # at the threshold: not beyond it
    assert verdicts.paired_outcome(-9.0, math.nan, *words) == "one seed"
