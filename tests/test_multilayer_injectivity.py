"""THEORY §8 (Theorem 5): known-answer models, violated conditions, outside the theorem, and
the certified inequality ‖τ_P(X) − τ_P(X')‖_∞ ≥ Π(1 − L_s)‖X − X'‖_∞ sampled in float64."""

import math
from dataclasses import replace
from fractions import Fraction as F

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from promptlimits.constructions.layered_models import folding_model, sorting_model
from promptlimits.constructions.spec import Head, Layer, Model
from promptlimits.numerics.twin import Twin
from promptlimits.proofs.multilayer_injectivity import decide, sqrt_up

TIGHT = F(1, 10**9)  # certified norm bounds sit at most this far above the hand values here


def _close_above(value, hand):
    assert hand <= value <= hand + TIGHT, (float(value), float(hand))


def test_sorting_model_hand_constants():
    # R = ρ = 1/4. Layer 0: ‖V‖ = 1/2, ‖M‖ = 1: L_att = ½(1 + 4·(1/4)²) = 5/8; ‖W1‖ = ‖W2‖ = 1/2: L_ff = 1/4.
    # Radii: inputs 1/4 → 1/4 + ½·¼ = 3/8 → 3/8 + ½·½·3/8 = 15/32; prompts 1/4·(1 + ½) = 3/8 → 15/32.
    # Layer 1: ‖V‖ = 1/4, ‖M‖ = 1/4, R = 15/32: L_att = ¼(1 + (15/32)²) = 1249/4096; L_ff = ¼·√2/2 = √2/8.
    dec = decide(sorting_model(), F(1, 4), F(1, 4))
    assert dec.verdict == "injective" and dec.status == "decided"
    l0, l1 = dec.layers
    _close_above(l0.attention, F(5, 8))
    _close_above(l0.feed_forward, F(1, 4))
    _close_above(l0.input_mid, F(3, 8))
    _close_above(l0.prompt_mid, F(3, 8))
    _close_above(l1.input_in, F(15, 32))
    _close_above(l1.R, F(15, 32))
    _close_above(l1.attention, F(1249, 4096))
    assert l1.feed_forward ** 2 >= F(2, 64) and l1.feed_forward <= F(17677669531, 10**11)
    hand = (1 - F(5, 8)) * (1 - F(1, 4)) * (1 - F(1249, 4096)) * (1 - math.sqrt(2) / 8)
    assert dec.product <= (1 - F(5, 8)) * (1 - F(1, 4)) * (1 - F(1249, 4096))
    assert abs(float(dec.product) - hand) < 1e-8
    assert dec.product > 0 and not dec.failures and not dec.outside


def test_attention_condition_fails_with_a_large_prompt_radius():
    # ρ = 1 makes R_0 = 1: L_att = ½(1 + 4·1·1) = 5/2, excess 3/2 — the sufficient condition fails.
    dec = decide(sorting_model(), F(1, 4), F(1))
    assert dec.verdict == "unknown" and dec.status == "unknown" and dec.product is None
    _close_above(dec.layers[0].attention, F(5, 2))
    assert dec.failures[0].startswith("layer 0 attention") and "excess 1.5" in dec.failures[0]
    assert "sufficient condition fails" in dec.reason


def test_feed_forward_condition_fails_when_the_block_folds():
    # Layer 1's block h ↦ h − 2 ReLU(h₁) e₁: ‖W2‖‖W1‖ = 2·1 = 2 ≥ 1 (excess 1); λ = 1/4 gives 1/2 < 1.
    bad = decide(folding_model(F(1)), F(1, 4), F(1, 4))
    assert bad.verdict == "unknown" and [f.split(":")[0] for f in bad.failures] == ["layer 1 feed-forward"]
    _close_above(bad.layers[1].feed_forward, F(2))
    good = decide(folding_model(F(1, 4)), F(1, 4), F(1, 4))
    assert good.verdict == "injective"
    _close_above(good.layers[1].feed_forward, F(1, 2))


def test_bidirectional_with_two_layers_is_outside_the_theorem():
    model = replace(sorting_model(), attention="bidirectional")
    dec = decide(model, F(1, 4), F(1, 4))
    assert dec.verdict == "unknown" and dec.outside and not dec.layers
    assert dec.reason.startswith("outside the theorem") and "bidirectional" in dec.reason


def test_one_bidirectional_layer_is_inside():
    model = Model(2, sorting_model().layers[:1], attention="bidirectional")
    assert decide(model, F(1, 4), F(1, 4)).verdict == "injective"


def test_gelu_and_layer_norm_are_outside():
    layers = sorting_model().layers
    gelu = replace(sorting_model(), layers=(replace(layers[0], activation="gelu"), layers[1]))
    norm = replace(sorting_model(), layers=(layers[0], replace(layers[1], norm="layernorm")))
    assert "gelu" in decide(gelu, F(1, 4), F(1, 4)).reason
    assert "layernorm" in decide(norm, F(1, 4), F(1, 4)).reason


