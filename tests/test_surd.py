"""Score scales √r: exact identity, rigorous enclosures, and the text forms of the model format."""

from __future__ import annotations

from fractions import Fraction

import flint
import pytest
from hypothesis import given, strategies as st

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.surd import Surd, format_scale, parse_scale, rational_sqrt, sqrt_scale
from promptlimits.proofs.interval import precision

positive = st.fractions(min_value=Fraction(1, 10**6), max_value=10**6)


@given(positive)
def test_enclosure_is_rigorous_and_tight(r):
    s = sqrt_scale(r)
    if isinstance(s, Fraction):
        assert s * s == r
        return
    lo, hi = s.lower(), s.upper()
    assert lo * lo <= r <= hi * hi and lo < hi
    assert hi - lo <= hi / 2**60
    with precision(128):
        b = s.ball()
        assert (b * b).contains(flint.fmpq(r.numerator, r.denominator)) and b > 0 and float(b.rad()) < 1e-30


@given(positive)
def test_squares_collapse_to_rationals(q):
    assert sqrt_scale(q * q) == q and rational_sqrt(q * q) == q


@pytest.mark.parametrize("text, square", [
    ("1/sqrt(32)", Fraction(1, 32)), ("sqrt(2)", Fraction(2)), ("1/2*sqrt(3)", Fraction(3, 4)),
    ("0.5/sqrt(2)", Fraction(1, 8)), ("sqrt(1/32)", Fraction(1, 32)), ("3 * sqrt(2)", Fraction(18)),
])
def test_text_forms(text, square):
    s = parse_scale(text, "x")
    assert s == Surd(square) and parse_scale(format_scale(s), "x") == s


def test_rational_texts_and_collapsing_roots():
    assert parse_scale("1/8", "x") == Fraction(1, 8)
    assert parse_scale("2*sqrt(1/4)", "x") == Fraction(1)
    assert format_scale(Fraction(1, 8)) == "1/8"


@pytest.mark.parametrize("text", ["sqrt(-2)", "sqrt(x)", "-1*sqrt(2)", "sqrt(2", "sqrt(0)", "2**sqrt(2)"])
def test_malformed_texts_are_input_errors(text):
    with pytest.raises(InputError):
        parse_scale(text, "model.score_scale")


def test_a_surd_of_a_square_is_refused():
    with pytest.raises(ValueError):
        Surd(Fraction(4, 9))
