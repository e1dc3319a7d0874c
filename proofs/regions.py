"""The activation regions of a residual ReLU block f(x) = x + W2 ReLU(W1 x + b1) + b2.

f is affine on every region of the arrangement of the distinct hyperplanes
H_h = {x : a_h·x + β_h = 0} spanned by the hidden units (THEORY §7). Units with a zero row
of W1 are constant (folded into the bias); units with a zero column of W2 do not change f
and are dropped; units whose (row, bias) are proportional share one hyperplane (with an
orientation ±1). A region is named by its sign vector, an int bitmask: bit h set iff
a_h·x + β_h > 0 on it. On that region f(x) = M x + c with M = I + W2 D W1, c = b2 + W2 D b1,
D the activation pattern the signs determine.

Everything here is exact (Fractions, python-flint) and imports no SMT solver, so that the
certificate checker can use it. ``region_count`` is Zaslavsky's theorem: the number of
regions is Σ_X |μ(X)| over the flats X (non-empty intersections) of the arrangement; in
strong general position (every min(d, H) normals independent, no d + 1 hyperplanes through
one point) this is Σ_{i ≤ d} C(H, i). ``general_position_regions`` lists every region of a
strongly general arrangement with an exact interior point, without any LP: every region's
closure has a vertex (or a minimal flat) and near it every sign combination of the d
hyperplanes through it is realised.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction
from typing import Optional, Sequence

import flint

from promptlimits.constructions.spec import Layer
from promptlimits.proofs.linalg import from_flint, solve, to_flint

Vector = tuple[Fraction, ...]


class Budget(Exception):
    """A size or time limit was reached; the message says which (the verdict is unknown)."""


@dataclass(frozen=True)
class Deadline:
    """A wall-clock deadline (None: no limit); ``check`` raises Budget once it passed."""

    at: Optional[float]

    @staticmethod
    def after(seconds: Optional[float]) -> "Deadline":
        return Deadline(None if seconds is None else time.monotonic() + seconds)

    def left(self) -> Optional[float]:
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def check(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise Budget("timeout")


@dataclass(frozen=True)
class Block:
    """The residual ReLU block f(x) = x + W2 ReLU(W1 x + b1) + b2 of one layer."""

    W1: tuple[Vector, ...]
    b1: Vector
    W2: tuple[Vector, ...]
    b2: Vector

    @staticmethod
    def of(layer: Layer) -> "Block":
        return Block(layer.W1, layer.b1, layer.W2, layer.b2)

    @property
    def d(self) -> int:
        return len(self.b2)

    @property
    def r(self) -> int:
        return len(self.b1)

    def __call__(self, x: Sequence[Fraction]) -> Vector:
        """f(x), exactly."""
        hidden = []
        for row, bias in zip(self.W1, self.b1):
            pre = bias + sum((w * v for w, v in zip(row, x)), Fraction(0))
            hidden.append(pre if pre > 0 else Fraction(0))
        return tuple(
            Fraction(xk) + bk + sum((w * h for w, h in zip(row, hidden) if h), Fraction(0))
            for xk, row, bk in zip(x, self.W2, self.b2)
        )


@dataclass(frozen=True)
class Arrangement:
    """The distinct hyperplanes a_h·x + β_h = 0 of a block and how units sit on them.

    ``unit_plane[j]`` is the hyperplane of unit j (None: constant or dropped unit) and
    ``unit_orient[j]`` = ±1 with W1[j]·x + b1[j] = unit_scale[j]·orient·(a_h·x + β_h),
    unit_scale > 0. ``constant_active[j]`` is True for a constant unit with b1[j] > 0.
    """

    normals: tuple[Vector, ...]
    offsets: Vector
    unit_plane: tuple[Optional[int], ...]
    unit_orient: tuple[int, ...]
    constant_active: tuple[bool, ...]

    @property
    def size(self) -> int:
        return len(self.normals)

    @cached_property
    def _flint(self) -> tuple[flint.fmpq_mat, list[flint.fmpq]]:
        return to_flint([list(a) for a in self.normals]), [flint.fmpq(b.numerator, b.denominator) for b in self.offsets]

    def _values(self, x: Sequence[Fraction]) -> list[flint.fmpq]:
        if not self.normals:
            return []
        a, beta = self._flint
        prod = a * to_flint([[v] for v in x])
        return [prod[h, 0] + beta[h] for h in range(len(beta))]

    def values(self, x: Sequence[Fraction]) -> Vector:
        """(a_h·x + β_h)_h, exactly."""
        return tuple(Fraction(int(v.p), int(v.q)) for v in self._values(x))

    def mask(self, x: Sequence[Fraction]) -> Optional[int]:
        """The sign vector of x, or None when x lies on some hyperplane."""
        m = 0
        for h, v in enumerate(self._values(x)):
            if v == 0:
                return None
            if v > 0:
                m |= 1 << h
        return m

    def active(self, mask: int) -> tuple[bool, ...]:
        """The activation pattern (unit j active, i.e. pre-activation > 0) on region ``mask``."""
        out = []
        for plane, orient, const in zip(self.unit_plane, self.unit_orient, self.constant_active):
            if plane is None:
                out.append(const)
            else:
                out.append((orient > 0) == bool(mask >> plane & 1))
        return tuple(out)


def arrangement(block: Block) -> Arrangement:
    """The arrangement of ``block``'s hidden units (see the class docstring)."""
    planes: dict[tuple[Fraction, ...], int] = {}
    normals: list[Vector] = []
    offsets: list[Fraction] = []
    unit_plane: list[Optional[int]] = []
    unit_orient: list[int] = []
    constant: list[bool] = []
    for j, (row, bias) in enumerate(zip(block.W1, block.b1)):
        out_zero = all(block.W2[k][j] == 0 for k in range(block.d))
        lead = next((w for w in row if w != 0), None)
        if lead is None or out_zero:
            unit_plane.append(None)
            unit_orient.append(0)
            constant.append(lead is None and bias > 0 and not out_zero)
            continue
        key = tuple(w / lead for w in row) + (bias / lead,)  # leading normal entry = 1
        if key not in planes:
            planes[key] = len(normals)
            normals.append(key[:-1])
            offsets.append(key[-1])
        unit_plane.append(planes[key])
        unit_orient.append(1 if lead > 0 else -1)
        constant.append(False)
    return Arrangement(tuple(normals), tuple(offsets), tuple(unit_plane), tuple(unit_orient), tuple(constant))