def test_positional_encodings_enlarge_the_input_radius_only():
    # ‖e‖ = 3/4 exactly (sqrt of a square is exact): inputs enter at 1/4 + 3/4 = 1, prompts at 1/4.
    model = replace(sorting_model(), positional=((F(3, 4), F(0)),))
    dec = decide(model, F(1, 4), F(1, 4))
    assert dec.positional == F(3, 4)
    assert dec.layers[0].input_in == 1 and dec.layers[0].prompt_in == F(1, 4)
    assert dec.verdict == "unknown"  # ½(1 + 4·1) ≥ 1


@given(st.fractions(min_value=0, max_value=10**6, max_denominator=10**6))
def test_sqrt_up_is_an_upper_bound_and_close(q):
    c = sqrt_up(q)
    assert c >= 0 and c * c >= q
    assert float(c) - math.sqrt(float(q)) <= 1e-9 * max(1.0, math.sqrt(float(q)))


def _random_model(rng, d, scale):
    def mat(r, c):
        return tuple(tuple(F(int(v), 64) for v in row) for row in rng.integers(-64, 65, size=(r, c)) * scale)

    layers = tuple(
        Layer((Head(mat(2, d), mat(2, d), mat(2, d), mat(d, 2)),), mat(3, d), tuple(F(int(v), 8) for v in rng.integers(-4, 5, 3)),
              mat(d, 3), tuple(F(int(v), 8) for v in rng.integers(-4, 5, d)))
        for _ in range(2))
    return Model(d, layers, attention="causal")


def _ball(rng, shape, radius):
    v = rng.normal(size=shape)
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    return v * radius * rng.uniform(0, 1, size=shape[:-1] + (1,)) ** (1 / shape[-1])


@settings(max_examples=12)
@given(st.integers(0, 2**32 - 1))
def test_certified_lower_bound_holds_on_sampled_inputs_and_prompts(seed):
    """Sound inequality: for every sampled prompt within ρ and inputs within R the float64
    twin never shows ‖τ(X) − τ(X')‖_∞ below Π(1 − L_s)·‖X − X'‖_∞ (slack 1e-9)."""
    rng = np.random.default_rng(seed)
    d, R, rho = 3, F(1, 2), F(1, 2)
    model = _random_model(rng, d, rng.uniform(0.2, 0.6))
    dec = decide(model, R, rho)
    if dec.verdict != "injective":
        return
    c = float(dec.product)
    twin = Twin(model)
    K, n, m = 64, 3, 2
    X = torch.tensor(_ball(rng, (K, n, d), float(R)))
    Xp = X + torch.tensor(_ball(rng, (K, n, d), 0.05))
    Xp = Xp * torch.clamp(float(R) / Xp.norm(dim=-1, keepdim=True), max=1.0)
    P = torch.tensor(_ball(rng, (K, m, d), float(rho)))
    diff_out = (twin(X, P) - twin(Xp, P)).norm(dim=-1).amax(-1)
    diff_in = (X - Xp).norm(dim=-1).amax(-1)
    assert bool((diff_out >= c * diff_in - 1e-9).all())


def test_an_optimizer_cannot_push_the_ratio_below_the_certified_product():
    """Adversarial: Adam minimises ‖τ_P(X) − τ_P(X')‖_∞ / ‖X − X'‖_∞ over inputs and prompts
    projected into their balls; it never goes below Π(1 − L_s) (the sorting model at R = ρ = 1/4)."""
    from promptlimits.numerics.ball_prompts import project

    model, R, rho = sorting_model(), 0.25, 0.25
    c = float(decide(model, F(1, 4), F(1, 4)).product)
    twin = Twin(model)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(8, 2, 2, generator=gen, dtype=torch.float64).mul_(0.1).requires_grad_(True)
    D = torch.randn(8, 2, 2, generator=gen, dtype=torch.float64).mul_(0.05).requires_grad_(True)
    P = torch.randn(8, 2, 2, generator=gen, dtype=torch.float64).mul_(0.1).requires_grad_(True)
    opt = torch.optim.Adam([X, D, P], lr=0.01)
    best = math.inf
    for _ in range(60):
        x, xp, p = project(X, R), project(X + D, R), project(P, rho)
        num = (twin(x, p) - twin(xp, p)).norm(dim=-1).amax(-1)
        den = (x - xp).norm(dim=-1).amax(-1).clamp_min(1e-12)
        ratio = num / den
        best = min(best, float(ratio.detach().min()))
        opt.zero_grad()
        ratio.sum().backward()
        opt.step()
    assert c <= best
    assert best < 1  # the optimizer did find contracting directions: the bound is not vacuous here
