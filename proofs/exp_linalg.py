"""Exact linear algebra over the field of exp-polynomial quotients (ranks, elimination, solves).

Every entry is an :class:`ExpFrac` N/D with N, D = Σ c·e^r (c, r rational). Let L be the
least common denominator of all exponents r that occur and X = e^{1/L}. Every e^r is then
an integer power of X, so each entry is a rational function of X with rational
coefficients. Because X is transcendental (Lindemann: e^α is transcendental for algebraic
α ≠ 0), the evaluation map Q(X) → R is an injective field homomorphism: a rational-function
identity holds iff the real numbers agree. Hence the rank over R of a matrix of such
numbers, and the solution of a linear system, are computed EXACTLY by Gauss–Jordan
elimination over Q(X), with python-flint's ``fmpq_poly`` and gcd-reduced quotients.
Results are turned back into ExpFracs (X^k ↦ e^{k/L}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence, Union

import flint

from promptlimits.proofs.exppoly import ExpFrac, ExpPoly

Entry = Union[ExpFrac, ExpPoly, Fraction, int]

#: Largest exponent span (in units of 1/L) accepted; beyond it polynomials get too long.
MAX_DEGREE = 200_000


class TooLarge(ArithmeticError):
    """The exponents span more than MAX_DEGREE steps of 1/L: the exact route is too big."""


def _as_frac(x: Entry) -> ExpFrac:
    return x if isinstance(x, ExpFrac) else ExpFrac(x)


def _exponent_scale(entries: Sequence[ExpFrac]) -> int:
    """L = lcm of the denominators of every exponent (1 when all are integers)."""
    scale = 1
    for e in entries:
        for poly in (e.num, e.den):
            for r, _ in poly.terms:
                scale = math.lcm(scale, r.denominator)
    return scale


@dataclass(frozen=True)
class _RF:
    """A rational function num/den in X (reduced only by ``make``: gcd, monic denominator)."""

    num: flint.fmpq_poly
    den: flint.fmpq_poly

    @staticmethod
    def make(num: flint.fmpq_poly, den: flint.fmpq_poly) -> "_RF":
        if num == 0:
            return _RF(flint.fmpq_poly([]), flint.fmpq_poly([1]))
        g = num.gcd(den)
        num, den = num // g, den // g
        lead = den.coeffs()[-1]
        return _RF(num / lead, den / lead)

    def is_zero(self) -> bool:
        return self.num == 0

    def __add__(self, o: "_RF") -> "_RF":
        if self.den == o.den:
            return _RF(self.num + o.num, self.den)
        return _RF(self.num * o.den + o.num * self.den, self.den * o.den)

    def __mul__(self, o: "_RF") -> "_RF":
        return _RF(self.num * o.num, self.den * o.den)


class _Field:
    """The conversion ExpFrac ↔ Q(X), X = e^{1/L}, for one fixed L."""

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def _poly(self, p: ExpPoly) -> tuple[flint.fmpq_poly, int]:
        """(P, s) with p = X^{-s}·P(X), P a polynomial."""
        if p.is_zero():
            return flint.fmpq_poly([]), 0
        degrees = [int(r * self.scale) for r, _ in p.terms]
        low, high = min(degrees), max(degrees)
        if high - low > MAX_DEGREE:
            raise TooLarge(f"exponents span {high - low} steps of 1/{self.scale}")
        coeffs = [flint.fmpq(0)] * (high - low + 1)
        for (r, c), k in zip(p.terms, degrees):
            coeffs[k - low] = flint.fmpq(c.numerator, c.denominator)
        return flint.fmpq_poly(coeffs), -low

    def lift(self, e: ExpFrac) -> _RF:
        n, sn = self._poly(e.num)
        d, sd = self._poly(e.den)
        shift = sn - sd  # e = X^{-sn} n / (X^{-sd} d) = n / (X^{shift} d)
        x = flint.fmpq_poly([0, 1])
        if shift >= 0:
            return _RF.make(n, d * x**shift)
        return _RF.make(n * x ** (-shift), d)

    def _expoly(self, p: flint.fmpq_poly) -> ExpPoly:
        coeffs = p.coeffs()
        return ExpPoly(
            (Fraction(k, self.scale), Fraction(int(c.p), int(c.q))) for k, c in enumerate(coeffs) if c != 0
        )

    def lower(self, x: _RF) -> ExpFrac:
        return ExpFrac(self._expoly(x.num), self._expoly(x.den))


def _lift_matrix(rows: Sequence[Sequence[Entry]]) -> tuple[_Field, list[list[flint.fmpq_poly]]]:
    """The field, and the matrix with every row multiplied by a common denominator of its
    entries (a non-zero factor: rank, row echelon form and solutions are unchanged)."""
    fr = [[_as_frac(x) for x in row] for row in rows]
    field = _Field(_exponent_scale([x for row in fr for x in row]))
    out = []
    for row in fr:
        lifted = [field.lift(x) for x in row]
        common = flint.fmpq_poly([1])
        for x in lifted:
            if not x.is_zero() and x.den != common:
                common = common * x.den // common.gcd(x.den)
        out.append([x.num * (common // x.den) if not x.is_zero() else flint.fmpq_poly([]) for x in lifted])
    return field, out


def _exact_div(a: flint.fmpq_poly, b: flint.fmpq_poly) -> flint.fmpq_poly:
    q, r = divmod(a, b)
    if r != 0:
        raise ArithmeticError("fraction-free elimination: inexact division (elimination bug)")
    return q


def _eliminate(a: list[list[flint.fmpq_poly]], ncols: int) -> tuple[list[int], flint.fmpq_poly]:
    """Fraction-free Gauss–Jordan (Bareiss; Nakos–Turner–Williams) in place over the first
    ``ncols`` columns. Every division is exact (entries stay minors of the input). Returns the
    pivot columns and the common pivot value p: row i < rank reads p at its pivot column and
    the reduced row echelon form is a[i][j] / p."""
    pivots: list[int] = []
    prev = flint.fmpq_poly([1])
    row = 0
    for col in range(ncols):
        if row == len(a):
            break
        candidates = [i for i in range(row, len(a)) if a[i][col] != 0]
        if not candidates:
            continue
        best = min(candidates, key=lambda i: a[i][col].degree())
        a[row], a[best] = a[best], a[row]
        p = a[row][col]
        for i in range(len(a)):
            if i == row:
                continue
            f = a[i][col]
            a[i] = [_exact_div(p * x - f * y, prev) for x, y in zip(a[i], a[row])]
        prev = p
        pivots.append(col)
        row += 1
    for i in range(len(pivots)):  # rows pivoted early carry the same scale p (shown by induction)
        if a[i][pivots[i]] != prev:
            raise ArithmeticError("fraction-free elimination: pivot scale mismatch (elimination bug)")
    return pivots, prev


#: The prime and evaluation points of the fast rank lower bound.
PRIME = 2**61 - 1
POINTS = (3, 7)


def _value_mod(p: ExpPoly, scale: int, x0: int) -> int:
    """p(X = x0) modulo PRIME, X = e^{1/scale}; ZeroDivisionError when a coefficient's
    denominator is divisible by PRIME."""
    total = 0
    for r, c in p.terms:
        den = c.denominator % PRIME
        if den == 0:
            raise ZeroDivisionError("coefficient denominator divisible by the prime")
        total += c.numerator * pow(den, -1, PRIME) * pow(x0, int(r * scale), PRIME)
    return total % PRIME


def _modular_rank(fr: list[list[ExpFrac]], scale: int) -> int:
    """A lower bound of the rank: the rank of the matrix with X = x0 over GF(PRIME).

    Sound as a lower bound: a minor that is non-zero after specialisation and reduction is
    non-zero as a rational function, hence as a real number. Points where a denominator
    vanishes are skipped (bound 0)."""
    best = 0
    rows, cols = len(fr), len(fr[0])
    for x0 in POINTS:
        try:
            flat = []
            for row in fr:
                for x in row:
                    den = _value_mod(x.den, scale, x0)
                    if den == 0:
                        raise ZeroDivisionError("denominator vanishes at this point")
                    flat.append(_value_mod(x.num, scale, x0) * pow(den, -1, PRIME) % PRIME)
        except ZeroDivisionError:
            continue
        best = max(best, flint.nmod_mat(rows, cols, flat, PRIME).rank())
        if best == min(rows, cols):
            break
    return best


def rank(rows: Sequence[Sequence[Entry]]) -> int:
    """The exact rank over R of a matrix of exp-polynomial quotients (0 when empty).

    Zero rows and columns are dropped first (they do not change the rank). Fast path: when
    the modular lower bound is already min(rows, cols) it is the rank. Otherwise exact
    fraction-free elimination over Q(X) decides."""
    if not rows or not rows[0]:
        return 0
    fr = [[_as_frac(x) for x in row] for row in rows]
    fr = [row for row in fr if any(not x.is_zero() for x in row)]
    keep = [j for j in range(len(rows[0])) if any(not row[j].is_zero() for row in fr)]
    if not fr or not keep:
        return 0
    fr = [[row[j] for j in keep] for row in fr]
    scale = _exponent_scale([x for row in fr for x in row])
    lower = _modular_rank(fr, scale)
    if lower == min(len(fr), len(fr[0])):
        return lower
    _, a = _lift_matrix(fr)
    exact = len(_eliminate(a, len(a[0]))[0])
    if exact < lower:
        raise ArithmeticError("exact rank below a proven lower bound: elimination bug")
    return exact


def rref(rows: Sequence[Sequence[Entry]]) -> tuple[tuple[tuple[ExpFrac, ...], ...], tuple[int, ...]]:
    """The reduced row echelon form (exact ExpFracs) and the pivot columns."""
    field, a = _lift_matrix(rows)
    pivots, scale = _eliminate(a, len(a[0]) if a else 0)
    return tuple(tuple(field.lower(_RF.make(x, scale)) for x in row) for row in a), tuple(pivots)


def solve(a_rows: Sequence[Sequence[Entry]], b_rows: Sequence[Sequence[Entry]]) -> Optional[tuple[tuple[ExpFrac, ...], ...]]:
    """Some X (cols(A) × cols(B)) with A·X = B exactly, or None when A·X = B has no solution.

    Free unknowns are set to 0, so X is supported on the pivot columns of A.
    """
    n = len(a_rows[0])
    k = len(b_rows[0])
    field, aug = _lift_matrix([tuple(ra) + tuple(rb) for ra, rb in zip(a_rows, b_rows)])
    pivots, scale = _eliminate(aug, n)
    for i in range(len(pivots), len(aug)):
        if any(x != 0 for x in aug[i][n:]):
            return None
    zero = ExpFrac(0)
    out = [[zero] * k for _ in range(n)]
    for i, p in enumerate(pivots):
        out[p] = [field.lower(_RF.make(x, scale)) for x in aug[i][n:]]
    return tuple(tuple(row) for row in out)


def column_pivots(rows: Sequence[Sequence[Entry]]) -> tuple[int, ...]:
    """Indices of columns forming a basis of the column space (the pivot columns)."""
    if not rows or not rows[0]:
        return ()
    _, a = _lift_matrix(rows)
    return tuple(_eliminate(a, len(a[0]))[0])


def matmul(a_rows: Sequence[Sequence[Entry]], b_rows: Sequence[Sequence[Entry]]) -> tuple[tuple[ExpFrac, ...], ...]:
    """A·B exactly, each entry returned in lowest terms (computed over Q(X))."""
    fa = [[_as_frac(x) for x in row] for row in a_rows]
    fb = [[_as_frac(x) for x in row] for row in b_rows]
    field = _Field(_exponent_scale([x for row in fa + fb for x in row]))
    la = [[field.lift(x) for x in row] for row in fa]
    lb = [[field.lift(x) for x in row] for row in fb]
    zero = _RF.make(flint.fmpq_poly([]), flint.fmpq_poly([1]))
    out = []
    for row in la:
        entries = []
        for j in range(len(lb[0]) if lb else 0):
            acc = zero
            for x, brow in zip(row, lb):
                if not x.is_zero() and not brow[j].is_zero():
                    acc = acc + x * brow[j]
            entries.append(field.lower(_RF.make(acc.num, acc.den)))
        out.append(tuple(entries))
    return tuple(out)


def reduce(x: Entry) -> ExpFrac:
    """The same number with numerator and denominator divided by their common factor."""
    e = _as_frac(x)
    field = _Field(_exponent_scale([e]))
    return field.lower(field.lift(e))
