"""Rigorous real balls (python-flint ``arb``) at an explicit working precision.

A ball [m ± r] always contains the true value; arithmetic on balls keeps that true.
Precision is passed explicitly and the global flint context is restored afterwards.
This module imports nothing from the project.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Iterable, Iterator

import flint

Ball = flint.arb


@contextlib.contextmanager
def precision(bits: int) -> Iterator[None]:
    """Run a block with flint's working precision set to ``bits``."""
    old = flint.ctx.prec
    flint.ctx.prec = max(int(bits), 16)
    try:
        yield
    finally:
        flint.ctx.prec = old


def rational(x: Fraction | int, bits: int = 128) -> Ball:
    """A ball containing the rational x (exact when x is dyadic and fits)."""
    x = Fraction(x)
    with precision(bits):
        return flint.arb(flint.fmpq(x.numerator, x.denominator))


def exp_sum(terms: Iterable[tuple[Fraction, Fraction]], bits: int) -> Ball:
    """A ball containing Σ c·e^r for the given (r, c) pairs."""
    with precision(bits):
        total = flint.arb(0)
        for r, c in terms:
            coeff = flint.arb(flint.fmpq(c.numerator, c.denominator))
            if r == 0:
                total += coeff
            else:
                total += coeff * flint.arb(flint.fmpq(r.numerator, r.denominator)).exp()
        return total


def sign_of(ball: Ball) -> int:
    """+1 or −1 when the ball excludes 0, else 0 (meaning: not resolved at this precision)."""
    if ball > 0:
        return 1
    if ball < 0:
        return -1
    return 0


def to_float(ball: Ball) -> float:
    """The midpoint as a float (for display and numerics, never for decisions)."""
    return float(ball.mid())


def decimal(ball: Ball, digits: int = 30) -> str:
    """Midpoint with ``digits`` significant digits, for display."""
    return ball.mid().str(digits, radius=False)


def contains_rational(ball: Ball, x: Fraction) -> bool:
    """True when the ball contains the rational x (exact comparison with its dyadic end points;
    a non-finite ball contains everything)."""
    if not ball.is_finite():
        return True
    return lower(ball) <= Fraction(x) <= upper(ball)


def upper(ball: Ball) -> Fraction:
    """A rational upper bound of the ball: its exact end point mid + rad (both dyadic).

    (arb's ``upper()`` would round the end point to the ambient precision, 53 bits by default.)
    """
    return _dyadic(ball.mid()) + _dyadic(ball.rad())


def lower(ball: Ball) -> Fraction:
    """A rational lower bound of the ball: its exact end point mid − rad (both dyadic)."""
    return _dyadic(ball.mid()) - _dyadic(ball.rad())


def _dyadic(point: Ball) -> Fraction:
    man, exp = point.man_exp()
    man, exp = int(man), int(exp)
    return Fraction(man * 2**exp) if exp >= 0 else Fraction(man, 2 ** (-exp))
