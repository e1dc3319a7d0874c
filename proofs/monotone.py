"""A structural sufficient condition for injectivity: f is strongly monotone in some P-norm.

Claim: if a symmetric P ≻ 0 and λ_j ≥ 0 satisfy P·W2[:, j] = λ_j·W1[j]ᵀ for every unit j
with a non-zero row W1[j] (constant units only shift f), then f(x) = x + W2 ReLU(W1 x + b1)
+ b2 is injective. Proof: with s_j(x) = W1[j]·x + b1[j] and ρ = ReLU (monotone),
    ⟨P(f(x) − f(y)), x − y⟩ = ‖x − y‖²_P + Σ_j λ_j (s_j(x) − s_j(y))(ρ(s_j(x)) − ρ(s_j(y)))
                             ≥ ‖x − y‖²_P > 0 for x ≠ y.
With P = I this is f = x + ∇φ, φ = Σ λ_j ReLU(s_j)²/2 convex (the gradient-of-convex
blocks of THEORY §7, whose Lipschitz product may be far above 1); a general P covers
their conjugates T⁻¹∘f∘T (P = TᵀT).

Search: the conditions are linear homogeneous in (P, λ); the exact nullspace gives the
candidates (P = I is also tried), and P ≻ 0 is certified by LDLᵀ pivots. All exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from promptlimits.proofs.linalg import nullspace, positive_definite_pivots
from promptlimits.proofs.regions import Block

Matrix = tuple[tuple[Fraction, ...], ...]


@dataclass(frozen=True)
class Monotone:
    """P ≻ 0 (with its LDLᵀ pivots) and λ ≥ 0 with P·W2[:, j] = λ_j W1[j]ᵀ (λ_j = 0 for constant units)."""

    P: Matrix
    lam: tuple[Fraction, ...]
    pivots: tuple[Fraction, ...]


def _units(block: Block) -> list[int]:
    return [j for j, row in enumerate(block.W1) if any(w != 0 for w in row)]


def check(block: Block, p: Matrix, lam: tuple[Fraction, ...]) -> Optional[tuple[Fraction, ...]]:
    """The pivots of P when (P, λ) proves strong monotonicity of f, else None (exact)."""
    d = block.d
    if len(p) != d or any(len(row) != d for row in p) or len(lam) != block.r:
        return None
    if any(p[i][k] != p[k][i] for i in range(d) for k in range(i)):
        return None
    pivots = positive_definite_pivots(p)
    if pivots is None:
        return None
    for j in _units(block):
        if lam[j] < 0:
            return None
        col = [block.W2[k][j] for k in range(d)]
        pw = [sum((p[i][k] * col[k] for k in range(d)), Fraction(0)) for i in range(d)]
        if pw != [lam[j] * w for w in block.W1[j]]:
            return None
    return pivots


def _from_vector(block: Block, v: tuple[Fraction, ...]) -> tuple[Matrix, tuple[Fraction, ...]]:
    d = block.d
    p = [[Fraction(0)] * d for _ in range(d)]
    k = 0
    for i in range(d):
        for c in range(i, d):
            p[i][c] = p[c][i] = v[k]
            k += 1
    lam = [Fraction(0)] * block.r
    for j, value in zip(_units(block), v[k:]):
        lam[j] = value
    return tuple(map(tuple, p)), tuple(lam)


def find(block: Block) -> Optional[Monotone]:
    """A certificate (P, λ) of strong monotonicity, or None when none was found."""
    d = block.d
    units = _units(block)
    candidates: list[tuple[Matrix, tuple[Fraction, ...]]] = []
    eye = tuple(tuple(Fraction(int(i == k)) for k in range(d)) for i in range(d))
    lam_eye = [Fraction(0)] * block.r
    for j in units:
        lead = next(k for k, w in enumerate(block.W1[j]) if w != 0)
        lam_eye[j] = block.W2[lead][j] / block.W1[j][lead]
    candidates.append((eye, tuple(lam_eye)))
    pairs = [(i, c) for i in range(d) for c in range(i, d)]
    n_p = len(pairs)
    if n_p + len(units) <= 400:
        rows = []
        for j_index, j in enumerate(units):
            for i in range(d):  # (P w2_j)_i − λ_j W1[j][i] = 0
                row = [Fraction(0)] * (n_p + len(units))
                for k, (a, b) in enumerate(pairs):
                    if a == i:
                        row[k] += block.W2[b][j]
                    if b == i and a != b:
                        row[k] += block.W2[a][j]
                row[n_p + j_index] = -block.W1[j][i]
                rows.append(row)
        basis = nullspace(rows) if rows else ()
        if len(basis) == 1:
            v = basis[0]
            trace = sum(v[k] for k, (a, b) in enumerate(pairs) if a == b)
            sign = -1 if trace < 0 else 1
            candidates.append(_from_vector(block, tuple(sign * x for x in v)))
    for p, lam in candidates:
        pivots = check(block, p, lam)
        if pivots is not None:
            return Monotone(p, lam, pivots)
    return None
