"""Is the feed-forward block f(x) = x + W2 ReLU(W1 x + b1) + b2 injective? (THEORY §7)

Three-valued: "injective" | "not-injective" | "unknown" (with the reason). Routes:

1. Norm route (sufficient): ‖W2‖₂‖W1‖₂ ≤ c₁c₂ < 1 (``norms``) makes g a contraction, so
   ‖f(x) − f(x')‖ ≥ (1 − c₁c₂)‖x − x'‖ and f is injective.
2. Monotone route (sufficient, ``monotone``): P ≻ 0 and λ ≥ 0 with P·W2[:, j] = λ_j W1[j]ᵀ
   make f strongly monotone in the P-norm (gradient-of-convex blocks and their conjugates).
3. Exact route. f is affine, x ↦ M_R x + c_R, on each region R of the arrangement of the
   hidden units' hyperplanes (``regions``).
   - Quick search: random interior points; a singular piece, or two points whose pieces
     have different orientation classes, give a collision (``collisions``: kernel or
     fold along the segment between them).
   - All regions are listed with exact interior points (LP-free vertex construction in
     strong general position, else Z3 breadth-first search) and the list is proved
     complete by Zaslavsky's count.
   - A singular piece, or facet-adjacent regions with det of opposite signs: not
     injective (an injective continuous map of R^d has one local orientation
     everywhere), with an exact collision.
   - All det(M_R) of one sign: f is proper (each piece is invertible and there are finitely
     many) and a local homeomorphism off the points where ≥ 2 hyperplanes meet, i.e. a
     branched covering (Kuhn–Löwen, "Piecewise affine bijections of R^n…", 1987;
     Scholtes, Math. Oper. Res. 21(4), 1996, and his book, §2.3: coherently oriented
     piecewise affine maps are surjective, open, finite-to-one, and every preimage has
     local index ≥ 1). Its Brouwer degree m satisfies #f⁻¹(y) = m for every y none of whose
     preimages lies on a hyperplane, and f is a homeomorphism iff m = 1. We pick y = f(p0)
     for a random point p0 and solve M_R z = y − c_R in EVERY region: each solution either
     lies strictly inside R (a preimage) or strictly violates one of R's inequalities; if
     some solution lies on R's boundary, y is not certified regular and another y is tried.
     Exactly one preimage ⇒ injective; two ⇒ those two collide. The z² map of THEORY §7
     (coherently oriented, 2-to-1) is caught here.
4. The naive SMT encoding (``smt_injectivity``) is only a fallback collision search under
   ``auto`` when the region count is over the limit (a sat model is re-evaluated exactly;
   an unsat answer is not used, since it has no Z3-free certificate).

Every decided verdict comes with JSON evidence that ``check_invertible`` re-verifies with
Fractions and python-flint only. GELU or layer-norm layers are outside the hypotheses.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional

from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.spec import Layer
from promptlimits.proofs import monotone
from promptlimits.proofs.collisions import Collision, kernel_collision, fold_collision, segment_walk
from promptlimits.proofs.norms import layer_norm_bounds, norm_bound_to_json
from promptlimits.proofs.regions import (
    Arrangement, Block, Budget, Deadline, Pieces, Vector, arrangement, general_position_regions, region_count,
)

METHODS = ("auto", "lipschitz", "exact")
#: Largest number of regions the exact route lists.
REGION_LIMIT = 20_000
#: Random points tried by the quick orientation search, and regular values tried.
SAMPLES = 48
REGULAR_TRIES = 8
#: Seconds the auto fallback gives the naive SMT collision search when no timeout is set.
SMT_FALLBACK = 10.0


@dataclass(frozen=True)
class Decision:
    """The verdict on one layer's feed-forward block, with what supports it."""

    verdict: str
    method: str
    reason: str
    seconds: float
    collision: Optional[Collision] = None
    norm_product: Optional[Fraction] = None
    region_count: Optional[int] = None
    det_signs: Optional[dict[str, int]] = None
    evidence: Optional[dict[str, Any]] = field(default=None, compare=False)

    @property
    def status(self) -> str:
        return "unknown" if self.verdict == "unknown" else "decided"


def _vec(v: Vector) -> list[str]:
    return [format_exact(x) for x in v]


