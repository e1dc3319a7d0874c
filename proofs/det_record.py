"""A scale-free exact record of a certified nonzero real (here: a Jacobian determinant).

Claim checked by :func:`record_holds`. The record ``{"exponent": k, "mantissa": m}`` (k an
int, m an exact decimal string with 1 ≤ |m| < 2) states that the ball B lies inside
2^k·[m − TOL, m + TOL] with TOL = 10⁻⁹. Since |m| − TOL > 0 the interval excludes 0, so the
record proves sign(x) = sign(m) for every x ∈ B. The record is determined by B up to the
last digit of m: adding 1 to m leaves 1 ≤ |m| < 2, and changing k by one moves the interval
by a factor 2, so a tampered record fails unless B is wider than 2·TOL relative.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import flint

DIGITS = 9
TOL = Fraction(1, 10**DIGITS)


def record_of(ball: flint.arb) -> Optional[dict]:
    """The record of ``ball`` (from its exact midpoint), or None when the ball is too wide."""
    man, exp = (int(v) for v in ball.mid().man_exp())
    if man == 0:
        return None
    k = exp + abs(man).bit_length() - 1
    scaled = Fraction(man) * Fraction(2) ** (exp - k)  # 1 ≤ |scaled| < 2
    m = Fraction(round(scaled * 10**DIGITS), 10**DIGITS)
    if abs(m) >= 2:
        k, m = k + 1, Fraction(round(scaled / 2 * 10**DIGITS), 10**DIGITS)
    n = int(m * 10**DIGITS)
    record = {"exponent": k, "mantissa": f"{'-' if n < 0 else ''}{abs(n) // 10**DIGITS}.{abs(n) % 10**DIGITS:0{DIGITS}d}"}
    return record if record_holds(ball, record) else None


def record_holds(ball: flint.arb, record: object) -> bool:
    """True when ``record`` is well formed and B ⊂ 2^k·[m − TOL, m + TOL] is certified."""
    if not isinstance(record, dict) or set(record) != {"exponent", "mantissa"}:
        return False
    k, text = record["exponent"], record["mantissa"]
    if isinstance(k, bool) or not isinstance(k, int) or not isinstance(text, str) or abs(k) > 10**6:
        return False
    try:
        m = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return False
    if not 1 <= abs(m) < 2:
        return False
    scale = Fraction(2) ** k
    lo, hi = (m - TOL) * scale, (m + TOL) * scale
    return bool(ball > flint.arb(flint.fmpq(lo.numerator, lo.denominator))
                and ball < flint.arb(flint.fmpq(hi.numerator, hi.denominator)))


def sign_of(record: dict) -> int:
    """The sign a valid record proves."""
    return 1 if Fraction(record["mantissa"]) > 0 else -1
