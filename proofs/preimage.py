"""Exact preimages of a rational point under the residual ReLU block (THEORY §7).

f(z) = z + W2 ReLU(W1 z + b1) + b2 is piecewise affine: on the closed region of activation
pattern D (hidden unit j active iff j ∈ D) it is z ↦ (I + W2 D W1) z + W2 D b1 + b2. So a
preimage of a rational y is the solution of a rational linear system for its pattern, and
is rational whenever that system is regular. Every point this module returns has been
checked exactly: f(z) = y in rational arithmetic (ReLU at exactly 0 is irrelevant there).

Completeness (``Preimages.complete``), tried in this order:

* ``injective-norm``: (‖W1‖₂‖W2‖₂)² ≤ n(W1)·n(W2) < 1 with n(W) = min(‖W‖_F², ‖W‖₁‖W‖_∞)
  (all rational), or failing that ‖W1‖₂ ≤ c₁, ‖W2‖₂ ≤ c₂ certified by LDLᵀ pivots with
  c₁c₂ < 1 (``proofs.norms``); so g is a contraction and f is a bijection: the one point
  found is all.
* ``exhaustive``: every one of the 2^r patterns is solved exactly (Z3-free, re-checkable by
  repeating it): a regular pattern contributes its solution iff that solution satisfies f;
  a singular pattern whose system is inconsistent contributes nothing. A singular pattern
  with a consistent system defeats this route.
* ``smt``: Z3 (QF_LRA) enumerates the realised patterns, blocking each closed region whose
  preimage it has found; a singular region is then probed for a second point (a continuum).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from typing import Optional, Sequence

import flint
import numpy as np

from promptlimits.constructions.feed_forward import FlintBlock, by_identity, flint_block, fmpq_column, fractions_of
from promptlimits.constructions.spec import Layer, Vector
from promptlimits.proofs.norms import lipschitz_product

#: Largest hidden width for which all 2^r activation patterns are solved one by one.
EXHAUSTIVE_MAX_HIDDEN = 12


@dataclass(frozen=True)
class Preimages:
    """Exact preimages z with f(z) = y (each verified), and whether the list is all of f⁻¹(y).

    ``method`` names the completeness argument (``injective-norm``, ``exhaustive``, ``smt``)
    or is ``"partial"``; ``reason`` says why the list may be incomplete when it is.
    """

    points: tuple[Vector, ...]
    complete: bool
    method: str
    reason: str = ""


# ----------------------------------------------------------------------------- exact pieces


def _pattern_system(b: FlintBlock, pattern: Sequence[bool], y: flint.fmpq_mat) -> tuple[flint.fmpq_mat, flint.fmpq_mat]:
    """(I + W2 D W1, y − b2 − W2 D b1) for the diagonal 0/1 matrix D of ``pattern``."""
    zero = flint.fmpq(0)
    cols = [b.W2cols[j] if on else (zero,) * b.d for j, on in enumerate(pattern)]
    W2D = flint.fmpq_mat(b.d, b.r, [cols[j][i] for i in range(b.d) for j in range(b.r)])
    return b.ident + W2D * b.W1, y - b.b2 - W2D * b.b1


def _solve_pattern(b: FlintBlock, pattern: Sequence[bool], y: flint.fmpq_mat) -> tuple[str, Optional[flint.fmpq_mat]]:
    """('regular', z) | ('singular-consistent', z) | ('inconsistent', None) for one pattern's system."""
    A, rhs = _pattern_system(b, pattern, y)
    try:
        return "regular", A.solve(rhs)
    except ZeroDivisionError:
        pass
    aug = flint.fmpq_mat(b.d, b.d + 1, [A[i, j] if j < b.d else rhs[i, 0] for i in range(b.d) for j in range(b.d + 1)])
    if aug.rank() != A.rank():
        return "inconsistent", None
    red, rank = aug.rref()
    z = [flint.fmpq(0)] * b.d
    row = 0
    for col in range(b.d):
        if row < rank and red[row, col] != 0:
            z[col] = red[row, b.d]
            row += 1
    return "singular-consistent", flint.fmpq_mat(b.d, 1, z)


def _is_preimage(b: FlintBlock, z: flint.fmpq_mat, y: flint.fmpq_mat) -> bool:
    pre = b.W1 * z + b.b1
    h = flint.fmpq_mat(b.r, 1, [pre[j, 0] if pre[j, 0] > 0 else 0 for j in range(b.r)])
    return z + b.W2 * h + b.b2 == y


def _pattern_of(b: FlintBlock, z: flint.fmpq_mat) -> tuple[bool, ...]:
    pre = b.W1 * z + b.b1
    return tuple(pre[j, 0] > 0 for j in range(b.r))


# ----------------------------------------------------------------------------- injectivity by norms


