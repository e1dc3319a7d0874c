"""Certified det J sign flips of residual GELU blocks (non-injectivity), with hand values."""

import math
from fractions import Fraction

import flint
import numpy as np
import pytest

from promptlimits.proofs.gelu_orientation import GeluBlock, find_sign_flip, jacobian_det, recheck_flip
from promptlimits.proofs.det_record import record_holds, record_of
from promptlimits.proofs.norm_lower_bound import certified_lower, integer_witness, squared_norms


def _gelu_prime(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2))) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


FOLD = GeluBlock.of_arrays([[1.0]], [0.0], [[-2.0]])  # f(x) = x − 2 GELU(x)


def test_one_dimensional_fold_has_hand_derivatives():
    # f'(x) = 1 − 2 GELU'(x): f'(1) = 1 − 2(Φ(1) + φ(1)) ≈ −1.16663, f'(−3) = 1 − 2(Φ(−3) − 3φ(−3)) ≈ 1.02389,
    # f'(0) = 1 − 2·½ = 0 exactly (the ball is the point 0: no sign there)
    for x in (1.0, -3.0):
        ball = jacobian_det(FOLD, [x])
        assert ball.contains(1 - 2 * _gelu_prime(x)) or abs(float(ball.mid()) - (1 - 2 * _gelu_prime(x))) < 1e-14
    assert jacobian_det(FOLD, [1.0]) < 0 < jacobian_det(FOLD, [-3.0])
    zero = jacobian_det(FOLD, [0.0])
    assert not zero > 0 and not zero < 0


def test_fold_is_certified_not_injective_and_the_witness_rechecks():
    flip = find_sign_flip(FOLD)
    assert flip is not None and recheck_flip(FOLD, flip)
    assert float(flip.positive[0]) != float(flip.negative[0])
    swapped = type(flip)(flip.negative, flip.positive, flip.dets[::-1], flip.bits)
    assert not recheck_flip(FOLD, swapped)


def test_small_gain_block_has_no_flip():
    # f'(x) = 1 − ½GELU'(x) ≥ 1 − ½·1.13 > 0 everywhere: no flip can exist
    assert find_sign_flip(GeluBlock.of_arrays([[1.0]], [0.0], [[-0.5]])) is None


def test_two_dimensional_block_determinant_matches_numpy():
    W1 = np.array([[1.0, 0.5], [-0.25, 2.0], [0.75, -1.0]])
    W2 = np.array([[0.5, -1.0, 0.25], [1.5, 0.5, -2.0]])
    b1 = np.array([0.125, -0.5, 0.25])
    block = GeluBlock.of_arrays(W1, b1, W2)
    x = np.array([0.3, -0.7])
    g = np.array([_gelu_prime(z) for z in W1 @ x + b1])
    expected = np.linalg.det(np.eye(2) + W2 @ np.diag(g) @ W1)
    assert abs(float(jacobian_det(block, x).mid()) - expected) < 1e-12


def test_norm_witness_bound_is_exact_and_below_the_norm():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(7, 5))
    v = integer_witness(W)
    v2, wv2 = squared_norms([[Fraction(x) for x in row] for row in W.tolist()], v)
    assert v2 == sum(x * x for x in v)
    assert abs(float(wv2) - float(np.linalg.norm(W @ np.array(v, dtype=float))) ** 2) <= 1e-9 * float(wv2)
    lower = certified_lower(v2, wv2)
    assert lower * lower * v2 <= wv2 < (lower + Fraction(1, 10**6)) ** 2 * v2  # q = ⌊10⁶√ratio⌋/10⁶
    assert float(lower) <= np.linalg.norm(W, 2) <= float(lower) + 2e-6


def test_norm_witness_hand_values():
    # W = [[3, 0], [0, 1/2]], v = (1, 1): ‖v‖² = 2, ‖Wv‖² = 9 + 1/4, √(37/8) = 2.1505813…
    v2, wv2 = squared_norms(((Fraction(3), Fraction(0)), (Fraction(0), Fraction(1, 2))), (1, 1))
    assert (v2, wv2) == (2, Fraction(37, 4))
    assert certified_lower(v2, wv2) == Fraction(2150581, 10**6)


def test_det_record_pins_the_value_and_its_sign():
    ball = -flint.arb(10) ** 40 / 3  # −3.33…·10³⁹ = −1.2244732…·2¹³¹
    record = record_of(ball)
    assert record == {"exponent": 131, "mantissa": "-1.224473282"} and record_holds(ball, record)
    for bad in ({"exponent": 132, "mantissa": "-1.224473282"}, {"exponent": 131, "mantissa": "-1.224473285"},
                {"exponent": 131, "mantissa": "-0.224473282"}, {"exponent": 131, "mantissa": "1.224473282"}):
        assert not record_holds(ball, bad)
    assert record_of(flint.arb(1, 0.5)) is None  # too wide to pin 9 digits


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        GeluBlock.of_arrays([[1.0, 2.0]], [0.0], [[1.0]])
