"""Exp-polynomials Σ c·e^r and their quotients (THEORY §3): exact ring, zero test, sign.

A wrong canonical form (exponents not collected, zero coefficients kept), a sign decided
from too few bits, or a cross-multiplication slip breaks one of these.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptlimits.constructions.strategies import rationals
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly, relu

Q = rationals(6, 4)
EXPONENTS = rationals(4, 3)
POLYS = st.lists(st.tuples(EXPONENTS, Q), max_size=4).map(ExpPoly)
NONZERO_POLYS = POLYS.filter(lambda p: not p.is_zero())
E = ExpPoly.exp(1)


def _mp(p: ExpPoly) -> mpmath.mpf:
    """High-precision value (mpmath at 80 digits) of an exp-polynomial."""
    with mpmath.workdps(80):
        return mpmath.fsum(mpmath.mpf(c.numerator) / c.denominator
                           * mpmath.exp(mpmath.mpf(r.numerator) / r.denominator) for r, c in p.terms)


# ----------------------------------------------------------------------------- ring laws


@given(POLYS, POLYS, POLYS)
def test_ring_laws(a, b, c):
    assert a + b == b + a
    assert a * b == b * a
    assert (a + b) + c == a + (b + c)
    assert (a * b) * c == a * (b * c)
    assert a * (b + c) == a * b + a * c
    assert a + ExpPoly() == a and a * 1 == a and a * ExpPoly.const(1) == a
    assert (a - a).is_zero() and (a + (-a)).is_zero()
    assert a - b == -(b - a)


@given(POLYS, EXPONENTS, Q)
def test_canonical_form(a, r, c):
    terms = a.terms
    assert all(coef != 0 for _, coef in terms)
    assert [e for e, _ in terms] == sorted({e for e, _ in terms})
    assert a.shift(r) == a * ExpPoly.exp(r)
    assert ExpPoly(list(terms) + [(r, c), (r, -c)]) == a
    assert hash(ExpPoly(reversed(terms))) == hash(a)


@given(POLYS, Q)
def test_rational_scalars_and_constants(a, q):
    assert a * q == a * ExpPoly.const(q)
    assert a + q == a + ExpPoly.const(q) == q + a
    assert (q - a) == ExpPoly.const(q) - a
    assert ExpPoly.const(q).rational_value() == q
    assert ExpPoly.const(q) == q


# ----------------------------------------------------------------------------- zero test and sign


def test_exponent_identities_are_exact_zeros():
    half = ExpPoly.exp(Fraction(1, 2))
    assert (half * half - E).is_zero()
    third = ExpPoly.exp(Fraction(1, 3))
    assert (third * third * third - E).is_zero()
    assert (ExpPoly.exp(2) * ExpPoly.exp(-2) - 1).is_zero()
    assert not (E - Fraction(2718281828459045, 10**15)).is_zero()
    assert E.rational_value() is None


def test_sign_of_e_against_close_rationals():
    assert (E - Fraction(2718281, 1000000)).sign() == 1
    assert (E - Fraction(2718282, 1000000)).sign() == -1
    # 40 correct digits of e: the sign needs more than float precision
    digits = Fraction(27182818284590452353602874713526624977572, 10**40)
    assert (E - digits).sign() == 1
    assert (E - digits - Fraction(1, 10**40)).sign() == -1
    assert ExpPoly().sign() == 0


@given(POLYS)
def test_sign_agrees_with_mpmath(p):
    value = _mp(p)
    if p.is_zero():
        assert p.sign() == 0
        return
    assert value != 0  # Lindemann–Weierstrass: a non-empty canonical sum is not 0
    assert p.sign() == (1 if value > 0 else -1)
    assert abs(float(p) - float(value)) <= 1e-12 * max(1.0, abs(float(value)))


@given(EXPONENTS.filter(lambda r: r != 0), st.integers(5, 30))
def test_sign_near_cancellation(r, digits):
    """e^r minus its own truncation to ``digits`` decimals: tiny but non-zero, sign exact."""
    with mpmath.workdps(digits + 20):
        value = mpmath.exp(mpmath.mpf(r.numerator) / r.denominator)
        scaled = int(mpmath.floor(value * 10**digits))
    low = Fraction(scaled, 10**digits)
    assert (ExpPoly.exp(r) - low).sign() == 1
    assert (ExpPoly.exp(r) - low - Fraction(1, 10**digits)).sign() == -1


# ----------------------------------------------------------------------------- quotients


@given(POLYS, NONZERO_POLYS, NONZERO_POLYS)
def test_expfrac_cross_multiplication_equality(n, d, k):
    assert ExpFrac(n * k, d * k) == ExpFrac(n, d)
    assert ExpFrac(n, d) - ExpFrac(n * k, d * k) == 0
    if not n.is_zero():
        assert ExpFrac(n, d) * ExpFrac(d, n) == 1
        assert ExpFrac(n, d) / ExpFrac(n, d) == 1


@given(POLYS, NONZERO_POLYS, POLYS, NONZERO_POLYS)
def test_expfrac_field_operations_match_mpmath(a, b, c, d):
    x, y = ExpFrac(a, b), ExpFrac(c, d)
    with mpmath.workdps(80):
        xv, yv = _mp(a) / _mp(b), _mp(c) / _mp(d)
        for got, want in ((x + y, xv + yv), (x - y, xv - yv), (x * y, xv * yv)):
            assert abs(float(got) - float(want)) <= 1e-12 * max(1.0, abs(float(want)))
        diff = xv - yv
    if x == y:
        assert abs(diff) < mpmath.mpf(10) ** -60
        assert x.compare(y) == 0 and x <= y and x >= y
    else:
        assert diff != 0
        assert x.compare(y) == (1 if diff > 0 else -1)
        assert (x < y) == (diff < 0) and (x > y) == (diff > 0)


def test_expfrac_zero_denominator_and_normal_forms():
    with pytest.raises(ZeroDivisionError):
        ExpFrac(E, ExpPoly())
    with pytest.raises(ZeroDivisionError):
        ExpFrac(E) / ExpFrac(0)
    assert ExpFrac(E, E) == 1
    assert ExpFrac(E, 2) == ExpFrac(E * Fraction(1, 2))
    assert ExpFrac(0, E).is_zero() and ExpFrac(0, E) == 0
    assert ExpFrac(3, 4).rational_value() == Fraction(3, 4)
    assert ExpFrac(ExpPoly.exp(1, 2), ExpPoly.exp(1)) == 2  # equal value, different form
    assert ExpFrac(-E, -1) > 0 and ExpFrac(E, -1) < 0


@given(NONZERO_POLYS, NONZERO_POLYS, Q)
def test_rational_quotients_are_recognised_and_hash_like_their_value(n, d, q):
    """N/D is rational iff N = q·D (Lindemann–Weierstrass); equal values hash equally."""
    x = ExpFrac(n * q, n)
    assert x.rational_value() == q and x == q and hash(x) == hash(q)
    assert hash(ExpPoly.const(q)) == hash(q)
    y = ExpFrac(n, d)
    if y.rational_value() is None:
        assert all(y != ExpFrac(c) for c in (0, 1, -1, q))
    assert len({ExpFrac(n * d, d * d), ExpFrac(n, d)}) == 1


@given(POLYS, NONZERO_POLYS)
def test_relu(n, d):
    x = ExpFrac(n, d)
    r = relu(x)
    assert r >= 0
    assert r == (x if x.sign() > 0 else 0)
    assert relu(x) - relu(-x) == x


def test_quotient_ball_is_as_tight_as_the_requested_precision():
    """ExpFrac.ball(bits) divides at ``bits`` bits, not at flint's default 53."""
    x = ExpFrac(ExpPoly.exp(1), ExpPoly.exp(Fraction(1, 3)) + 1)
    for bits in (64, 200, 600):
        ball = x.ball(bits)
        assert float(ball.rad()) < abs(float(ball.mid())) * 2.0 ** -(bits - 8)
