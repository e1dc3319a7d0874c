"""THEORY §8 (Theorem 5): certified injectivity of X ↦ τ_P(X) for every prompt within ρ.

Claim decided (sufficient conditions only). For an L-layer ReLU model without layer norm
whose attention is causal when L ≥ 2, inputs X whose tokens all satisfy ‖x‖₂ ≤ R and
prompts of any length whose tokens all satisfy ‖p‖₂ ≤ ρ: if every sublayer s (attention
and feed-forward of each layer) has a certified Lipschitz bound L_s < 1 on its ball, then

    ‖τ_P(X) − τ_P(X')‖_∞ ≥ Π_s (1 − L_s) · ‖X − X'‖_∞     with ‖X‖_∞ = max_i ‖x_i‖₂,

so X ↦ τ_P(X) is injective on the input ball for EVERY admissible prompt.

Derivation (each step an inequality between exact rational upper bounds).

* Causality. With causal attention the prompt precedes the input, so the prompt's hidden
  states at every layer depend on P only: for fixed P each sublayer acts on the input
  block H = (h_1 … h_n) as H ↦ H + G(H) with the prompt states as constants. With
  bidirectional attention and L ≥ 2 the layer-1 prompt states depend on X and nothing
  below holds: outside the theorem. (With L = 1 only the raw prompt tokens are used.)
* Reverse triangle inequality. If Lip_∞(G) ≤ L_s < 1 on a convex set holding both H, H',
  ‖(H + G(H)) − (H' + G(H'))‖ ≥ ‖H − H'‖ − L_s‖H − H'‖ = (1 − L_s)‖H − H'‖; composing the
  sublayers multiplies the factors. Positional encodings add the same vector to X and X'
  (an isometry), they only enlarge the radius: ‖x_i + e_i‖ ≤ R + max_i ‖e_i‖.
* Feed-forward. g(a) = W2 ReLU(W1 a + b1) + b2 acts token-wise and ReLU is 1-Lipschitz,
  so ‖g(a) − g(a')‖ ≤ ‖W2‖‖W1‖‖a − a'‖ everywhere; the max over tokens keeps the
  constant. (GELU's slope exceeds 1, and layer norm is not covered: outside the theorem.)
* Attention, one head, query position i with state x = h_i, context c_j (fixed prompt
  states and the moving input states h_1 … h_i), all of norm ≤ R_ℓ (R_ℓ = the larger of
  the input and prompt radii at layer ℓ), scores s_j = c_jᵀ M x (M = κ W_kᵀ W_q), weights
  α = softmax(s), values w_j = V c_j (V = W_o W_v), output o = Σ_j α_j w_j. Along the
  segment H(t) = H' + t(H − H') (it stays in the ball, which is convex) the mean value
  inequality gives ‖o(H) − o(H')‖ ≤ sup_t ‖do‖ for the direction dH = H − H', ‖dh_j‖ ≤ δ.
  With dα_j = α_j (ds_j − Σ_k α_k ds_k) (softmax Jacobian) and w̄ = Σ α_j w_j,
      do = Σ_j α_j V dc_j + Σ_j α_j (w_j − w̄) ds_j.
  ‖Σ α_j V dc_j‖ ≤ ‖V‖δ (Σα = 1; prompt states have dc = 0); ds_j = dc_jᵀ M x + c_jᵀ M dx,
  so |ds_j| ≤ ‖M‖(R_ℓ δ + R_ℓ δ) = 2‖M‖R_ℓ δ (input queries see input keys that also move);
  ‖w_j − w̄‖ = ‖V(c_j − c̄)‖ ≤ ‖V‖·2R_ℓ since c̄ = Σ α c lies in the ball. Hence
      ‖do‖ ≤ ‖V‖ (1 + 4 ‖M‖ R_ℓ²) δ,
  independent of the prompt length and of n; the heads add: L_att = Σ_h ‖V_h‖(1 + 4‖M_h‖R_ℓ²).
* Radii. a = h + Σ_h Σ_j α_j V_h c_j gives ‖a‖ ≤ ‖h‖ + Σ_h ‖V_h‖ R_ℓ for input tokens and
  ‖a‖ ≤ (1 + Σ_h ‖V_h‖) p_ℓ for prompt tokens (causal: their context is prompt only;
  bidirectional L = 1: p_ℓ + Σ_h ‖V_h‖ R_ℓ); ‖f(a)‖ ≤ ‖a‖ + ‖W2‖(‖W1‖‖a‖ + ‖b1‖) + ‖b2‖
  because ‖ReLU(z)‖ ≤ ‖z‖.

Exactness. Spectral norms are the certified rational bounds of ``proofs.norms`` (of the
exact products M and V, not of their factors); ‖b‖ and ‖e_i‖ are rational c with c ≥ 0
and c² ≥ ‖b‖² checked exactly; the radii, the L_s and Π(1 − L_s) are exact rationals.
Floats only propose norm bounds. A failing condition gives verdict "unknown" with which
sublayer fails and by how much (the conditions are sufficient, not necessary).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

from promptlimits.constructions.evaluate import score_matrix, value_matrix
from promptlimits.constructions.spec import Model
from promptlimits.constructions.surd import Surd
from promptlimits.proofs.norms import NormBound, norm_bound_to_json, spectral_bound

METHOD = "lipschitz-layers"
CLAIM = "layers"
#: Bits of the binary fraction used by ``sqrt_up``.
SQRT_BITS = 40


def sqrt_up(q: Fraction) -> Fraction:
    """A rational c ≥ √q (q = n/d ≥ 0): √q itself when n and d are squares, else
    c = (⌊√(n·d·4^k)⌋ + 1)/(d·2^k) with k = SQRT_BITS, within 2^-k/d of √q."""
    if q < 0:
        raise ValueError("sqrt_up of a negative number")
    if q == 0:
        return Fraction(0)
    n, d = q.numerator, q.denominator
    rn, rd = math.isqrt(n), math.isqrt(d)
    if rn * rn == n and rd * rd == d:
        return Fraction(rn, rd)
    return Fraction(math.isqrt(n * d * 4**SQRT_BITS) + 1, d * 2**SQRT_BITS)


def norm_squared(v: Sequence[Fraction]) -> Fraction:
    return sum((Fraction(x) * Fraction(x) for x in v), Fraction(0))


@dataclass(frozen=True)
class LayerBounds:
    """Certified constants and radii of one layer (all exact rationals, upper bounds).

    ``input_in``/``prompt_in``: token radii entering the layer; ``R`` = max of both;
    ``attention``: L_att; ``input_mid``/``prompt_mid``: radii after attention;
    ``feed_forward``: ‖W2‖‖W1‖; ``input_out``/``prompt_out``: radii leaving the layer."""

    V: tuple[NormBound, ...]
    M: tuple[NormBound, ...]
    W1: NormBound
    W2: NormBound
    b1: Fraction
    b2: Fraction
    input_in: Fraction
    prompt_in: Fraction
    R: Fraction
    attention: Fraction
    input_mid: Fraction
    prompt_mid: Fraction
    feed_forward: Fraction
    input_out: Fraction
    prompt_out: Fraction


@dataclass(frozen=True)
class LayersDecision:
    """Theorem 5's verdict: "injective" (decided, ``product`` = Π(1 − L_s) > 0) or
    "unknown" with ``failures`` (sublayers with L_s ≥ 1) or ``outside`` (hypotheses not met)."""

    verdict: str
    reason: str
    input_radius: Fraction
    prompt_radius: Fraction
    positional: Optional[Fraction]
    layers: tuple[LayerBounds, ...]
    product: Optional[Fraction]
    failures: tuple[str, ...]
    outside: tuple[str, ...]
    seconds: float

    @property
    def status(self) -> str:
        return "decided" if self.verdict == "injective" else "unknown"

    def sublayer_constants(self) -> list[Fraction]:
        """L_s in order: attention of layer 0, feed-forward of layer 0, attention of layer 1, …"""
        return [x for lb in self.layers for x in (lb.attention, lb.feed_forward)]

    def evidence(self) -> dict:
        """Exact-string JSON of everything ``check_layers`` recomputes (decided verdicts)."""
        return {
            "input_radius": _s(self.input_radius),
            "prompt_radius": _s(self.prompt_radius),
            "positional_bound": None if self.positional is None else _s(self.positional),
            "layers": [_layer_json(lb) for lb in self.layers],
            "product": None if self.product is None else _s(self.product),
        }


def _s(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _layer_json(lb: LayerBounds) -> dict:
    return {
        "heads": [{"V": norm_bound_to_json(v), "M": norm_bound_to_json(m)} for v, m in zip(lb.V, lb.M)],
        "W1": norm_bound_to_json(lb.W1), "W2": norm_bound_to_json(lb.W2),
        "b1": _s(lb.b1), "b2": _s(lb.b2),
        "input_in": _s(lb.input_in), "prompt_in": _s(lb.prompt_in), "R": _s(lb.R),
        "attention": _s(lb.attention), "input_mid": _s(lb.input_mid), "prompt_mid": _s(lb.prompt_mid),
        "feed_forward": _s(lb.feed_forward), "input_out": _s(lb.input_out), "prompt_out": _s(lb.prompt_out),
    }


def outside_reasons(model: Model) -> tuple[str, ...]:
    """Why the model lies outside Theorem 5's hypotheses (empty when inside)."""
    reasons = []
    if len(model.layers) >= 2 and model.attention != "causal":
        reasons.append(f"bidirectional attention with {len(model.layers)} layers: prompt states depend on X")
    for i, layer in enumerate(model.layers):
        if layer.activation != "relu":
            reasons.append(f"layer {i}: {layer.activation} activation (not 1-Lipschitz)")
        if layer.norm is not None:
            reasons.append(f"layer {i}: {layer.norm}")
        if layer.has_attention_bias:
            reasons.append(f"layer {i}: attention biases (not covered by the bounds)")
    if isinstance(model.score_scale, Surd):
        reasons.append(f"score scale {model.score_scale} is irrational (the exact bounds need a rational)")
    return tuple(reasons)


