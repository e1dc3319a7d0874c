"""Lemma 1 (THEORY §1) holds exactly on generated instances.

For every head h, input position i and prompt P (lengths 0–3, causal and bidirectional,
with and without positional encodings, score scales 1 and 1/2):

1. the decomposition's (A v + B u)/(A + B) equals the directly evaluated head output
   ``head_output_exact`` as exact exp-polynomial quotients;
2. B and B·u computed WITH the prompt equal those computed WITHOUT it (prompt-independence),
   so the prompted head output is λ v + (1 − λ) u with the prompt-free u, and 0 < λ < 1;
3. the attention sublayer ``attention_exact`` equals x_i + Σ_h (λ_h v_h + (1 − λ_h) u_h)
   (numerators compared over the common denominator Π_h (A_h + B_h));
4. the relative attention weights among input tokens are the same with and without the
   prompt (exact ratios), and the prompt takes exactly the mass λ.

Every equality is an ExpFrac / ExpPoly equality (Lindemann–Weierstrass zero test), never a
float comparison.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions import strategies as S
from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.evaluate import (
    attention_exact, context, dot, head_output_exact, matvec, score_matrix, tokens_with_positions,
)
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly

INSTANCES = S.instances(
    d=st.integers(1, 3),
    layers=1,
    heads=st.integers(1, 3),
    head_size=st.integers(1, 2),
    hidden=1,
    n_examples=1,
    seq_len=st.integers(1, 3),
    prompt_len=st.integers(0, 3),
    score_scale=st.sampled_from((Fraction(1), Fraction(1, 2))),
    max_numerator=4,
    max_denominator=4,
)


def _weights(model, head, seq, query, ctx) -> dict[int, ExpFrac]:
    """Softmax weight of every context index, computed from scratch (not via the evaluator)."""
    g = matvec(score_matrix(head, model.score_scale), seq[query])
    terms = {c: ExpPoly.exp(dot(seq[c], g)) for c in ctx}
    total = ExpPoly()
    for t in terms.values():
        total = total + t
    return {c: ExpFrac(t, total) for c, t in terms.items()}


@settings(max_examples=60)
@given(INSTANCES)
def test_decomposition_equals_direct_evaluation(instance):
    model, dataset, prompt = instance
    X = dataset.examples[0].input
    xs = tokens_with_positions(model, X)
    m, n = len(prompt), len(xs)
    seq = tuple(prompt) + xs
    layer = model.layers[0]
    for i in range(n):
        ctx = context(model, m, i, n)
        outputs = []
        for h, head in enumerate(layer.heads):
            dec = decompose(model, prompt, X, i, head=h)
            bare = decompose(model, (), X, i, head=h)
            direct = head_output_exact(model, head, seq, m + i, ctx).entries()
            assert dec.head_output().entries() == direct
            # B and B·u do not depend on the prompt.
            assert dec.B == bare.B and dec.Bu == bare.Bu
            assert bare.A.is_zero() and bare.lam == 0
            if m == 0:
                assert direct == bare.u
            else:
                lam = dec.lam
                assert 0 < lam < 1
                mixed = tuple(lam * v + (1 - lam) * u for v, u in zip(dec.v, bare.u))
                assert mixed == direct
            outputs.append(dec.head_output())
        # a_i = x_i + Σ_h N_h/D_h, compared over the common denominator Π_h D_h
        att = attention_exact(model, layer, seq, m, i)
        den = ExpPoly.const(1)
        for o in outputs:
            den = den * o.den
        assert att.den == den
        for k in range(model.d):
            want = den * xs[i][k]
            for h, o in enumerate(outputs):
                others = ExpPoly.const(1)
                for j, p in enumerate(outputs):
                    if j != h:
                        others = others * p.den
                want = want + o.nums[k] * others
            assert att.nums[k] == want


@settings(max_examples=60)
@given(INSTANCES)
def test_prompt_never_changes_relative_attention_among_inputs(instance):
    model, dataset, prompt = instance
    X = dataset.examples[0].input
    xs = tokens_with_positions(model, X)
    m, n = len(prompt), len(xs)
    for h, head in enumerate(model.layers[0].heads):
        for i in range(n):
            with_p = _weights(model, head, tuple(prompt) + xs, m + i, context(model, m, i, n))
            without = _weights(model, head, xs, i, context(model, 0, i, n))
            inputs = sorted(without)
            for k in inputs:
                for l in inputs:
                    assert with_p[m + k] / with_p[m + l] == without[k] / without[l]
            prompt_mass = sum((with_p[j] for j in range(m)), ExpFrac(0))
            assert prompt_mass == decompose(model, prompt, X, i, head=h).lam
            # the inputs keep their shares, scaled by 1 − λ
            for k in inputs:
                assert with_p[m + k] == (1 - prompt_mass) * without[k]