def column_vector(z: flint.fmpq_mat) -> Vector:
    """The Fractions of a d×1 flint matrix."""
    return tuple(Fraction(int(z[i, 0].p), int(z[i, 0].q)) for i in range(z.nrows()))


def violates(mask: int, h: int, value: object) -> bool:
    """True when the value a_h·z + β_h strictly violates region ``mask``'s sign at h."""
    return value < 0 if mask >> h & 1 else value > 0  # type: ignore[operator]


class Pieces:
    """The affine pieces f(x) = M x + c of a block, computed exactly with python-flint."""

    def __init__(self, block: Block, arr: Arrangement):
        self.block = block
        self.arr = arr
        self.d = block.d
        self._w1 = [[flint.fmpq(w.numerator, w.denominator) for w in row] for row in block.W1]
        self._w2cols = [[flint.fmpq(block.W2[k][j].numerator, block.W2[k][j].denominator) for k in range(block.d)]
                        for j in range(block.r)]
        self._b1 = [flint.fmpq(b.numerator, b.denominator) for b in block.b1]
        self._b2 = [flint.fmpq(b.numerator, b.denominator) for b in block.b2]
        self._dets: dict[int, Fraction] = {}
        self._pieces: dict[int, tuple[flint.fmpq_mat, flint.fmpq_mat]] = {}
        self._normals = to_flint([list(a) for a in arr.normals]) if arr.size else None
        self._offsets = [flint.fmpq(b.numerator, b.denominator) for b in arr.offsets]

    def piece(self, mask: int) -> tuple[flint.fmpq_mat, flint.fmpq_mat]:
        """(M, c) as flint matrices (d×d and d×1) on region ``mask`` (cached)."""
        if mask not in self._pieces:
            self._pieces[mask] = self._piece(mask)
        return self._pieces[mask]

    def _piece(self, mask: int) -> tuple[flint.fmpq_mat, flint.fmpq_mat]:
        act = [j for j, a in enumerate(self.arr.active(mask)) if a]
        d = self.d
        eye = flint.fmpq_mat(d, d, [flint.fmpq(int(i == k)) for i in range(d) for k in range(d)])
        c = flint.fmpq_mat(d, 1, self._b2)
        if not act:
            return eye, c
        w2 = flint.fmpq_mat(d, len(act), [self._w2cols[j][k] for k in range(d) for j in act])
        w1 = flint.fmpq_mat(len(act), d, [x for j in act for x in self._w1[j]])
        b1 = flint.fmpq_mat(len(act), 1, [self._b1[j] for j in act])
        return eye + w2 * w1, c + w2 * b1

    def det(self, mask: int) -> Fraction:
        """det(I + W2 D W1) on region ``mask`` (cached)."""
        if mask not in self._dets:
            v = self.piece(mask)[0].det()
            self._dets[mask] = Fraction(int(v.p), int(v.q))
        return self._dets[mask]

    def solution_values(self, mask: int, y: Sequence[Fraction]) -> tuple[flint.fmpq_mat, list[flint.fmpq]]:
        """The solution z (a d×1 flint matrix) of M z + c = y on region ``mask``'s piece (M
        invertible) and the values a_h·z + β_h of every hyperplane there (exact)."""
        m, c = self.piece(mask)
        z = m.solve(to_flint([[v] for v in y]) - c)
        if self._normals is None:
            return z, []
        prod = self._normals * z
        return z, [prod[h, 0] + self._offsets[h] for h in range(self.arr.size)]

    def classify(self, mask: int, y: Sequence[Fraction]) -> tuple[str, int, Optional[Vector]]:
        """Where the solution z of M z + c = y (region ``mask``'s piece) lies: ("inside", −1,
        z) strictly inside the region; ("outside", h, None) when it strictly violates the
        region's inequality for hyperplane h (the first such h); ("boundary", −1, None) when
        it lies in the region's closure on some hyperplane."""
        z, vals = self.solution_values(mask, y)
        on_plane = False
        for h, v in enumerate(vals):
            if v == 0:
                on_plane = True
            elif violates(mask, h, v):
                return "outside", h, None
        if on_plane:
            return "boundary", -1, None
        return "inside", -1, column_vector(z)

    def matrix(self, mask: int) -> tuple[tuple[Fraction, ...], ...]:
        return from_flint(self.piece(mask)[0])


