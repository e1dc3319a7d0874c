"""Exact preimages under the residual ReLU block (proofs/preimage.py)."""

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions.spec import Head, Layer
from promptlimits.proofs import preimage
from promptlimits.constructions.feed_forward import forward
from promptlimits.proofs.preimage import certified_injective, inverse_point, preimages


def _layer(W1, b1, W2, b2) -> Layer:
    d = len(W2)
    eye = tuple(tuple(F(int(i == j)) for j in range(d)) for i in range(d))
    q = lambda m: tuple(tuple(F(x) for x in row) for row in m)  # noqa: E731
    return Layer((Head(eye, eye, eye, eye),), q(W1), tuple(map(F, b1)), q(W2), tuple(map(F, b2)))


# The PL analogue of z ↦ z² (THEORY §7): f(x) = (|x1| − |x2|, (|x1+x2| − |x1−x2|)/2), written
# with |t| = ReLU(t) + ReLU(−t) and the residual cancelled: 2-to-1 away from 0, f(−x) = f(x).
Z2 = _layer(
    [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)], [0] * 8,
    [(0, 2, -1, -1, 0, 0, 0, 0), (0, 0, -1, 1, F(1, 2), F(1, 2), F(-1, 2), F(-1, 2))], [0, 0],
)
# d = 1: f(z) = z − 2 ReLU(z) = −|z|: range (−∞, 0], f⁻¹(−1) = {−1, 1}.
FOLD = _layer([(1,)], [0], [(-2,)], [0])
# d = 1: f(z) = z − ReLU(z) = min(z, 0): f⁻¹(0) = [0, ∞), a continuum.
FLAT = _layer([(1,)], [0], [(-1,)], [0])


def test_z2_map_has_two_preimages_of_a_regular_value():
    x = (F(1, 3), F(-2, 7))
    assert forward(Z2, x) == (F(1, 21), F(-2, 7))  # |1/3| − |2/7|, (|1/21| − |13/21|)/2
    pre = preimages(Z2, forward(Z2, x))
    assert pre.complete and set(pre.points) == {x, (F(-1, 3), F(2, 7))}


def test_z2_map_origin_has_one_preimage_via_smt():
    # f(x) = 0 forces |x1| = |x2| and x1·x2 = 0, so x = 0; singular patterns force the Z3 route.
    pre = preimages(Z2, (F(0), F(0)))
    assert pre.complete and pre.points == ((F(0), F(0)),) and pre.method == "smt"


def test_inverse_point_refuses_a_non_injective_block():
    with pytest.raises(ValueError):
        inverse_point(Z2, forward(Z2, (F(1), F(2))))


def test_target_outside_the_range_has_no_preimage():
    assert preimages(FOLD, (F(1),)) == preimage.Preimages((), True, "exhaustive")
    assert set(preimages(FOLD, (F(-1),)).points) == {(F(-1),), (F(1),)}


def test_continuum_is_reported_incomplete():
    pre = preimages(FLAT, (F(0),))
    assert not pre.complete and "continuum" in pre.reason
    assert all(forward(FLAT, z) == (F(0),) for z in pre.points)


small = st.fractions(min_value=-2, max_value=2, max_denominator=5)


@st.composite
def layers(draw, scale=F(1)):
    d = draw(st.integers(1, 3))
    r = draw(st.integers(1, 4))
    W1 = [[draw(small) for _ in range(d)] for _ in range(r)]
    W2 = [[draw(small) * scale for _ in range(r)] for _ in range(d)]
    return _layer(W1, [draw(small) for _ in range(r)], W2, [draw(small) for _ in range(d)]), d


@given(layers(scale=F(1, 40)), st.data())
def test_contraction_inverts_exactly(ld, data):
    layer, d = ld
    x = tuple(data.draw(small) for _ in range(d))
    if not certified_injective(layer):
        return
    pre = preimages(layer, forward(layer, x))
    assert pre.complete and pre.method == "injective-norm" and pre.points == (x,)
    assert inverse_point(layer, forward(layer, x)) == x


@settings(max_examples=30)
@given(layers(scale=F(3)), st.data())
def test_exhaustive_and_smt_agree(ld, data):
    """Differential: the Z3-free exhaustive enumeration and the Z3 enumeration find the same set."""
    layer, d = ld
    x = tuple(data.draw(small) for _ in range(d))
    y = forward(layer, x)
    b = preimage.flint_block(layer)
    yq = preimage.fmpq_column(y)
    ex = preimage._exhaustive(b, yq, 64)
    sm = preimage._smt_enumerate(b, yq, 64, 30.0, None)
    for pre in (ex, sm):
        if pre is not None and pre.complete:
            assert x in pre.points or any(forward(layer, z) == y for z in pre.points)
            assert all(forward(layer, z) == y for z in pre.points)
    if ex is not None and ex.complete and sm.complete:
        assert set(ex.points) == set(sm.points)
    if sm.complete:  # x itself is a preimage, so a complete list contains it
        assert x in sm.points
