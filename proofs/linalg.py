"""Exact rational linear algebra (python-flint ``fmpq_mat`` inside, Fractions at the edges).

Every function returns exact answers; matrices are tuples of rows of Fractions as in
``constructions.spec`` (a plain list of lists is accepted too). Sizes up to a few hundred
are fast because flint does the elimination. This module imports nothing from the project.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence

import flint

Rows = Sequence[Sequence[Fraction]]
Matrix = tuple[tuple[Fraction, ...], ...]
Vector = tuple[Fraction, ...]


def to_flint(a: Rows) -> flint.fmpq_mat:
    """The fmpq_mat of a list of rows (0×0 for an empty list)."""
    rows = len(a)
    cols = len(a[0]) if rows else 0
    flat = []
    for row in a:
        for x in row:
            x = Fraction(x)
            flat.append(flint.fmpq(x.numerator, x.denominator))
    return flint.fmpq_mat(rows, cols, flat)


def from_flint(m: flint.fmpq_mat) -> Matrix:
    """Rows of Fractions of an fmpq_mat."""
    return tuple(
        tuple(_frac(m[i, j]) for j in range(m.ncols())) for i in range(m.nrows())
    )


def _frac(x: flint.fmpq) -> Fraction:
    return Fraction(int(x.p), int(x.q))


def identity(n: int) -> Matrix:
    return tuple(tuple(Fraction(int(i == j)) for j in range(n)) for i in range(n))


def transpose(a: Rows) -> Matrix:
    return tuple(tuple(Fraction(x) for x in col) for col in zip(*a))


def matmul(a: Rows, b: Rows) -> Matrix:
    """Exact A·B."""
    return from_flint(to_flint(a) * to_flint(b))


def matvec(a: Rows, x: Sequence[Fraction]) -> Vector:
    """Exact A·x."""
    return tuple(sum((Fraction(w) * Fraction(v) for w, v in zip(row, x)), Fraction(0)) for row in a)


def columns(vectors: Sequence[Sequence[Fraction]]) -> Matrix:
    """The matrix whose columns are the given vectors."""
    return transpose(vectors)


def rank(a: Rows) -> int:
    """rank(A) (0 for an empty matrix)."""
    if not a or not a[0]:
        return 0
    return to_flint(a).rank()


def rref(a: Rows) -> tuple[Matrix, tuple[int, ...]]:
    """Reduced row echelon form and the pivot columns."""
    r, rk = to_flint(a).rref()
    rows = from_flint(r)
    pivots = []
    for i in range(rk):
        pivots.append(next(j for j, x in enumerate(rows[i]) if x != 0))
    return rows, tuple(pivots)


def nullspace(a: Rows) -> tuple[Vector, ...]:
    """A basis of ker A = {x : A x = 0} (empty tuple when A has full column rank)."""
    cols = len(a[0])
    rows, pivots = rref(a)
    free = [j for j in range(cols) if j not in pivots]
    basis = []
    for f in free:
        x = [Fraction(0)] * cols
        x[f] = Fraction(1)
        for i, p in enumerate(pivots):
            x[p] = -rows[i][f]
        basis.append(tuple(x))
    return tuple(basis)


def column_basis(a: Rows) -> tuple[Vector, ...]:
    """Linearly independent columns of A spanning col(A) (the pivot columns)."""
    if not a or not a[0]:
        return ()
    _, pivots = rref(a)
    return tuple(tuple(Fraction(row[j]) for row in a) for j in pivots)


def solve(a: Rows, b: Sequence[Fraction]) -> Optional[Vector]:
    """Some x with A x = b, or None when the system is inconsistent (exact)."""
    cols = len(a[0])
    aug = [tuple(row) + (Fraction(bi),) for row, bi in zip(a, b)]
    rows, pivots = rref(aug)
    if cols in pivots:
        return None
    x = [Fraction(0)] * cols
    for i, p in enumerate(pivots):
        x[p] = rows[i][cols]
    return tuple(x)


def inconsistency_witness(a: Rows, b: Sequence[Fraction]) -> Optional[Vector]:
    """A y with yᵀA = 0 and yᵀb = 1 when A x = b has no solution, else None.

    Such a y is the exact certificate of infeasibility (Fredholm alternative), checkable by
    two matrix-vector products.
    """
    if solve(a, b) is not None:
        return None
    at = transpose(a)  # find y with Aᵀ y = 0, bᵀ y = 1
    system = [tuple(row) for row in at] + [tuple(Fraction(x) for x in b)]
    rhs = [Fraction(0)] * len(at) + [Fraction(1)]
    y = solve(system, rhs)
    assert y is not None, "Fredholm alternative violated: rational arithmetic bug"
    return y


def in_column_space(a: Rows, b: Sequence[Fraction]) -> bool:
    """b ∈ col(A)."""
    return solve(a, b) is not None


def inverse(a: Rows) -> Matrix:
    """A⁻¹ of a square invertible matrix (ZeroDivisionError when singular)."""
    m = to_flint(a)
    if m.det() == 0:
        raise ZeroDivisionError("singular matrix")
    return from_flint(m.inv())


def det(a: Rows) -> Fraction:
    return _frac(to_flint(a).det())


def projector(basis: Sequence[Sequence[Fraction]], dim: int) -> Matrix:
    """The orthogonal projector onto span(basis) in Q^dim (exact; zero matrix for no vectors)."""
    independent = column_basis(columns(basis)) if basis else ()
    if not independent:
        return tuple(tuple(Fraction(0) for _ in range(dim)) for _ in range(dim))
    b = to_flint(columns(independent))
    gram_inv = (b.transpose() * b).inv()
    return from_flint(b * gram_inv * b.transpose())


def left_pseudoinverse(h: Rows) -> Matrix:
    """H⁺ = (HᵀH)⁻¹Hᵀ for H with linearly independent columns, so that H⁺H = I."""
    m = to_flint(h)
    gram = m.transpose() * m
    if gram.det() == 0:
        raise ZeroDivisionError("columns are linearly dependent")
    return from_flint(gram.inv() * m.transpose())


def ldlt(s: Rows) -> tuple[Matrix, Vector]:
    """S = L·diag(D)·Lᵀ with unit lower-triangular L, for symmetric S whose leading pivots are
    non-zero; raises ZeroDivisionError at the first zero pivot (then S is not positive definite
    unless the caller decides otherwise)."""
    n = len(s)
    a = [[Fraction(x) for x in row] for row in s]
    L = [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]
    D = [Fraction(0)] * n
    for j in range(n):
        dj = a[j][j] - sum((L[j][k] ** 2 * D[k] for k in range(j)), Fraction(0))
        if dj == 0:
            raise ZeroDivisionError(f"zero pivot at {j}")
        D[j] = dj
        for i in range(j + 1, n):
            L[i][j] = (a[i][j] - sum((L[i][k] * L[j][k] * D[k] for k in range(j)), Fraction(0))) / dj
    return tuple(map(tuple, L)), tuple(D)


def positive_definite_pivots(s: Rows) -> Optional[Vector]:
    """The LDLᵀ pivots of symmetric S when all are > 0 (S is positive definite), else None.

    Sylvester: S ≻ 0 iff every pivot of its LDLᵀ factorisation is positive; a zero or
    negative pivot proves S is not positive definite.
    """
    if any(Fraction(s[i][j]) != Fraction(s[j][i]) for i in range(len(s)) for j in range(i)):
        raise ValueError("matrix is not symmetric")
    try:
        _, D = ldlt(s)
    except ZeroDivisionError:
        return None
    return D if all(x > 0 for x in D) else None
