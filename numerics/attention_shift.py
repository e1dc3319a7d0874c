"""How far prompts move the relative attention among the input tokens, layer by layer.

S_ℓ(P) is defined in ``proofs.relative_attention`` (the total-variation shift of the
renormalised input attention; exactly 0 at the first layer by THEORY §1). The twin
measures S_ℓ in float64 over seeded prompts; for the prompt with the largest deeper-layer
shift the proofs module then decides S_1 = 0 exactly and encloses S_ℓ rigorously at every
layer: a lower end > 0 PROVES that this prompt moves relative attention at that layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import numpy as np
import torch

from promptlimits.constructions.spec import Model
from promptlimits.numerics.twin import Twin
from promptlimits.proofs.relative_attention import first_layer_invariant, shift_enclosures


@dataclass(frozen=True)
class LayerShift:
    """Per layer (0-based): float64 mean and max of S_ℓ over the prompts, and the exact
    rigorous enclosure [lower, upper] of S_ℓ on the worst prompt (None when not computed)."""

    layer: int
    mean: float
    max: float
    lower: Optional[Fraction]
    upper: Optional[Fraction]

    @property
    def certified_moved(self) -> bool:
        """True when the enclosure proves the prompt moved relative attention (S_ℓ > 0)."""
        return self.lower is not None and self.lower > 0

    def to_json(self) -> dict:
        return {"layer": self.layer, "float_mean": self.mean, "float_max": self.max,
                "certified_lower": None if self.lower is None else float(self.lower),
                "certified_upper": None if self.upper is None else float(self.upper),
                "certified_moved": self.certified_moved}


@dataclass(frozen=True)
class ShiftStudy:
    """The seeded input X, the prompt certified (the worst one) and the per-layer shifts."""

    X: tuple[tuple[Fraction, ...], ...]
    prompt: tuple[tuple[Fraction, ...], ...]
    bits: int
    layers: tuple[LayerShift, ...]
    first_layer_exact: Optional[bool]  # S_1(prompt) = 0 decided exactly (None: not computed)


def float_shifts(model: Model, X: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """S_ℓ(P_k) in float64 for X [n, d] and prompts [K, m, d]: an array [K, L]."""
    twin = Twin(model)
    m = prompts.shape[1]
    x = torch.tensor(X, dtype=torch.float64)[None]
    p = torch.tensor(prompts, dtype=torch.float64)
    with torch.no_grad():
        base = twin.scores(x)
        moved = twin.scores(x.expand(len(prompts), *x.shape[1:]), p)
    out = []
    for s0, sp in zip(base, moved):
        # relative attention among the inputs: a softmax over the input keys' scores alone
        rp, r0 = torch.softmax(sp[:, :, m:, m:], dim=-1), torch.softmax(s0, dim=-1)
        tv = 0.5 * (rp - r0).abs().sum(-1)  # [K, H, n]
        out.append(tv.amax(dim=(1, 2)).numpy())
    return np.stack(out, axis=1)


def measure(model: Model, samples: int = 8, tokens: int = 4, prompt_length: int = 2, seed: int = 0,
            bits: int = 128, certify: bool = True) -> ShiftStudy:
    """S_ℓ over ``samples`` seeded Gaussian prompts on one seeded Gaussian input of ``tokens``
    tokens (entries N(0, 1), taken as exact binary rationals; fewer when the positional
    encodings cover fewer positions), with the worst prompt certified."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(min(tokens, model.max_length() or tokens), model.d))
    prompts = rng.normal(size=(samples, prompt_length, model.d))
    shifts = float_shifts(model, X, prompts)
    worst = int(shifts[:, 1:].max(axis=1).argmax()) if shifts.shape[1] > 1 else 0
    exact = lambda a: tuple(tuple(Fraction(v) for v in row) for row in a.tolist())  # noqa: E731
    Xq, Pq = exact(X), exact(prompts[worst])
    bounds = shift_enclosures(model, Xq, Pq, bits) if certify else [(None, None)] * shifts.shape[1]
    layers = tuple(LayerShift(l, float(shifts[:, l].mean()), float(shifts[:, l].max()), lo, hi)
                   for l, (lo, hi) in enumerate(bounds))
    return ShiftStudy(Xq, Pq, bits, layers, first_layer_invariant(model, Xq, Pq) if certify else None)
