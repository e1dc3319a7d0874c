"""Rigorous balls (python-flint arb): every enclosure contains the true value, precision is
explicit and restored, rational end points bracket the value.

A ball computed at the wrong precision, a leaked global precision or an end point rounded
the wrong way breaks these.
"""

from __future__ import annotations

from fractions import Fraction

import flint
import mpmath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptlimits.constructions.strategies import rationals
from promptlimits.proofs import interval

Q = rationals(50, 30)


def test_precision_is_set_and_restored_even_on_error():
    before = flint.ctx.prec
    with interval.precision(200):
        assert flint.ctx.prec == 200
    assert flint.ctx.prec == before
    with pytest.raises(RuntimeError):
        with interval.precision(300):
            raise RuntimeError("boom")
    assert flint.ctx.prec == before


@given(Q, st.integers(16, 400))
def test_rational_ball_contains_and_brackets(x, bits):
    ball = interval.rational(x, bits)
    assert interval.contains_rational(ball, x)
    assert interval.lower(ball) <= x <= interval.upper(ball)
    assert interval.upper(ball) - interval.lower(ball) <= abs(x) * Fraction(2) ** (5 - bits) + Fraction(1, 2**bits)
    if x.denominator & (x.denominator - 1) == 0:  # dyadic: exact
        assert interval.lower(ball) == x == interval.upper(ball)


@given(st.lists(st.tuples(rationals(6, 4), rationals(6, 4)), max_size=4), st.sampled_from((64, 128, 256)))
def test_exp_sum_encloses_high_precision_value(terms, bits):
    ball = interval.exp_sum(terms, bits)
    with mpmath.workdps(100):
        value = mpmath.fsum(mpmath.mpf(c.numerator) / c.denominator * mpmath.exp(mpmath.mpf(r.numerator) / r.denominator)
                            for r, c in terms)
        low, high = interval.lower(ball), interval.upper(ball)
        assert mpmath.mpf(low.numerator) / low.denominator <= value <= mpmath.mpf(high.numerator) / high.denominator
    assert float(ball.rad()) <= 2.0 ** (10 - bits) * (1 + sum(abs(float(c)) * 60 for _, c in terms))


def test_sign_of_and_display():
    with interval.precision(64):
        e = flint.arb(1).exp()
    assert interval.sign_of(e) == 1 and interval.sign_of(-e) == -1
    assert interval.sign_of(flint.arb(0, 1e-10)) == 0
    assert interval.decimal(interval.exp_sum([(Fraction(1), Fraction(1))], 128), 10) == "2.718281828"
    assert interval.to_float(interval.rational(Fraction(1, 3))) == 1 / 3
    assert not interval.contains_rational(interval.rational(Fraction(1, 3)), Fraction(1, 3) + Fraction(1, 10**30))


@pytest.mark.parametrize("bits", [64, 128, 256, 1024])
def test_exact_rational_output_is_inside_its_enclosure_at_any_precision(bits):
    """Regression: a tight ball around 1/3 must contain 1/3 (``promptlimits eval`` reported a
    proven target mismatch for exact hits at more than 128 bits)."""
    from promptlimits.constructions.evaluate import stack_balls
    from promptlimits.constructions.spec import Head, Layer, Model

    zero = ((Fraction(0),),)
    layer = Layer(heads=(Head(zero, zero, zero, zero),), W1=((Fraction(1),),), b1=(Fraction(0),),
                  W2=((Fraction(-2, 3),),), b2=(Fraction(0),))
    model = Model(d=1, layers=(layer, layer))
    (out,), = stack_balls(model, (), ((Fraction(3),),), bits=bits)  # 3 -> 1 -> 1/3
    assert interval.contains_rational(out, Fraction(1, 3))
    assert not interval.contains_rational(out, Fraction(1, 3) + Fraction(1, 2 ** (bits - 20)))


def test_converted_weights_are_reused_only_at_their_own_precision():
    """The ball evaluator caches each weight matrix's arb form per precision: evaluating one
    model at 64 bits first must not leave 64-bit weights in a later 1024-bit evaluation."""
    from promptlimits.constructions.evaluate import stack_balls
    from promptlimits.constructions.spec import Head, Layer, Model

    zero = ((Fraction(0),),)
    layer = Layer(heads=(Head(zero, zero, zero, zero),), W1=((Fraction(1),),), b1=(Fraction(0),),
                  W2=((Fraction(-2, 3),),), b2=(Fraction(0),))
    model = Model(d=1, layers=(layer, layer))
    (low,), = stack_balls(model, (), ((Fraction(3),),), bits=64)
    (high,), = stack_balls(model, (), ((Fraction(3),),), bits=1024)
    (again,), = stack_balls(model, (), ((Fraction(3),),), bits=64)
    assert float(high.rad()) < 2.0 ** -1000 < float(low.rad()) and again.rad() == low.rad()
