"""factorlab.analysis.time_to_target and first_window_reaching on hand-built loss curves:
reached, never reached (censored at the whole training time), reached in the first window,
NaN and missing losses."""
from __future__ import annotations

import math

import pytest

from factorlab.analysis import first_window_reaching, time_to_target

LOSS = [2.0, 1.0, 0.5, 0.4, 0.45]
SECONDS = [1.0, 2.0, 3.0, 4.0, 5.0]


def test_reached_at_the_end_of_the_first_window_at_or_below_the_target():
    assert time_to_target(LOSS, SECONDS, 0.5) == (3.0, False)  # "at or below": 0.5 reaches 0.5
    assert time_to_target(LOSS, SECONDS, 0.45) == (4.0, False)  # a later rise does not matter
    assert first_window_reaching(LOSS, 0.45) == 3


def test_reached_in_the_first_window():
    assert time_to_target(LOSS, SECONDS, 2.0) == (1.0, False) and first_window_reaching(LOSS, 10.0) == 0


def test_never_reached_is_censored_at_the_whole_training_time():
    assert time_to_target(LOSS, SECONDS, 0.1, total_s=5.5) == (5.5, True)  # the budget, not the last window
    assert time_to_target(LOSS, SECONDS, 0.1) == (5.0, True)  # without total_s: the last window's time
    assert first_window_reaching(LOSS, 0.1) is None


def test_nan_and_missing_losses_never_reach():
    loss = [float("nan"), None, 0.3, float("inf")]
    assert time_to_target(loss, [1.0, 2.0, 3.0, 4.0], 0.5) == (3.0, False)
    assert time_to_target([float("nan")] * 3, [1.0, 2.0, 3.0], 1e9, total_s=3.2) == (3.2, True)


def test_no_windows_and_mismatched_lengths():
    seconds, censored = time_to_target([], [], 0.5)
    assert math.isnan(seconds) and censored
    assert time_to_target([], [], 0.5, total_s=7.0) == (7.0, True)
    with pytest.raises(ValueError, match="3 window losses but 2 window times"):
        time_to_target([1.0, 0.5, 0.2], [1.0, 2.0], 0.5)
