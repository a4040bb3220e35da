"""factorlab.mtl.grouping: pair gains, seed agreement, group prediction, exact partitions."""
from __future__ import annotations

import numpy as np
import pytest

from factorlab.mtl import grouping as grp

TASKS = ["a", "b", "c"]


def _pairs():
    return {("a", "b"): {"a": 0.9, "b": 2.2}, ("a", "c"): {"a": 1.1, "c": 2.7},
            ("b", "c"): {"b": 1.5, "c": 3.3}}


def test_pair_gain_matrix_values_and_orientation():
    single = {"a": 1.0, "b": 2.0, "c": 3.0}
    g = grp.pair_gain_matrix(_pairs(), single, TASKS)
    assert g.shape == (3, 3)
    assert np.isnan(np.diag(g)).all()
    # row i helps column j: b helps a by 10 %, a hurts b by 10 %
    assert g[1, 0] == pytest.approx(10.0)
    assert g[0, 1] == pytest.approx(-10.0)
    assert g[2, 0] == pytest.approx(-10.0)
    assert g[0, 2] == pytest.approx(10.0)
    assert g[2, 1] == pytest.approx(25.0)
    assert g[1, 2] == pytest.approx(-10.0)


def test_pair_gain_matrix_errors_name_what_is_missing():
    single = {"a": 1.0, "b": 2.0, "c": 3.0}
    pairs = _pairs()
    del pairs[("a", "c")]
    with pytest.raises(ValueError, match=r"\('a', 'c'\)"):
        grp.pair_gain_matrix(pairs, single, TASKS)
    pairs = _pairs()
    pairs[("b", "c")] = {"b": 1.0}
    with pytest.raises(ValueError, match="lacks the MAE of task 'c'"):
        grp.pair_gain_matrix(pairs, single, TASKS)
    with pytest.raises(ValueError, match="task 'c'"):
        grp.pair_gain_matrix(_pairs(), {"a": 1.0, "b": 2.0}, TASKS)
    with pytest.raises(ValueError, match="positive"):
        grp.pair_gain_matrix(_pairs(), {"a": 1.0, "b": 0.0, "c": 3.0}, TASKS)
    with pytest.raises(ValueError, match="distinct"):
        grp.pair_gain_matrix(_pairs(), single, ["a", "a"])
