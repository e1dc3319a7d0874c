"""The reference evaluator: a plain, exact implementation of THEORY §0 beside the torch twin.

``layer_exact`` evaluates one ReLU layer on [P, X] with rational prompt and input exactly:
every output coordinate is N_k / D with exp-polynomials N_k, D and D > 0 (D is a product
of softmax denominators), so ReLU signs are decided exactly. Deeper layers would put
exp-polynomials inside exponents, which leaves that field; ``stack_balls`` therefore
evaluates any stack (ReLU or GELU, with or without layer norm, attention biases and an
irrational score scale κ = √r) in rigorous ball arithmetic at a requested precision instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import flint

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.spec import Head, Layer, Matrix, Model, Vector
from promptlimits.constructions.surd import Surd, require_rational
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly
from promptlimits.proofs.interval import Ball, precision


# ----------------------------------------------------------------------------- rational algebra


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """Exact product of rational matrices given as row tuples (python-flint for large ones)."""
    if len(a) * len(b) * (len(b[0]) if b else 0) > 4096:
        from promptlimits.proofs.linalg import matmul as flint_matmul

        return flint_matmul(a, b)
    cols = tuple(zip(*b))
    return tuple(tuple(sum((x * y for x, y in zip(row, col)), Fraction(0)) for col in cols) for row in a)


def transpose(a: Matrix) -> Matrix:
    return tuple(zip(*a))


def matvec(a: Matrix, x: Sequence[Fraction]) -> Vector:
    """Exact A·x."""
    return tuple(sum((w * v for w, v in zip(row, x)), Fraction(0)) for row in a)


def dot(x: Sequence[Fraction], y: Sequence[Fraction]) -> Fraction:
    return sum((a * b for a, b in zip(x, y)), Fraction(0))


def add(x: Sequence[Fraction], y: Sequence[Fraction]) -> Vector:
    return tuple(a + b for a, b in zip(x, y))


def _bias_free(head: Head) -> None:
    if head.has_bias:
        raise InputError("model: exact procedures need attention heads without biases")


def score_matrix(head: Head, scale: Fraction) -> Matrix:
    """M = κ·W_kᵀ W_q, so that key c scores cᵀ M x against query x (κ rational, no biases)."""
    scale = require_rational(scale)
    _bias_free(head)
    m = matmul(transpose(head.W_k), head.W_q)
    return tuple(tuple(scale * x for x in row) for row in m)


def value_matrix(head: Head) -> Matrix:
    """V = W_o W_v, the value map c ↦ V c (heads without biases)."""
    _bias_free(head)
    return matmul(head.W_o, head.W_v)


# ----------------------------------------------------------------------------- exact vectors


@dataclass(frozen=True)
class ExpVector:
    """A vector (N_1/D, …, N_d/D) of exp-polynomials over one common denominator D > 0."""

    nums: tuple[ExpPoly, ...]
    den: ExpPoly

    @classmethod
    def rational(cls, x: Sequence[Fraction]) -> "ExpVector":
        return cls(tuple(ExpPoly.const(v) for v in x), ExpPoly.const(1))

    def entries(self) -> tuple[ExpFrac, ...]:
        """The coordinates as exact quotients."""
        return tuple(ExpFrac(n, self.den) for n in self.nums)

    def balls(self, bits: int) -> tuple[Ball, ...]:
        return tuple(e.ball(bits) for e in self.entries())

    def floats(self) -> tuple[float, ...]:
        return tuple(float(e) for e in self.entries())

    def equals(self, y: Sequence[Fraction]) -> bool:
        """Exact test of equality with a rational vector: N_k − y_k·D = 0 for every k."""
        return all((n - self.den * yk).is_zero() for n, yk in zip(self.nums, y))


# ----------------------------------------------------------------------------- one layer exactly


def tokens_with_positions(model: Model, X: Sequence[Vector]) -> tuple[Vector, ...]:
    """Input tokens with positional encodings added (prompt tokens never get encodings)."""
    if model.positional is None:
        return tuple(tuple(x) for x in X)
    if len(X) > len(model.positional):
        raise InputError(f"input has {len(X)} positions but positional encodings cover {len(model.positional)}")
    return tuple(add(x, p) for x, p in zip(X, model.positional))


def context(model: Model, m: int, i: int, n: int) -> range:
    """Indices in [P, X] (prompt first) that input position i attends to."""
    return range(m + n) if model.attention == "bidirectional" else range(m + i + 1)


def head_output_exact(
    model: Model, head: Head, seq: Sequence[Vector], query_index: int, ctx: range,
    M: Optional[Matrix] = None, V: Optional[Matrix] = None,
) -> ExpVector:
    """One head's output Σ_c softmax_c(cᵀMq)·V c at one query, exactly."""
    M = score_matrix(head, model.score_scale) if M is None else M
    V = value_matrix(head) if V is None else V
    g = matvec(M, seq[query_index])
    den = ExpPoly()
    nums = [ExpPoly() for _ in range(model.d)]
    for c in ctx:
        s = dot(seq[c], g)
        w = ExpPoly.exp(s)
        den = den + w
        for k, vk in enumerate(matvec(V, seq[c])):
            if vk:
                nums[k] = nums[k] + w * vk
    return ExpVector(tuple(nums), den)


