"""Rigorous enclosures of how far a prompt moves relative attention among the input tokens.

For a query at input position i, head h of layer ℓ, the relative attention over the input
keys c (those in i's context) is r_c = α_ic / Σ_{c' input} α_ic'. THEORY §1 (Lemma 1): at
the FIRST layer r does not depend on the prompt (the input states are the raw tokens and
the prompt only adds terms to the softmax denominator, which cancel in r), so the shift is
exactly 0 there, for every model and prompt. At deeper layers the input states themselves
depend on the prompt, and r can move. The shift of a prompt P at layer ℓ is

    S_ℓ(P) = max over heads h and input queries i of ½ Σ_c |r_c(P) − r_c(∅)|  ∈ [0, 1].

``first_layer_invariant`` DECIDES S_1(P) = 0 exactly for given weights, X and P, by
computing every relative attention weight of the first layer, with and without P, as a
quotient of exp-polynomials and testing equality symbolically (see its docstring for why
this is exact even for BERT's irrational κ = 1/√s). ``shift_enclosures`` returns, per
layer, exact rationals lo ≤ S_ℓ(P) ≤ hi from arb balls of every attention weight with and
without P (``stack_attention_balls``); lo > 0 PROVES that P moves relative attention at
layer ℓ. ``rounded`` widens them outward to 9 decimals: the form stored in ``audit``
certificates, recomputed identically by ``proofs.check_audit``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import flint

from promptlimits.constructions.evaluate import stack_attention_balls, tokens_with_positions
from promptlimits.constructions.spec import Head, Model, Vector
from promptlimits.proofs import linalg
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly
from promptlimits.proofs.interval import precision

#: Decimals of the outward-rounded enclosures stored in certificates.
DIGITS = 9


def _exact(point: flint.arb) -> Fraction:
    """The exact rational value of an arb with radius 0 (an endpoint)."""
    man, exp = point.man_exp()
    return Fraction(int(man)) * Fraction(2) ** int(exp)


def _relative(weights: Sequence[flint.arb], first: int) -> list[flint.arb]:
    keys = weights[first:]
    total = sum(keys, flint.arb(0))
    return [w / total for w in keys]


def _raw_scores(head: Head, seq: Sequence[Vector]) -> list[list[Fraction]]:
    """σ[t][c] = (W_k c + b_k)ᵀ(W_q x_t + b_q), exactly: the score before the scale κ."""
    S = linalg.columns(seq)
    Q, K = linalg.matmul(head.W_q, S), linalg.matmul(head.W_k, S)
    bq = head.b_q or (Fraction(0),) * len(Q)
    bk = head.b_k or (Fraction(0),) * len(K)
    q = [[Q[a][t] + bq[a] for a in range(len(Q))] for t in range(len(seq))]
    k = [[K[a][c] + bk[a] for a in range(len(K))] for c in range(len(seq))]
    return [[sum((u * v for u, v in zip(q[t], k[c])), Fraction(0)) for c in range(len(seq))] for t in range(len(seq))]


def _relative_exact(model: Model, sigma: list[list[Fraction]], t: int, first: int, total: int) -> list[ExpFrac]:
    """r_c = α_tc / Σ_{c' ≥ first} α_tc' over the keys c ≥ first of t's context, exactly."""
    ctx = range(total) if model.attention == "bidirectional" else range(t + 1)
    weights = {c: ExpPoly.exp(sigma[t][c]) for c in ctx}
    Z = sum(weights.values(), ExpPoly())
    alpha = {c: ExpFrac(w, Z) for c, w in weights.items()}
    inputs = sum((alpha[c] for c in ctx if c >= first), ExpFrac(0))
    return [alpha[c] / inputs for c in ctx if c >= first]


def first_layer_invariant(model: Model, X: Sequence[Vector], prompt: Sequence[Vector]) -> bool:
    """Decide exactly whether r_c(P) = r_c(∅) at the first layer, for every head, input query
    and input key in its context (THEORY §1 says yes; this computes it for the given weights).

    Exactness. The weight of key c for query t is e^{κσ} with σ = (W_k c + b_k)ᵀ(W_q x_t + b_q)
    rational. Exp-polynomials here carry σ as their exponent and stand for Σ a·e^{κσ}: that
    map is a ring homomorphism into R, and it is injective on canonical forms because κσ is
    algebraic (κ rational, or √r) and distinct σ give distinct κσ, so by Lindemann–Weierstrass
    Σ a·e^{κσ} = 0 iff every a = 0. The symbolic zero test behind ``ExpFrac ==`` is
    therefore exact for every κ this project accepts; no sign is ever evaluated.
    """
    m, n = len(prompt), len(X)
    xs = tokens_with_positions(model, X)
    with_prompt, without = tuple(prompt) + xs, xs
    for head in model.layers[0].heads:
        sp, s0 = _raw_scores(head, with_prompt), _raw_scores(head, without)
        for i in range(n):
            if _relative_exact(model, sp, m + i, m, m + n) != _relative_exact(model, s0, i, 0, n):
                return False
    return True


def shift_enclosures(model: Model, X: Sequence[Vector], prompt: Sequence[Vector],
                     bits: int = 128) -> list[tuple[Fraction, Fraction]]:
    """Per layer, exact rationals (lo, hi) with lo ≤ S_ℓ(prompt) ≤ hi (clipped to [0, 1])."""
    m = len(prompt)
    with_prompt = stack_attention_balls(model, prompt, X, bits)
    without = stack_attention_balls(model, (), X, bits)
    out = []
    with precision(bits):
        for heads_p, heads_0 in zip(with_prompt, without):
            lo, hi = Fraction(0), Fraction(0)
            for wp, w0 in zip(heads_p, heads_0):
                for i in range(len(X)):
                    rp, r0 = _relative(wp[m + i], m), _relative(w0[i], 0)
                    tv = sum((abs(a - b) for a, b in zip(rp, r0)), flint.arb(0)) / 2
                    lo = max(lo, _exact(tv.lower()))
                    hi = max(hi, _exact(tv.upper()))
            out.append((lo, min(hi, Fraction(1))))  # a total variation never exceeds 1
    return out


def rounded(lo: Fraction, hi: Fraction) -> tuple[Fraction, Fraction]:
    """(⌊10⁹·lo⌋/10⁹, ⌈10⁹·hi⌉/10⁹): the same enclosure, widened to 9 decimals."""
    scale = 10**DIGITS
    return Fraction(math.floor(lo * scale), scale), Fraction(math.ceil(hi * scale), scale)