# ----------------------------------------------------------------------------- counting (Zaslavsky)


def _rank(rows: Sequence[Sequence[Fraction]]) -> int:
    return to_flint(rows).rank() if rows else 0


def binomial_count(h: int, d: int) -> int:
    """Σ_{i ≤ d} C(h, i): the number of regions of h hyperplanes in strong general position."""
    return sum(math.comb(h, i) for i in range(min(d, h) + 1))


def strong_general_position(arr: Arrangement, d: int, deadline: Deadline = Deadline(None)) -> bool:
    """Every min(d, H) normals are linearly independent and (H > d) every d + 1 hyperplanes
    have empty intersection, i.e. det [a_T | β_T] ≠ 0 for every (d + 1)-subset T (exact)."""
    n = arr.size
    normals = [list(v) for v in arr.normals]
    if n <= d:
        return _rank(normals) == n
    ints = [_integer_row(list(a) + [b]) for a, b in zip(arr.normals, arr.offsets)]
    for k, t in enumerate(itertools.combinations(range(n), d)):
        if k % 256 == 0:
            deadline.check()
        if flint.fmpz_mat([ints[h][:d] for h in t]).det() == 0:
            return False
    for k, t in enumerate(itertools.combinations(range(n), d + 1)):
        if k % 256 == 0:
            deadline.check()
        if flint.fmpz_mat([ints[h] for h in t]).det() == 0:
            return False
    return True


def _integer_row(row: Sequence[Fraction]) -> list[int]:
    """The row times the lcm of its denominators (same hyperplane, integer entries)."""
    den = 1
    for x in row:
        den = den * x.denominator // math.gcd(den, x.denominator)
    return [int(x * den) for x in row]


def _degenerate_sample(arr: Arrangement, d: int, samples: int = 200) -> bool:
    """True when some of ``samples`` random d- or (d+1)-subsets (fixed seed) breaks strong
    general position. Only steers effort: a False answer leads to "unknown", never a verdict."""
    import random

    n = arr.size
    if n <= d:
        return True
    rng = random.Random(0)
    ints = [_integer_row(list(a) + [b]) for a, b in zip(arr.normals, arr.offsets)]
    for _ in range(samples):
        t = rng.sample(range(n), d)
        if flint.fmpz_mat([ints[h][:d] for h in t]).det() == 0:
            return True
        t = rng.sample(range(n), d + 1)
        if flint.fmpz_mat([ints[h] for h in t]).det() == 0:
            return True
    return False


def flats_count(arr: Arrangement, d: int, limit: int, deadline: Deadline = Deadline(None)) -> int:
    """Zaslavsky's count Σ_X |μ(R^d, X)| over all flats X, by enumerating the intersection
    poset exactly (flats named by their closure: the set of hyperplanes containing them).
    Raises Budget when there are more than ``limit`` flats."""
    n = arr.size
    aug = [list(a) + [b] for a, b in zip(arr.normals, arr.offsets)]
    flats: dict[int, int] = {0: 0}  # closure bitmask -> rank
    frontier = [0]
    while frontier:
        new = []
        for closure in frontier:
            members = [h for h in range(n) if closure >> h & 1]
            for h in range(n):
                if closure >> h & 1:
                    continue
                deadline.check()
                rows = [aug[i] for i in members] + [aug[h]]
                normal_rank = _rank([r[:-1] for r in rows])
                if _rank(rows) > normal_rank:
                    continue  # empty intersection
                cl = 0
                for g in range(n):
                    if _rank(rows + [aug[g]]) == _rank(rows):
                        cl |= 1 << g
                if cl not in flats:
                    flats[cl] = normal_rank
                    new.append(cl)
                    if len(flats) > limit:
                        raise Budget(f"more than {limit} flats in the intersection poset")
        frontier = new
    order = sorted(flats, key=lambda c: flats[c])
    mu: dict[int, int] = {}
    for c in order:
        if c == 0:
            mu[c] = 1
            continue
        mu[c] = -sum(mu[b] for b in order if flats[b] < flats[c] and b & c == b)
    return sum(abs(v) for v in mu.values())


