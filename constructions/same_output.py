"""Same-output pairs: two different inputs that must map to one output (reproduce E2).

For a one-layer model with query token q (the last position) and two different context
tokens c_1 ≠ c_2, the examples [c_1, q] and [c_2, q] both ask for y = f(z) at the last
position, with z = q + V e for a value direction V e ≠ 0 (so z − q ∈ col(V)).

Why it is not memorizable (f injective, one head). Theorem 1's equations read
v = (z − q) + B_i a (z − q − u_i) for i = 1, 2; subtracting,
a · (B_1 (z − q − u_1) − B_2 (z − q − u_2)) = 0. When the bracket is non-zero this forces
a = 0, i.e. an infinite prompt weight A = 1/a: no prompt realises both targets.

Why the loss still tends to 0. With v = z − q and A → ∞ (λ → 1) both attention outputs
tend to q + v = z, and A can be made as large as wanted by Lemma 2 (one token along a
direction outside row(V), a growing score when g ∈ row(V), or more tokens when g = 0). The
infimum of the loss is 0 but it is not attained.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import matvec, tokens_with_positions, value_matrix
from promptlimits.constructions.spec import Dataset, Example, Model, Vector
from promptlimits.constructions.feed_forward import forward


@dataclass(frozen=True)
class SameOutputPair:
    """The dataset and the rational quantities of the argument above."""

    dataset: Dataset
    query: Vector
    contexts: tuple[Vector, Vector]
    z: Vector
    target: Vector


def _units(d: int) -> list[Vector]:
    return [tuple(Fraction(int(i == j)) for j in range(d)) for i in range(d)]


def same_output_pair(model: Model, scale: Fraction = Fraction(1)) -> SameOutputPair:
    """Build the pair for a one-layer, one-head model; InputError when V = 0 or d is too small.

    The bracket B_1 (z − q − u_1) − B_2 (z − q − u_2) is checked to be non-zero exactly, so
    Theorem 1 really forces a = 0 for the returned dataset.
    """
    if len(model.layers) != 1 or len(model.layers[0].heads) != 1:
        raise InputError("same-output pairs are built for one layer with one head")
    if model.positional is not None and len(model.positional) < 2:
        raise InputError("the model's positional encodings must cover two positions")
    d = model.d
    V = value_matrix(model.layers[0].heads[0])
    direction = next((e for e in _units(d) if any(matvec(V, e))), None)
    if direction is None:
        raise InputError("V = 0: a prompt cannot move this layer's output at all")
    units = _units(d)
    for q in units + [tuple(Fraction(0) for _ in range(d))]:
        for c1, c2 in ((units[0], tuple(-x for x in units[0])), (units[0], tuple(Fraction(0) for _ in range(d)))):
            pair = _try(model, q, tuple(scale * x for x in c1), tuple(scale * x for x in c2), V, direction)
            if pair is not None:
                return pair
    raise InputError("no same-output pair with a non-zero bracket among the candidate tokens")


def _try(model: Model, q: Vector, c1: Vector, c2: Vector, V, direction: Vector) -> SameOutputPair | None:
    pos = model.positional
    raw_q = q if pos is None else tuple(a - b for a, b in zip(q, pos[1]))
    raws = [c if pos is None else tuple(a - b for a, b in zip(c, pos[0])) for c in (c1, c2)]
    z = tuple(a + b for a, b in zip(q, matvec(V, direction)))
    brackets = []
    for raw in raws:
        X = (raw, raw_q)
        assert tokens_with_positions(model, X)[1] == q
        dec = decompose(model, (), X, 1)
        # B (z − q − u) = (z − q)·B − B u, coordinate-wise exp-polynomials
        brackets.append(tuple(dec.B * (zk - qk) - bu for zk, qk, bu in zip(z, q, dec.Bu)))
    if all((a - b).is_zero() for a, b in zip(*brackets)):
        return None
    y = forward(model.layers[0], z)
    examples = tuple(Example(input=(raw, raw_q), target=(None, y)) for raw in raws)
    return SameOutputPair(Dataset(d=model.d, examples=examples), q, (c1, c2), z, y)