def hidden_exact(layer: Layer, a: ExpVector) -> tuple[ExpPoly, ...]:
    """D·ReLU(W1 a + b1): the hidden units' numerators over a's denominator D > 0, each
    ReLU sign decided exactly."""
    hidden = []
    for row, bias in zip(layer.W1, layer.b1):
        pre = a.den * bias
        for w, n in zip(row, a.nums):
            if w:
                pre = pre + n * w
        hidden.append(pre if pre.sign() > 0 else ExpPoly())
    return tuple(hidden)


def feed_forward_exact(layer: Layer, a: ExpVector) -> ExpVector:
    """f(a) = a + W2 ReLU(W1 a + b1) + b2 with exact ReLU signs (D > 0)."""
    if not layer.is_exact_relu:
        raise InputError("exact evaluation needs a ReLU layer without layer norm")
    hidden = hidden_exact(layer, a)
    out = []
    for k, (row, bias) in enumerate(zip(layer.W2, layer.b2)):
        acc = a.nums[k] + a.den * bias
        for w, h in zip(row, hidden):
            if w and not h.is_zero():
                acc = acc + h * w
        out.append(acc)
    return ExpVector(tuple(out), a.den)


def attention_exact(model: Model, layer: Layer, seq: Sequence[Vector], m: int, i: int) -> ExpVector:
    """a_i = x_i + Σ_h head_h(x_i) over a common denominator Π_h D_h."""
    n = len(seq) - m
    q = seq[m + i]
    heads = [head_output_exact(model, h, seq, m + i, context(model, m, i, n)) for h in layer.heads]
    den = ExpPoly.const(1)
    for h in heads:
        den = den * h.den
    nums = []
    for k in range(model.d):
        acc = den * q[k]
        for j, h in enumerate(heads):
            others = ExpPoly.const(1)
            for jj, hh in enumerate(heads):
                if jj != j:
                    others = others * hh.den
            acc = acc + h.nums[k] * others
        nums.append(acc)
    return ExpVector(tuple(nums), den)


def layer_exact(
    model: Model, prompt: Sequence[Vector], X: Sequence[Vector], layer_index: int = 0,
    positions: Optional[Sequence[int]] = None,
) -> tuple[ExpVector, ...]:
    """Exact outputs τ_P(X)_i of one ReLU layer at the input positions (all, or ``positions``).

    Positional encodings are added only when ``layer_index == 0`` (they enter once).
    """
    layer = model.layers[layer_index]
    xs = tokens_with_positions(model, X) if layer_index == 0 else tuple(map(tuple, X))
    seq = tuple(tuple(p) for p in prompt) + xs
    m = len(prompt)
    wanted = range(len(xs)) if positions is None else positions
    return tuple(feed_forward_exact(layer, attention_exact(model, layer, seq, m, i)) for i in wanted)


