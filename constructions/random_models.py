"""Seeded random one-layer models of any size, without Hypothesis.

Hypothesis caps one draw at 8 KiB of choices, which a d = 32 layer already exceeds, so the
full ``reproduce`` run builds its large instances here: entries are small rationals p/q
(|p| ≤ 8, 1 ≤ q ≤ 8) from a seeded ``random.Random``, and W2 is scaled exactly so that
‖W2‖_F·‖W1‖_F ≤ ``lipschitz`` (hence Lip(g) ≤ lipschitz and f is injective when it is < 1).
"""

from __future__ import annotations

import random
from fractions import Fraction

from promptlimits.constructions.spec import Head, Layer, Matrix, Model
from promptlimits.constructions.strategies import lipschitz_scale


def _matrix(rng: random.Random, rows: int, cols: int) -> Matrix:
    return tuple(tuple(Fraction(rng.randint(-8, 8), rng.randint(1, 8)) for _ in range(cols)) for _ in range(rows))


def random_layer_model(d: int, hidden: int, seed: int, lipschitz: Fraction = Fraction(1, 2),
                       attention: str = "bidirectional") -> Model:
    """A one-layer, one-head ReLU model on Q^d with head size d and feed-forward product ≤ ``lipschitz``."""
    rng = random.Random(seed)
    head = Head(*(_matrix(rng, d, d) for _ in range(4)))
    W1, W2 = _matrix(rng, hidden, d), _matrix(rng, d, hidden)
    c = lipschitz_scale(W1, W2, lipschitz)
    W2 = tuple(tuple(c * x for x in row) for row in W2)
    b1 = _matrix(rng, 1, hidden)[0]
    b2 = _matrix(rng, 1, d)[0]
    return Model(d=d, layers=(Layer((head,), W1, b1, W2, b2),), attention=attention)
