"""Hypothesis strategies for exact models, datasets and prompts (rational weights throughout).

Sizes may be given as ints or as strategies of ints. Numbers are small rationals by default
(numerators and denominators up to 8) so that exact exp-polynomial evaluation stays fast;
every strategy takes ``max_numerator`` / ``max_denominator`` for larger ones.

Controls promised by the foundation issue and what they guarantee exactly:

- ``matrices(rows, cols, rank=k)``: the drawn matrix has rank exactly k (a product of a
  full-column-rank and a full-row-rank factor, both triangular-with-nonzero-diagonal up to
  a permutation of rows).
- ``heads(d, s, v_rank=k)``: the value map V = W_o W_v has rank exactly k.
- ``layers(..., lipschitz=B)``: ‖W2‖_F · ‖W1‖_F ≤ B exactly (W2 is scaled by a rational),
  so the feed-forward residual g(a) = W2 ReLU(W1 a + b1) + b2 has Lipschitz constant ≤ B
  (the Frobenius norm bounds the spectral norm).
- ``instances(...)``: a (model, dataset, prompt) triple with one d and every input no longer
  than the model's positional encodings.

Implementation note: every public strategy is one module-level composite running a plain
``_draw_*`` function, and the ``_draw_*`` functions call each other directly; building
composites per draw costs milliseconds each in Hypothesis' reflection.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any, Callable, Optional, Union

from hypothesis import strategies as st

from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Matrix, Model, Vector

Size = Union[int, st.SearchStrategy]
Bound = Union[Fraction, int, st.SearchStrategy]

MAX_NUMERATOR = 8
MAX_DENOMINATOR = 8


@st.composite
def _built(draw, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(draw, *args, **kwargs)


def _size(draw, value: Size) -> int:
    """An int as is, or a draw from a strategy of ints."""
    return draw(value) if isinstance(value, st.SearchStrategy) else int(value)


def _choice(draw, value: Any, default: st.SearchStrategy) -> Any:
    """``default`` drawn when value is None, a draw when it is a strategy, else the value."""
    if value is None:
        return draw(default)
    return draw(value) if isinstance(value, st.SearchStrategy) else value


# ----------------------------------------------------------------------------- numbers


@functools.lru_cache(maxsize=None)
def rationals(
    max_numerator: int = MAX_NUMERATOR, max_denominator: int = MAX_DENOMINATOR, nonzero: bool = False,
) -> st.SearchStrategy[Fraction]:
    """Rationals p/q with |p| ≤ max_numerator and 1 ≤ q ≤ max_denominator (shrinking to 0)."""
    if nonzero:
        numerators = st.tuples(st.integers(1, max_numerator), st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
    else:
        numerators = st.integers(-max_numerator, max_numerator)
    return st.builds(Fraction, numerators, st.integers(1, max_denominator))


@functools.lru_cache(maxsize=None)
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def _q(draw, opts: dict, nonzero: bool = False) -> Fraction:
    """One draw of ``rationals(**opts, nonzero=nonzero)``, done with two plain integer draws."""
    top = opts.get("max_numerator", MAX_NUMERATOR)
    if nonzero:
        p = draw(_integers(1, top)) * (1 - 2 * draw(_integers(0, 1)))
    else:
        p = draw(_integers(-top, top))
    return Fraction(p, draw(_integers(1, opts.get("max_denominator", MAX_DENOMINATOR))))


def _draw_vector(draw, d: Size, opts: dict) -> Vector:
    return tuple(_q(draw, opts) for _ in range(_size(draw, d)))


def vectors(d: Size, **number_options) -> st.SearchStrategy[Vector]:
    """Vectors in Q^d (a tuple of Fractions)."""
    return _built(_draw_vector, d, number_options)


def _free_matrix(draw, rows: int, cols: int, opts: dict) -> Matrix:
    return tuple(tuple(_q(draw, opts) for _ in range(cols)) for _ in range(rows))


def _injective(draw, rows: int, k: int, opts: dict) -> list[list[Fraction]]:
    """A rows×k matrix of rank k: a triangular k×k block with non-zero diagonal, other rows
    free, rows permuted."""
    block = [
        [_q(draw, opts, nonzero=True) if i == j else _q(draw, opts) if j > i else Fraction(0) for j in range(k)]
        for i in range(k)
    ]
    rest = [[_q(draw, opts) for _ in range(k)] for _ in range(rows - k)]
    order = draw(st.permutations(range(rows)))
    stacked = block + rest
    return [stacked[order[i]] for i in range(rows)]


def _draw_matrix(draw, rows: Size, cols: Size, rank: Optional[Size], opts: dict) -> Matrix:
    r, c = _size(draw, rows), _size(draw, cols)
    if rank is None:
        return _free_matrix(draw, r, c, opts)
    k = _size(draw, rank)
    if not 0 <= k <= min(r, c):
        raise ValueError(f"rank {k} impossible for a {r}x{c} matrix")
    left = _injective(draw, r, k, opts)  # r×k, rank k
    right_t = _injective(draw, c, k, opts)  # c×k, rank k
    return tuple(
        tuple(sum((left[i][t] * right_t[j][t] for t in range(k)), Fraction(0)) for j in range(c))
        for i in range(r)
    )


def matrices(rows: Size, cols: Size, rank: Optional[Size] = None, **number_options) -> st.SearchStrategy[Matrix]:
    """rows×cols rational matrices; with ``rank`` = k the rank is exactly k (0 ≤ k ≤ min)."""
    return _built(_draw_matrix, rows, cols, rank, number_options)


# ----------------------------------------------------------------------------- model parts


def _unit_lower(draw, n: int) -> tuple[list[list[int]], list[list[int]]]:
    """A unit lower-triangular integer T with entries in {-1, 0, 1} and its integer inverse."""
    t = [[1 if i == j else draw(st.integers(-1, 1)) if j < i else 0 for j in range(n)] for i in range(n)]
    inv = [[0] * n for _ in range(n)]
    for col in range(n):  # forward substitution, T x = e_col
        for i in range(n):
            inv[i][col] = (1 if i == col else 0) - sum(t[i][j] * inv[j][col] for j in range(i))
    return t, inv


def _draw_head(draw, d: Size, head_size: Size, v_rank: Optional[Size], opts: dict) -> Head:
    n, s = _size(draw, d), _size(draw, head_size)
    W_q = _free_matrix(draw, s, n, opts)
    W_k = _free_matrix(draw, s, n, opts)
    if v_rank is None:
        return Head(W_q, W_k, _free_matrix(draw, s, n, opts), _free_matrix(draw, n, s, opts))
    k = _size(draw, v_rank)
    if not 0 <= k <= min(s, n):
        raise ValueError(f"v_rank {k} impossible with d = {n}, head size {s}")
    R = [list(col) for col in zip(*_injective(draw, n, k, opts))]  # k×n, rank k
    L = _injective(draw, n, k, opts)  # n×k, rank k
    Y = [[_q(draw, opts) for _ in range(s - k)] for _ in range(n)]
    T, T_inv = _unit_lower(draw, s)
    top = R + [[Fraction(0)] * n for _ in range(s - k)]  # s×n
    W_v = tuple(tuple(sum((T[i][j] * top[j][c] for j in range(s)), Fraction(0)) for c in range(n)) for i in range(s))
    LY = [L[i] + Y[i] for i in range(n)]  # n×s
    W_o = tuple(tuple(sum((LY[i][j] * T_inv[j][c] for j in range(s)), Fraction(0)) for c in range(s)) for i in range(n))
    return Head(W_q, W_k, W_v, W_o)


def heads(d: Size, head_size: Size, v_rank: Optional[Size] = None, **number_options) -> st.SearchStrategy[Head]:
    """One attention head on Q^d with head size s; with ``v_rank`` = k, rank(W_o W_v) = k exactly.

    Rank control: W_v = T [R; 0] and W_o = [L | Y] T⁻¹ with R (k×d) of rank k, L (d×k) of rank
    k, Y free and T unimodular, so W_o W_v = L R has rank k while W_v and W_o look generic.
    """
    return _built(_draw_head, d, head_size, v_rank, number_options)


def _frobenius_sq(m: Matrix) -> Fraction:
    return sum((x * x for row in m for x in row), Fraction(0))


def _ceil_sqrt(x: Fraction) -> int:
    """The least integer u ≥ 0 with u² ≥ x."""
    u = math.isqrt(math.ceil(x))
    return u if u * u >= x else u + 1


def lipschitz_scale(W1: Matrix, W2: Matrix, bound: Fraction) -> Fraction:
    """A rational c > 0 with c·‖W2‖_F·‖W1‖_F ≤ bound: c = bound / max(1, ⌈√(‖W1‖_F²‖W2‖_F²)⌉)."""
    u = max(1, _ceil_sqrt(_frobenius_sq(W1) * _frobenius_sq(W2)))
    return Fraction(bound) / u


def _draw_layer(draw, d: Size, n_heads: Size, head_size: Optional[Size], hidden: Optional[Size],
                lipschitz: Optional[Bound], v_rank: Optional[Size], activation: Any, norm: Any,
                opts: dict) -> Layer:
    n = _size(draw, d)
    H = _size(draw, n_heads)
    k = None if v_rank is None else _size(draw, v_rank)
    low = max(1, k or 0)
    sizes = [draw(st.integers(low, max(n, low))) if head_size is None else _size(draw, head_size) for _ in range(H)]
    layer_heads = tuple(_draw_head(draw, n, s, k, opts) for s in sizes)
    r = draw(st.integers(1, n + 1)) if hidden is None else _size(draw, hidden)
    W1 = _free_matrix(draw, r, n, opts)
    W2 = _free_matrix(draw, n, r, opts)
    if lipschitz is not None:
        bound = Fraction(_choice(draw, lipschitz, st.just(1)))
        if bound <= 0:
            raise ValueError("lipschitz bound must be positive")
        c = lipschitz_scale(W1, W2, bound)
        W2 = tuple(tuple(c * x for x in row) for row in W2)
    b1 = tuple(_q(draw, opts) for _ in range(r))
    b2 = tuple(_q(draw, opts) for _ in range(n))
    act = _choice(draw, activation, st.just("relu"))
    nm = draw(norm) if isinstance(norm, st.SearchStrategy) else norm
    extra = {}
    if nm == "layernorm":
        for name in ("ln1_gain", "ln2_gain"):
            extra[name] = tuple(_q(draw, opts, nonzero=True) for _ in range(n))
        for name in ("ln1_bias", "ln2_bias"):
            extra[name] = tuple(_q(draw, opts) for _ in range(n))
    return Layer(layer_heads, W1, b1, W2, b2, activation=act, norm=nm, **extra)


def layers(
    d: Size,
    heads: Size = 1,
    head_size: Optional[Size] = None,
    hidden: Optional[Size] = None,
    lipschitz: Optional[Bound] = None,
    v_rank: Optional[Size] = None,
    activation: Union[str, st.SearchStrategy] = "relu",
    norm: Union[None, str, st.SearchStrategy] = None,
    **number_options,
) -> st.SearchStrategy[Layer]:
    """One layer on Q^d. ``head_size`` defaults to max(1, v_rank)..d, ``hidden`` to 1..d+1.

    With ``lipschitz`` = B (rational > 0), W2 is multiplied by a rational so that
    ‖W2‖_F·‖W1‖_F ≤ B exactly. ``v_rank`` applies to every head. ``norm`` may be
    "layernorm" (then gains and biases are drawn too).
    """
    return _built(_draw_layer, d, heads, head_size, hidden, lipschitz, v_rank, activation, norm, number_options)


def _draw_model(draw, d: Size, n_layers: Size, n_heads: Size, head_size: Optional[Size], hidden: Optional[Size],
                attention: Any, positional: Any, positions: Size, lipschitz: Optional[Bound],
                v_rank: Optional[Size], activation: Any, norm: Any, score_scale: Bound, opts: dict) -> Model:
    n = _size(draw, d)
    layer_list = tuple(
        _draw_layer(draw, n, n_heads, head_size, hidden, lipschitz, v_rank, activation, norm, opts)
        for _ in range(_size(draw, n_layers))
    )
    att = _choice(draw, attention, st.sampled_from(("bidirectional", "causal")))
    pos = None
    if _choice(draw, positional, st.booleans()):
        pos = tuple(_draw_vector(draw, n, opts) for _ in range(_size(draw, positions)))
    scale = Fraction(_choice(draw, score_scale, st.just(1)))
    return Model(d=n, layers=layer_list, attention=att, score_scale=scale, positional=pos)


def models(
    d: Size = st.integers(1, 3),
    layers: Size = 1,
    heads: Size = st.integers(1, 2),
    head_size: Optional[Size] = None,
    hidden: Optional[Size] = None,
    attention: Union[None, str, st.SearchStrategy] = None,
    positional: Union[None, bool, st.SearchStrategy] = None,
    positions: Size = st.integers(1, 4),
    lipschitz: Optional[Bound] = None,
    v_rank: Optional[Size] = None,
    activation: Union[str, st.SearchStrategy] = "relu",
    norm: Union[None, str, st.SearchStrategy] = None,
    score_scale: Bound = 1,
    **number_options,
) -> st.SearchStrategy[Model]:
    """Models on Q^d. ``attention`` None draws bidirectional or causal; ``positional`` None
    draws whether there are encodings, True/False forces it; ``positions`` is how many
    encoding vectors (the longest input the model accepts)."""
    return _built(_draw_model, d, layers, heads, head_size, hidden, attention, positional, positions,
                  lipschitz, v_rank, activation, norm, score_scale, number_options)


# ----------------------------------------------------------------------------- data


def _draw_example(draw, d: Size, n: Size, constrained: str, opts: dict) -> Example:
    k, length = _size(draw, d), _size(draw, n)
    tokens = tuple(_draw_vector(draw, k, opts) for _ in range(length))
    if constrained == "last":
        mask = [i == length - 1 for i in range(length)]
    elif constrained == "any":
        mask = [draw(st.booleans()) for _ in range(length)]
        if not any(mask):
            mask[draw(st.integers(0, length - 1))] = True
    else:
        mask = [False] * length
    return Example(input=tokens, target=tuple(_draw_vector(draw, k, opts) if m else None for m in mask))


def _check_constrained(constrained: str) -> None:
    if constrained not in ("last", "any", "none"):
        raise ValueError(f"constrained must be 'last', 'any' or 'none', got {constrained!r}")


def examples(d: Size, n: Size, constrained: str = "last", **number_options) -> st.SearchStrategy[Example]:
    """An example of n tokens in Q^d. ``constrained``: "last" (only the last position has a
    target), "any" (each position independently, at least one), "none" (no targets)."""
    _check_constrained(constrained)
    return _built(_draw_example, d, n, constrained, number_options)


def _draw_dataset(draw, d: Size, n_examples: Size, seq_len: Size, constrained: str, opts: dict) -> Dataset:
    k, count = _size(draw, d), _size(draw, n_examples)
    exs = tuple(_draw_example(draw, k, _size(draw, seq_len), constrained, opts) for _ in range(count))
    return Dataset(d=k, examples=exs)


def datasets(
    d: Size,
    n_examples: Size = st.integers(1, 3),
    seq_len: Size = st.integers(1, 3),
    constrained: str = "last",
    **number_options,
) -> st.SearchStrategy[Dataset]:
    """Datasets over Q^d; ``seq_len`` (int or strategy) is drawn anew for every example."""
    _check_constrained(constrained)
    return _built(_draw_dataset, d, n_examples, seq_len, constrained, number_options)


def _draw_prompt(draw, d: Size, m: Size, opts: dict) -> tuple[Vector, ...]:
    k, length = _size(draw, d), _size(draw, m)
    return tuple(_draw_vector(draw, k, opts) for _ in range(length))


def prompts(d: Size, m: Size, **number_options) -> st.SearchStrategy[tuple[Vector, ...]]:
    """Prompts: m tokens in Q^d (m = 0 gives the empty prompt)."""
    return _built(_draw_prompt, d, m, number_options)


def _draw_instance(draw, d: Size, n_layers: Size, n_heads: Size, head_size: Optional[Size], hidden: Optional[Size],
                   attention: Any, positional: Any, lipschitz: Optional[Bound], v_rank: Optional[Size],
                   activation: Any, norm: Any, n_examples: Size, seq_len: Size, prompt_len: Size,
                   constrained: str, score_scale: Bound, opts: dict) -> tuple[Model, Dataset, tuple[Vector, ...]]:
    k = _size(draw, d)
    dataset = _draw_dataset(draw, k, n_examples, seq_len, constrained, opts)
    longest = max(len(ex.input) for ex in dataset.examples)
    model = _draw_model(draw, k, n_layers, n_heads, head_size, hidden, attention, positional,
                        st.integers(longest, longest + 1), lipschitz, v_rank, activation, norm, score_scale, opts)
    return model, dataset, _draw_prompt(draw, k, prompt_len, opts)


def instances(
    d: Size = st.integers(1, 3),
    layers: Size = 1,
    heads: Size = st.integers(1, 2),
    head_size: Optional[Size] = None,
    hidden: Optional[Size] = None,
    attention: Union[None, str, st.SearchStrategy] = None,
    positional: Union[None, bool, st.SearchStrategy] = None,
    lipschitz: Optional[Bound] = None,
    v_rank: Optional[Size] = None,
    activation: Union[str, st.SearchStrategy] = "relu",
    norm: Union[None, str, st.SearchStrategy] = None,
    n_examples: Size = st.integers(1, 2),
    seq_len: Size = st.integers(1, 3),
    prompt_len: Size = st.integers(0, 2),
    constrained: str = "last",
    score_scale: Bound = 1,
    **number_options,
) -> st.SearchStrategy[tuple[Model, Dataset, tuple[Vector, ...]]]:
    """(model, dataset, prompt) with one d; positional encodings cover the longest input."""
    _check_constrained(constrained)
    return _built(_draw_instance, d, layers, heads, head_size, hidden, attention, positional, lipschitz,
                  v_rank, activation, norm, n_examples, seq_len, prompt_len, constrained, score_scale,
                  number_options)