def positional_bound(model: Model) -> Optional[Fraction]:
    """A rational ≥ max_i ‖e_i‖ over the positional encodings (None without encodings)."""
    if model.positional is None:
        return None
    return sqrt_up(max(norm_squared(e) for e in model.positional))


def decide(model: Model, input_radius: Fraction, prompt_radius: Fraction) -> LayersDecision:
    """Check Theorem 5's sufficient conditions with certified rational bounds (see module doc)."""
    start = time.perf_counter()
    R0, rho = Fraction(input_radius), Fraction(prompt_radius)
    if R0 < 0 or rho < 0:
        raise ValueError("radii must be non-negative")
    outside = outside_reasons(model)
    if outside:
        reason = "outside the theorem (its status is unknown here): " + "; ".join(outside)
        return LayersDecision("unknown", reason, R0, rho, None, (), None, (), outside, time.perf_counter() - start)
    pos = positional_bound(model)
    r = R0 + (pos or 0)
    p = rho
    causal = model.attention == "causal"
    bounds = []
    for layer in model.layers:
        V = tuple(spectral_bound(value_matrix(h)) for h in layer.heads)
        M = tuple(spectral_bound(score_matrix(h, model.score_scale)) for h in layer.heads)
        W1, W2 = spectral_bound(layer.W1), spectral_bound(layer.W2)
        b1, b2 = sqrt_up(norm_squared(layer.b1)), sqrt_up(norm_squared(layer.b2))
        R = max(r, p)
        sv = sum((v.c for v in V), Fraction(0))
        attention = sum((v.c * (1 + 4 * m.c * R * R) for v, m in zip(V, M)), Fraction(0))
        r_mid = r + sv * R
        p_mid = p * (1 + sv) if causal else p + sv * R
        ff = W1.c * W2.c
        r_out = r_mid + W2.c * (W1.c * r_mid + b1) + b2
        p_out = p_mid + W2.c * (W1.c * p_mid + b1) + b2
        bounds.append(LayerBounds(V, M, W1, W2, b1, b2, r, p, R, attention, r_mid, p_mid, ff, r_out, p_out))
        r, p = r_out, p_out
    failures = []
    product = Fraction(1)
    for i, lb in enumerate(bounds):
        for name, L in (("attention", lb.attention), ("feed-forward", lb.feed_forward)):
            if L >= 1:
                failures.append(f"layer {i} {name}: Lipschitz bound {float(L):.6g} ≥ 1 (excess {float(L - 1):.6g})")
            product *= 1 - L
    seconds = time.perf_counter() - start
    if failures:
        reason = "a sufficient condition fails (the map may still be injective): " + "; ".join(failures)
        return LayersDecision("unknown", reason, R0, rho, pos, tuple(bounds), None, tuple(failures), (), seconds)
    reason = (f"every sublayer is a certified contraction perturbation on its ball: injective for every prompt "
              f"with tokens ‖p‖ ≤ {rho} on inputs with tokens ‖x‖ ≤ {R0}, "
              f"‖τ_P(X) − τ_P(X')‖ ≥ {float(product):.6g}·‖X − X'‖ (max-token norm)")
    return LayersDecision("injective", reason, R0, rho, pos, tuple(bounds), product, (), (), seconds)


def layers_certificate(model: Model, decision: LayersDecision, dataset=None, floor=None,
                       model_path: Optional[str] = None, dataset_path: Optional[str] = None) -> dict:
    """The claim "layers" certificate of a decided verdict: "injective" (no dataset) or, with
    a dataset and its positive ``same_output_floor``, "not-memorizable" within ρ."""
    from promptlimits.proofs.certificate import make_certificate

    if decision.verdict != "injective":
        raise ValueError("only a decided verdict has a certificate")
    evidence = decision.evidence()
    verdict = "injective"
    if dataset is not None:
        if floor is None or floor.value <= 0:
            raise ValueError("a dataset certificate needs a positive floor")
        evidence["floor"] = floor.to_json()
        verdict = "not-memorizable"
    return make_certificate(CLAIM, verdict, METHOD, evidence, model, dataset, decision.seconds,
                            model_path=model_path, dataset_path=dataset_path)
