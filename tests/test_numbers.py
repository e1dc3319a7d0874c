"""Exact numbers of the JSON formats: a decimal means its text, "p/q" the rational, and the
canonical text reads back to the same rational.

A parser going through float (0.1 ≠ 1/10), accepting booleans or NaN, or a formatter that
loses a sign or a digit breaks these.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import parse_json_text
from promptlimits.constructions.numbers import JsonDecimal, NonFiniteLiteral, format_decimal, format_exact, is_binary64, parse_exact

FRACTIONS = st.fractions(max_denominator=10**12).filter(lambda x: abs(x.numerator) < 10**30)


@given(FRACTIONS)
def test_format_then_parse_is_identity(x):
    text = format_exact(x)
    assert parse_exact(text, "x") == x
    assert parse_exact(JsonDecimal(text) if x.denominator == 1 else text, "x") == x
    assert "/" not in text or x.denominator != 1


@pytest.mark.parametrize("text,value", [
    ("0.1", Fraction(1, 10)), ("-0.25", Fraction(-1, 4)), ("1e-3", Fraction(1, 1000)),
    ("2.5E+2", Fraction(250)), (".5", Fraction(1, 2)), ("3/6", Fraction(1, 2)), ("-7/-14", Fraction(1, 2)),
    ("  4/5 ", Fraction(4, 5)), ("0", Fraction(0)), ("+3", Fraction(3)),
    ("0.1000000000000000055511151231257827", Fraction(1000000000000000055511151231257827, 10**34)),
])
def test_decimal_and_ratio_texts_are_exact(text, value):
    assert parse_exact(text, "x") == value
    assert parse_exact(JsonDecimal(text.strip()), "x") == value if "/" not in text else True


def test_json_numbers_are_read_as_written():
    obj = parse_json_text('{"a": 0.1, "b": [1e400, 3], "c": "1/3"}'.replace("1e400", "1e300"), "f")
    assert parse_exact(obj["a"], "a") == Fraction(1, 10) != Fraction(0.1)
    assert parse_exact(obj["b"][0], "b") == 10**300
    assert parse_exact(obj["c"], "c") == Fraction(1, 3)


@pytest.mark.parametrize("value,fragment", [
    (True, "boolean"), (None, "null"), ([1], "a list"), ({"a": 1}, "an object"),
    ("1/0", "divides by zero"), ("NaN", "not a finite number"), ("inf", "not a finite number"),
    (NonFiniteLiteral("Infinity"), "not a finite number"), (float("nan"), "not a finite number"),
    ("abc", "not a number"), ("1/2/3", "not a number"), ("", "not a number"), ("1e999", "exponent"),
    ("1" * 500, "longer than"), ("0x10", "not a number"),
])
def test_malformed_numbers_are_refused_with_the_place(value, fragment):
    with pytest.raises(InputError) as err:
        parse_exact(value, "model.layers[0].W1[1][2]")
    message = str(err.value)
    assert message.startswith("model.layers[0].W1[1][2]: ") and fragment in message and "\n" not in message


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_their_exact_binary_value(x):
    assert parse_exact(x, "x") == Fraction(x)


@given(FRACTIONS.filter(lambda x: x != 0), st.integers(1, 40))
def test_format_decimal_has_the_requested_significant_digits(x, digits):
    text = format_decimal(x, digits)
    back = Fraction(text)
    # correctly rounded to `digits` significant digits: relative error ≤ 10^(1-digits)/2
    assert abs(back - x) <= abs(x) * Fraction(1, 2 * 10 ** (digits - 1))
    mantissa = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    assert len(mantissa) <= digits
    assert json.loads(text) == pytest.approx(float(x), rel=1e-6 if digits >= 7 else 1)


@pytest.mark.parametrize("x, expected", [
    (Fraction(1, 2), True), (Fraction(1, 10), False), (Fraction(1, 3), False), (Fraction(2**60), True),
    (Fraction(2**53 + 1), False), (Fraction(1, 2**1074), True), (Fraction(1, 2**1075), False),
    (Fraction(2**1024), False), (Fraction(-(2**53 - 1), 2**60), True),
])
def test_is_binary64_known_answers(x, expected):
    assert is_binary64(x) is expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_is_binary64(f):
    assert is_binary64(Fraction(f))
