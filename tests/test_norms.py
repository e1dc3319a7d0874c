"""Certified spectral-norm bounds: c ≥ ‖W‖₂ always, c close to it, tampering rejected."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.proofs import norms
from promptlimits.proofs.norms import (
    lipschitz_product, norm_bound_to_json, recheck_norm_bound, recheck_norm_json, spectral_bound,
)

entry = st.fractions(min_value=-4, max_value=4, max_denominator=7)


def matrices(max_side=6):
    return st.integers(1, max_side).flatmap(
        lambda m: st.integers(1, max_side).flatmap(
            lambda n: st.lists(st.lists(entry, min_size=n, max_size=n), min_size=m, max_size=m)
        )
    )


def _sigma(w):
    return float(np.linalg.norm(np.array(w, dtype=float), 2))


@given(matrices())
def test_bound_is_above_the_norm_and_tight(w):
    """c ≥ ‖W‖₂ (any vector x gives ‖Wx‖ ≤ c‖x‖ exactly) and c is within 1e-9 of σ_max."""
    b = spectral_bound(w)
    sigma = _sigma(w)
    assert float(b.c) >= sigma * (1 - 1e-12)
    assert float(b.c) <= sigma * (1 + 1e-9) + 1e-11
    # exact check on the top singular vector (rounded to rationals): ‖Wx‖² ≤ c²‖x‖²
    u, s, vt = np.linalg.svd(np.array(w, dtype=float))
    x = [Fraction(v) for v in vt[0]]
    wx = [sum((a * b_ for a, b_ in zip(row, x)), Fraction(0)) for row in w]
    assert sum(v * v for v in wx) <= b.c**2 * sum(v * v for v in x)
    assert recheck_norm_bound(w, b.c, b.pivots, b.side, b.method) == b.pivots


@given(matrices(4))
def test_bound_just_below_the_norm_is_rejected(w):
    """Any c below ‖W‖₂ (here: the certified c shrunk by 1e-6 relative, when ‖W‖ > 0) fails."""
    b = spectral_bound(w)
    if _sigma(w) == 0:
        return
    with pytest.raises(ValueError):
        recheck_norm_bound(w, b.c * (1 - Fraction(1, 10**6)), None, b.side, "ldlt")


def test_hand_values():
    """‖diag(3, −4)‖₂ = 4; ‖[[1, 1]]‖₂ = √2; a rank-one uvᵀ has norm ‖u‖‖v‖ = 5·1."""
    assert 4 < spectral_bound([[3, 0], [0, -4]]).c <= 4 + Fraction(1, 10**9)
    c = spectral_bound([[1, 1]]).c
    assert c**2 > 2 and c < Fraction(1414214, 10**6)
    c = spectral_bound([[3, 0], [4, 0]]).c
    assert 5 < c < 5 + Fraction(1, 10**9)


def test_tampered_pivot_and_side_are_rejected():
    w = [[Fraction(1, 2), 1], [2, Fraction(-1, 3)], [0, 1]]
    b = spectral_bound(w)
    j = norm_bound_to_json(b)
    assert recheck_norm_json(w, j) == b.c
    bad = dict(j, pivots=[j["pivots"][0] + "1"] + j["pivots"][1:])
    with pytest.raises(ValueError):
        recheck_norm_json(w, bad)
    with pytest.raises(ValueError):
        recheck_norm_json(w, dict(j, side="rows"))
    with pytest.raises(ValueError):
        recheck_norm_json(w, dict(j, c="1"))


def test_congruence_certificate_above_the_ldlt_limit():
    """Above LDLT_LIMIT the congruence + dominance certificate is used and re-verifies; a
    c below σ_max fails it (Sylvester's inertia law makes it exact, floats only propose M)."""
    rng = np.random.default_rng(3)
    n = norms.LDLT_LIMIT + 8
    w = [[Fraction(int(x), 100) for x in row] for row in rng.integers(-100, 100, size=(n, n))]
    b = spectral_bound(w)
    assert b.method == "congruence" and b.pivots == ()
    sigma = _sigma(w)
    assert sigma <= float(b.c) <= sigma * (1 + 1e-9)
    recheck_norm_bound(w, b.c, None, b.side, "congruence")
    with pytest.raises(ValueError):
        recheck_norm_bound(w, Fraction(sigma * (1 - 1e-6)), None, b.side, "congruence")


@settings(max_examples=20)
@given(matrices(4))
def test_lipschitz_product_bounds_the_product(a):
    from promptlimits.constructions.spec import Head, Layer

    d = len(a[0])
    r = len(a)
    w2 = [[Fraction(i + j, 5) for j in range(r)] for i in range(d)]
    head = Head(((Fraction(1),) * d,), ((Fraction(1),) * d,), ((Fraction(1),) * d,), tuple((Fraction(1),) for _ in range(d)))
    layer = Layer((head,), tuple(map(tuple, a)), (Fraction(0),) * r, tuple(map(tuple, w2)), (Fraction(0),) * d)
    assert float(lipschitz_product(layer)) >= _sigma(a) * _sigma(w2) * (1 - 1e-12)
