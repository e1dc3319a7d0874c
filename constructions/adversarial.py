"""Adversarial instances: Hypothesis strategies aimed at the edges of THEORY §1–§7.

Each family builds single-layer ReLU instances (model, dataset, prompt) whose difficulty
is known by construction, and records what is known about them:

- ``boundary``: feed-forward blocks with ‖W2‖₂·‖W1‖₂ = ρ exactly, ρ ∈ {1 − 1/k, 1, 1 + 1/k}
  (W1, W2 are scaled slices of rational orthogonal matrices from the Cayley transform);
  ρ < 1 is injective (§7, sufficient condition);
- ``flip``: f(x) = x − c·ReLU(x₁)e₁ with c > 1 (orientation −/+ across x₁ = 0), conjugated by
  a rational invertible map and translated; not injective, with a known collision;
- ``fold``: the z² map of §7 (det > 0 on every region, 2-to-1), embedded in R^d,
  conjugated and translated; not injective, with a known collision;
- ``rank_deficient``: rank V < d (V = 0 included);
- ``zero_query``: the shared query q has g = M q = 0 (Lemma 2 (c): A = m exactly);
- ``row_query``: g ∈ row(V) for every query (W_k = V, Lemma 2 (b));
- ``generated``: targets produced by a random prompt (memorizable by construction; every
  context token of the shared query scores the same, so the targets are rational);
- ``near_intersecting``: a generated-style shared-query dataset whose rays (§3) meet, with
  one target moved by ε = 10^-k; ``margin`` records ε (tests steer it with ``target``);
- ``same_output``: two different inputs with one target;
- ``near_degenerate``: a generated instance rewritten with factors 10^±k that leave the
  function unchanged (W_q·10^k with W_k·10^-k, W_o·10^-j with W_v·10^j, hidden unit scaling);

Every strategy takes a :class:`Sizes` (the ``ci`` and ``deep`` profiles are in ``SIZES``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from fractions import Fraction
from typing import Callable, Optional, Sequence

from hypothesis import assume
from hypothesis import strategies as st

from promptlimits.constructions import strategies
from promptlimits.constructions.evaluate import (
    ExpVector, feed_forward_exact, layer_exact, matvec, score_matrix, value_matrix,
)
from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Matrix, Model, Vector
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.proofs.linalg import identity, inverse, matmul

F = Fraction


@dataclass(frozen=True)
class Sizes:
    """Upper bounds on the dimensions a family draws."""

    d: int
    hidden: int
    inputs: int
    prompt: int
    examples: int
    heads: int
    exponent: int  # largest k in the factors 10^±k of near-degenerate instances


SIZES = {
    "ci": Sizes(d=3, hidden=4, inputs=3, prompt=3, examples=3, heads=2, exponent=6),
    "deep": Sizes(d=5, hidden=8, inputs=4, prompt=4, examples=4, heads=3, exponent=12),
}


@dataclass(frozen=True)
class Instance:
    """A model, a dataset and a prompt, with what the construction knows about them.

    ``expected`` lists (claim, verdict) pairs that hold by construction (e.g. ("invertible",
    "not-injective")); ``collision`` is a known x ≠ x' with f(x) = f(x') for the layer's
    feed-forward block; ``margin`` is how far the construction was pushed from a boundary.
    """

    family: str
    model: Model
    dataset: Dataset
    prompt: tuple[Vector, ...]
    expected: tuple[tuple[str, str], ...] = ()
    collision: Optional[tuple[Vector, Vector]] = None
    margin: Optional[Fraction] = None

    def expects(self, claim: str) -> Optional[str]:
        """The verdict known by construction for ``claim``, if any."""
        return dict(self.expected).get(claim)


# ----------------------------------------------------------------------------- exact helpers


def rational_vector(v: ExpVector) -> Optional[Vector]:
    """The vector's value when every coordinate is a rational number visibly (N_k = c_k·D), else None."""
    out = []
    for entry in v.entries():
        q = entry.rational_value()
        if q is None:
            q = _proportional(entry)
            if q is None:
                return None
        out.append(q)
    return tuple(out)


