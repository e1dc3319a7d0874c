"""Model and dataset specifications: frozen dataclasses of exact rationals.

Notation follows THEORY §0: tokens are vectors in Q^d, a head has W_q, W_k, W_v (s×d)
and W_o (d×s), the score matrix is M = W_kᵀ W_q scaled by ``score_scale`` and the value
map is V = W_o W_v; the feed-forward block is f(a) = a + W2 act(W1 a + b1) + b2.
Constructing a spec checks every shape; errors are :class:`InputError` with the field path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from promptlimits.constructions.errors import InputError

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


@dataclass(frozen=True)
class Head:
    """One attention head: score c ↦ κ·cᵀ W_kᵀ W_q x, value c ↦ W_o W_v c."""

    W_q: Matrix
    W_k: Matrix
    W_v: Matrix
    W_o: Matrix

    @property
    def head_size(self) -> int:
        return len(self.W_q)

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


@dataclass(frozen=True)
class Layer:
    """One transformer layer: attention heads, then the residual feed-forward block.

    With ``norm == "layernorm"`` the layer is post-norm (BERT): a = LN1(x + attn(x)),
    y = LN2(a + g(a)), with optional gains and biases (default 1 and 0) and ``ln_eps``.
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
        for name in ("ln1_gain", "ln1_bias", "ln2_gain", "ln2_bias"):
            vec = getattr(self, name)
            if vec is not None and len(vec) != d:
                raise InputError(f"{where}.{name}: expected length {d}, got {len(vec)}")

    @property
    def is_exact_relu(self) -> bool:
        """True when this layer lies inside the exact procedures' hypotheses (ReLU, no norm)."""
        return self.activation == "relu" and self.norm is None


@dataclass(frozen=True)
class Model:
    """A stack of layers acting on tokens in Q^d; prompts are prepended (THEORY §0)."""

    d: int
    layers: tuple[Layer, ...]
    attention: str = "bidirectional"
    score_scale: Fraction = Fraction(1)
    positional: Optional[tuple[Vector, ...]] = None
    from_floats: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        where = "model"
        if self.d < 1:
            raise InputError(f"{where}.d: must be a positive integer, got {self.d}")
        _check_limit("d", self.d, f"{where}.d")
        if self.attention not in ATTENTION_KINDS:
            raise InputError(f"{where}.attention: {self.attention!r} is not one of {ATTENTION_KINDS}")
        if self.score_scale <= 0:
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
        """True when every layer is ReLU without normalisation (exact procedures apply)."""
        return all(layer.is_exact_relu for layer in self.layers)

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
