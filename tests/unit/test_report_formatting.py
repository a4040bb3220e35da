"""report.formatting.pm: the book's one way of writing a mean with its spread."""
import math

from factorlab.report.formatting import pm, se_digits


def test_mean_signed_spread_unsigned_and_left_out_for_one_seed():
    assert pm(-4.04, 0.577) == "-4.0 ± 0.6"
    assert pm(2.0, 0.25) == "+2.0 ± 0.2"
    assert pm(2.0, math.nan) == "+2.0"
    assert pm(0.1234, 0.0056, ".4g", ".2g") == "0.1234 ± 0.0056"
    assert pm(95.04, 0.31, ".1f") == "95.0 ± 0.3"


def test_se_digits_adds_a_decimal_only_where_the_error_would_print_as_zero():
    assert [se_digits(x) for x in (0.004, 0.005, 0.12, 0.0049)] == [3, 2, 2, 3]
    assert se_digits(float("nan")) == 2 and se_digits(0.04, digits=1) == 2 and se_digits(0.05, digits=1) == 1
