"""The torch twin agrees with the exact evaluator on random small instances (issue 2, item 5).

Property: for random rational models (1 or 2 layers, 1–2 heads, causal or bidirectional,
with or without positional encodings, score scale 1, 1/2 or 1/4), datasets and prompts
(lengths 0 to 3, and always also the empty prompt), the float64 twin's output at every
input position is within 1e-12 of the exact value, relative to the size of that example's
outputs (|twin − exact| ≤ 1e-12 · max(1, max |exact|)).

The exact value is ``layer_exact`` (exp-polynomial quotients) for one ReLU layer, and the
midpoint of ``stack_balls`` at 128 (or 512) bits for deeper stacks, GELU and layer norm (whose
radius is checked to be far below the tolerance, so the midpoint is as good as exact).
The twin's ``positions`` path (the last layer computes only some outputs) is checked the
same way. A second property adds attention biases and an irrational score scale √r (what
imported checkpoints carry) and compares the twin with the ball evaluator alone. A wrong context, a missing residual, a transposed weight or the prompt leaking into the
positional encodings all move outputs by far more than 1e-12.

Weights are kept small (|numerator| ≤ 4, denominator ≤ 4) so that attention scores stay
below ~10^3: float64 rounds a score s with absolute error ~|s|·2^-52, which moves softmax
weights by that much relatively; larger scores would test float64's limits, not the twin.
"""

from __future__ import annotations

from fractions import Fraction

import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from promptlimits.constructions import strategies as S
from promptlimits.constructions.evaluate import layer_exact, stack_balls
from promptlimits.numerics.twin import Twin, tensor

NUMBERS = {"max_numerator": 4, "max_denominator": 4}
RELATIVE = 1e-12


@st.composite
def _cases(draw):
    depth = draw(st.sampled_from((1, 1, 2)))
    smooth = draw(st.booleans()) if depth == 2 else False
    model, dataset, prompt = draw(
        S.instances(
            d=st.integers(1, 3),
            layers=depth,
            heads=st.integers(1, 2),
            head_size=st.integers(1, 2),
            hidden=st.integers(1, 3),
            activation="gelu" if smooth else "relu",
            norm="layernorm" if smooth else None,
            n_examples=st.integers(1, 2),
            seq_len=st.integers(1, 3),
            prompt_len=st.integers(0, 3),
            score_scale=st.sampled_from((Fraction(1), Fraction(1, 2), Fraction(1, 4))),
            **NUMBERS,
        )
    )
    return model, dataset, prompt


def _reference(model, prompt, X) -> list[list[float]]:
    """Exact outputs as floats: exp-polynomial quotients for one ReLU layer, else tight balls."""
    if len(model.layers) == 1 and model.is_exact:
        return [list(o.floats()) for o in layer_exact(model, prompt, X)]
    for bits in (128, 512):  # layer norm of nearly constant tokens divides by √eps = 10^6: widen
        balls = stack_balls(model, prompt, X, bits=bits)
        if all(float(b.rad()) < 1e-3 * RELATIVE * max(1.0, abs(float(b.mid()))) for row in balls for b in row):
            return [[float(b.mid()) for b in row] for row in balls]
    raise AssertionError(f"reference enclosure too wide at 512 bits: {balls}")


@settings(max_examples=max(200, settings.default.max_examples),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_cases())
def test_twin_agrees_with_exact_evaluator(case):
    model, dataset, prompt = case
    event(f"{model.attention}, {len(model.layers)} layer(s), {len(model.layers[0].heads)} head(s)")
    event(f"positional={model.positional is not None}, prompt length {len(prompt)}")
    twin = Twin(model, dtype=torch.float64, device="cpu")
    for m in sorted({0, len(prompt)}):
        P = prompt[:m]
        for ex in dataset.examples:
            want = torch.tensor(_reference(model, P, ex.input), dtype=torch.float64)
            X = tensor(ex.input)[None]
            Pt = tensor(P).reshape(1, m, model.d)
            got = twin(X, Pt)[0]
            tol = RELATIVE * max(1.0, float(want.abs().max()))
            err = float((got - want).abs().max())
            assert err <= tol, f"m={m}: twin differs from exact by {err:.3g} (tolerance {tol:.3g})"
            rows = sorted({0, len(ex.input) - 1})  # only some positions computed in the last layer
            part = twin(X, Pt, positions=torch.tensor(rows))[0]
            err = float((part - want[rows]).abs().max())
            assert err <= tol, f"m={m}, positions {rows}: twin differs from exact by {err:.3g}"


@st.composite
def _biased_cases(draw):
    """The cases above with attention biases (b_q, b_k, b_v per head, b_o per layer, each
    present or not) and an irrational score scale √(1/s), as imported checkpoints have."""
    from dataclasses import replace

    from promptlimits.constructions.surd import Surd

    model, dataset, prompt = draw(_cases())
    q = st.fractions(min_value=-2, max_value=2, max_denominator=4)

    def maybe(size):
        return draw(st.one_of(st.none(), st.tuples(*[q] * size)))

    layers = tuple(
        replace(layer, b_o=maybe(model.d),
                heads=tuple(replace(h, b_q=maybe(h.head_size), b_k=maybe(h.head_size), b_v=maybe(len(h.W_v)))
                            for h in layer.heads))
        for layer in model.layers)
    scale = draw(st.sampled_from((Surd(Fraction(1, 2)), Surd(Fraction(1, 3)), Surd(Fraction(2, 3)), Fraction(1, 2))))
    return replace(model, layers=layers, score_scale=scale), dataset, prompt


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_biased_cases())
def test_twin_agrees_with_the_balls_on_biased_models(case):
    """Both evaluators' bias and κ = √r paths (written independently) agree to 1e-12."""
    model, dataset, prompt = case
    twin = Twin(model, dtype=torch.float64, device="cpu")
    for ex in dataset.examples:
        want = torch.tensor(_reference(model, prompt, ex.input), dtype=torch.float64)
        got = twin(tensor(ex.input)[None], tensor(prompt).reshape(1, len(prompt), model.d))[0]
        tol = RELATIVE * max(1.0, float(want.abs().max()))
        assert float((got - want).abs().max()) <= tol