def _proportional(x: ExpFrac) -> Optional[Fraction]:
    """c when N = c·D term by term (then N/D = c exactly), else None."""
    num, den = x.num.terms, x.den.terms
    if len(num) != len(den) or any(rn != rd for (rn, _), (rd, _) in zip(num, den)):
        return None
    ratios = {cn / cd for (_, cn), (_, cd) in zip(num, den)}
    return ratios.pop() if len(ratios) == 1 else None


def feed_forward_rational(layer: Layer, x: Sequence[Fraction]) -> Vector:
    """f(x) = x + W2 ReLU(W1 x + b1) + b2 at a rational point, exactly."""
    out = rational_vector(feed_forward_exact(layer, ExpVector.rational(x)))
    assert out is not None  # a rational point has a rational image
    return out


def conjugate(layer: Layer, T: Matrix, t: Vector, c: Vector) -> Layer:
    """The block of h(x) = T⁻¹(f(Tx + t) − t) + c, again of the form x + W2' ReLU(W1' x + b1') + b2'.

    W1' = W1 T, b1' = W1 t + b1, W2' = T⁻¹ W2, b2' = T⁻¹ b2 + c; h is injective iff f is.
    """
    Tinv = inverse(T)
    return replace(
        layer,
        W1=matmul(layer.W1, T),
        b1=tuple(a + b for a, b in zip(matvec(layer.W1, t), layer.b1)),
        W2=matmul(Tinv, layer.W2),
        b2=tuple(a + b for a, b in zip(matvec(Tinv, layer.b2), c)),
    )


def conjugate_point(T: Matrix, t: Vector, x: Vector) -> Vector:
    """T⁻¹(x − t): where a point x of f's domain sits in the conjugated block's domain."""
    return matvec(inverse(T), tuple(a - b for a, b in zip(x, t)))


def scale_hidden(layer: Layer, j: int, c: Fraction) -> Layer:
    """Hidden unit j scaled by c > 0: row j of W1 and b1[j] times c, column j of W2 over c.

    ReLU(c·t) = c·ReLU(t) for c > 0, so the block computes the same function.
    """
    W1 = tuple(tuple(w * c for w in row) if i == j else row for i, row in enumerate(layer.W1))
    b1 = tuple(b * c if i == j else b for i, b in enumerate(layer.b1))
    W2 = tuple(tuple(w / c if i == j else w for i, w in enumerate(row)) for row in layer.W2)
    return replace(layer, W1=W1, b1=b1, W2=W2)


def _scaled(a: Matrix, c: Fraction) -> Matrix:
    return tuple(tuple(x * c for x in row) for row in a)


def _project_to_score(x: Vector, g: Vector, s: Fraction) -> Vector:
    """The point of the hyperplane {c : c·g = s} nearest x (x itself when g = 0)."""
    gg = sum((a * a for a in g), F(0))
    if gg == 0:
        return x
    shift = (s - sum((a * b for a, b in zip(x, g)), F(0))) / gg
    return tuple(a + shift * b for a, b in zip(x, g))


# ----------------------------------------------------------------------------- building blocks


@lru_cache(maxsize=None)
def rationals(max_numerator: int = 8, max_denominator: int = 4) -> st.SearchStrategy[Fraction]:
    """``strategies.rationals``, built once per bound (seeded draws then skip re-validating it)."""
    return strategies.rationals(max_numerator, max_denominator)


@lru_cache(maxsize=None)
def vectors(k: int, max_numerator: int = 8, max_denominator: int = 4) -> st.SearchStrategy[Vector]:
    """Vectors in Q^k of ``rationals`` (a fixed-length tuple strategy, built once per k)."""
    return st.tuples(*[rationals(max_numerator, max_denominator)] * k)


@lru_cache(maxsize=None)
def matrices(rows: int, cols: int, max_numerator: int = 8, max_denominator: int = 4) -> st.SearchStrategy[Matrix]:
    """rows×cols matrices of ``rationals`` (built once per shape)."""
    return st.tuples(*[vectors(cols, max_numerator, max_denominator)] * rows)


