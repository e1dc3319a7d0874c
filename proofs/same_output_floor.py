"""THEORY §8: same-output pairs inside the radii are not memorizable by any prompt within ρ.

Claim. Let Theorem 5 hold (``multilayer_injectivity``: c = Π_s(1 − L_s) > 0 for input
radius R and prompt radius ρ), and let examples i ≠ j have inputs of one length n with every
token ‖x‖ ≤ R, and targets that are given and equal at the positions t < k (k ≥ 1). Then
for every prompt P (any length, tokens ‖p‖ ≤ ρ) the prompt-tuning loss
Σ_examples Σ_constrained ‖τ_P(X)_t − y_t‖² is at least

    c² · max_{t<k} ‖x_{i,t} − x_{j,t}‖² / 2,

and summed over disjoint pairs. Derivation:
* the positions t < k of examples i, j alone contribute
  Σ_{t<k} (‖τ(X_i)_t − y_t‖² + ‖τ(X_j)_t − y_t‖²) ≥ Σ_{t<k} ½‖τ(X_i)_t − τ(X_j)_t‖²
  (parallelogram law: ‖a − y‖² + ‖b − y‖² = ½‖a − b‖² + 2‖(a + b)/2 − y‖²);
* a sum of squares is at least its largest term: ≥ ½ max_{t<k} ‖τ(X_i)_t − τ(X_j)_t‖²,
  which is ½ ‖·‖_∞² in the theorem's max-token norm (a Frobenius ‖X_i − X_j‖² would be wrong:
  it can exceed the max-token norm squared by the factor k);
* with causal attention τ_P(X)_t for t < k is the model applied to the prefix X[:k]
  (the same prompt, the same positional encodings), so Theorem 5 on prefixes gives
  max_{t<k} ‖τ(X_i)_t − τ(X_j)_t‖ ≥ c·max_{t<k} ‖x_{i,t} − x_{j,t}‖. With bidirectional
  attention (L = 1 only) the whole sequence is needed: k = n.
Every number is an exact rational (c, the squared distances). A positive floor proves
"not memorizable by any prompt within ρ"; nothing is claimed about larger prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from promptlimits.constructions.spec import Dataset, Model
from promptlimits.proofs.multilayer_injectivity import LayersDecision, norm_squared


@dataclass(frozen=True)
class PairFloor:
    """Examples i, j agree on the targets of positions < k; their inputs differ there by
    ``distance2`` = max_{t<k} ‖x_{i,t} − x_{j,t}‖² > 0; the pair's floor is c²·distance2/2."""

    i: int
    j: int
    k: int
    distance2: Fraction
    floor: Fraction

    def to_json(self) -> dict:
        return {"examples": [self.i, self.j], "positions": self.k, "distance2": _s(self.distance2),
                "floor": _s(self.floor)}


@dataclass(frozen=True)
class SameOutputFloor:
    """The certified floor (0 when no pair qualifies) and the disjoint pairs it sums."""

    value: Fraction
    pairs: tuple[PairFloor, ...]
    reason: str

    def to_json(self) -> dict:
        return {"loss_floor": _s(self.value), "pairs": [p.to_json() for p in self.pairs]}


def _s(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def outside_ball(dataset: Dataset, radius: Fraction) -> Optional[str]:
    """The first input token with ‖x‖ > radius (exact: ‖x‖² > radius²), or None."""
    for e, ex in enumerate(dataset.examples):
        for t, x in enumerate(ex.input):
            if norm_squared(x) > radius * radius:
                return f"example {e} input token {t} has norm > {radius}"
    return None


def agreeing_prefix(model: Model, dataset: Dataset, i: int, j: int) -> int:
    """k: the number of leading positions whose targets are given and equal in both
    examples (causal); bidirectional: n when all positions are, else 0."""
    a, b = dataset.examples[i], dataset.examples[j]
    if len(a.input) != len(b.input):
        return 0
    k = 0
    for ya, yb in zip(a.target, b.target):
        if ya is None or yb is None or tuple(ya) != tuple(yb):
            break
        k += 1
    if model.attention != "causal" and k < len(a.input):
        return 0
    return k


def pair_floor(model: Model, dataset: Dataset, i: int, j: int, product: Fraction) -> Optional[PairFloor]:
    """The floor of one pair (None when the targets agree nowhere or the prefixes are equal)."""
    k = agreeing_prefix(model, dataset, i, j)
    if k == 0:
        return None
    xi, xj = dataset.examples[i].input, dataset.examples[j].input
    d2 = max(norm_squared([p - q for p, q in zip(xi[t], xj[t])]) for t in range(k))
    if d2 == 0:
        return None
    return PairFloor(i, j, k, d2, product * product * d2 / 2)


def same_output_floor(model: Model, dataset: Dataset, decision: LayersDecision) -> SameOutputFloor:
    """Greedy disjoint pairs by decreasing floor; their floors add (disjoint examples)."""
    if decision.verdict != "injective" or decision.product is None:
        return SameOutputFloor(Fraction(0), (), "Theorem 5's conditions are not certified: " + decision.reason)
    bad = outside_ball(dataset, decision.input_radius)
    if bad is not None:
        return SameOutputFloor(Fraction(0), (), f"outside the input ball: {bad}")
    n = len(dataset.examples)
    candidates = [f for i in range(n) for j in range(i + 1, n)
                  if (f := pair_floor(model, dataset, i, j, decision.product)) is not None]
    candidates.sort(key=lambda f: (-f.floor, f.i, f.j))
    used: set[int] = set()
    chosen = []
    for f in candidates:
        if f.i not in used and f.j not in used:
            chosen.append(f)
            used.update((f.i, f.j))
    if not chosen:
        return SameOutputFloor(Fraction(0), (), "no two examples with different inputs share their targets")
    value = sum((f.floor for f in chosen), Fraction(0))
    return SameOutputFloor(value, tuple(chosen),
                           f"{len(chosen)} same-output pair(s): no prompt with tokens ‖p‖ ≤ {decision.prompt_radius} "
                           f"gets the loss below {float(value):.6g}")
