"""A rigorous bound on ‖g([P, X])_i − f(c̄)_i‖ over every grid cell minus its bands (THEORY §9).

Inputs are tokens [x_i; 0] (x_i ∈ [0,1]^d) plus the model's positional encodings, at n
positions; outputs are read from the first d coordinates. Along each coordinate, cell j of
the δ = 1/K grid minus its band is [jδ + η, (j+1)δ] (j ≥ 1) or [0, δ] (j = 0): the bands
(jδ, jδ + η), j = 1..K−1, have total measure ≤ dn(K−1)η in [0,1]^{d×n}.

The procedure decides, for any model (not only the construction), in three steps:
1. token-wise prefix, exactly: the leading layers whose heads all have V = 0 add nothing in
   attention; on a cell box every ReLU pre-activation is affine in x, so its exact rational
   range says whether it keeps one sign; if every unit does and the resulting affine map does
   not depend on x, the layer's output on the whole box is one rational vector (else: fail);
2. later layers in ball arithmetic at the n input positions, per cell, from those exact
   states; the prompt tokens' states enter as enclosures valid for every input in the good
   set (attention output lies in the coordinatewise hull of the values in context, because
   softmax weights are a convex combination, and the hull is taken over the prompt's values
   and every cell's input values), so they are computed once;
3. the output's distance to the target value f(c̄) at the cell centre, an upper bound.

For an f that is L-Lipschitz (Frobenius norms), ‖f(X)_i − f(c̄)_i‖ ≤ L·‖X − c̄‖_F ≤
L·δ·√(dn)/2 on the cell, so ‖g([P,X])_i − f(X)_i‖ ≤ (step 3's maximum) + L·δ·√(dn)/2.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import flint

from promptlimits.constructions.evaluate import score_matrix, value_matrix
from promptlimits.constructions.spec import Layer, Model, Vector
from promptlimits.proofs.interval import Ball, precision, upper


class BoundFailed(Exception):
    """The procedure could not bound the error (the reason is the message)."""


@dataclass(frozen=True)
class Grid:
    """The δ = 1/K grid on [0,1]^{d×n}, bands of width η, at input positions 0..n−1."""

    d: int
    n: int
    K: int
    eta: Fraction

    def interval(self, j: int) -> tuple[Fraction, Fraction]:
        """Cell j of one coordinate minus its band."""
        lo = Fraction(j, self.K) + (self.eta if j > 0 else 0)
        return lo, Fraction(j + 1, self.K)

    def cells(self) -> list[tuple[int, ...]]:
        """Every grid sequence (token-major index tuples, lexicographic)."""
        return list(itertools.product(range(self.K), repeat=self.d * self.n))

    def bands_measure(self) -> Fraction:
        """An upper bound dn(K−1)η on the measure of the union of the bands."""
        return self.d * self.n * (self.K - 1) * self.eta


@dataclass(frozen=True)
class CellBounds:
    """Per cell (grid order): an upper bound on max_i ‖g([P,X])_i − f(c̄)_i‖ over the cell minus its
    bands; ``quantisation`` ≥ L·δ·√(dn)/2; ``total`` = max(cells) + quantisation (all dyadic rationals)."""

    cells: tuple[Fraction, ...]
    quantisation: Fraction
    prefix_layers: int
    bits: int

    @property
    def total(self) -> Fraction:
        return max(self.cells) + self.quantisation


def _arb(x: Fraction) -> Ball:
    return flint.arb(flint.fmpq(x.numerator, x.denominator))


def _is_tokenwise(layer: Layer) -> bool:
    return layer.is_exact_relu and all(all(v == 0 for row in value_matrix(h) for v in row) for h in layer.heads)


def _sparse_rows(m: Sequence[Sequence[Fraction]]) -> list[list[tuple[int, Fraction]]]:
    return [[(j, v) for j, v in enumerate(row) if v] for row in m]


def _ffn_exact(layer: Layer, a: Vector) -> Vector:
    out = list(a)
    for u, (row, b) in enumerate(zip(layer.W1, layer.b1)):
        h = b + sum((w * x for w, x in zip(row, a) if w), Fraction(0))
        if h > 0:
            for k in range(len(out)):
                if layer.W2[k][u]:
                    out[k] += layer.W2[k][u] * h
    return tuple(o + b for o, b in zip(out, layer.b2))


def tokenwise_constant(layer: Layer, lo: Vector, hi: Vector) -> Vector:
    """The output of a token-wise ReLU layer (heads with V = 0) on the box [lo, hi], proven to be
    one rational vector: every unit keeps its sign on the box (exact ranges of affine maps) and
    the affine map of that activation pattern has zero columns on the box's varying coordinates.
    Raises BoundFailed otherwise."""
    rows = _sparse_rows(layer.W1)
    active = []
    for u, (row, b) in enumerate(zip(rows, layer.b1)):
        low = b + sum((w * (lo[j] if w > 0 else hi[j]) for j, w in row), Fraction(0))
        high = b + sum((w * (hi[j] if w > 0 else lo[j]) for j, w in row), Fraction(0))
        if low < 0 < high:
            raise BoundFailed(f"a ReLU changes sign on the box [{[str(x) for x in lo]}, {[str(x) for x in hi]}]")
        if low >= 0 and high > 0:
            active.append(u)
    for v in (j for j in range(len(lo)) if lo[j] != hi[j]):
        column = [Fraction(1) if k == v else Fraction(0) for k in range(len(lo))]
        for u in active:
            w = dict(rows[u]).get(v)
            if w:
                for k in range(len(lo)):
                    column[k] += layer.W2[k][u] * w
        if any(column):
            raise BoundFailed(f"the output of a token-wise layer depends on input coordinate {v} inside a cell")
    return _ffn_exact(layer, lo)


def _input_box(model: Model, grid: Grid, i: int, idx: Sequence[int]) -> tuple[Vector, Vector]:
    pos = model.positional[i] if model.positional is not None else (Fraction(0),) * model.d
    lo, hi = list(pos), list(pos)
    for k, j in enumerate(idx):
        a, b = grid.interval(j)
        lo[k] += a
        hi[k] += b
    return tuple(lo), tuple(hi)


def _mat(m: Sequence[Sequence[Fraction]]) -> flint.arb_mat:
    return flint.arb_mat([[_arb(x) for x in row] for row in m])


def _hull(balls: Sequence[Ball]) -> Ball:
    out = balls[0]
    for b in balls[1:]:
        out = out.union(b)
    return out


def _ffn_balls(layer: Layer, a: list[Ball], W1: flint.arb_mat, W2: flint.arb_mat) -> list[Ball]:
    pre = W1 * flint.arb_mat([[x] for x in a])
    hidden = []
    for u, b in enumerate(layer.b1):
        h = pre[u, 0] + _arb(b)
        hidden.append(h if h > 0 else flint.arb(0) if h < 0 else h.nonnegative_part())
    g = W2 * flint.arb_mat([[h] for h in hidden])
    return [a[k] + g[k, 0] + _arb(layer.b2[k]) for k in range(len(a))]


@dataclass
class _BallLayer:
    layer: Layer
    heads: list[tuple[flint.arb_mat, flint.arb_mat]]  # (M, Vᵀ) per head
    W1: flint.arb_mat
    W2: flint.arb_mat


def _attend(keys: flint.arb_mat, values: flint.arb_mat, M: flint.arb_mat, q: list[Ball]) -> list[Ball]:
    """Σ_c softmax_c(cᵀ M q)·V c for keys (rows of ``keys``) with values (rows of ``values`` = V c)."""
    scores = keys * (M * flint.arb_mat([[x] for x in q]))
    w = flint.arb_mat([[scores[c, 0].exp() for c in range(scores.nrows())]])
    total = sum((w[0, c] for c in range(w.ncols())), flint.arb(0))
    out = w * values
    return [out[0, k] / total for k in range(out.ncols())]


def bound_cells(model: Model, prompt: Sequence[Vector], grid: Grid, values: Sequence[Sequence[Vector]],
                lipschitz: Fraction, bits: int = 128) -> CellBounds:
    """Decide an upper bound on ‖g([P,X])_i − f(c̄)_i‖ (first d coordinates) on every cell minus its
    bands (see the module docstring); ``values[c]`` holds f(c̄) for cell c in grid order."""
    if model.positional is not None and len(model.positional) < grid.n:
        raise BoundFailed(f"the positional encodings cover {len(model.positional)} < n = {grid.n} positions")
    if grid.d > model.d:
        raise BoundFailed("the tokens' d exceeds the model width")
    if not model.is_exact:
        raise BoundFailed("every layer must be ReLU without layer norm (GELU or layer norm: not covered)")
    prefix = 0
    while prefix < len(model.layers) - 1 and _is_tokenwise(model.layers[prefix]):
        prefix += 1
    if prefix == 0:
        raise BoundFailed("the first layer is not token-wise (a head with V != 0, or not ReLU)")
    cells = grid.cells()
    if len(values) != len(cells):
        raise BoundFailed(f"{len(values)} target values for {len(cells)} cells")
    # 1. exact states after the token-wise prefix: per position and token cell, and for the prompt
    token_cells = list(itertools.product(range(grid.K), repeat=grid.d))
    state: dict[tuple[int, tuple[int, ...]], Vector] = {}
    for i in range(grid.n):
        for tc in token_cells:
            lo, hi = _input_box(model, grid, i, tc)
            for layer in model.layers[:prefix]:
                lo = hi = tokenwise_constant(layer, lo, hi)
            state[(i, tc)] = lo
    P = [tuple(p) for p in prompt]
    for layer in model.layers[:prefix]:
        P = [_ffn_exact(layer, p) for p in P]
    with precision(bits):
        layers = [
            _BallLayer(layer, [(_mat(score_matrix(h, model.score_scale)), _mat(value_matrix(h)).transpose())
                               for h in layer.heads], _mat(layer.W1), _mat(layer.W2))
            for layer in model.layers[prefix:]
        ]
        # 2a. prompt enclosures per later layer (every layer's keys), valid for every good input
        inputs_all = [[[_arb(x) for x in s] for s in state.values()]]
        prompt_states = [[[_arb(x) for x in p] for p in P]]
        for bl in layers[:-1]:
            cur, ins = prompt_states[-1], inputs_all[-1]
            shifts = []
            for M, Vt in bl.heads:
                vals = (flint.arb_mat(cur + ins) * Vt) if cur or ins else None
                shifts.append([_hull([vals[r, k] for r in range(vals.nrows())]) for k in range(model.d)])
            new_p = [_ffn_balls(bl.layer, [p[k] + sum((s[k] for s in shifts), flint.arb(0)) for k in range(model.d)],
                                bl.W1, bl.W2) for p in cur]
            new_i = [_ffn_balls(bl.layer, [x[k] + sum((s[k] for s in shifts), flint.arb(0)) for k in range(model.d)],
                                bl.W1, bl.W2) for x in ins]
            prompt_states.append(new_p)
            inputs_all.append(new_i)
        # 2b. every cell: the n input positions through the later layers
        bounds = []
        for c, idx in enumerate(cells):
            xs = [[_arb(x) for x in state[(i, tuple(idx[i * grid.d:(i + 1) * grid.d]))]] for i in range(grid.n)]
            for bl, ps in zip(layers, prompt_states):
                keys = flint.arb_mat(ps + xs)
                new = []
                for x_pos, x in enumerate(xs):
                    a = list(x)
                    if model.attention == "causal":
                        ctx = flint.arb_mat(ps + xs[:x_pos + 1])
                    else:
                        ctx = keys
                    for M, Vt in bl.heads:
                        for k, v in enumerate(_attend(ctx, ctx * Vt, M, x)):
                            a[k] += v
                    new.append(_ffn_balls(bl.layer, a, bl.W1, bl.W2))
                xs = new
            worst = Fraction(0)
            for i in range(grid.n):
                diff = [xs[i][k] - _arb(values[c][i][k]) for k in range(grid.d)]
                sq = sum((e * e for e in diff), flint.arb(0))  # arb's ** is nan on balls around 0
                if not sq.is_finite():
                    raise BoundFailed(f"no finite enclosure at cell {c} (raise the precision)")
                worst = max(worst, upper(sq.nonnegative_part().sqrt()))
            bounds.append(worst)
        quant = upper(_arb(lipschitz) * _arb(Fraction(grid.d * grid.n)).sqrt() / (2 * grid.K))
    return CellBounds(tuple(bounds), quant, prefix, bits)
