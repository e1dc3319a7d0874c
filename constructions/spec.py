"""Model and dataset specifications: frozen dataclasses of exact rationals.

Notation follows THEORY §0: tokens are vectors in Q^d, a head has W_q, W_k, W_v (s×d)
and W_o (d×s), the score matrix is M = W_kᵀ W_q scaled by ``score_scale`` and the value
map is V = W_o W_v; the feed-forward block is f(a) = a + W2 act(W1 a + b1) + b2.
Imported checkpoints (BERT) add attention biases (b_q, b_k, b_v per head, b_o per layer)
and an irrational score scale κ = 1/√s (a :class:`~promptlimits.constructions.surd.Surd`);
both lie outside the exact procedures, which refuse them.
Constructing a spec checks every shape; errors are :class:`InputError` with the field path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.surd import Scale, Surd, require_rational

Vector = tuple[Fraction, ...]
Matrix = tuple[Vector, ...]  # a list of rows

#: Explicit size limits (stated in the README). They bound memory and time, not theory.
LIMITS = {
    "d": 4096,
    "head_size": 4096,
    "hidden": 16384,
    "heads": 64,
    "layers": 64,
    "sequence": 4096,
    "examples": 100_000,
}

ATTENTION_KINDS = ("bidirectional", "causal")
ACTIVATIONS = ("relu", "gelu")
NORMS = (None, "layernorm")


def _check_limit(name: str, value: int, where: str) -> None:
    if value > LIMITS[name]:
        raise InputError(f"{where}: {value} exceeds the limit {LIMITS[name]} on {name}")


def shape(matrix: Matrix) -> tuple[int, int]:
    """(rows, columns) of a non-empty rectangular matrix."""
    return len(matrix), len(matrix[0]) if matrix else 0


def _expect_shape(matrix: Matrix, rows: int, cols: int, where: str) -> None:
    got = shape(matrix)
    if got != (rows, cols):
        raise InputError(f"{where}: expected shape {rows}x{cols}, got {got[0]}x{got[1]}")
    for i, row in enumerate(matrix):
        if len(row) != cols:
            raise InputError(f"{where}[{i}]: expected {cols} entries, got {len(row)}")


def _zero_to_none(obj: object, sizes: dict[str, int]) -> None:
    """Store an all-zero optional bias of the right length as None, so that equal maps have
    equal specs (a bias of the wrong length is left for ``check`` to report)."""
    for name, size in sizes.items():
        vec = getattr(obj, name)
        if vec is not None and len(vec) == size and not any(vec):
            object.__setattr__(obj, name, None)


@dataclass(frozen=True)
class Head:
    """One attention head: score c ↦ κ·(W_k c + b_k)ᵀ(W_q x + b_q), value c ↦ W_o (W_v c + b_v).

    Without biases (None, the default) this is THEORY §0's cᵀ M x with M = κ W_kᵀ W_q and
    value V c with V = W_o W_v."""

    W_q: Matrix
    W_k: Matrix
    W_v: Matrix
    W_o: Matrix
    b_q: Optional[Vector] = None
    b_k: Optional[Vector] = None
    b_v: Optional[Vector] = None

    def __post_init__(self) -> None:
        _zero_to_none(self, {"b_q": len(self.W_q), "b_k": len(self.W_q), "b_v": len(self.W_v)})

    @property
    def head_size(self) -> int:
        return len(self.W_q)

    @property
    def has_bias(self) -> bool:
        return any(v is not None for v in (self.b_q, self.b_k, self.b_v))

    def check(self, d: int, where: str) -> None:
        s = self.head_size
        if s == 0:
            raise InputError(f"{where}.W_q: empty matrix")
        _check_limit("head_size", s, f"{where}.W_q")
        _expect_shape(self.W_q, s, d, f"{where}.W_q")
        _expect_shape(self.W_k, s, d, f"{where}.W_k")
        _expect_shape(self.W_v, len(self.W_v), d, f"{where}.W_v")
        if not self.W_v:
            raise InputError(f"{where}.W_v: empty matrix")
        _expect_shape(self.W_o, d, len(self.W_v), f"{where}.W_o")
        for name, size in (("b_q", s), ("b_k", s), ("b_v", len(self.W_v))):
            vec = getattr(self, name)
            if vec is not None and len(vec) != size:
                raise InputError(f"{where}.{name}: expected length {size}, got {len(vec)}")


@dataclass(frozen=True)
class Layer:
    """One transformer layer: attention heads, then the residual feed-forward block.

    With ``norm == "layernorm"`` the layer is post-norm (BERT): a = LN1(x + attn(x)),
    y = LN2(a + g(a)), with optional gains and biases (default 1 and 0) and ``ln_eps``.
    ``b_o`` (default none) is added once to the sum of the heads (BERT's output bias).
    """

    heads: tuple[Head, ...]
    W1: Matrix
    b1: Vector
    W2: Matrix
    b2: Vector
    activation: str = "relu"
    norm: Optional[str] = None
    ln_eps: Fraction = Fraction(1, 10**12)
    ln1_gain: Optional[Vector] = None
    ln1_bias: Optional[Vector] = None
    ln2_gain: Optional[Vector] = None
    ln2_bias: Optional[Vector] = None
    b_o: Optional[Vector] = None

    def __post_init__(self) -> None:
        _zero_to_none(self, {"b_o": len(self.W2)})

    @property
    def hidden(self) -> int:
        return len(self.W1)

    def check(self, d: int, where: str) -> None:
        if not self.heads:
            raise InputError(f"{where}.heads: a layer needs at least one head")
        _check_limit("heads", len(self.heads), f"{where}.heads")
        for h, head in enumerate(self.heads):
            head.check(d, f"{where}.heads[{h}]")
        r = self.hidden
        if r == 0:
            raise InputError(f"{where}.W1: empty matrix")
        _check_limit("hidden", r, f"{where}.W1")
        _expect_shape(self.W1, r, d, f"{where}.W1")
        _expect_shape(self.W2, d, r, f"{where}.W2")
        if len(self.b1) != r:
            raise InputError(f"{where}.b1: expected length {r}, got {len(self.b1)}")
        if len(self.b2) != d:
            raise InputError(f"{where}.b2: expected length {d}, got {len(self.b2)}")
        if self.activation not in ACTIVATIONS:
            raise InputError(f"{where}.activation: {self.activation!r} is not one of {ACTIVATIONS}")
        if self.norm not in NORMS:
            raise InputError(f"{where}.norm: {self.norm!r} is not null or 'layernorm'")
        if self.ln_eps <= 0:
            raise InputError(f"{where}.ln_eps: must be positive")
        for name in ("ln1_gain", "ln1_bias", "ln2_gain", "ln2_bias", "b_o"):
            vec = getattr(self, name)
            if vec is not None and len(vec) != d:
                raise InputError(f"{where}.{name}: expected length {d}, got {len(vec)}")

    @property
    def is_exact_relu(self) -> bool:
        """True when the feed-forward block lies inside the exact procedures' hypotheses
        (ReLU, no layer norm); the attention's own conditions are :attr:`has_attention_bias`."""
        return self.activation == "relu" and self.norm is None

    @property
    def has_attention_bias(self) -> bool:
        return self.b_o is not None or any(h.has_bias for h in self.heads)


@dataclass(frozen=True)
class Model:
    """A stack of layers acting on tokens in Q^d; prompts are prepended (THEORY §0)."""

    d: int
    layers: tuple[Layer, ...]
    attention: str = "bidirectional"
    score_scale: Scale = Fraction(1)
    positional: Optional[tuple[Vector, ...]] = None
    from_floats: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        where = "model"
        if self.d < 1:
            raise InputError(f"{where}.d: must be a positive integer, got {self.d}")
        _check_limit("d", self.d, f"{where}.d")
        if self.attention not in ATTENTION_KINDS:
            raise InputError(f"{where}.attention: {self.attention!r} is not one of {ATTENTION_KINDS}")
        if not isinstance(self.score_scale, Surd) and self.score_scale <= 0:
            raise InputError(f"{where}.score_scale: must be positive")
        if not self.layers:
            raise InputError(f"{where}.layers: a model needs at least one layer")
        _check_limit("layers", len(self.layers), f"{where}.layers")
        for i, layer in enumerate(self.layers):
            layer.check(self.d, f"{where}.layers[{i}]")
        if self.positional is not None:
            if not self.positional:
                raise InputError(f"{where}.positional: empty list (use null for none)")
            _check_limit("sequence", len(self.positional), f"{where}.positional")
            for i, vec in enumerate(self.positional):
                if len(vec) != self.d:
                    raise InputError(f"{where}.positional[{i}]: expected length {self.d}, got {len(vec)}")

    @property
    def is_exact(self) -> bool:
        """True when the exact procedures apply: every layer ReLU without normalisation or
        attention biases, and a rational score scale."""
        return (not isinstance(self.score_scale, Surd)
                and all(layer.is_exact_relu and not layer.has_attention_bias for layer in self.layers))

    @property
    def rational_score_scale(self) -> Fraction:
        """κ as a rational; InputError when it is a square root (exact procedures need Q)."""
        return require_rational(self.score_scale)

    def max_length(self) -> Optional[int]:
        """Longest input the positional encodings cover (None: unlimited)."""
        return None if self.positional is None else len(self.positional)


@dataclass(frozen=True)
class Example:
    """One (X, Y) pair: n input tokens and, per position, a target token or None."""

    input: tuple[Vector, ...]
    target: tuple[Optional[Vector], ...]

    def constrained(self) -> tuple[int, ...]:
        """The positions whose output is constrained."""
        return tuple(i for i, y in enumerate(self.target) if y is not None)


@dataclass(frozen=True)
class Dataset:
    """A list of examples over tokens in Q^d."""

    d: int
    examples: tuple[Example, ...]

    def __post_init__(self) -> None:
        where = "dataset"
        if self.d < 1:
            raise InputError(f"{where}.d: must be a positive integer, got {self.d}")
        _check_limit("d", self.d, f"{where}.d")
        if not self.examples:
            raise InputError(f"{where}.examples: no examples")
        _check_limit("examples", len(self.examples), f"{where}.examples")
        for i, ex in enumerate(self.examples):
            w = f"{where}.examples[{i}]"
            if not ex.input:
                raise InputError(f"{w}.input: empty sequence")
            _check_limit("sequence", len(ex.input), f"{w}.input")
            if len(ex.target) != len(ex.input):
                raise InputError(
                    f"{w}.target: {len(ex.target)} entries for {len(ex.input)} input positions"
                )
            for j, tok in enumerate(ex.input):
                if len(tok) != self.d:
                    raise InputError(f"{w}.input[{j}]: expected length {self.d}, got {len(tok)}")
            for j, tok in enumerate(ex.target):
                if tok is not None and len(tok) != self.d:
                    raise InputError(f"{w}.target[{j}]: expected length {self.d}, got {len(tok)}")


def single_exact_layer(model: Model, what: str) -> Layer:
    """The model's only layer; InputError unless the model is one ReLU layer without layer
    norm, the hypotheses of the exact single-layer procedures (``what`` names the caller)."""
    if len(model.layers) != 1:
        raise InputError(f"model: {what} covers one layer, this model has {len(model.layers)}")
    if not model.layers[0].is_exact_relu:
        raise InputError(f"model: {what} needs a ReLU feed-forward block without layer norm")
    if not model.is_exact:
        raise InputError(f"model: {what} needs a rational score scale and no attention biases")
    return model.layers[0]


def check_compatible(model: Model, dataset: Dataset, where: str = "dataset") -> None:
    """Raise InputError unless the dataset's tokens live in the model's R^d and fit its encodings."""
    if model.d != dataset.d:
        raise InputError(f"{where}.d: dataset has d = {dataset.d} but the model has d = {model.d}")
    limit = model.max_length()
    if limit is not None:
        for i, ex in enumerate(dataset.examples):
            if len(ex.input) > limit:
                raise InputError(
                    f"{where}.examples[{i}].input: {len(ex.input)} positions but the model's "
                    f"positional encodings cover {limit}"
                )


def check_prompt(model: Model, prompt: tuple[Vector, ...], where: str = "prompt") -> None:
    """Raise InputError unless every prompt token lies in Q^d."""
    for j, tok in enumerate(prompt):
        if len(tok) != model.d:
            raise InputError(f"{where}[{j}]: expected length {model.d}, got {len(tok)}")
