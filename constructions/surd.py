"""Score scales that are square roots of rationals, such as BERT's κ = 1/√s.

A :class:`Surd` is the positive real √r for a positive rational r that is NOT the square
of a rational (a square root of a square is the rational itself and stays a Fraction).
It is kept exactly through its square r, so equality and hashing are exact. It is never
used as a number inside exact procedures: those need a rational κ and refuse a Surd.
Rigorous procedures take ``ball(bits)`` (an arb enclosure of √r), and bounds take the
rational enclosure ``lower() ≤ √r ≤ upper()``.

Text forms (the model format's ``score_scale``): a rational ("1/8"), ``sqrt(R)``,
``1/sqrt(R)`` and ``C*sqrt(R)`` with rationals C > 0, R > 0; the canonical text of a
Surd is ``sqrt(R)`` with R = κ² in lowest terms.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

import flint

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.numbers import format_exact, parse_exact

#: Binary digits of the rational enclosure returned by lower() / upper().
ENCLOSURE_BITS = 64

_SQRT = re.compile(r"\s*(?:(?P<c>[^*/\s]+(?:/[^*\s]+)?)\s*(?P<op>[*/])\s*)?sqrt\((?P<r>[^()]+)\)\s*")


def rational_sqrt(r: Fraction) -> Fraction | None:
    """The rational square root of r ≥ 0, or None when r is not a rational square."""
    p, q = r.numerator, r.denominator
    sp, sq = math.isqrt(p), math.isqrt(q)
    return Fraction(sp, sq) if sp * sp == p and sq * sq == q else None


@dataclass(frozen=True)
class Surd:
    """√square, an irrational positive real (square > 0 is not a rational square)."""

    square: Fraction

    def __post_init__(self) -> None:
        if self.square <= 0 or rational_sqrt(self.square) is not None:
            raise ValueError("a Surd needs a positive rational that is not a square")

    def __float__(self) -> float:
        return math.sqrt(self.square.numerator) / math.sqrt(self.square.denominator)

    def ball(self) -> flint.arb:
        """An arb enclosure of √square at the context's working precision."""
        return flint.arb(flint.fmpq(self.square.numerator, self.square.denominator)).sqrt()

    def upper(self, bits: int = ENCLOSURE_BITS) -> Fraction:
        """A rational u ≥ √square (within 2^-bits relative): ⌈√(p·q·4^k)⌉ / (q·2^k)."""
        p, q = self.square.numerator, self.square.denominator
        return Fraction(math.isqrt(p * q << (2 * bits)) + 1, q << bits)

    def lower(self, bits: int = ENCLOSURE_BITS) -> Fraction:
        """A rational l ≤ √square: ⌊√(p·q·4^k)⌋ / (q·2^k)."""
        p, q = self.square.numerator, self.square.denominator
        return Fraction(math.isqrt(p * q << (2 * bits)), q << bits)

    def __str__(self) -> str:
        return f"sqrt({format_exact(self.square)})"


Scale = Union[Fraction, Surd]


def require_rational(scale: Scale) -> Fraction:
    """κ itself when rational; InputError for a Surd (exact procedures need κ ∈ Q)."""
    if isinstance(scale, Surd):
        raise InputError(f"model.score_scale: {scale} is irrational; exact procedures need a rational")
    return scale


def sqrt_scale(square: Fraction) -> Scale:
    """√square as a Fraction when it is rational, else as a Surd."""
    root = rational_sqrt(square)
    return root if root is not None else Surd(square)


def parse_scale(value: object, where: str) -> Scale:
    """A score scale from the model format: a rational, or one of the ``sqrt`` forms."""
    if isinstance(value, str) and "sqrt" in value:
        match = _SQRT.fullmatch(value)
        if match is None:
            raise InputError(f"{where}: {value[:40]!r} is not a rational, 'sqrt(R)', '1/sqrt(R)' or 'C*sqrt(R)'")
        r = parse_exact(match.group("r").strip(), where)
        c = parse_exact(match.group("c"), where) if match.group("c") else Fraction(1)
        if r <= 0 or c <= 0:
            raise InputError(f"{where}: the factors of {value!r} must be positive")
        square = c * c * r if match.group("op") != "/" else c * c / r
        return sqrt_scale(square)
    return parse_exact(value, where)


def format_scale(scale: Scale) -> str:
    """The canonical text: an exact rational, or ``sqrt(R)``."""
    return str(scale) if isinstance(scale, Surd) else format_exact(scale)