def model_exact(model: Model, prompt: Sequence[Vector], X: Sequence[Vector]) -> tuple[ExpVector, ...]:
    """Exact outputs of a one-layer ReLU model; deeper models are not in the exp-poly field."""
    if len(model.layers) != 1:
        raise InputError(
            f"exact evaluation covers one layer; this model has {len(model.layers)} (use intervals)"
        )
    return layer_exact(model, prompt, X)


# ----------------------------------------------------------------------------- any stack, rigorously


def _ball(x: Fraction) -> Ball:
    return flint.arb(flint.fmpq(x.numerator, x.denominator))


#: Weight matrices already converted to balls, by (matrix identity, precision); a model's
#: weights are converted once per precision, not once per example or per evaluation. The
#: cache is emptied when it would hold more than _ARB_CACHE_ENTRIES balls (~1 GB at 128 bits).
_ARB_CACHE: dict[tuple[int, int], tuple[Matrix, flint.arb_mat]] = {}
_ARB_CACHE_ENTRIES = 16 * 1024 * 1024


def _arb_mat(a: Matrix) -> flint.arb_mat:
    """The rational matrix as arb balls at the working precision (one rounding per entry).
    The result is shared (cached): callers build new matrices from it, never write into it."""
    key = (id(a), flint.ctx.prec)
    hit = _ARB_CACHE.get(key)
    if hit is not None and hit[0] is a:
        return hit[1]
    value = flint.arb_mat([[flint.fmpq(x.numerator, x.denominator) for x in row] for row in a])
    held = sum(m.nrows() * m.ncols() for _, m in _ARB_CACHE.values())
    if held + value.nrows() * value.ncols() > _ARB_CACHE_ENTRIES:
        _ARB_CACHE.clear()
    _ARB_CACHE[key] = (a, value)
    return value


def _column(v: Optional[Vector], size: int) -> flint.arb_mat:
    """A bias as a column (zero when None)."""
    if v is None:
        return flint.arb_mat(size, 1)
    return flint.arb_mat(len(v), 1, [flint.fmpq(x.numerator, x.denominator) for x in v])


def _columns(m: flint.arb_mat) -> list[list[Ball]]:
    return [[m[i, t] for i in range(m.nrows())] for t in range(m.ncols())]


def _matrix_of(columns: list[list[Ball]]) -> flint.arb_mat:
    rows, cols = len(columns[0]), len(columns)
    return flint.arb_mat(rows, cols, [columns[t][i] for i in range(rows) for t in range(cols)])


def _plus_bias(m: flint.arb_mat, b: Optional[Vector]) -> flint.arb_mat:
    """m + b·1ᵀ (the bias added to every column)."""
    if b is None:
        return m
    col = _column(b, m.nrows())
    return m + col * flint.arb_mat(1, m.ncols(), [1] * m.ncols())


def _relu(x: Ball) -> Ball:
    if x > 0:
        return x
    if x < 0:
        return flint.arb(0)
    return x.nonnegative_part()


def _gelu(x: Ball) -> Ball:
    return x * (1 + (x / flint.arb(2).sqrt()).erf()) / 2


def _layernorm(x: list[Ball], eps: Fraction, gain: Optional[Vector], bias: Optional[Vector]) -> list[Ball]:
    d = len(x)
    mean = sum(x, flint.arb(0)) / d
    var = (sum(((v - mean) * (v - mean) for v in x), flint.arb(0)) / d).nonnegative_part()  # arb's ** is nan on balls around 0
    scale = 1 / (var + _ball(eps)).sqrt()
    out = [(v - mean) * scale for v in x]
    if gain is not None:
        out = [o * _ball(g) for o, g in zip(out, gain)]
    if bias is not None:
        out = [o + _ball(b) for o, b in zip(out, bias)]
    return out


def scale_ball(model: Model) -> Ball:
    """κ as a ball (exact for a rational κ up to one rounding, rigorous for κ = √r)."""
    k = model.score_scale
    return k.ball() if isinstance(k, Surd) else _ball(k)