def _norm_square_bound(rows: Sequence[Sequence[Fraction]]) -> Fraction:
    """A rational upper bound of ‖W‖₂²: min(‖W‖_F², ‖W‖₁·‖W‖_∞)."""
    frob = sum((x * x for row in rows for x in row), Fraction(0))
    inf = max(sum((abs(x) for x in row), Fraction(0)) for row in rows)
    one = max(sum((abs(row[j]) for row in rows), Fraction(0)) for j in range(len(rows[0])))
    return min(frob, one * inf)


def lipschitz_square_bound(layer: Layer) -> Fraction:
    """A rational upper bound of (‖W2‖₂‖W1‖₂)², hence of Lip(g)²; f is a bijection when it is < 1."""
    return _norm_square_bound(layer.W1) * _norm_square_bound(layer.W2)


@by_identity
def certified_injective(layer: Layer) -> bool:
    """True when Lip(g) < 1 is certified (sufficient, not necessary, for injectivity): first
    ``lipschitz_square_bound(layer) < 1``, then the LDLᵀ-certified spectral norms of
    ``proofs.norms`` (c₁·c₂ < 1)."""
    return lipschitz_square_bound(layer) < 1 or lipschitz_product(layer) < 1


# ----------------------------------------------------------------------------- float guess


def _float_guess(b: FlintBlock, y: np.ndarray, contraction: bool) -> np.ndarray:
    """A float approximation of some preimage: fixed-point iteration for a contraction,
    piecewise Newton (solve the affine system of the current pattern) otherwise."""
    z = y - b.b2f
    if contraction:
        for _ in range(200):
            nz = y - b.W2f @ np.maximum(b.W1f @ z + b.b1f, 0.0) - b.b2f
            if np.max(np.abs(nz - z)) <= 1e-13 * (1 + np.max(np.abs(nz))):
                return nz
            z = nz
    seen = set()
    for _ in range(64):
        mask = (b.W1f @ z + b.b1f) > 0
        key = mask.tobytes()
        if key in seen:
            break
        seen.add(key)
        W2D = b.W2f[:, mask]
        A = np.eye(b.d) + W2D @ b.W1f[mask]
        try:
            z = np.linalg.solve(A, y - b.b2f - W2D @ b.b1f[mask])
        except np.linalg.LinAlgError:
            break
    return z


def _exact_from_guess(b: FlintBlock, guess: np.ndarray, y: flint.fmpq_mat) -> Optional[flint.fmpq_mat]:
    """The exact solution for the guess's activation pattern, re-solved for the exact point's
    pattern until it is a preimage (checked exactly). Solving the pattern's affine system is
    as fast as rounding the guess to nearby rationals and checking them, and never misses."""
    pattern = tuple(bool(x) for x in (b.W1f @ guess + b.b1f) > 0)
    for _ in range(4):
        kind, z = _solve_pattern(b, pattern, y)
        if z is None:
            return None
        if _is_preimage(b, z, y):
            return z
        nxt = _pattern_of(b, z)
        if nxt == pattern:
            return None
        pattern = nxt
    return None


# ----------------------------------------------------------------------------- the entry points


def preimages(layer: Layer, y: Sequence[Fraction], limit: int = 64, timeout: float = 30.0,
              allow_smt: bool = True) -> Preimages:
    """The exact preimages of the rational point y under the layer's feed-forward block.

    Returns at most ``limit`` points, each with f(z) = y verified exactly. ``complete`` is
    True only when the points are provably all of f⁻¹(y) (see the module docstring for the
    three arguments used). ``allow_smt=False`` restricts completeness to Z3-free arguments.
    """
    b = flint_block(layer)
    yq = fmpq_column(tuple(Fraction(x) for x in y))
    contraction = certified_injective(layer)
    guess = _float_guess(b, np.array([float(x) for x in y]), contraction)
    found = _exact_from_guess(b, guess, yq) if np.all(np.isfinite(guess)) else None
    if contraction:
        if found is None:
            found = _contraction_solve(b, yq)
        return Preimages((fractions_of(found),), True, "injective-norm")
    if b.r <= EXHAUSTIVE_MAX_HIDDEN:
        result = _exhaustive(b, yq, limit)
        if result is not None:
            return result
    if not allow_smt:
        pts = () if found is None else (fractions_of(found),)
        return Preimages(pts, False, "partial", "completeness needs Z3 (a singular activation pattern or too many hidden units)")
    return _smt_enumerate(b, yq, limit, timeout, found)


def _contraction_solve(b: FlintBlock, y: flint.fmpq_mat) -> flint.fmpq_mat:
    """The unique preimage of a contraction block when the float guess missed (patterns by exact Newton)."""
    pattern = (False,) * b.r
    for _ in range(4 * b.r + 8):
        kind, z = _solve_pattern(b, pattern, y)
        if z is not None and _is_preimage(b, z, y):
            return z
        if z is None:
            break
        pattern = _pattern_of(b, z)
    for pattern in product((False, True), repeat=b.r):  # last resort; unreachable in practice
        kind, z = _solve_pattern(b, pattern, y)
        if z is not None and _is_preimage(b, z, y):
            return z
    raise ArithmeticError("a contraction block has no preimage: arithmetic bug")


