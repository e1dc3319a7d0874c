"""The residual ReLU block f(z) = z + W2 ReLU(W1 z + b1) + b2 on rational points, exactly.

``forward`` evaluates f at a rational z in python-flint rational arithmetic (ReLU's sign is
exact on rationals). ``flint_block`` holds a layer's matrices as flint rational matrices
(and floats, for proposals), built once per layer object and shared with the exact
preimage search of ``proofs.preimage``; ``by_identity`` is that per-object cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import flint
import numpy as np

from promptlimits.constructions.spec import Layer, Vector


@dataclass(frozen=True)
class FlintBlock:
    """The layer's matrices as flint matrices and floats (built once per layer)."""

    d: int
    r: int
    W1: flint.fmpq_mat
    b1: flint.fmpq_mat
    W2: flint.fmpq_mat
    b2: flint.fmpq_mat
    W1f: np.ndarray
    b1f: np.ndarray
    W2f: np.ndarray
    b2f: np.ndarray
    W2cols: tuple  # W2's entries column by column (fmpq), to mask inactive units quickly
    ident: flint.fmpq_mat


def fmpq_matrix(rows: Sequence[Sequence[Fraction]]) -> flint.fmpq_mat:
    flat = [flint.fmpq(x.numerator, x.denominator) for row in rows for x in row]
    return flint.fmpq_mat(len(rows), len(rows[0]), flat)


def fmpq_column(v: Sequence[Fraction]) -> flint.fmpq_mat:
    return flint.fmpq_mat(len(v), 1, [flint.fmpq(x.numerator, x.denominator) for x in v])


def fractions_of(m: flint.fmpq_mat) -> Vector:
    """A flint column as a tuple of Fractions."""
    return tuple(Fraction(int(m[i, 0].p), int(m[i, 0].q)) for i in range(m.nrows()))


def by_identity(fn):
    """Cache ``fn(obj, *rest)`` by the identity of obj (specs are immutable, hashing them is slow)."""
    cache: dict = {}

    def wrapper(obj, *rest):
        key = (id(obj),) + rest
        hit = cache.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = fn(obj, *rest)
        if len(cache) > 256:
            cache.clear()
        cache[key] = (obj, value)
        return value

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


@by_identity
def flint_block(layer: Layer) -> FlintBlock:
    """The layer's feed-forward block as flint matrices; ValueError outside ReLU without layer norm."""
    if not layer.is_exact_relu:
        raise ValueError("exact feed-forward evaluation needs a ReLU block without layer norm")
    d, r = len(layer.W2), len(layer.W1)
    return FlintBlock(
        d=d, r=r,
        W1=fmpq_matrix(layer.W1), b1=fmpq_column(layer.b1), W2=fmpq_matrix(layer.W2), b2=fmpq_column(layer.b2),
        W1f=np.array(layer.W1, dtype=float), b1f=np.array(layer.b1, dtype=float),
        W2f=np.array(layer.W2, dtype=float), b2f=np.array(layer.b2, dtype=float),
        W2cols=tuple(tuple(flint.fmpq(row[j].numerator, row[j].denominator) for row in layer.W2) for j in range(r)),
        ident=flint.fmpq_mat(d, d, [int(i == j) for i in range(d) for j in range(d)]),
    )


def forward(layer: Layer, z: Sequence[Fraction]) -> Vector:
    """f(z) exactly, for a rational z."""
    b = flint_block(layer)
    zc = fmpq_column(z)
    pre = b.W1 * zc + b.b1
    h = flint.fmpq_mat(b.r, 1, [pre[j, 0] if pre[j, 0] > 0 else 0 for j in range(b.r)])
    return fractions_of(zc + b.W2 * h + b.b2)
