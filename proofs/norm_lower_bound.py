"""Certified LOWER bounds on spectral norms: ‖W‖₂ ≥ ‖W v‖/‖v‖ for any v ≠ 0.

Floats propose v (the top right-singular vector, scaled by 2^SCALE_BITS and rounded to an
integer vector); the squared norms ‖v‖² (an integer) and ‖Wv‖² (a rational) are then exact,
and :func:`certified_lower` returns q = ⌊10⁶·√(‖Wv‖²/‖v‖²)⌋/10⁶, computed with integer square
roots, so q ≤ ‖Wv‖/‖v‖ ≤ ‖W‖₂ holds exactly. Used to show that the sufficient condition
‖W2‖‖W1‖ < 1 cannot hold on a checkpoint.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np

SCALE_BITS = 30
DIGITS = 6


def integer_witness(W: np.ndarray) -> tuple[int, ...]:
    """A float proposal: round(2^SCALE_BITS · v) for v the top right-singular vector of W."""
    _, _, vt = np.linalg.svd(np.asarray(W, dtype=np.float64), full_matrices=False)
    v = tuple(int(x) for x in np.rint(vt[0] * 2.0**SCALE_BITS))
    return v if any(v) else (1,) + (0,) * (len(v) - 1)


def squared_norms(W: Sequence[Sequence[Fraction]], v: Sequence[int]) -> tuple[int, Fraction]:
    """(‖v‖², ‖Wv‖²), exactly (each row's dot product over the lcm of its denominators).

    W's entries are exact rationals (Fraction or int), v an integer vector of W's width."""
    total = Fraction(0)
    for row in W:
        den = math.lcm(*(w.denominator for w in row))
        num = sum(w.numerator * (den // w.denominator) * x for w, x in zip(row, v) if x)
        total += Fraction(num * num, den * den)
    return sum(x * x for x in v), total


def certified_lower(v_norm2: int, wv_norm2: Fraction) -> Fraction:
    """q = ⌊10^DIGITS·√(‖Wv‖²/‖v‖²)⌋/10^DIGITS ≤ ‖Wv‖/‖v‖ ≤ ‖W‖₂ (‖v‖² > 0)."""
    scaled = Fraction(wv_norm2) * 10 ** (2 * DIGITS) / v_norm2
    return Fraction(math.isqrt(scaled.numerator // scaled.denominator), 10**DIGITS)
