"""Certified non-injectivity of a residual GELU block by opposite Jacobian orientations.

Claim decided. f(x) = x + W2 GELU(W1 x + b1) + b2 on R^d is C¹ with Jacobian
J(x) = I + W2 diag(GELU'(W1 x + b1)) W1, GELU'(z) = Φ(z) + z·φ(z). If det J(a) > 0 and
det J(b) < 0 at two points a, b, then f is NOT injective. Proof: an injective continuous
map R^d → R^d is open (invariance of domain), hence a homeomorphism onto its image, and
its local degree is one constant ±1 on the connected R^d; at a point where det J ≠ 0 the
local degree equals sign det J, so the two signs cannot differ. (THEORY §7's orientation
argument, for a smooth activation; ‖W2‖‖W1‖ < 1 would exclude it, so a flip also shows the
norm condition failing.)

Rigour. a and b are dyadic rational points (floats taken exactly); the weights are the
exact binary64 values of the file (or spec). J is evaluated in arb balls at ``bits`` of precision
(erf, exp, √2, √π rigorous) and its determinant by ``arb_mat.det``; a sign counts only
when the ball excludes 0, and is recorded scale-free (``proofs.det_record``). Floats (numpy
``slogdet`` at random points) only propose the points; ``recheck_flip`` re-verifies a witness.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import flint
import numpy as np

from promptlimits.constructions.numbers import format_exact, is_binary64
from promptlimits.constructions.spec import Layer
from promptlimits.proofs.det_record import record_holds, record_of
from promptlimits.proofs.interval import precision

BITS = 128
#: Scales of the random points the float search tries, and points per scale.
SCALES = (0.3, 1.0, 3.0, 10.0, 30.0)
PER_SCALE = 8


@dataclass(frozen=True)
class GeluBlock:
    """x ↦ x + W2 GELU(W1 x + b1) + b2 with float64 weights taken as the exact binary
    rationals they denote (b2 shifts f and does not change J, so it is not kept)."""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray

    @classmethod
    def of_arrays(cls, W1, b1, W2) -> "GeluBlock":
        W1, b1, W2 = (np.array(a, dtype=np.float64) for a in (W1, b1, W2))
        r, d = W1.shape
        if b1.shape != (r,) or W2.shape != (d, r) or not all(np.isfinite(a).all() for a in (W1, b1, W2)):
            raise ValueError("a GELU block needs finite W1 (r×d), b1 (r) and W2 (d×r)")
        return cls(W1, b1, W2)

    @classmethod
    def of_layer(cls, layer: Layer) -> "GeluBlock":
        """The feed-forward block of a GELU layer; every weight must be a binary64 number."""
        if layer.activation != "gelu":
            raise ValueError("the orientation search covers GELU blocks")
        block = cls.of_arrays([[float(v) for v in row] for row in layer.W1], [float(v) for v in layer.b1],
                              [[float(v) for v in row] for row in layer.W2])
        if not all(is_binary64(v) for m in (layer.W1, layer.W2, (layer.b1,)) for row in m for v in row):
            raise ValueError("weights must be exactly representable as binary64 floats")
        return block

    @property
    def d(self) -> int:
        return self.W1.shape[1]


@dataclass(frozen=True)
class SignFlip:
    """det J(positive) > 0 > det J(negative), both certified at ``bits``; ``dets`` are the
    exact records (``proofs.det_record``) of the two arb enclosures. Points are binary64
    vectors (exact)."""

    positive: tuple[float, ...]
    negative: tuple[float, ...]
    dets: tuple[dict, dict]
    bits: int

    def to_json(self) -> dict:
        """Points as exact strings (p/q of the binary64 values) and the determinant records."""
        return {"positive": [format_exact(Fraction(v)) for v in self.positive],
                "negative": [format_exact(Fraction(v)) for v in self.negative],
                "det_positive": self.dets[0], "det_negative": self.dets[1], "bits": self.bits}


def _gelu_prime(z: flint.arb) -> flint.arb:
    """Φ(z) + z φ(z) = (1 + erf(z/√2))/2 + z e^{−z²/2}/√(2π), rigorously."""
    two = flint.arb(2)
    return (1 + (z / two.sqrt()).erf()) / 2 + z * (-(z * z) / 2).exp() / (2 * flint.arb.pi()).sqrt()


def jacobian_det(block: GeluBlock, x: Sequence[float], bits: int = BITS) -> flint.arb:
    """A ball containing det J(x), J(x) = I + W2 diag(GELU'(W1 x + b1)) W1 (x binary64, exact)."""
    d, r = block.d, block.W1.shape[0]
    with precision(bits):
        W1 = flint.arb_mat(block.W1.tolist())
        xv = flint.arb_mat([[float(v)] for v in x])
        z = W1 * xv
        g = [_gelu_prime(z[i, 0] + float(block.b1[i])) for i in range(r)]
        W2 = block.W2.tolist()
        scaled = flint.arb_mat(d, r, [W2[k][i] * g[i] for k in range(d) for i in range(r)])
        J = scaled * W1
        for k in range(d):
            J[k, k] += 1
        return J.det()


def _sign(ball: flint.arb) -> int:
    """+1 / −1 when the ball excludes 0, else 0 (undecided)."""
    if ball > 0:
        return 1
    if ball < 0:
        return -1
    return 0


def float_det_signs(block: GeluBlock, points: np.ndarray) -> np.ndarray:
    """Float64 signs of det J at each row of ``points`` (a proposal only, never a verdict)."""
    import math

    erf = np.vectorize(math.erf)
    out = []
    for x in points:
        z = block.W1 @ x + block.b1
        g = 0.5 * (1 + erf(z / math.sqrt(2))) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        out.append(np.linalg.slogdet(np.eye(block.d) + (block.W2 * g[None, :]) @ block.W1)[0])
    return np.array(out)


def sample_points(d: int, seed: int, per_scale: int = PER_SCALE) -> np.ndarray:
    """Gaussian points at the scales of SCALES (seeded), one row per point."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=(per_scale, d)) * s for s in SCALES])


def find_sign_flip(block: GeluBlock, seed: int = 0, bits: int = BITS,
                   per_scale: int = PER_SCALE) -> Optional[SignFlip]:
    """Search random points (floats propose) and certify one point of each orientation.

    Returns None when no flip is found and certified (which proves nothing)."""
    points = sample_points(block.d, seed, per_scale)
    signs = float_det_signs(block, points)
    found: dict[int, tuple[tuple[float, ...], dict]] = {}
    for want in (1, -1):
        for x in points[signs == want]:
            det = jacobian_det(block, x, bits)
            with precision(bits):
                record = record_of(det) if _sign(det) == want else None
            if record is not None:
                found[want] = (tuple(float(v) for v in x), record)
                break
    if len(found) < 2:
        return None
    (pos, rpos), (neg, rneg) = found[1], found[-1]
    return SignFlip(pos, neg, (rpos, rneg), bits)


def recheck_flip(block: GeluBlock, flip: SignFlip) -> bool:
    """Re-evaluate both determinants rigorously: True when det J(positive) > 0 > det J(negative)
    and each enclosure lies inside its record's interval."""
    dpos, dneg = jacobian_det(block, flip.positive, flip.bits), jacobian_det(block, flip.negative, flip.bits)
    with precision(flip.bits):
        records = record_holds(dpos, flip.dets[0]) and record_holds(dneg, flip.dets[1])
    return records and _sign(dpos) == 1 and _sign(dneg) == -1
