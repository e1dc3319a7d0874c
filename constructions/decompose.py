"""Lemma 1 (THEORY §1): what a prompt does to one query of one head, in exact terms.

For query q at an input position, with prompt tokens p_j and input context tokens c_k:
A = Σ_j e^{p_jᵀMq}, v = (1/A) Σ_j e^{p_jᵀMq} V p_j, B = Σ_k e^{c_kᵀMq},
u = (1/B) Σ_k e^{c_kᵀMq} V c_k, and the head output is λ v + (1 − λ) u with λ = A/(A + B).
B and u do not depend on the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from promptlimits.constructions.evaluate import (
    ExpVector, context, dot, matvec, score_matrix, tokens_with_positions, value_matrix,
)
from promptlimits.constructions.spec import Model, Vector
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly


@dataclass(frozen=True)
class Decomposition:
    """(A, A·v, B, B·u) of one head at one query; v, u, λ derived exactly."""

    A: ExpPoly
    Av: tuple[ExpPoly, ...]
    B: ExpPoly
    Bu: tuple[ExpPoly, ...]

    @property
    def lam(self) -> ExpFrac:
        """λ = A / (A + B) (1 with no input context, 0 with no prompt)."""
        return ExpFrac(self.A, self.A + self.B)

    @property
    def v(self) -> tuple[ExpFrac, ...]:
        return tuple(ExpFrac(x, self.A) for x in self.Av)

    @property
    def u(self) -> tuple[ExpFrac, ...]:
        return tuple(ExpFrac(x, self.B) for x in self.Bu)

    def head_output(self) -> ExpVector:
        """λ v + (1 − λ) u = (A v + B u)/(A + B), as an exact vector."""
        return ExpVector(tuple(a + b for a, b in zip(self.Av, self.Bu)), self.A + self.B)


def _weighted(tokens: Sequence[Vector], g: Vector, V) -> tuple[ExpPoly, tuple[ExpPoly, ...]]:
    total = ExpPoly()
    nums = [ExpPoly() for _ in range(len(V))]
    for c in tokens:
        w = ExpPoly.exp(dot(c, g))
        total = total + w
        for k, vk in enumerate(matvec(V, c)):
            if vk:
                nums[k] = nums[k] + w * vk
    return total, tuple(nums)


def decompose(
    model: Model, prompt: Sequence[Vector], X: Sequence[Vector], position: int,
    head: int = 0, layer: int = 0,
) -> Decomposition:
    """Lemma 1's quantities for ``head`` of the first layer at input ``position``, exactly."""
    if layer != 0:
        raise ValueError("the exact decomposition applies to the first layer, whose inputs are rational")
    h = model.layers[layer].heads[head]
    M, V = score_matrix(h, model.score_scale), value_matrix(h)
    xs = tokens_with_positions(model, X)
    m, n = len(prompt), len(xs)
    ctx = context(model, m, position, n)
    g = matvec(M, xs[position])
    inputs = [xs[c - m] for c in ctx if c >= m]
    A, Av = _weighted(prompt, g, V)
    B, Bu = _weighted(inputs, g, V)
    return Decomposition(A, Av, B, Bu)