def region_count(arr: Arrangement, d: int, limit: int, deadline: Deadline = Deadline(None)) -> tuple[int, bool]:
    """(number of regions, strong general position?) by Zaslavsky's theorem, exactly.

    Raises Budget when the count would exceed ``limit`` (checked first from the
    general-position bound Σ C(H, i), which no arrangement of H hyperplanes exceeds)."""
    upper = binomial_count(arr.size, d)
    if upper > 8 * limit and not _degenerate_sample(arr, d):
        raise Budget(f"about {upper} regions (limit {limit}): sampled subsets are in general position")
    if upper <= 8 * limit and strong_general_position(arr, d, deadline):
        if upper > limit:
            raise Budget(f"{upper} regions (limit {limit})")
        return upper, True
    count = flats_count(arr, d, 4 * limit, deadline)
    if count > limit:
        raise Budget(f"{count} regions (limit {limit})")
    return count, False


# ----------------------------------------------------------------------------- listing regions


def general_position_regions(arr: Arrangement, d: int, deadline: Deadline = Deadline(None)) -> dict[int, Vector]:
    """Every region of a strongly general arrangement with an exact interior point.

    H ≤ d: the normals are independent, so for every sign vector s the point solving
    a_h·p + β_h = s_h is interior. H > d: every region's closure is pointed (rank d) and so
    has a vertex v = H_T (|T| = d); v lies on no other hyperplane, and p = v + ε·δ with
    A_T δ = s and ε·|a_h·δ| < |a_h·v + β_h| (h ∉ T) is interior to the region with signs s
    on T and the signs at v elsewhere.
    """
    n = arr.size
    found: dict[int, Vector] = {}
    if n == 0:
        return {0: (Fraction(0),) * d}
    if n <= d:
        for signs in itertools.product((1, -1), repeat=n):
            rows = [list(a) for a in arr.normals]
            rhs = [Fraction(s) - b for s, b in zip(signs, arr.offsets)]
            p = _solve(rows, rhs)
            found[_mask_of(signs, range(n))] = p
        return found
    a_all = to_flint([list(a) for a in arr.normals])
    beta = [flint.fmpq(b.numerator, b.denominator) for b in arr.offsets]
    sign_rows = list(itertools.product((1, -1), repeat=d))
    s_mat = flint.fmpq_mat(d, len(sign_rows), [flint.fmpq(row[i]) for i in range(d) for row in sign_rows])
    half = flint.fmpq(1, 2)
    one = flint.fmpq(1)
    for k, t in enumerate(itertools.combinations(range(n), d)):
        if k % 64 == 0:
            deadline.check()
        tset = set(t)
        inv = flint.fmpq_mat(d, d, [a_all[h, i] for h in t for i in range(d)]).inv()
        v = inv * flint.fmpq_mat(d, 1, [-beta[h] for h in t])
        vals = a_all * v
        val = [vals[h, 0] + beta[h] for h in range(n)]
        base = 0
        for h in range(n):
            if h not in tset and val[h] > 0:
                base |= 1 << h
        others = [h for h in range(n) if h not in tset]
        deltas = None
        slopes = None
        for col, signs in enumerate(sign_rows):
            m = base | _mask_of(signs, t)
            if m in found:
                continue
            if deltas is None:
                deltas = inv * s_mat  # column col: δ with A_T δ = signs
                slopes = a_all * deltas  # entry (h, col): a_h·δ
            eps = one
            for h in others:
                slope = abs(slopes[h, col])
                if slope != 0:
                    bound = abs(val[h]) * half / slope
                    if bound < eps:
                        eps = bound
            found[m] = tuple(_frac(v[i, 0] + eps * deltas[i, col]) for i in range(d))
    return found


def _frac(x: flint.fmpq) -> Fraction:
    return Fraction(int(x.p), int(x.q))


def _mask_of(signs: Sequence[int], planes: Sequence[int]) -> int:
    m = 0
    for s, h in zip(signs, planes):
        if s > 0:
            m |= 1 << h
    return m


def _solve(rows: list[list[Fraction]], rhs: list[Fraction]) -> Vector:
    x = solve(rows, rhs)
    if x is None:
        raise ArithmeticError("independent normals gave an inconsistent system")
    return x
