"""How far a prompt moves the relative attention among the input tokens, layer by layer.

For a query at input position i, head h of layer ℓ, the relative attention over the input
keys c (those in i's context) is r_c = α_ic / Σ_{c' input} α_ic'. THEORY §1 (Lemma 1): at
the FIRST layer r does not depend on the prompt, because the input states there are the
raw tokens and the prompt only adds terms to the softmax denominator, which cancel in r.
So the first-layer shift is exactly 0, for every model and prompt. At deeper layers the
input states themselves depend on the prompt (each attended to it), so r can move. The
shift of a prompt P at layer ℓ is

    S_ℓ(P) = max over heads h and input queries i of ½ Σ_c |r_c(P) − r_c(∅)|  ∈ [0, 1]

(total variation). The twin measures S_ℓ in float64 over seeded prompts. For the prompt
with the largest deeper-layer shift, rigorous balls (``stack_attention_balls``) then give
an enclosure of S_ℓ at every layer: at layer 1 its upper end bounds the rounding of an
exact 0; at a deeper layer a lower end > 0 PROVES that this prompt moves relative
attention there (prompts are not confined to Lemma 1's one-layer picture).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import flint
import numpy as np
import torch

from promptlimits.constructions.evaluate import stack_attention_balls
from promptlimits.constructions.spec import Model, Vector
from promptlimits.numerics.twin import Twin
from promptlimits.proofs.interval import precision


@dataclass(frozen=True)
class LayerShift:
    """Per layer (0-based): float64 mean and max of S_ℓ over the prompts, and the rigorous
    enclosure [lower, upper] of S_ℓ on the worst prompt (None when not computed)."""

    layer: int
    mean: float
    max: float
    lower: Optional[float]
    upper: Optional[float]

    @property
    def certified_moved(self) -> bool:
        """True when the enclosure proves the prompt moved relative attention (S_ℓ > 0)."""
        return self.lower is not None and self.lower > 0

    def to_json(self) -> dict:
        return {"layer": self.layer, "float_mean": self.mean, "float_max": self.max,
                "certified_lower": self.lower, "certified_upper": self.upper,
                "certified_moved": self.certified_moved}


def float_shifts(model: Model, X: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """S_ℓ(P_k) in float64 for X [n, d] and prompts [K, m, d]: an array [K, L]."""
    twin = Twin(model)
    m = prompts.shape[1]
    x = torch.tensor(X, dtype=torch.float64)[None]
    p = torch.tensor(prompts, dtype=torch.float64)
    with torch.no_grad():
        base = twin.attention(x)
        moved = twin.attention(x.expand(len(prompts), *x.shape[1:]), p)
    out = []
    for a0, ap in zip(base, moved):
        rp = ap[:, :, m:, m:]
        rp = rp / rp.sum(-1, keepdim=True)
        tv = 0.5 * (rp - a0).abs().sum(-1)  # [K, H, n]
        out.append(tv.amax(dim=(1, 2)).numpy())
    return np.stack(out, axis=1)


def _relative(weights: Sequence[flint.arb], first: int) -> list[flint.arb]:
    keys = weights[first:]
    total = sum(keys, flint.arb(0))
    return [w / total for w in keys]


def certified_shifts(model: Model, X: Sequence[Vector], prompt: Sequence[Vector],
                     bits: int = 128) -> list[tuple[float, float]]:
    """Per layer, [lower, upper] of a rigorous enclosure of S_ℓ(prompt) (floats rounded outward)."""
    m = len(prompt)
    with_prompt = stack_attention_balls(model, prompt, X, bits)
    without = stack_attention_balls(model, (), X, bits)
    out = []
    with precision(bits):
        for heads_p, heads_0 in zip(with_prompt, without):
            lower, upper = 0.0, 0.0
            for wp, w0 in zip(heads_p, heads_0):
                for i in range(len(X)):
                    rp, r0 = _relative(wp[m + i], m), _relative(w0[i], 0)
                    tv = sum((abs(a - b) for a, b in zip(rp, r0)), flint.arb(0)) / 2
                    lower = max(lower, _down(tv.lower()))
                    upper = max(upper, _up(tv.upper()))
            out.append((lower, upper))
    return out


def _down(x: flint.arb) -> float:
    """A float ≤ the ball's (exact) lower end."""
    return float(np.nextafter(float(x.mid()), -np.inf)) if x != 0 else 0.0


def _up(x: flint.arb) -> float:
    """A float ≥ the ball's (exact) upper end."""
    return float(np.nextafter(float(x.mid()), np.inf)) if x != 0 else 0.0


def measure(model: Model, samples: int = 8, tokens: int = 4, prompt_length: int = 2, seed: int = 0,
            bits: int = 128, certify: bool = True) -> list[LayerShift]:
    """S_ℓ over ``samples`` seeded Gaussian prompts on one seeded Gaussian input of ``tokens``
    tokens (entries N(0, 1), taken as exact binary rationals), with the worst prompt certified."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(tokens, model.d))
    prompts = rng.normal(size=(samples, prompt_length, model.d))
    shifts = float_shifts(model, X, prompts)
    bounds: list[tuple[Optional[float], Optional[float]]] = [(None, None)] * shifts.shape[1]
    if certify:
        worst = int(shifts[:, 1:].max(axis=1).argmax()) if shifts.shape[1] > 1 else 0
        exact = lambda a: [tuple(Fraction(v) for v in row) for row in a.tolist()]  # noqa: E731
        bounds = certified_shifts(model, exact(X), exact(prompts[worst]), bits)
    return [LayerShift(l, float(shifts[:, l].mean()), float(shifts[:, l].max()), lo, hi)
            for l, (lo, hi) in enumerate(bounds)]