def _exhaustive(b: FlintBlock, y: flint.fmpq_mat, limit: int) -> Optional[Preimages]:
    """All 2^r patterns solved exactly; None when a singular pattern has a consistent system."""
    points: list[flint.fmpq_mat] = []
    for pattern in product((False, True), repeat=b.r):
        kind, z = _solve_pattern(b, pattern, y)
        if kind == "singular-consistent":
            return None
        if kind == "regular" and _is_preimage(b, z, y) and z not in points:
            points.append(z)
            if len(points) > limit:
                return Preimages(tuple(fractions_of(p) for p in points[:limit]), False, "partial",
                                 f"more than {limit} preimages")
    return Preimages(tuple(fractions_of(p) for p in points), True, "exhaustive")


def _smt_enumerate(b: FlintBlock, y: flint.fmpq_mat, limit: int, timeout: float,
                   found: Optional[flint.fmpq_mat]) -> Preimages:
    """Enumerate realised activation regions with Z3, blocking each closed region once solved."""
    import z3

    deadline = time.monotonic() + timeout
    zs = [z3.Real(f"z{k}") for k in range(b.d)]

    def q(x: flint.fmpq) -> z3.ArithRef:
        return z3.RealVal(f"{int(x.p)}/{int(x.q)}")

    pres = [sum((q(b.W1[j, k]) * zs[k] for k in range(b.d) if b.W1[j, k] != 0), q(b.b1[j, 0])) for j in range(b.r)]
    hs = [z3.Real(f"h{j}") for j in range(b.r)]
    s = z3.Solver()
    for j in range(b.r):
        s.add(z3.Or(z3.And(pres[j] >= 0, hs[j] == pres[j]), z3.And(pres[j] <= 0, hs[j] == 0)))
    for k in range(b.d):
        s.add(zs[k] + sum((q(b.W2[k, j]) * hs[j] for j in range(b.r) if b.W2[k, j] != 0), q(b.b2[k, 0])) == q(y[k, 0]))

    def region(pattern: Sequence[bool]) -> z3.BoolRef:
        return z3.And([pres[j] >= 0 if on else pres[j] <= 0 for j, on in enumerate(pattern)])

    points: list[flint.fmpq_mat] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return Preimages(tuple(fractions_of(p) for p in points), False, "partial", f"Z3 enumeration timed out after {timeout} s")
        s.set("timeout", max(1, int(left * 1000)))
        res = s.check()
        if res == z3.unsat:
            return Preimages(tuple(fractions_of(p) for p in points), True, "smt")
        if res != z3.sat:
            return Preimages(tuple(fractions_of(p) for p in points), False, "partial", f"Z3 answered {res}: {s.reason_unknown()}")
        mdl = s.model()
        vals = []
        for k in range(b.d):
            v = mdl.eval(zs[k], model_completion=True)
            vals.append(flint.fmpq(v.numerator_as_long(), v.denominator_as_long()))
        z = flint.fmpq_mat(b.d, 1, vals)
        if not _is_preimage(b, z, y):
            raise ArithmeticError("Z3 model is not a preimage: encoding bug")
        pattern = _pattern_of(b, z)
        kind, _ = _solve_pattern(b, pattern, y)
        if kind != "regular":
            s.push()
            s.add(region(pattern), z3.Or([zs[k] != q(z[k, 0]) for k in range(b.d)]))
            s.set("timeout", max(1, int(max(deadline - time.monotonic(), 0.001) * 1000)))
            second = s.check()
            s.pop()
            if second != z3.unsat:
                why = "a continuum of preimages" if second == z3.sat else "a singular region not resolved"
                return Preimages(tuple(fractions_of(p) for p in points + [z]), False, "partial", why)
        if z not in points:
            points.append(z)
        if len(points) > limit:
            return Preimages(tuple(fractions_of(p) for p in points[:limit]), False, "partial", f"more than {limit} preimages")
        s.add(z3.Not(region(pattern)))


def inverse_point(layer: Layer, y: Sequence[Fraction]) -> Vector:
    """f⁻¹(y) for a block where it is unique; ValueError when uniqueness is not proven.

    Uses only Z3-free completeness arguments (the norm certificate or exhaustive patterns).
    """
    pre = preimages(layer, y, limit=2, allow_smt=False)
    if not pre.complete or len(pre.points) != 1:
        raise ValueError(f"f⁻¹(y) is not proven to be one point ({pre.method}: {len(pre.points)} found; {pre.reason})")
    return pre.points[0]
