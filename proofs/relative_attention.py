"""Rigorous enclosures of how far a prompt moves relative attention among the input tokens.

For a query at input position i, head h of layer ℓ, the relative attention over the input
keys c (those in i's context) is r_c = α_ic / Σ_{c' input} α_ic'. THEORY §1 (Lemma 1): at
the FIRST layer r does not depend on the prompt (the input states are the raw tokens and
the prompt only adds terms to the softmax denominator, which cancel in r), so the shift is
exactly 0 there, for every model and prompt. At deeper layers the input states themselves
depend on the prompt, and r can move. The shift of a prompt P at layer ℓ is

    S_ℓ(P) = max over heads h and input queries i of ½ Σ_c |r_c(P) − r_c(∅)|  ∈ [0, 1].

``shift_enclosures`` returns, per layer, exact rationals lo ≤ S_ℓ(P) ≤ hi from arb balls of
every attention weight with and without P (``stack_attention_balls``); lo > 0 PROVES that P
moves relative attention at layer ℓ. ``rounded`` widens them outward to 9 decimals: the
form stored in ``audit`` certificates, recomputed identically by ``proofs.check_audit``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import flint

from promptlimits.constructions.evaluate import stack_attention_balls
from promptlimits.constructions.spec import Model, Vector
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
