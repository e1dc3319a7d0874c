"""Exact rational linear algebra (proofs/linalg.py) against sympy and against its own definitions.

Each property is the defining equation (A·x = b, A·n = 0, yᵀA = 0 with yᵀb = 1, P² = P = Pᵀ,
S = L D Lᵀ, ...) checked in Fractions, plus sympy's independent rank / LDLᵀ / definiteness.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from promptlimits.constructions.strategies import matrices, rationals, vectors
from promptlimits.proofs import linalg

SIZES = st.integers(1, 5)
SHAPED = st.tuples(SIZES, SIZES, st.data())


def _sym(a) -> sympy.Matrix:
    return sympy.Matrix([[sympy.Rational(x.numerator, x.denominator) for x in row] for row in a])


def _mv(a, x):
    return tuple(sum((Fraction(w) * v for w, v in zip(row, x)), Fraction(0)) for row in a)


@given(SHAPED)
def test_rank_rref_nullspace_column_basis(shaped):
    rows, cols, data = shaped
    k = data.draw(st.integers(0, min(rows, cols)))
    a = data.draw(matrices(rows, cols, rank=k))
    assert linalg.rank(a) == k == _sym(a).rank()
    r, pivots = linalg.rref(a)
    want, want_pivots = _sym(a).rref()
    assert _sym(r) == want and pivots == tuple(want_pivots)
    kernel = linalg.nullspace(a)
    assert len(kernel) == cols - k
    assert all(_mv(a, n) == (0,) * rows for n in kernel)
    assert linalg.rank(kernel) == cols - k if kernel else True
    basis = linalg.column_basis(a)
    assert len(basis) == k and (not basis or linalg.rank(basis) == k)
    assert all(linalg.in_column_space(a, b) for b in basis)


@given(SHAPED)
def test_solve_or_inconsistency_witness(shaped):
    rows, cols, data = shaped
    a = data.draw(matrices(rows, cols, rank=data.draw(st.integers(0, min(rows, cols)))))
    b = data.draw(vectors(rows))
    x = linalg.solve(a, b)
    y = linalg.inconsistency_witness(a, b)
    consistent = _sym(a).rank() == _sym(a).row_join(_sym([[v] for v in b])).rank()
    if consistent:
        assert x is not None and _mv(a, x) == tuple(b) and y is None
    else:
        assert x is None and y is not None
        assert _mv(linalg.transpose(a), y) == (0,) * cols  # yᵀA = 0
        assert sum((u * v for u, v in zip(y, b)), Fraction(0)) == 1  # yᵀb = 1


@given(SIZES, st.data())
def test_inverse_det_matmul(n, data):
    a = data.draw(matrices(n, n, rank=n))
    inv = linalg.inverse(a)
    assert linalg.matmul(a, inv) == linalg.identity(n) == linalg.matmul(inv, a)
    assert linalg.det(a) == _sym(a).det() != 0
    b = data.draw(matrices(n, data.draw(SIZES)))
    assert _sym(linalg.matmul(a, b)) == _sym(a) * _sym(b)
    assert linalg.transpose(linalg.transpose(b)) == tuple(tuple(r) for r in b)
    if n > 1:
        singular = data.draw(matrices(n, n, rank=n - 1))
        with pytest.raises(ZeroDivisionError):
            linalg.inverse(singular)


@given(st.integers(1, 5), st.data())
def test_projector_is_orthogonal_projection(dim, data):
    count = data.draw(st.integers(0, 4))
    basis = [data.draw(vectors(dim)) for _ in range(count)]
    p = linalg.projector(basis, dim)
    assert linalg.matmul(p, p) == p  # idempotent
    assert linalg.transpose(p) == p  # symmetric
    span = linalg.rank(basis) if basis else 0
    assert linalg.rank(p) == span if span else all(x == 0 for row in p for x in row)
    for v in basis:
        assert _mv(p, v) == tuple(v)  # fixes the span
    w = data.draw(vectors(dim))
    residual = tuple(u - v for u, v in zip(w, _mv(p, w)))
    for v in basis:
        assert sum((r * x for r, x in zip(residual, v)), Fraction(0)) == 0  # residual ⊥ span


@given(SIZES, st.data())
def test_left_pseudoinverse(rows, data):
    cols = data.draw(st.integers(1, rows))
    h = data.draw(matrices(rows, cols, rank=cols))
    plus = linalg.left_pseudoinverse(h)
    assert linalg.matmul(plus, h) == linalg.identity(cols)
    assert _sym(plus) == (_sym(h).T * _sym(h)).inv() * _sym(h).T
    if cols >= 2:
        with pytest.raises(ZeroDivisionError):
            linalg.left_pseudoinverse(data.draw(matrices(rows, cols, rank=cols - 1)))


@given(SIZES, st.data())
def test_ldlt_and_positive_definite_pivots(n, data):
    b = data.draw(matrices(n, n))
    shift = data.draw(rationals(4, 4))
    s = tuple(
        tuple(sum((b[k][i] * b[k][j] for k in range(n)), Fraction(0)) + (shift if i == j else 0) for j in range(n))
        for i in range(n)
    )  # BᵀB + shift·I: positive definite iff shift > −λ_min(BᵀB)
    definite = _sym(s).is_positive_definite
    pivots = linalg.positive_definite_pivots(s)
    assert (pivots is not None) == bool(definite)
    try:
        L, D = linalg.ldlt(s)
    except ZeroDivisionError:
        assert pivots is None
        return
    rebuilt = tuple(
        tuple(sum((L[i][k] * D[k] * L[j][k] for k in range(n)), Fraction(0)) for j in range(n)) for i in range(n)
    )
    assert rebuilt == s
    assert all(L[i][i] == 1 and all(L[i][j] == 0 for j in range(i + 1, n)) for i in range(n))
    sl, sd = _sym(s).LDLdecomposition(hermitian=False)
    assert [sd[i, i] for i in range(n)] == [sympy.Rational(x.numerator, x.denominator) for x in D]
    if pivots is not None:
        assert pivots == D and all(x > 0 for x in D)


def test_positive_definite_rejects_asymmetric():
    with pytest.raises(ValueError):
        linalg.positive_definite_pivots(((Fraction(1), Fraction(2)), (Fraction(0), Fraction(1))))


def test_rank_at_d_256():
    """d = 256 (the issue's size): rank of a product of 256×200 and 200×256 integer factors."""
    rng = random.Random(0)
    left = [[Fraction(rng.randint(-1, 1)) for _ in range(200)] for _ in range(256)]
    right = [[Fraction(rng.randint(-1, 1), 2) for _ in range(256)] for _ in range(200)]
    product = linalg.matmul(left, right)
    assert linalg.rank(product) == min(linalg.rank(left), linalg.rank(right)) == 200
    assert len(linalg.nullspace(product)) == 56