def _head_weights(model: Model, head: Head, S: flint.arb_mat) -> list[list[Ball]]:
    """Attention weights per query t (over the keys of t's context, in order):
    softmax_c(κ k_cᵀ q_t) with q = W_q x + b_q, k = W_k c + b_k (S: tokens as columns)."""
    total = S.ncols()
    Q = _plus_bias(_arb_mat(head.W_q) * S, head.b_q)
    K = _plus_bias(_arb_mat(head.W_k) * S, head.b_k)
    scores = K.transpose() * Q * scale_ball(model)  # [key c, query t]
    out = []
    for t in range(total):
        limit = total if model.attention == "bidirectional" else t + 1
        column = [scores[c, t] for c in range(limit)]
        top = max((s.mid() for s in column), key=float)
        weights = [(s - top).exp() for s in column]
        den = sum(weights, flint.arb(0))
        out.append([w / den for w in weights])
    return out


def _head_balls(model: Model, head: Head, S: flint.arb_mat) -> flint.arb_mat:
    """One head at every position: column t is W_o Σ_c α_tc (W_v c + b_v), α from _head_weights."""
    Vals = _plus_bias(_arb_mat(head.W_v) * S, head.b_v)
    mixed = flint.arb_mat(Vals.nrows(), S.ncols())
    for t, weights in enumerate(_head_weights(model, head, S)):
        for i in range(Vals.nrows()):
            acc = flint.arb(0)
            for c, w in enumerate(weights):
                acc += w * Vals[i, c]
            mixed[i, t] = acc
    return _arb_mat(head.W_o) * mixed


def _layer_balls(model: Model, layer: Layer, seq: list[list[Ball]]) -> list[list[Ball]]:
    """One layer applied to every position of [P, X] (prompt positions included)."""
    S = _matrix_of(seq)
    A = S
    for head in layer.heads:
        A = A + _head_balls(model, head, S)
    A = _plus_bias(A, layer.b_o)
    a_cols = _columns(A)
    if layer.norm == "layernorm":
        a_cols = [_layernorm(a, layer.ln_eps, layer.ln1_gain, layer.ln1_bias) for a in a_cols]
    act = _relu if layer.activation == "relu" else _gelu
    H = _plus_bias(_arb_mat(layer.W1) * _matrix_of(a_cols), layer.b1)
    hidden = [[act(h) for h in col] for col in _columns(H)]
    G = _plus_bias(_arb_mat(layer.W2) * _matrix_of(hidden), layer.b2)
    out = [[ak + gk for ak, gk in zip(a, g)] for a, g in zip(a_cols, _columns(G))]
    if layer.norm == "layernorm":
        out = [_layernorm(y, layer.ln_eps, layer.ln2_gain, layer.ln2_bias) for y in out]
    return out


def stack_balls(model: Model, prompt: Sequence[Vector], X: Sequence[Vector], bits: int = 128) -> list[list[Ball]]:
    """Rigorous enclosures of every layer's composition τ_P(X) at the input positions.

    Works for any stack (ReLU/GELU, layer norm, causal or bidirectional); the prompt's own
    states are carried through the layers, as in the real model.
    """
    with precision(bits):
        xs = tokens_with_positions(model, X)
        seq = [[_ball(v) for v in tok] for tok in tuple(prompt) + xs]
        for layer in model.layers:
            seq = _layer_balls(model, layer, seq)
        return seq[len(prompt):]


def stack_attention_balls(model: Model, prompt: Sequence[Vector], X: Sequence[Vector],
                          bits: int = 128) -> list[list[list[list[Ball]]]]:
    """Rigorous enclosures of every attention weight on [P, X]: [layer][head][query t][key c]
    over all m + n positions (keys: t's context)."""
    with precision(bits):
        xs = tokens_with_positions(model, X)
        seq = [[_ball(v) for v in tok] for tok in tuple(prompt) + xs]
        out = []
        for layer in model.layers:
            S = _matrix_of(seq)
            out.append([_head_weights(model, head, S) for head in layer.heads])
            seq = _layer_balls(model, layer, seq)
        return out
