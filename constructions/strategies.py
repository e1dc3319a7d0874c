"""Hypothesis strategies for exact models, datasets and prompts (rational weights throughout).

Sizes may be given as ints or as strategies of ints. Numbers are small rationals by default
(numerators and denominators up to 8) so that exact exp-polynomial evaluation stays fast;
every strategy takes ``max_numerator`` / ``max_denominator`` for larger ones.

Controls promised by the foundation issue and what they guarantee exactly:

- ``matrices(rows, cols, rank=k)``: the drawn matrix has rank exactly k (a product of a
  full-column-rank and a full-row-rank factor, both triangular-with-nonzero-diagonal up to
  a permutation).
- ``heads(d, s, v_rank=k)``: the value map V = W_o W_v has rank exactly k.
- ``layers(..., lipschitz=B)``: ‖W2‖_F · ‖W1‖_F ≤ B exactly (W2 is scaled by a rational),
  so the feed-forward residual g(a) = W2 act(W1 a + b1) + b2 has Lipschitz constant ≤ B for
  ReLU (the Frobenius norm bounds the spectral norm).
- ``instances(...)``: a (model, dataset, prompt) triple with one d and every input no longer
  than the model's positional encodings.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional, Union

from hypothesis import strategies as st

from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Matrix, Model, Vector

Size = Union[int, st.SearchStrategy]
Choice = Union[None, object, st.SearchStrategy]

MAX_NUMERATOR = 8
MAX_DENOMINATOR = 8


def _size(draw, value: Size) -> int:
    """An int as is, or a draw from a strategy of ints."""
    return draw(value) if isinstance(value, st.SearchStrategy) else int(value)


def _choice(draw, value, default: st.SearchStrategy):
    """``default`` drawn when value is None, a draw when it is a strategy, else the value."""
    if value is None:
        return draw(default)
    return draw(value) if isinstance(value, st.SearchStrategy) else value


# ----------------------------------------------------------------------------- numbers


def rationals(
    max_numerator: int = MAX_NUMERATOR, max_denominator: int = MAX_DENOMINATOR, nonzero: bool = False,
) -> st.SearchStrategy[Fraction]:
    """Rationals p/q with |p| ≤ max_numerator and 1 ≤ q ≤ max_denominator (shrinking to 0)."""
    if nonzero:
        numerators = st.tuples(st.integers(1, max_numerator), st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
    else:
        numerators = st.integers(-max_numerator, max_numerator)
    return st.builds(Fraction, numerators, st.integers(1, max_denominator))


def vectors(d: Size, **number_options) -> st.SearchStrategy[Vector]:
    """Vectors in Q^d (a tuple of Fractions)."""

    @st.composite
    def build(draw) -> Vector:
        n = _size(draw, d)
        return tuple(draw(rationals(**number_options)) for _ in range(n))

    return build()


def _free_matrix(draw, rows: int, cols: int, **number_options) -> Matrix:
    return tuple(tuple(draw(rationals(**number_options)) for _ in range(cols)) for _ in range(rows))


def _injective(draw, rows: int, k: int, **number_options) -> list[list[Fraction]]:
    """A rows×k matrix of rank k: a triangular k×k block with non-zero diagonal, other rows
    free, rows permuted."""
    block = [
        [
            draw(rationals(nonzero=True, **number_options)) if i == j
            else draw(rationals(**number_options)) if j > i else Fraction(0)
            for j in range(k)
        ]
        for i in range(k)
    ]
    rest = [[draw(rationals(**number_options)) for _ in range(k)] for _ in range(rows - k)]
    order = draw(st.permutations(range(rows)))
    stacked = block + rest
    return [stacked[order[i]] for i in range(rows)]


def matrices(rows: Size, cols: Size, rank: Optional[Size] = None, **number_options) -> st.SearchStrategy[Matrix]:
    """rows×cols rational matrices; with ``rank`` = k the rank is exactly k (0 ≤ k ≤ min)."""

    @st.composite
    def build(draw) -> Matrix:
        r, c = _size(draw, rows), _size(draw, cols)
        if rank is None:
            return _free_matrix(draw, r, c, **number_options)
        k = _size(draw, rank)
        if not 0 <= k <= min(r, c):
            raise ValueError(f"rank {k} impossible for a {r}x{c} matrix")
        left = _injective(draw, r, k, **number_options)  # r×k, rank k
        right_t = _injective(draw, c, k, **number_options)  # c×k, rank k
        return tuple(
            tuple(sum((left[i][t] * right_t[j][t] for t in range(k)), Fraction(0)) for j in range(c))
            for i in range(r)
        )

    return build()


# ----------------------------------------------------------------------------- model parts


def _unit_lower(draw, n: int) -> tuple[list[list[int]], list[list[int]]]:
    """A unit lower-triangular integer matrix T with entries in {-1, 0, 1} and its integer inverse."""
    t = [[1 if i == j else draw(st.integers(-1, 1)) if j < i else 0 for j in range(n)] for i in range(n)]
    inv = [[0] * n for _ in range(n)]
    for col in range(n):  # forward substitution, T x = e_col
        for i in range(n):
            inv[i][col] = (1 if i == col else 0) - sum(t[i][j] * inv[j][col] for j in range(i))
    return t, inv


def heads(d: Size, head_size: Size, v_rank: Optional[Size] = None, **number_options) -> st.SearchStrategy[Head]:
    """One attention head on Q^d with head size s; with ``v_rank`` = k, rank(W_o W_v) = k exactly.

    Rank control: W_v = T [R; 0] and W_o = [L | Y] T⁻¹ with R (k×d) of rank k, L (d×k) of rank
    k, Y free and T unimodular, so W_o W_v = L R has rank k while W_v and W_o look generic.
    """

    @st.composite
    def build(draw) -> Head:
        n, s = _size(draw, d), _size(draw, head_size)
        W_q = _free_matrix(draw, s, n, **number_options)
        W_k = _free_matrix(draw, s, n, **number_options)
        if v_rank is None:
            return Head(W_q, W_k, _free_matrix(draw, s, n, **number_options), _free_matrix(draw, n, s, **number_options))
        k = _size(draw, v_rank)
        if not 0 <= k <= min(s, n):
            raise ValueError(f"v_rank {k} impossible with d = {n}, head size {s}")
        R = [list(col) for col in zip(*_injective(draw, n, k, **number_options))]  # k×n, rank k
        L = _injective(draw, n, k, **number_options)  # n×k, rank k
        Y = [[draw(rationals(**number_options)) for _ in range(s - k)] for _ in range(n)]
        T, T_inv = _unit_lower(draw, s)
        top = R + [[Fraction(0)] * n for _ in range(s - k)]  # s×n
        W_v = tuple(tuple(sum((T[i][j] * top[j][c] for j in range(s)), Fraction(0)) for c in range(n)) for i in range(s))
        LY = [L[i] + Y[i] for i in range(n)]  # n×s
        W_o = tuple(
            tuple(sum((LY[i][j] * T_inv[j][c] for j in range(s)), Fraction(0)) for c in range(s)) for i in range(n)
        )
        return Head(W_q, W_k, W_v, W_o)

    return build()


_heads = heads  # layers() takes a parameter named heads


def _frobenius_sq(m: Matrix) -> Fraction:
    return sum((x * x for row in m for x in row), Fraction(0))


def _ceil_sqrt(x: Fraction) -> int:
    """The least integer u ≥ 0 with u² ≥ x."""
    u = math.isqrt(math.ceil(x))
    return u if u * u >= x else u + 1


def lipschitz_scale(W1: Matrix, W2: Matrix, bound: Fraction) -> Fraction:
    """A rational c > 0 with c·‖W2‖_F·‖W1‖_F ≤ bound (c = bound / ⌈√(‖W1‖²‖W2‖²)⌉, at most bound)."""
    u = max(1, _ceil_sqrt(_frobenius_sq(W1) * _frobenius_sq(W2)))
    return Fraction(bound) / u


def layers(
    d: Size,
    heads: Size = 1,
    head_size: Optional[Size] = None,
    hidden: Optional[Size] = None,
    lipschitz: Optional[Union[Fraction, int, st.SearchStrategy]] = None,
    v_rank: Optional[Size] = None,
    activation: Union[str, st.SearchStrategy] = "relu",
    norm: Union[None, str, st.SearchStrategy] = None,
    **number_options,
) -> st.SearchStrategy[Layer]:
    """One layer on Q^d. ``head_size`` defaults to 1..d, ``hidden`` to 1..d+1.

    With ``lipschitz`` = B (rational > 0), W2 is multiplied by a rational so that
    ‖W2‖_F·‖W1‖_F ≤ B exactly. ``v_rank`` applies to every head. ``norm`` may be
    "layernorm" (then gains and biases are drawn too).
    """
    n_heads = heads

    @st.composite
    def build(draw) -> Layer:
        n = _size(draw, d)
        H = _size(draw, n_heads)
        k = None if v_rank is None else _size(draw, v_rank)
        hs = [draw(st.integers(max(1, k or 0), max(n, k or 0))) if head_size is None else _size(draw, head_size)
              for _ in range(H)]
        hd = [_heads(n, s, k, **number_options) for s in hs]
        layer_heads = tuple(draw(h) for h in hd)
        r = draw(st.integers(1, n + 1)) if hidden is None else _size(draw, hidden)
        W1 = _free_matrix(draw, r, n, **number_options)
        W2 = _free_matrix(draw, n, r, **number_options)
        if lipschitz is not None:
            bound = Fraction(_choice(draw, lipschitz, st.just(1)))
            if bound <= 0:
                raise ValueError("lipschitz bound must be positive")
            c = lipschitz_scale(W1, W2, bound)
            W2 = tuple(tuple(c * x for x in row) for row in W2)
        b1 = tuple(draw(rationals(**number_options)) for _ in range(r))
        b2 = tuple(draw(rationals(**number_options)) for _ in range(n))
        act = _choice(draw, activation, st.just("relu"))
        nm = draw(norm) if isinstance(norm, st.SearchStrategy) else norm
        extra = {}
        if nm == "layernorm":
            for name in ("ln1_gain", "ln2_gain"):
                extra[name] = tuple(draw(rationals(nonzero=True, **number_options)) for _ in range(n))
            for name in ("ln1_bias", "ln2_bias"):
                extra[name] = tuple(draw(rationals(**number_options)) for _ in range(n))
        return Layer(layer_heads, W1, b1, W2, b2, activation=act, norm=nm, **extra)

    return build()


_layers = layers  # models() takes a parameter named layers


def models(
    d: Size = st.integers(1, 3),
    layers: Size = 1,
    heads: Size = st.integers(1, 2),
    head_size: Optional[Size] = None,
    hidden: Optional[Size] = None,
    attention: Choice = None,
    positional: Optional[Union[bool, st.SearchStrategy]] = None,
    positions: Size = st.integers(1, 4),
    lipschitz: Optional[Union[Fraction, int, st.SearchStrategy]] = None,
    v_rank: Optional[Size] = None,
    activation: Union[str, st.SearchStrategy] = "relu",
    norm: Union[None, str, st.SearchStrategy] = None,
    score_scale: Union[Fraction, int, st.SearchStrategy] = 1,
    **number_options,
) -> st.SearchStrategy[Model]:
    """Models on Q^d. ``attention`` None draws bidirectional or causal; ``positional`` None
    draws whether there are encodings, True/False forces it; ``positions`` is how many
    encoding vectors (the longest input the model accepts)."""
    n_layers = layers

    @st.composite
    def build(draw) -> Model:
        n = _size(draw, d)
        L = _size(draw, n_layers)
        layer_list = tuple(
            draw(_layers(n, heads, head_size, hidden, lipschitz, v_rank, activation, norm, **number_options))
            for _ in range(L)
        )
        att = _choice(draw, attention, st.sampled_from(("bidirectional", "causal")))
        has_pos = _choice(draw, positional, st.booleans())
        pos = None
        if has_pos:
            count = _size(draw, positions)
            pos = tuple(draw(vectors(n, **number_options)) for _ in range(count))
        scale = Fraction(_choice(draw, score_scale, st.just(1)))
        return Model(d=n, layers=layer_list, attention=att, score_scale=scale, positional=pos)

    return build()


# ----------------------------------------------------------------------------- data


def examples(d: Size, n: Size, constrained: str = "last", **number_options) -> st.SearchStrategy[Example]:
    """An example of n tokens in Q^d. ``constrained``: "last" (only the last position has a
    target), "any" (each position independently, at least one), "none" (no targets)."""
    if constrained not in ("last", "any", "none"):
        raise ValueError(f"constrained must be 'last', 'any' or 'none', got {constrained!r}")

    @st.composite
    def build(draw) -> Example:
        k, length = _size(draw, d), _size(draw, n)
        tokens = tuple(draw(vectors(k, **number_options)) for _ in range(length))
        if constrained == "last":
            mask = [i == length - 1 for i in range(length)]
        elif constrained == "any":
            mask = [draw(st.booleans()) for _ in range(length)]
            if not any(mask):
                mask[draw(st.integers(0, length - 1))] = True
        else:
            mask = [False] * length
        target = tuple(draw(vectors(k, **number_options)) if m else None for m in mask)
        return Example(input=tokens, target=target)

    return build()


def datasets(
    d: Size,
    n_examples: Size = st.integers(1, 3),
    seq_len: Size = st.integers(1, 3),
    constrained: str = "last",
    **number_options,
) -> st.SearchStrategy[Dataset]:
    """Datasets over Q^d; ``seq_len`` (int or strategy) is drawn anew for every example."""

    @st.composite
    def build(draw) -> Dataset:
        k, count = _size(draw, d), _size(draw, n_examples)
        exs = tuple(draw(examples(k, _size(draw, seq_len), constrained, **number_options)) for _ in range(count))
        return Dataset(d=k, examples=exs)

    return build()


def prompts(d: Size, m: Size, **number_options) -> st.SearchStrategy[tuple[Vector, ...]]:
    """Prompts: m tokens in Q^d (m = 0 gives the empty prompt)."""

    @st.composite
    def build(draw) -> tuple[Vector, ...]:
        k, length = _size(draw, d), _size(draw, m)
        return tuple(draw(vectors(k, **number_options)) for _ in range(length))

    return build()


def instances(
    d: Size = st.integers(1, 3),
    layers: Size = 1,
    heads: Size = st.integers(1, 2),
    head_size: Optional[Size] = None,
    hidden: Optional[Size] = None,
    attention: Choice = None,
    positional: Optional[Union[bool, st.SearchStrategy]] = None,
    lipschitz: Optional[Union[Fraction, int, st.SearchStrategy]] = None,
    v_rank: Optional[Size] = None,
    activation: Union[str, st.SearchStrategy] = "relu",
    norm: Union[None, str, st.SearchStrategy] = None,
    n_examples: Size = st.integers(1, 2),
    seq_len: Size = st.integers(1, 3),
    prompt_len: Size = st.integers(0, 2),
    constrained: str = "last",
    **number_options,
) -> st.SearchStrategy[tuple[Model, Dataset, tuple[Vector, ...]]]:
    """(model, dataset, prompt) with one d; positional encodings cover the longest input."""

    @st.composite
    def build(draw) -> tuple[Model, Dataset, tuple[Vector, ...]]:
        k = _size(draw, d)
        dataset = draw(datasets(k, n_examples, seq_len, constrained, **number_options))
        longest = max(len(ex.input) for ex in dataset.examples)
        model = draw(
            models(k, layers, heads, head_size, hidden, attention, positional,
                   st.integers(longest, longest + 1), lipschitz, v_rank, activation, norm,
                   **number_options)
        )
        prompt = draw(prompts(k, prompt_len, **number_options))
        return model, dataset, prompt

    return build()
