"""Analysis helpers: Pareto frontier, largest compression within a tolerance, log interpolation."""
import math

import pandas as pd
import pytest

from factorlab.analysis import largest_compression_within, pareto_front


def test_pareto_front_keeps_only_undominated_points():
    df = pd.DataFrame({"params": [10, 20, 30, 15, 40, 30], "acc": [90, 95, 94, 89, 97, 96]})
    front = pareto_front(df)
    assert list(zip(front["params"], front["acc"])) == [(10, 90), (20, 95), (30, 96), (40, 97)]
    assert pareto_front(df.iloc[:0]).empty


def test_largest_compression_within_tolerance_uses_seed_means():
    df = pd.DataFrame({
        "family": ["cp"] * 6 + ["tt"] * 2,
        "compression": [4, 4, 16, 16, 64, 64, 4, 4],
        "acc": [98.0, 97.8, 97.6, 97.2, 96.0, 99.0, 90.0, 91.0],
    })
    out = largest_compression_within(df, reference=98.0, tolerance=0.5).set_index("family")
    # 16x mean 97.4 < 97.5, 64x mean 97.5 >= 97.5 -> 64 (the largest that qualifies)
    assert out.loc["cp", "compression"] == 64 and out.loc["cp", "acc"] == 97.5
    assert math.isnan(out.loc["tt", "compression"])


def test_interpolate_log():
    import math

    import numpy as np

    from factorlab.analysis import interpolate_log

    y = interpolate_log([1000, 10, 100], [30.0, 10.0, 20.0], [10, 100, 1000, math.sqrt(10 * 100), 5, 2000])
    assert np.allclose(y[:4], [10.0, 20.0, 30.0, 15.0])  # the knots, and halfway in log x
    assert np.isnan(y[4]) and np.isnan(y[5])  # no extrapolation
    assert np.allclose(interpolate_log([50], [7.0], [50, 60]), [7.0, np.nan], equal_nan=True)
    with pytest.raises(ValueError, match="matching, non-empty"):
        interpolate_log([], [], [1])
    with pytest.raises(ValueError, match="positive"):
        interpolate_log([0, 1], [1, 2], [1])


def test_paired_difference_pairs_by_key_and_gives_the_standard_error():
    from factorlab.analysis import paired_difference

    a = pd.Series({0: 1.0, 1: 3.0, 2: 5.0, 7: 100.0})
    b = pd.Series({2: 4.0, 1: 1.0, 0: 0.0})  # key 7 has no partner; order does not matter
    mean, se, n = paired_difference(a, b)
    # differences 1, 2, 1: mean 4/3, sd sqrt(1/3), se sqrt(1/3)/sqrt(3) = 1/3
    assert n == 3 and mean == pytest.approx(4 / 3) and se == pytest.approx(1 / 3)
    assert math.isnan(paired_difference(pd.Series({0: 1.0}), pd.Series({0: 0.5}))[1])
    with pytest.raises(ValueError, match="share none"):
        paired_difference(pd.Series({0: 1.0}), pd.Series({1: 1.0}))