class _Exact:
    """State of the exact route on one block."""

    def __init__(self, block: Block, deadline: Deadline, region_limit: int, seed: int):
        self.block = block
        self.arr: Arrangement = arrangement(block)
        self.pieces = Pieces(block, self.arr)
        self.deadline = deadline
        self.limit = region_limit
        self.rng = random.Random(seed)
        self.scale = 1 + max((abs(b) for b in self.arr.offsets), default=Fraction(0))

    def random_point(self, spread: int = 1) -> Vector:
        den = 997
        bound = int(self.scale * spread * den) + 1
        return tuple(Fraction(self.rng.randint(-bound, bound), den) for _ in range(self.block.d))

    def interior_sample(self, spread: int = 1) -> Optional[Vector]:
        for _ in range(20):
            p = self.random_point(spread)
            if self.arr.mask(p) is not None:
                return p
        return None

    def quick_collision(self) -> Optional[tuple[Collision, str]]:
        """Random interior points; a singular piece or two orientation classes ⇒ collision."""
        positive: Optional[Vector] = None
        other: Optional[Vector] = None
        for k in range(SAMPLES):
            self.deadline.check()
            p = self.interior_sample(spread=1 if k % 2 == 0 else 50)
            if p is None:
                continue
            m = self.arr.mask(p)
            det = self.pieces.det(m)
            if det == 0:
                hit = kernel_collision(self.block, self.arr, self.pieces, m, p)
                if hit:
                    return hit, "singular piece"
            elif det > 0:
                positive = positive or p
            else:
                other = other or p
            if positive and other:
                hit = segment_walk(self.block, self.arr, self.pieces, positive, other)
                if hit:
                    return hit, "orientation flip between adjacent regions"
                other = None
        return None

    def list_regions(self) -> tuple[dict[int, Vector], int, bool]:
        """All regions with interior points, the Zaslavsky count, and general position."""
        count, general = region_count(self.arr, self.block.d, self.limit, self.deadline)
        if general:
            regions = general_position_regions(self.arr, self.block.d, self.deadline)
        else:
            from promptlimits.proofs.region_search import bfs_regions

            start = self.interior_sample()
            if start is None:
                raise Budget("could not find a starting point off the hyperplanes")
            regions = bfs_regions(self.arr, self.block.d, start, count, self.limit, self.deadline)
        if len(regions) != count:
            raise ArithmeticError(f"listed {len(regions)} regions but Zaslavsky counts {count}")
        return regions, count, general

    def adjacent_flip(self, regions: dict[int, Vector]) -> Optional[tuple[Collision, str]]:
        """A collision from a singular piece or from adjacent regions of opposite orientation."""
        for m, p in regions.items():
            if self.pieces.det(m) == 0:
                hit = kernel_collision(self.block, self.arr, self.pieces, m, p)
                if hit:
                    return hit, "singular piece"
        for m, p in regions.items():
            if self.pieces.det(m) > 0:
                continue
            for h in range(self.arr.size):
                n = m ^ (1 << h)
                if n in regions and self.pieces.det(n) > 0:
                    hit = fold_collision(self.block, self.arr, self.pieces, p, m, regions[n], n)
                    if hit:
                        return hit, "orientation flip between adjacent regions"
        return None

    def count_preimages(self, regions: dict[int, Vector]) -> Optional[tuple[Vector, list[tuple[int, Vector]], list[int]]]:
        """(y, preimages as (mask, z), per-region violated hyperplane or −1) for a certified
        regular value y, or None when no tried y could be certified regular."""
        order = sorted(regions)
        for _ in range(REGULAR_TRIES):
            p0 = self.interior_sample()
            if p0 is None:
                continue
            y = self.block(p0)
            preimages: list[tuple[int, Vector]] = []
            outside: list[int] = []
            regular = True
            for m in order:
                self.deadline.check()
                where, h, z = self.pieces.classify(m, y)
                if where == "boundary":
                    regular = False
                    break
                outside.append(h)
                if where == "inside":
                    preimages.append((m, z))
            if regular:
                return y, preimages, outside
        return None


def _collision_decision(hit: Collision, how: str, start: float, **extra: Any) -> Decision:
    x, x2 = hit
    evidence = {"route": "collision", "how": how, "collision": [_vec(x), _vec(x2)]}
    return Decision("not-injective", extra.pop("method", "exact"), how, time.perf_counter() - start,
                    collision=hit, evidence=evidence, **extra)


