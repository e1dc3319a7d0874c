"""THEORY §5 (Theorem 3): a certified floor on the prompt-tuning loss of a shared-query dataset.

Claim. One layer, one head, every constrained position has the same (encoded) query q,
and Lip(g) ≤ L < 1 (certified spectral norms, ``proofs.norms``). Then f is a bijection,
‖f(a) − f(z)‖ ≥ (1 − L)‖a − z‖, and for every prompt of every length

    Σ_i ‖τ_P(X_i)_q − y_i‖² ≥ (1 − L)² · min_{t ∈ [0, 1]} F(t),

where z_i = f⁻¹(y_i), B_i, u_i are the prompt-free Lemma 1 quantities, and, with
a = t/(1 − t) = 1/A (t = 0: λ = 1; t = 1: no prompt effect), D_i = 1 + (B_i − 1)t,
ρ_i = B_i t / D_i = 1 − λ_i, w_i = 1/D_i, r_i = q − z_i + ρ_i u_i and P the orthogonal
projector onto col(V),

    F(t) = min_{v ∈ col V} Σ_i ‖λ_i v + r_i‖²
         = Σ_i ‖(I − P) r_i‖² + Σ_{i<j} ‖w_j P r_i − w_i P r_j‖² / Σ_k w_k².

(Least squares in v: the minimum is Σ‖r_i‖² − ‖P Σ c_i r_i‖²/Σ c_i² with c_i = λ_i =
(1 − t) w_i; Lagrange's identity turns the difference into the sum of squares above, which
is continuous on [0, 1] and has no cancellation.) Relaxing Lemma 2's reachable set to all
(A, v) with v ∈ col(V) only lowers the minimum, so the floor is sound.

Scale. For a rational B_ref > 0 the substitution a = t/(B_ref (1 − t)) maps [0, 1] onto
[0, ∞] and turns every formula above into the same one with B_i replaced by
β_i = B_i/B_ref. B_ref ≈ B_1 makes ρ_i ≈ t when the B_i are close (exactly t when they are
equal, as in THEORY §4), so F has no flat stretches that would need many leaves.

Rigour. B_i and u_i are exp-polynomial quotients; they are enclosed once in rational
intervals whose end points are checked exactly (exact signs of B_i − lo, etc.). F is then
bounded below on sub-intervals of [0, 1] by interval arithmetic on fixed-point integers
(multiples of 2^-bits, rounded outward), deterministic on every platform. ρ_i and w_i are
monotone in t and in B_i, so their ranges come exactly from the corners. A best-first
branch-and-bound splits the leaf with the smallest lower bound until that bound is within
a relative tolerance of the best point value (or the leaf budget is spent); the floor is
(1 − L)² times the least leaf lower bound, rounded down to DIGITS significant digits.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.evaluate import tokens_with_positions, value_matrix
from promptlimits.constructions.spec import Dataset, Model, Vector
from promptlimits.proofs import interval, linalg
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly

BITS = 96
MAX_LEAVES = 1000
#: Work budget of the search (leaves × (N² + N)·d interval operations); large datasets get
#: fewer leaves, hence a sound but looser floor.
WORK = 1_000_000
TOLERANCE = Fraction(1, 10**3)
#: Absolute slack of the stopping rule (a minimum at 0 is never met relatively) and the
#: narrowest leaf that is still split.
ABSOLUTE = Fraction(1, 2**40)
NARROWEST = Fraction(1, 2**40)
#: Significant digits of the reported floor (rounded down, so it stays a proven floor).
DIGITS = 20


@dataclass(frozen=True)
class LossFloor:
    """A rational ``value`` proven ≤ the infimum of the prompt-tuning loss (0: nothing proven).

    ``evidence`` holds everything ``check_bounds`` needs to re-verify a non-zero value.
    """

    value: Fraction
    method: str
    reason: str = ""
    evidence: Optional[dict] = field(default=None, compare=False)


# ----------------------------------------------------------------------------- fixed-point intervals


@dataclass(frozen=True)
class FI:
    """The interval [lo, hi]·2^-bits with integer end points (outward rounding)."""

    lo: int
    hi: int

    @staticmethod
    def of(lo: Fraction, hi: Fraction, bits: int) -> "FI":
        scale = 1 << bits
        return FI((lo * scale).__floor__(), (hi * scale).__ceil__())

    def __add__(self, o: "FI") -> "FI":
        return FI(self.lo + o.lo, self.hi + o.hi)

    def __sub__(self, o: "FI") -> "FI":
        return FI(self.lo - o.hi, self.hi - o.lo)

    def mul(self, o: "FI", bits: int) -> "FI":
        p = (self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi)
        return FI(min(p) >> bits, -((-max(p)) >> bits))

    def square(self, bits: int) -> "FI":
        if self.lo >= 0:
            lo, hi = self.lo, self.hi
        elif self.hi <= 0:
            lo, hi = -self.hi, -self.lo
        else:
            lo, hi = 0, max(-self.lo, self.hi)
        return FI((lo * lo) >> bits, -((-(hi * hi)) >> bits))


def _corners(fn, B: tuple[Fraction, Fraction], t0: Fraction, t1: Fraction) -> tuple[Fraction, Fraction]:
    values = [fn(b, t) for b in B for t in (t0, t1)]
    return min(values), max(values)


def _rho(b: Fraction, t: Fraction) -> Fraction:
    return b * t / (1 + (b - 1) * t)


def _w(b: Fraction, t: Fraction) -> Fraction:
    return 1 / (1 + (b - 1) * t)


@dataclass(frozen=True)
class Problem:
    """The rational data of F: q − z_i split by P, enclosures of B_i and of P u_i, (I − P) u_i."""

    base_in: tuple[tuple[Fraction, ...], ...]  # P (q − z_i)
    base_out: tuple[tuple[Fraction, ...], ...]  # (I − P)(q − z_i)
    B: tuple[tuple[Fraction, Fraction], ...]  # enclosures of β_i = B_i / B_ref
    u: tuple[tuple[tuple[Fraction, Fraction], ...], ...]  # enclosures of u_i
    P: tuple[tuple[Fraction, ...], ...]
    bits: int
    projected: tuple = field(default=(), compare=False)  # per i: (P u_i, (I − P) u_i) as FI lists
    bases: tuple = field(default=(), compare=False)  # per i: (P (q − z_i), (I − P)(q − z_i)) as FI lists

    def __post_init__(self) -> None:
        """Enclose everything that does not depend on t once."""
        bits, d = self.bits, len(self.P)
        object.__setattr__(self, "bases", tuple(
            ([FI.of(x, x, bits) for x in bi], [FI.of(x, x, bits) for x in bo])
            for bi, bo in zip(self.base_in, self.base_out)
        ))
        P = [[FI.of(x, x, bits) for x in row] for row in self.P]
        out = []
        for enc in self.u:
            u = [FI.of(lo, hi, bits) for lo, hi in enc]
            pu = []
            for k in range(d):
                acc = FI(0, 0)
                for j in range(d):
                    if self.P[k][j]:
                        acc = acc + P[k][j].mul(u[j], bits)
                pu.append(acc)
            out.append((pu, [uk - pk for uk, pk in zip(u, pu)]))
        object.__setattr__(self, "projected", tuple(out))


def _enclose_F(prob: Problem, t0: Fraction, t1: Fraction) -> tuple[FI, FI, FI]:
    """Enclosures over t ∈ [t0, t1] of Σ‖(I − P) r_i‖², Σ_{i<j}‖w_j P r_i − w_i P r_j‖² and Σ w_k²."""
    bits = prob.bits
    n, d = len(prob.B), len(prob.P)
    total, xs, ws = FI(0, 0), [], []
    for i in range(n):
        rho = FI.of(*_corners(_rho, prob.B[i], t0, t1), bits)
        ws.append(FI.of(*_corners(_w, prob.B[i], t0, t1), bits))
        pu, qu = prob.projected[i]
        bi, bo = prob.bases[i]
        x = []
        for k in range(d):
            inside = bi[k] + rho.mul(pu[k], bits)
            outside = bo[k] + rho.mul(qu[k], bits)
            total = total + outside.square(bits)
            x.append(inside)
        xs.append(x)
    pair = FI(0, 0)
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(d):
                pair = pair + (ws[j].mul(xs[i][k], bits) - ws[i].mul(xs[j][k], bits)).square(bits)
    norm = FI(0, 0)
    for w in ws:
        norm = norm + w.square(bits)
    return total, pair, norm


def leaf_lower_bound(prob: Problem, t0: Fraction, t1: Fraction) -> Fraction:
    """A rational lower bound of F on [t0, t1] (exact, deterministic fixed-point intervals)."""
    total, pair, norm = _enclose_F(prob, t0, t1)
    lower = Fraction(max(total.lo, 0), 1 << prob.bits)
    if pair.lo > 0:
        lower += Fraction(pair.lo, norm.hi)
    return lower


def point_upper_bound(prob: Problem, t: Fraction) -> Fraction:
    """A rational upper bound of F(t) (used only to steer and stop the search)."""
    total, pair, norm = _enclose_F(prob, t, t)
    return Fraction(total.hi, 1 << prob.bits) + Fraction(max(pair.hi, 0), max(norm.lo, 1))


def branch_and_bound(prob: Problem, max_leaves: int = MAX_LEAVES, tol: Fraction = TOLERANCE) -> tuple[list[Fraction], list[Fraction]]:
    """Best-first bisection of [0, 1]; returns (breakpoints 0 = b_0 < … < b_n = 1, lower bound
    of F on each [b_k, b_{k+1}]). Stops when the least leaf bound is within ``tol`` (relative)
    plus ABSOLUTE of the best point value, when the least leaf is NARROWEST wide, or when
    ``max_leaves`` leaves exist."""
    best = min(point_upper_bound(prob, t) for t in (Fraction(0), Fraction(1, 2), Fraction(1)))
    heap = [(leaf_lower_bound(prob, Fraction(0), Fraction(1)), Fraction(0), Fraction(1))]
    while len(heap) < max_leaves:
        low, t0, t1 = heap[0]
        if low >= best - tol * best - ABSOLUTE or t1 - t0 <= NARROWEST:
            break
        heapq.heappop(heap)
        mid = (t0 + t1) / 2
        best = min(best, point_upper_bound(prob, mid))
        heapq.heappush(heap, (leaf_lower_bound(prob, t0, mid), t0, mid))
        heapq.heappush(heap, (leaf_lower_bound(prob, mid, t1), mid, t1))
    leaves = sorted((t0, t1, low) for low, t0, t1 in heap)
    return [leaves[0][0]] + [t1 for _, t1, _ in leaves], [low for _, _, low in leaves]


# ----------------------------------------------------------------------------- the setting


def enclose(x: ExpFrac | ExpPoly, bits: int) -> tuple[Fraction, Fraction]:
    """Rational lo ≤ x ≤ hi from a ball at 2·bits bits (dyadic end points). The working
    precision is set around the whole evaluation, so that the division inside
    ``ExpFrac.ball`` is carried out at 2·bits bits too."""
    with interval.precision(2 * bits):
        ball = x.ball(2 * bits)
    return interval.lower(ball), interval.upper(ball)


def check_enclosure(x: ExpFrac, lo: Fraction, hi: Fraction) -> bool:
    """Exact: lo ≤ x ≤ hi (signs of exp-polynomial differences, decided exactly)."""
    return (x - lo).sign() >= 0 and (ExpFrac(hi) - x).sign() >= 0


def shared_query(model: Model, dataset: Dataset) -> tuple[Optional[Vector], list[tuple[int, int]]]:
    """(q, constrained (example, position) pairs) when every constrained position's encoded
    token is the same q; (None, pairs) otherwise."""
    pairs = [(e, i) for e, ex in enumerate(dataset.examples) for i in ex.constrained()]
    tokens = {tokens_with_positions(model, dataset.examples[e].input)[i] for e, i in pairs}
    return (next(iter(tokens)) if len(tokens) == 1 else None), pairs


def reference(B_enc: Sequence[tuple[Fraction, Fraction]]) -> Fraction:
    """B_ref: the lower enclosure of B_1 rounded down to 12 significant digits (> 0)."""
    return round_down(B_enc[0][0], 12)


def enclosures(model: Model, dataset: Dataset, pairs, bits: int):
    """Rational enclosures of every B_i and u_i (from balls at 2·bits bits)."""
    Bs, us = [], []
    for e, i in pairs:
        part = decompose(model, (), dataset.examples[e].input, position=i)
        Bs.append(enclose(part.B, bits))
        us.append(tuple(enclose(x, bits) for x in part.u))
    return Bs, us


def problem(model: Model, zs: Sequence[Vector], q: Vector, bits: int, B_enc, u_enc, B_ref: Fraction) -> Problem:
    """The rational data of F from the enclosures of B_i and u_i and the scale B_ref."""
    V = value_matrix(model.layers[0].heads[0])
    basis = linalg.column_basis(V)
    d = model.d
    P = linalg.projector(basis, d)
    base_in, base_out = [], []
    for z in zs:
        diff = tuple(a - b for a, b in zip(q, z))
        inside = linalg.matvec(P, diff)
        base_in.append(inside)
        base_out.append(tuple(a - b for a, b in zip(diff, inside)))
    betas = tuple((lo / B_ref, hi / B_ref) for lo, hi in B_enc)
    return Problem(tuple(base_in), tuple(base_out), betas, tuple(tuple(u) for u in u_enc), P, bits)


def loss_floor(model: Model, dataset: Dataset, max_leaves: Optional[int] = None, bits: int = BITS) -> LossFloor:
    """THEORY §5's certified floor for (model, dataset); 0 with a reason outside its hypotheses.

    ``max_leaves`` defaults to MAX_LEAVES, reduced for large datasets to stay within WORK.
    """
    from promptlimits.proofs.norms import layer_norm_bounds, norm_bound_to_json
    from promptlimits.proofs.preimage import preimages

    method = "THEORY §5: (1 − L)² · rigorous branch-and-bound over a = t/(1 − t)"
    if len(model.layers) != 1 or not model.is_exact:
        return LossFloor(Fraction(0), "none", "the floor covers one ReLU layer without layer norm, "
                         "attention biases or an irrational score scale")
    layer = model.layers[0]
    if len(layer.heads) != 1:
        return LossFloor(Fraction(0), "none", "the floor covers one attention head")
    q, pairs = shared_query(model, dataset)
    if not pairs:
        return LossFloor(Fraction(0), "none", "no constrained position")
    if q is None:
        return LossFloor(Fraction(0), "none", "the constrained positions do not share one query token")
    n1, n2 = layer_norm_bounds(layer)
    L = n1.c * n2.c
    if L >= 1:
        return LossFloor(Fraction(0), "none", f"Lip(g) is not certified below 1 (‖W1‖‖W2‖ ≤ {float(L):.6g})")
    zs = []
    for e, i in pairs:  # f is a bijection (L < 1): one exact preimage is the preimage
        found = preimages(layer, dataset.examples[e].target[i], limit=2, allow_smt=False).points
        if len(found) != 1:
            return LossFloor(Fraction(0), "none", "the exact preimage of a target was not found")
        zs.append(found[0])
    B_enc, u_enc = enclosures(model, dataset, pairs, bits)
    if any(lo <= 0 for lo, _ in B_enc) or reference(B_enc) <= 0:
        return LossFloor(Fraction(0), "none", "a softmax denominator B_i is too small to enclose away from 0")
    B_ref = reference(B_enc)
    prob = problem(model, zs, q, bits, B_enc, u_enc, B_ref)
    if max_leaves is None:
        n, d = len(pairs), model.d
        max_leaves = min(MAX_LEAVES, max(32, WORK // ((n * n + n) * d)))
    breaks, lows = branch_and_bound(prob, max_leaves)
    inner = min(lows)
    value = round_down((1 - L) ** 2 * inner, DIGITS)
    evidence = {
        "norm_W1": norm_bound_to_json(n1),
        "norm_W2": norm_bound_to_json(n2),
        "query": [_s(x) for x in q],
        "positions": [[e, i] for e, i in pairs],
        "z": [[_s(x) for x in z] for z in zs],
        "bits": bits,
        "B_enclosures": [[_s(lo), _s(hi)] for lo, hi in B_enc],
        "B_reference": _s(B_ref),
        "u_enclosures": [[[_s(lo), _s(hi)] for lo, hi in u] for u in prob.u],
        "breakpoints": [_s(t) for t in breaks],
        "leaf_lower_bounds": [_s(x) for x in lows],
        "inner_minimum": _s(inner),
        "lipschitz": _s(L),
        "floor": _s(value),
    }
    reason = "" if value > 0 else "the relaxed problem reaches 0 (targets consistent with some (a, v))"
    return LossFloor(value, method, reason, evidence)


def round_down(x: Fraction, digits: int = 20) -> Fraction:
    """The largest number with ``digits`` significant decimal digits that is ≤ x (0 for x ≤ 0)."""
    if x <= 0:
        return Fraction(0)
    exponent = len(str(x.numerator)) - len(str(x.denominator))
    while Fraction(10) ** exponent > x:
        exponent -= 1
    unit = Fraction(10) ** (exponent - digits + 1)
    return (x / unit).__floor__() * unit


def _s(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
