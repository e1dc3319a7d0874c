"""Exact rational upper bounds on spectral norms, certified by LDLᵀ pivots (THEORY §7).

Claim decided: ‖W‖₂ ≤ c for a rational c. Certificate: the symmetric matrix
S = c²I − G, with G = WᵀW or G = WWᵀ (the smaller side; both have the same non-zero
eigenvalues, whose largest is ‖W‖₂²), is positive definite, i.e. every pivot of its
LDLᵀ factorisation (without pivoting) is > 0 (Sylvester's criterion: pivot k is the
ratio Δ_k/Δ_{k−1} of consecutive leading principal minors). S ≻ 0 means c² > λ_max(G),
hence ‖W‖₂ < c.

Floats only *propose* c (numpy's largest singular value, rounded up to a few significant
digits); the exact pivots decide. Speed: the pivots come from one fraction-free LU
(Bareiss, python-flint ``fmpz_mat.fflu``) of the integer matrix N·S, N > 0 clearing all
denominators. Bareiss' diagonal entries are the leading principal minors of N·S, so the
pivots of S are U_kk / (U_{k−1,k−1}·N). A row exchange or a rank drop in the fraction-free
LU means some leading minor is 0, hence S is not positive definite.

Above ``LDLT_LIMIT`` rows the exact pivots grow to tens of thousands of bits and Bareiss
takes minutes (n = 256: ~100 s), so a second exact certificate is used there:
*congruence + diagonal dominance*. Floats propose M ≈ L⁻¹ (L the unit lower factor of
S's Cholesky), scaled to an integer lower-triangular matrix with diagonal 2^k, hence
invertible; T = M·(N·S)·Mᵀ is computed exactly in integers. By Sylvester's law of
inertia S ≻ 0 iff T ≻ 0, and T ≻ 0 follows from strict diagonal dominance with a positive
diagonal (Gershgorin). M is a deterministic function of (W, c), so a re-checker recomputes
it and re-verifies T exactly; floats never decide (a bad M only makes the check fail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import flint
import numpy as np

from promptlimits.constructions.spec import Layer
from promptlimits.proofs.linalg import to_flint

Rows = Sequence[Sequence[Fraction]]

#: Significant decimal digits of the first proposed c, and how many loosening steps to try.
DIGITS = 12
ATTEMPTS = 40
#: Largest Gram side certified by exact LDLᵀ pivots; above it, congruence + dominance.
LDLT_LIMIT = 32
#: Bits of the integer congruence matrix M (its diagonal is 2^CONGRUENCE_BITS).
CONGRUENCE_BITS = 40


@dataclass(frozen=True)
class NormBound:
    """‖W‖₂ ≤ c, certified: c²I − G ≻ 0 with G = WᵀW ("columns") or WWᵀ ("rows").

    ``method`` is "ldlt" (``pivots`` = the exact LDLᵀ pivots, all > 0) or "congruence"
    (``pivots`` empty; see the module docstring)."""

    c: Fraction
    side: str
    method: str
    pivots: tuple[Fraction, ...]


def _gram(w: Rows) -> tuple[flint.fmpq_mat, str]:
    """G = WᵀW when W has at most as many columns as rows, else WWᵀ; and which side."""
    m = to_flint(w)
    if m.ncols() <= m.nrows():
        return m.transpose() * m, "columns"
    return m * m.transpose(), "rows"


def _scaled(gram: flint.fmpq_mat, c: Fraction) -> tuple[flint.fmpz_mat, int]:
    """(N·(c²I − G), N): the integer matrix p²·den·I − q²·num for c = p/q, G = num/den."""
    n = gram.nrows()
    num, den = gram.numer_denom()
    p, q = c.numerator, c.denominator
    s = num * flint.fmpz(-q * q)
    diag = flint.fmpz(p * p) * den
    for i in range(n):
        s[i, i] += diag
    return s, int(flint.fmpz(q * q) * den)


def _pivots(gram: flint.fmpq_mat, c: Fraction) -> Optional[tuple[Fraction, ...]]:
    """The LDLᵀ pivots of c²I − G when they are all > 0, else None (exact)."""
    s, big_n = _scaled(gram, c)
    perm, _, _, u = s.fflu()
    if not perm.is_one():
        return None
    minors = [int(u[i, i]) for i in range(s.nrows())]
    if any(x <= 0 for x in minors):
        return None
    pivots = []
    previous = 1
    for x in minors:
        pivots.append(Fraction(x, previous * big_n))
        previous = x
    return tuple(pivots)


def _congruent_dominant(gram: flint.fmpq_mat, c: Fraction) -> bool:
    """True when T = M·(N·S)·Mᵀ is strictly diagonally dominant with positive diagonal, M
    the integer lower-triangular matrix floats propose (diagonal 2^k): then c²I − G ≻ 0."""
    s, _ = _scaled(gram, c)
    n = s.nrows()
    ents = [int(x) for x in s.entries()]
    shift = max(0, max(abs(x).bit_length() for x in ents) - 60)
    sf = np.array([x >> shift if x >= 0 else -((-x) >> shift) for x in ents], dtype=float).reshape(n, n)
    try:
        chol = np.linalg.cholesky(sf)
    except np.linalg.LinAlgError:
        return False
    with np.errstate(all="ignore"):
        m = np.linalg.inv(chol / np.diag(chol)[None, :])
        m = np.tril(np.rint(m * 2.0**CONGRUENCE_BITS))
    if not np.all(np.isfinite(m)):
        return False
    np.fill_diagonal(m, 2.0**CONGRUENCE_BITS)
    mz = flint.fmpz_mat(n, n, [int(v) for v in m.ravel()])
    t = mz * s * mz.transpose()
    for i in range(n):
        row = [int(t[i, j]) for j in range(n)]
        if row[i] <= sum(abs(x) for j, x in enumerate(row) if j != i):
            return False
    return True


def _certify(gram: flint.fmpq_mat, c: Fraction) -> Optional[NormBound]:
    """A NormBound for c when c²I − G ≻ 0 is certified (method by size), else None."""
    side_n = gram.nrows()
    if side_n <= LDLT_LIMIT:
        pivots = _pivots(gram, c)
        return None if pivots is None else NormBound(c, "", "ldlt", pivots)
    return NormBound(c, "", "congruence", ()) if _congruent_dominant(gram, c) else None


def _float_estimate(w: Rows) -> tuple[float, Fraction]:
    """(σ, s) with s·σ ≈ ‖W‖₂: σ from numpy on W/s, s the largest |entry| (avoids overflow)."""
    s = max((abs(Fraction(x)) for row in w for x in row), default=Fraction(0))
    if s == 0:
        return 0.0, Fraction(1)
    arr = np.array([[float(Fraction(x) / s) for x in row] for row in w], dtype=float)
    return float(np.linalg.norm(arr, 2)), s


def round_up(x: Fraction, digits: int) -> Fraction:
    """The smallest number with ``digits`` significant decimal digits that is ≥ x (x > 0)."""
    exponent = math.floor(math.log10(float(x))) if float(x) > 0 else 0
    unit = Fraction(10) ** (exponent - digits + 1)
    return math.ceil(x / unit) * unit


def spectral_bound(w: Rows, digits: int = DIGITS) -> NormBound:
    """A certified ‖W‖₂ ≤ c with c a short rational just above the float estimate.

    Starts from σ·(1 + 10^{1−digits}) rounded up to ``digits`` significant digits, then
    loosens geometrically until the exact pivots certify it. The Frobenius norm times
    (1 + 1/1000) always certifies (‖W‖₂ ≤ ‖W‖_F), so the loop ends with a bound.
    """
    gram, side = _gram(w)
    sigma, s = _float_estimate(w)
    tiny = Fraction(1, 10**digits)
    if not math.isfinite(sigma) or sigma == 0:
        c = tiny if sigma == 0 else None
    else:
        c = round_up(Fraction(sigma) * s * (1 + Fraction(10) ** (1 - digits)), digits)
    step = Fraction(10) ** (2 - digits)
    for _ in range(ATTEMPTS):
        if c is None:
            break
        bound = _certify(gram, c)
        if bound is not None:
            return NormBound(c, side, bound.method, bound.pivots)
        c = round_up(c * (1 + step), digits)
        step *= 4
    frob2 = sum((Fraction(x) ** 2 for row in w for x in row), Fraction(0))
    c = round_up(_sqrt_up(frob2) * Fraction(1001, 1000) + tiny, digits)
    pivots = _pivots(gram, c)  # exact, whatever the size: ‖W‖₂ ≤ ‖W‖_F < c
    if pivots is None:
        raise ArithmeticError("Frobenius bound failed to certify: exact arithmetic bug")
    return NormBound(c, side, "ldlt", pivots)


def _sqrt_up(x: Fraction) -> Fraction:
    """A rational ≥ √x (exact integer square roots of numerator and denominator)."""
    num = math.isqrt(x.numerator) + 1
    return Fraction(num, math.isqrt(x.denominator) or 1)


def recheck_norm_bound(
    w: Rows,
    c: Fraction,
    pivots: Optional[Sequence[Fraction]] = None,
    side: Optional[str] = None,
    method: Optional[str] = None,
) -> tuple[Fraction, ...]:
    """Re-verify ‖W‖₂ ≤ c exactly: with method "ldlt" recompute the pivots of c²I − G,
    check all > 0 and, when claimed pivots are given, that they are exactly these; with
    "congruence" recompute T = M·N(c²I − G)·Mᵀ and check its strict diagonal dominance.
    method None: "ldlt" when pivots are given or the Gram side is ≤ LDLT_LIMIT, else
    "congruence". Returns the pivots (empty for congruence); raises ValueError when not
    certified."""
    gram, own_side = _gram(w)
    if method is None:
        method = "ldlt" if pivots or gram.nrows() <= LDLT_LIMIT else "congruence"
    if side is not None and side != own_side:
        raise ValueError(f"norm bound uses side {side!r}, expected {own_side!r}")
    c = Fraction(c)
    if c <= 0:
        raise ValueError("norm bound c must be positive")
    if method == "congruence":
        if pivots:
            raise ValueError("a congruence certificate carries no pivots")
        if not _congruent_dominant(gram, c):
            raise ValueError(f"congruence check failed for c = {c}: ‖W‖₂ ≤ c is not certified")
        return ()
    if method != "ldlt":
        raise ValueError(f"unknown norm certificate method {method!r}")
    got = _pivots(gram, c)
    if got is None:
        raise ValueError(f"c²I − G is not positive definite for c = {c}: ‖W‖₂ ≤ c is not certified")
    if pivots is not None and tuple(Fraction(x) for x in pivots) != got:
        raise ValueError("claimed LDLᵀ pivots differ from the recomputed ones")
    return got


#: Largest total bit size of pivots written into JSON; beyond it "pivots" is null and a
#: re-checker recomputes them (they are a function of W and c, so nothing is lost).
JSON_PIVOT_BITS = 100_000


def norm_bound_to_json(bound: NormBound) -> dict:
    """Exact-string JSON of a NormBound (pivots as "p/q" strings, or null when huge)."""
    size = sum(x.numerator.bit_length() + x.denominator.bit_length() for x in bound.pivots)
    big = size > JSON_PIVOT_BITS or any(x.numerator.bit_length() > 12_000 for x in bound.pivots)
    pivots = None if big else [_fmt(x) for x in bound.pivots]
    return {"c": _fmt(bound.c), "side": bound.side, "method": bound.method, "pivots": pivots}


def recheck_norm_json(w: Rows, entry: dict) -> Fraction:
    """Re-verify a NormBound given as JSON against W; returns its c (ValueError if invalid)."""
    c = _parse(entry["c"])
    claimed = entry["pivots"]
    pivots = None if claimed is None else [_parse(x) for x in claimed]
    recheck_norm_bound(w, c, pivots, entry["side"], entry["method"])
    return c


def _fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _parse(text: object) -> Fraction:
    if not isinstance(text, str):
        raise ValueError(f"expected an exact string, got {type(text).__name__}")
    return Fraction(text)


def layer_norm_bounds(layer: Layer) -> tuple[NormBound, NormBound]:
    """Certified bounds on ‖W1‖₂ and ‖W2‖₂ of a layer's feed-forward block."""
    return spectral_bound(layer.W1), spectral_bound(layer.W2)


def lipschitz_product(layer: Layer) -> Fraction:
    """A rational L ≥ ‖W2‖₂‖W1‖₂ ≥ Lip(g) for g(x) = W2 ReLU(W1 x + b1) + b2 (ReLU is
    1-Lipschitz coordinate-wise, so ‖g(x) − g(y)‖ ≤ ‖W2‖‖W1‖‖x − y‖)."""
    b1, b2 = layer_norm_bounds(layer)
    return b1.c * b2.c