def decide(layer: Layer, method: str = "auto", timeout: Optional[float] = None,
           region_limit: int = REGION_LIMIT, seed: int = 0, use_monotone: bool = True) -> Decision:
    """Decide whether the layer's feed-forward block is injective (see the module docstring).

    ``use_monotone=False`` skips the monotone route (so that the region route is exercised)."""
    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    if not layer.is_exact_relu:
        what = "GELU activation" if layer.activation != "relu" else "layer norm"
        return Decision("unknown", method, f"outside the hypotheses: {what} (exact procedures need ReLU without normalisation)",
                        time.perf_counter() - start)
    deadline = Deadline.after(timeout)
    product: Optional[Fraction] = None
    if method in ("auto", "lipschitz"):
        b1, b2 = layer_norm_bounds(layer)
        product = b1.c * b2.c
        if product < 1:
            evidence = {"route": "lipschitz", "W1": norm_bound_to_json(b1), "W2": norm_bound_to_json(b2),
                        "product": format_exact(product)}
            return Decision("injective", "lipschitz", f"‖W2‖‖W1‖ ≤ {float(product):.6g} < 1 (g is a contraction)",
                            time.perf_counter() - start, norm_product=product, evidence=evidence)
        if method == "lipschitz":
            return Decision("unknown", "lipschitz", f"norm product bound {float(product):.6g} ≥ 1: the sufficient condition does not apply",
                            time.perf_counter() - start, norm_product=product)
    block = Block.of(layer)
    mono = monotone.find(block) if use_monotone else None
    if mono is not None:
        evidence = {"route": "monotone", "P": [_vec(row) for row in mono.P], "lambda": _vec(mono.lam),
                    "pivots": _vec(mono.pivots)}
        return Decision("injective", "monotone",
                        "strongly monotone: P ≻ 0 and λ ≥ 0 with P·W2[:, j] = λ_j·W1[j]ᵀ (x + P⁻¹∇φ, φ convex)",
                        time.perf_counter() - start, norm_product=product, evidence=evidence)
    state = _Exact(block, deadline, region_limit, seed)
    try:
        hit = state.quick_collision()
        if hit:
            return _collision_decision(*hit, start, norm_product=product)
        try:
            regions, count, general = state.list_regions()
        except Budget as err:
            if method == "auto" and str(err) != "timeout":
                return _smt_fallback(block, deadline, start, product, str(err))
            raise
        signs = _det_summary(state.pieces, regions)
        hit = state.adjacent_flip(regions)
        if hit:
            return _collision_decision(*hit, start, norm_product=product, region_count=count, det_signs=signs)
        if signs["zero"] or (signs["positive"] and signs["negative"]):
            return Decision("unknown", "exact", "orientation changes but no exact collision was constructed",
                            time.perf_counter() - start, norm_product=product, region_count=count, det_signs=signs)
        counted = state.count_preimages(regions)
        if counted is None:
            return Decision("unknown", "exact", f"no regular value certified in {REGULAR_TRIES} tries",
                            time.perf_counter() - start, norm_product=product, region_count=count, det_signs=signs)
        y, preimages, outside = counted
        if len(preimages) >= 2:
            hit = (preimages[0][1], preimages[1][1])
            if block(hit[0]) == block(hit[1]) and hit[0] != hit[1]:
                return _collision_decision(hit, f"coherently oriented but {len(preimages)}-to-1 at a regular value",
                                           start, norm_product=product, region_count=count, det_signs=signs)
        if len(preimages) != 1:
            return Decision("unknown", "exact", f"{len(preimages)} preimages of a regular value (internal inconsistency)",
                            time.perf_counter() - start, norm_product=product, region_count=count, det_signs=signs)
        order = sorted(regions)
        evidence = {
            "route": "exact",
            "hyperplanes": state.arr.size,
            "region_count": count,
            "general_position": general,
            "regions": [_vec(regions[m]) for m in order],
            "y": _vec(y),
            "preimage": _vec(preimages[0][1]),
            "outside": outside,
        }
        return Decision("injective", "exact",
                        f"all {count} regions {'positively' if signs['positive'] else 'negatively'} oriented and a regular value has exactly one preimage",
                        time.perf_counter() - start, norm_product=product, region_count=count, det_signs=signs,
                        evidence=evidence)
    except Budget as err:
        return Decision("unknown", "exact", f"{err}", time.perf_counter() - start, norm_product=product)


def _det_summary(pieces: Pieces, regions: dict[int, Vector]) -> dict[str, int]:
    dets = [pieces.det(m) for m in regions]
    return {"positive": sum(d > 0 for d in dets), "negative": sum(d < 0 for d in dets),
            "zero": sum(d == 0 for d in dets)}


def _smt_fallback(block: Block, deadline: Deadline, start: float, product: Optional[Fraction], why: str) -> Decision:
    """Under ``auto``, past the region limit: look for a collision with the naive encoding."""
    from promptlimits.proofs.smt_injectivity import naive_injectivity

    left = deadline.left()
    budget = SMT_FALLBACK if left is None else min(left, SMT_FALLBACK)
    if budget > 0.05:
        answer = naive_injectivity(block, timeout=budget)
        if answer.verdict == "not-injective" and answer.collision is not None:
            return _collision_decision(answer.collision, "z3 two-copy search (model re-evaluated exactly)", start,
                                       norm_product=product, method="smt")
    return Decision("unknown", "exact", f"{why}; no collision found by the SMT fallback", time.perf_counter() - start,
                    norm_product=product)
