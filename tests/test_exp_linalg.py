"""Exact linear algebra over exp-polynomial quotients: ranks and solves checked exactly."""

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions.strategies import matrices, rationals
from promptlimits.proofs import exp_linalg, linalg
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly

exps = st.builds(
    lambda terms: ExpPoly(terms),
    st.lists(st.tuples(rationals(3, 3), rationals(4, 3)), min_size=1, max_size=3),
)


@given(matrices(st.integers(1, 4), st.integers(1, 4)))
def test_rank_agrees_with_flint_on_rationals(m):
    assert exp_linalg.rank(m) == linalg.rank(m)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3), st.data())
@settings(max_examples=30)
def test_rank_of_a_product_of_factors(rows, cols, k, data):
    """L·R with L (rows×k), R (k×cols) of exp-polynomials: rank ≤ k, and equals the rank at
    the rational specialisation e^r ↦ 1 or more (specialisation never raises the rank)."""
    k = min(k, rows, cols)
    L = [[data.draw(exps) for _ in range(k)] for _ in range(rows)]
    R = [[data.draw(exps) for _ in range(cols)] for _ in range(k)]
    prod = [[sum((L[i][t] * R[t][j] for t in range(k)), ExpPoly()) for j in range(cols)] for i in range(rows)]
    r = exp_linalg.rank(prod)
    special = [[sum((c for _, c in x.terms), Fraction(0)) for x in row] for row in prod]
    assert linalg.rank(special) <= r <= k


@given(st.integers(1, 3), st.data())
@settings(max_examples=30)
def test_solve_returns_an_exact_solution(n, data):
    A = [[data.draw(exps) for _ in range(n)] for _ in range(n)]
    b = [[data.draw(exps)] for _ in range(n)]
    x = exp_linalg.solve(A, b)
    if x is None:
        assert exp_linalg.rank(A) < exp_linalg.rank([row + bb for row, bb in zip(A, b)])
        return
    for i in range(n):
        lhs = sum((ExpFrac(A[i][j]) * x[j][0] for j in range(n)), ExpFrac(0))
        assert lhs == ExpFrac(b[i][0])


def test_hand_rank_one():
    e, h = ExpPoly.exp(1), ExpPoly.exp(Fraction(1, 2))
    assert exp_linalg.rank([[e, h], [h, 1]]) == 1  # e·1 − h² = 0
    assert exp_linalg.rank([[e, 1], [1, e]]) == 2


@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 4), st.data())
@settings(max_examples=30)
def test_modular_fast_path_agrees_with_elimination(rows, cols, k, data):
    """The rank returned (fast path or not) equals the fraction-free elimination's rank."""
    k = min(k, rows, cols)
    L = [[data.draw(exps) for _ in range(k)] for _ in range(rows)]
    R = [[data.draw(exps) for _ in range(cols)] for _ in range(k)]
    m = [[sum((L[i][t] * R[t][j] for t in range(k)), ExpPoly()) for j in range(cols)] for i in range(rows)]
    _, lifted = exp_linalg._lift_matrix(m)
    assert exp_linalg.rank(m) == len(exp_linalg._eliminate(lifted, cols)[0])
