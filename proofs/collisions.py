"""Exact collisions x ≠ x' with f(x) = f(x') of a residual ReLU block (THEORY §7).

Two constructions, both checked at the end by evaluating f exactly at both points:

- kernel: on a region whose piece M = I + W2 D W1 is singular, any δ ∈ ker M \\ {0} gives
  f(p) = f(p + tδ) for an interior point p and t small enough to stay in the region;
- fold: regions R1, R2 adjacent across hyperplane h (sign vectors differing only in h)
  with det M1 · det M2 < 0. Continuity across h forces M2 = M1 + u aᵀ, so
  det M2 = det M1 (1 + aᵀM1⁻¹u) and 1 + aᵀM1⁻¹u < 0. At a point p of the common facet
  take δ2 pointing into R2 (σ1·a·δ2 < 0) and δ1 = M1⁻¹M2δ2 = δ2 + M1⁻¹u (a·δ2); then
  σ1·a·δ1 > 0, so for small t, x1 = p + tδ1 ∈ R1, x2 = p + tδ2 ∈ R2 and
  f(x1) = f(p) + tM1δ1 = f(p) + tM2δ2 = f(x2).

``segment_walk`` follows the segment between two interior points with different
orientation classes: the sub-segments between consecutive hyperplane crossings are
realised regions differing in one sign, so some consecutive pair is a kernel or fold case.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence

from promptlimits.proofs.linalg import nullspace, solve
from promptlimits.proofs.regions import Arrangement, Block, Pieces, Vector

Collision = tuple[Vector, Vector]


def _verified(block: Block, x: Vector, y: Vector) -> Optional[Collision]:
    if x != y and block(x) == block(y):
        return (x, y)
    return None


def _step(p: Vector, t: Fraction, delta: Sequence[Fraction]) -> Vector:
    return tuple(a + t * b for a, b in zip(p, delta))


def kernel_collision(block: Block, arr: Arrangement, pieces: Pieces, mask: int, p: Vector) -> Optional[Collision]:
    """A collision inside region ``mask`` (interior point p) when its piece is singular."""
    ker = nullspace(pieces.matrix(mask))
    if not ker:
        return None
    t = Fraction(1)
    for _ in range(200):
        q = _step(p, t, ker[0])
        if arr.mask(q) == mask:
            return _verified(block, p, q)
        t /= 2
    return None


def fold_collision(block: Block, arr: Arrangement, pieces: Pieces,
                   p1: Vector, m1: int, p2: Vector, m2: int) -> Optional[Collision]:
    """A collision from adjacent regions m1, m2 (one sign apart) whose pieces are singular
    or have determinants of opposite signs; None when neither holds."""
    diff = m1 ^ m2
    if diff == 0 or diff & (diff - 1):
        raise ValueError("regions must differ in exactly one hyperplane")
    for m, p in ((m1, p1), (m2, p2)):
        if pieces.det(m) == 0:
            return kernel_collision(block, arr, pieces, m, p)
    if (pieces.det(m1) > 0) == (pieces.det(m2) > 0):
        return None
    h = diff.bit_length() - 1
    v1 = arr.values(p1)[h]
    v2 = arr.values(p2)[h]
    t = v1 / (v1 - v2)
    p = tuple(a + t * (b - a) for a, b in zip(p1, p2))  # on H_h, other signs as at p1, p2
    a = arr.normals[h]
    sigma1 = 1 if m1 >> h & 1 else -1
    delta2 = tuple(-sigma1 * x for x in a)
    mat1, mat2 = pieces.matrix(m1), pieces.matrix(m2)
    rhs = [sum((w * v for w, v in zip(row, delta2)), Fraction(0)) for row in mat2]
    delta1 = solve(mat1, rhs)
    if delta1 is None:
        return None
    t = Fraction(1)
    for _ in range(200):
        x1, x2 = _step(p, t, delta1), _step(p, t, delta2)
        if arr.mask(x1) == m1 and arr.mask(x2) == m2:
            return _verified(block, x1, x2)
        t /= 2
    return None


def segment_walk(block: Block, arr: Arrangement, pieces: Pieces, p: Vector, q: Vector) -> Optional[Collision]:
    """Walk from p to q (interior points whose pieces differ in orientation class: one
    det > 0, the other ≤ 0) and return the collision at the first change; None when two
    hyperplanes cross the segment at the same point (the caller retries elsewhere)."""
    vp, vq = arr.values(p), arr.values(q)
    crossings = sorted((vp_h / (vp_h - vq_h), h) for h, (vp_h, vq_h) in enumerate(zip(vp, vq))
                       if (vp_h > 0) != (vq_h > 0))
    ts = [t for t, _ in crossings]
    if len(set(ts)) != len(ts):
        return None
    cuts = [Fraction(0)] + ts + [Fraction(1)]
    points = [tuple(a + ((s + u) / 2) * (b - a) for a, b in zip(p, q)) for s, u in zip(cuts, cuts[1:])]
    masks = [arr.mask(x) for x in points]
    if any(m is None for m in masks):
        return None
    for x, m in zip(points, masks):
        if pieces.det(m) == 0:
            return kernel_collision(block, arr, pieces, m, x)
    for (x1, m1), (x2, m2) in zip(zip(points, masks), zip(points[1:], masks[1:])):
        if (pieces.det(m1) > 0) != (pieces.det(m2) > 0):
            return fold_collision(block, arr, pieces, x1, m1, x2, m2)
    return None