@st.composite
def orthogonal(draw, k: int) -> Matrix:
    """A rational orthogonal k×k matrix: a signed diagonal times the Cayley transform (I − A)(I + A)⁻¹."""
    A = [[F(0)] * k for _ in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            a = draw(rationals(6, 3))
            A[i][j], A[j][i] = a, -a
    I = identity(k)
    minus = tuple(tuple(I[i][j] - A[i][j] for j in range(k)) for i in range(k))
    plus = tuple(tuple(I[i][j] + A[i][j] for j in range(k)) for i in range(k))
    signs = draw(st.tuples(*[st.sampled_from((F(1), F(-1)))] * k))
    Q = matmul(minus, inverse(plus))
    return tuple(tuple(signs[i] * x for x in row) for i, row in enumerate(Q))


_NONZERO = strategies.rationals(8, 3, nonzero=True)


@lru_cache(maxsize=None)
def _nonzero_vector(k: int) -> st.SearchStrategy[Vector]:
    return vectors(k).filter(any)


@st.composite
def invertible(draw, k: int) -> Matrix:
    """A rational invertible k×k matrix L·D·U (unit triangular factors, non-zero diagonal)."""
    L = tuple(tuple(F(1) if i == j else draw(rationals(4, 2)) if j < i else F(0) for j in range(k)) for i in range(k))
    U = tuple(tuple(F(1) if i == j else draw(rationals(4, 2)) if j > i else F(0) for j in range(k)) for i in range(k))
    D = tuple(tuple(draw(_NONZERO) if i == j else F(0) for j in range(k)) for i in range(k))
    return matmul(matmul(L, D), U)


@st.composite
def heads(draw, d: int, sizes: Sizes) -> Head:
    s = draw(st.integers(1, sizes.d))
    sv = draw(st.integers(1, sizes.d))
    return Head(draw(matrices(s, d)), draw(matrices(s, d)), draw(matrices(sv, d)), draw(matrices(d, sv)))


@st.composite
def feed_forward(draw, d: int, sizes: Sizes) -> tuple[Matrix, Vector, Matrix, Vector]:
    """(W1, b1, W2, b2) with random small rational entries."""
    r = draw(st.integers(1, sizes.hidden))
    return draw(matrices(r, d)), draw(vectors(r)), draw(matrices(d, r)), draw(vectors(d))


def _model(draw, d: int, hs: Sequence[Head], ff: tuple[Matrix, Vector, Matrix, Vector]) -> Model:
    W1, b1, W2, b2 = ff
    return Model(
        d=d,
        layers=(Layer(heads=tuple(hs), W1=W1, b1=b1, W2=W2, b2=b2),),
        attention=draw(st.sampled_from(("bidirectional", "causal"))),
        score_scale=draw(st.sampled_from((F(1), F(1, 2), F(2)))),
    )


def _shared_query_dataset(draw, model: Model, sizes: Sizes, query: Optional[Vector] = None) -> Dataset:
    """Examples [c_1 … c_{n−1}, q] with one query q and targets y = f(z) for random rational z."""
    d = model.d
    q = query if query is not None else draw(vectors(d))
    examples = []
    for _ in range(draw(st.integers(1, sizes.examples))):
        n = draw(st.integers(1, sizes.inputs))
        tokens = tuple(draw(vectors(d)) for _ in range(n - 1)) + (q,)
        y = feed_forward_rational(model.layers[0], draw(vectors(d)))
        examples.append(Example(input=tokens, target=(None,) * (n - 1) + (y,)))
    return Dataset(d=d, examples=tuple(examples))


def _prompt(draw, d: int, sizes: Sizes) -> tuple[Vector, ...]:
    return tuple(draw(vectors(d)) for _ in range(draw(st.integers(1, sizes.prompt))))


def _instance(draw, family: str, model: Model, sizes: Sizes, **known) -> Instance:
    return Instance(family, model, _shared_query_dataset(draw, model, sizes), _prompt(draw, model.d, sizes), **known)


# ----------------------------------------------------------------------------- families


@st.composite
def boundary(draw, sizes: Sizes) -> Instance:
    """‖W2‖₂‖W1‖₂ = ρ exactly with ρ = 1 − 1/k, 1 or 1 + 1/k (injective when ρ < 1)."""
    d = draw(st.integers(1, sizes.d))
    r = draw(st.integers(1, sizes.hidden))
    k = max(d, r)
    Q1, Q2 = draw(orthogonal(k)), draw(orthogonal(k))
    t = draw(st.sampled_from((F(1, 2), F(1), F(3, 2), F(2))))
    rho = 1 + F(draw(st.sampled_from((-1, 0, 1))), draw(st.integers(2, 10**6)))
    # a k×k orthogonal matrix sliced to r×d keeps orthonormal rows or columns (k = max(r, d))
    W1 = tuple(tuple(t * Q1[i][j] for j in range(d)) for i in range(r))
    W2 = tuple(tuple(rho / t * Q2[i][j] for j in range(r)) for i in range(d))
    model = _model(draw, d, [draw(heads(d, sizes))], (W1, draw(vectors(r)), W2, draw(vectors(d))))
    expected = (("invertible", "injective"),) if rho < 1 else ()
    return _instance(draw, "boundary", model, sizes, expected=expected, margin=abs(1 - rho))


def _conjugated(draw, family: str, d: int, base: Layer, x: Vector, x2: Vector, sizes: Sizes) -> Instance:
    """``base`` (with collision f(x) = f(x2)) conjugated by a random T and translated."""
    T = draw(invertible(d))
    t, c = draw(vectors(d)), draw(vectors(d))
    layer = replace(conjugate(base, T, t, c), heads=(draw(heads(d, sizes)),))
    model = _model(draw, d, layer.heads, (layer.W1, layer.b1, layer.W2, layer.b2))
    collision = (conjugate_point(T, t, x), conjugate_point(T, t, x2))
    return _instance(draw, family, model, sizes, expected=(("invertible", "not-injective"),), collision=collision)


def _unit(d: int, i: int, scale: Fraction = F(1)) -> Vector:
    return tuple(scale if j == i else F(0) for j in range(d))


@st.composite
def flip(draw, sizes: Sizes) -> Instance:
    """f(x) = x − c·ReLU(x₁)e₁, c > 1: det 1 − c < 0 on x₁ > 0, det 1 on x₁ < 0; f(e₁) = f((1 − c)e₁)."""
    d = draw(st.integers(1, sizes.d))
    c = 1 + F(draw(st.integers(1, 3000)), 1000)
    base = Layer(heads=(), W1=(_unit(d, 0),), b1=(F(0),), W2=tuple((-c,) if i == 0 else (F(0),) for i in range(d)),
                 b2=(F(0),) * d)
    return _conjugated(draw, "flip", d, base, _unit(d, 0), _unit(d, 0, 1 - c), sizes)


#: THEORY §7's z² map f(x) = (|x₁| − |x₂|, (|x₁+x₂| − |x₁−x₂|)/2) as x + W2 ReLU(W1 x):
#: f₁ − x₁ = 2ReLU(−x₁) − ReLU(x₂) − ReLU(−x₂), f₂ − x₂ = ReLU(−x₁−x₂) − ReLU(x₂−x₁).
FOLD_W1 = ((-1, 0), (0, 1), (0, -1), (-1, -1), (-1, 1))
FOLD_W2 = ((2, -1, -1, 0, 0), (0, 0, 0, 1, -1))


@st.composite
def fold(draw, sizes: Sizes) -> Instance:
    """The z² map in the first two coordinates (identity on the rest): f(x) = f(−x) on those two."""
    d = draw(st.integers(2, max(2, sizes.d)))
    W1 = tuple(tuple(F(w) for w in row) + (F(0),) * (d - 2) for row in FOLD_W1)
    W2 = tuple(tuple(F(w) for w in row) for row in FOLD_W2) + ((F(0),) * 5,) * (d - 2)
    base = Layer(heads=(), W1=W1, b1=(F(0),) * 5, W2=W2, b2=(F(0),) * d)
    a = draw(_nonzero_vector(2))
    rest = draw(vectors(d - 2))
    return _conjugated(draw, "fold", d, base, a + rest, (-a[0], -a[1]) + rest, sizes)


@st.composite
def rank_deficient(draw, sizes: Sizes) -> Instance:
    """rank V < d for the first head (V = 0 when the drawn rank is 0), via ``strategies.heads``."""
    d = draw(st.integers(1, sizes.d))
    s = draw(st.integers(1, sizes.d))
    rank = draw(st.integers(0, min(s, d - 1)))
    hs = [draw(strategies.heads(d, s, v_rank=rank, max_denominator=4))]
    hs += [draw(heads(d, sizes)) for _ in range(draw(st.integers(0, sizes.heads - 1)))]
    return _instance(draw, "rank_deficient", _model(draw, d, hs, draw(feed_forward(d, sizes))), sizes)


def _kills(q: Vector, R: Matrix) -> Matrix:
    """R (I − q qᵀ/qᵀq): every row is orthogonal to q (R itself when q = 0)."""
    qq = sum((a * a for a in q), F(0))
    if qq == 0:
        return R
    return tuple(tuple(row[j] - sum((row[i] * q[i] for i in range(len(q))), F(0)) * q[j] / qq
                       for j in range(len(q))) for row in R)


@st.composite
def zero_query(draw, sizes: Sizes) -> Instance:
    """W_q q = 0 for the shared query q, so every score of q is 0 (Lemma 2 (c))."""
    d = draw(st.integers(1, sizes.d))
    q = draw(vectors(d))
    h = draw(heads(d, sizes))
    h = replace(h, W_q=_kills(q, h.W_q))
    model = _model(draw, d, [h], draw(feed_forward(d, sizes)))
    return Instance("zero_query", model, _shared_query_dataset(draw, model, sizes, q), _prompt(draw, d, sizes))


@st.composite
def row_query(draw, sizes: Sizes) -> Instance:
    """W_k = V = W_o W_v (head size d), so g = κVᵀW_q q ∈ row(V) for every query (Lemma 2 (b))."""
    d = draw(st.integers(1, sizes.d))
    sv = draw(st.integers(1, sizes.d))
    W_v, W_o = draw(matrices(sv, d)), draw(matrices(d, sv))
    h = Head(draw(matrices(d, d)), matmul(W_o, W_v), W_v, W_o)
    return _instance(draw, "row_query", _model(draw, d, [h], draw(feed_forward(d, sizes))), sizes)


def _query_head(draw, d: int, sizes: Sizes, q: Vector) -> Head:
    """A head for query q in one of Lemma 2's three regimes (generic g, g = 0, g ∈ row(V))."""
    mode = draw(st.sampled_from(("generic", "zero", "row")))
    h = draw(heads(d, sizes))
    if mode == "zero":
        return replace(h, W_q=_kills(q, h.W_q))
    if mode == "row":
        return Head(draw(matrices(d, d)), matmul(h.W_o, h.W_v), h.W_v, h.W_o)
    return h


@st.composite
def generated(draw, sizes: Sizes) -> Instance:
    """Targets produced by a random prompt: memorizable by construction.

    Every context token of the shared query q (prompt and inputs) lies on {c : c·g = q·g},
    g = M q, so all its softmax weights are equal and the outputs are rational.
    """
    d = draw(st.integers(1, sizes.d))
    q = draw(vectors(d))
    h = _query_head(draw, d, sizes, q)
    model = _model(draw, d, [h], draw(feed_forward(d, sizes)))
    g = matvec(score_matrix(h, model.score_scale), q)
    s = sum((a * b for a, b in zip(q, g)), F(0))
    prompt = tuple(_project_to_score(draw(vectors(d)), g, s) for _ in range(draw(st.integers(1, sizes.prompt))))
    examples = []
    for _ in range(draw(st.integers(1, sizes.examples))):
        n = draw(st.integers(1, sizes.inputs))
        tokens = tuple(_project_to_score(draw(vectors(d)), g, s) for _ in range(n - 1)) + (q,)
        y = rational_vector(layer_exact(model, prompt, tokens, positions=(n - 1,))[0])
        assert y is not None  # equal weights: every output is rational
        examples.append(Example(input=tokens, target=(None,) * (n - 1) + (y,)))
    return Instance("generated", model, Dataset(d, tuple(examples)), prompt,
                    expected=(("memorizable", "memorizable"),))


@st.composite
def near_intersecting(draw, sizes: Sizes) -> Instance:
    """Shared-query examples whose rays (THEORY §3) meet at (α, v), then one target moved by ε = 10^-k.

    With every context token scoring s, z_i = q + (α v + n_i u_i)/(α + n_i) is the output of a
    prompt of total weight α·e^s and mean value v; moving z_1 by ε·w breaks the common point.
    """
    d = draw(st.integers(1, sizes.d))
    q = draw(vectors(d))
    h = _query_head(draw, d, sizes, q)
    model = _model(draw, d, [h], draw(feed_forward(d, sizes)))
    M, V = score_matrix(h, model.score_scale), value_matrix(h)
    g = matvec(M, q)
    s = sum((a * b for a, b in zip(q, g)), F(0))
    alpha = F(draw(st.integers(1, 64)), draw(st.integers(1, 8)))
    v = matvec(V, draw(vectors(d)))
    eps = F(1, 10 ** draw(st.integers(1, sizes.exponent)))
    w = draw(_nonzero_vector(d))
    examples = []
    for i in range(draw(st.integers(2, max(2, sizes.examples)))):
        n = draw(st.integers(1, sizes.inputs))
        tokens = tuple(_project_to_score(draw(vectors(d)), g, s) for _ in range(n - 1)) + (q,)
        u = tuple(sum(col, F(0)) / n for col in zip(*(matvec(V, c) for c in tokens)))
        z = tuple(qk + (alpha * vk + n * uk) / (alpha + n) for qk, vk, uk in zip(q, v, u))
        if i == 0:
            z = tuple(zk + eps * wk for zk, wk in zip(z, w))
        y = feed_forward_rational(model.layers[0], z)
        examples.append(Example(input=tokens, target=(None,) * (n - 1) + (y,)))
    return Instance("near_intersecting", model, Dataset(d, tuple(examples)), _prompt(draw, d, sizes), margin=eps)


@st.composite
def same_output(draw, sizes: Sizes) -> Instance:
    """Two different inputs (sharing the query) asked to give one target."""
    inst = draw(generated(replace(sizes, examples=2)))
    ex = inst.dataset.examples
    assume(len(ex) == 2 and ex[0].input != ex[1].input)
    second = Example(ex[1].input, ex[1].target[:-1] + (ex[0].target[-1],))
    return Instance("same_output", inst.model, Dataset(inst.dataset.d, (ex[0], second)), inst.prompt)


@st.composite
def near_degenerate(draw, sizes: Sizes) -> Instance:
    """A generated instance rewritten with factors 10^±k that leave every output unchanged."""
    inst = draw(generated(sizes))
    k = draw(st.integers(-sizes.exponent, sizes.exponent))
    j = draw(st.integers(-sizes.exponent, sizes.exponent))
    layer = inst.model.layers[0]
    h = layer.heads[0]
    a, b = F(10) ** k, F(10) ** j
    h = Head(_scaled(h.W_q, a), _scaled(h.W_k, 1 / a), _scaled(h.W_v, b), _scaled(h.W_o, 1 / b))
    layer = replace(layer, heads=(h,))
    for unit in range(layer.hidden):
        layer = scale_hidden(layer, unit, F(10) ** draw(st.integers(-sizes.exponent, sizes.exponent)))
    model = replace(inst.model, layers=(layer,))
    return replace(inst, family="near_degenerate", model=model)


def plain(sizes: Sizes) -> st.SearchStrategy[Instance]:
    """The shared random instances of ``strategies.instances`` (one layer, any targets)."""
    return strategies.instances(
        d=st.integers(1, sizes.d), heads=st.integers(1, sizes.heads), hidden=st.integers(1, sizes.hidden),
        n_examples=st.integers(1, sizes.examples), seq_len=st.integers(1, sizes.inputs),
        prompt_len=st.integers(0, sizes.prompt), max_denominator=4,
    ).map(lambda t: Instance("plain", *t))


#: family name -> strategy factory; the campaign draws example i from family i mod len.
FAMILIES: dict[str, Callable[[Sizes], st.SearchStrategy[Instance]]] = {
    "boundary": boundary,
    "flip": flip,
    "fold": fold,
    "rank_deficient": rank_deficient,
    "zero_query": zero_query,
    "row_query": row_query,
    "generated": generated,
    "near_intersecting": near_intersecting,
    "same_output": same_output,
    "near_degenerate": near_degenerate,
    "plain": plain,
}


def instances(sizes: Sizes) -> st.SearchStrategy[Instance]:
    """Any adversarial instance (one of the families)."""
    return st.one_of(*(factory(sizes) for factory in FAMILIES.values()))
