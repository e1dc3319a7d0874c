"""THEORY §6 families X and L: prompt-side certificates and exact LoRA memorization."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import attention_exact, layer_exact, tokens_with_positions
from promptlimits.constructions.lora import verify
from promptlimits.constructions.separation import build_family, epsilon_prompt, standard_family
from promptlimits.constructions.strategies import models, vectors
from promptlimits.proofs import exp_linalg, linalg
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.constructions.feed_forward import forward

small = dict(max_numerator=3, max_denominator=2)


def _attention_moves(fam, prompt):
    """a_i − q_i for every example under ``prompt`` (exact ExpFrac vectors)."""
    model, layer = fam.model, fam.model.layers[0]
    moves = []
    for ex, q in zip(fam.dataset.examples, fam.queries):
        seq = tuple(prompt) + tokens_with_positions(model, ex.input)
        a = attention_exact(model, layer, seq, len(prompt), 0)
        moves.append(tuple(e - x for e, x in zip(a.entries(), q)))
    return moves


def _outside_part_is_zero(fam, move):
    """The component of ``move`` orthogonal to C = col(V) vanishes (exactly)."""
    d = fam.model.d
    P = linalg.projector(fam.value_span, d)
    return all((move[i] - sum((ExpFrac(P[i][j]) * move[j] for j in range(d)), ExpFrac(0))).is_zero()
               for i in range(d))


@given(st.integers(2, 4), st.integers(1, 3), st.lists(vectors(4, **small), min_size=1, max_size=3))
@settings(max_examples=20)
def test_standard_family_x(d, n, raw_prompt):
    fam = standard_family("X", d, n)
    layer = fam.model.layers[0]
    assert fam.outside is not None and any(fam.outside[1])  # z_i − q_i has a part outside col(V)
    i = fam.outside[0]
    assert forward(layer, fam.z[i]) == fam.dataset.examples[i].target[0]
    # rank-1 LoRA memorizes exactly: d + r parameters
    assert fam.lora is not None and fam.lora.rank == 1 and verify(fam.model, fam.lora)
    assert fam.lora.parameters() == d + layer.hidden
    # any prompt only moves the attention output inside col(V), so it never reaches z_i
    prompt = tuple(t[:d] for t in raw_prompt)
    for move in _attention_moves(fam, prompt):
        assert _outside_part_is_zero(fam, move)


@given(st.integers(1, 3), st.integers(0, 2), st.lists(vectors(8, **small), min_size=1, max_size=3))
@settings(max_examples=15)
def test_standard_family_l_rank_bound(n, extra, raw_prompt):
    d = 2 * n + extra
    fam = standard_family("L", d, n)
    assert fam.prompt_lower_bound == n
    assert fam.lora is not None and fam.lora.rank == n and verify(fam.model, fam.lora)
    # the bound's premise: with a prompt of length m, the moves a_i − q_i span at most m dimensions
    prompt = tuple(t[:d] for t in raw_prompt)
    moves = _attention_moves(fam, prompt)
    assert exp_linalg.rank(moves) <= len(prompt)
    if len(prompt) < n:  # so they cannot be the required z_i − q_i = s_i (rank n)
        assert exp_linalg.rank(moves) < linalg.rank(fam.offsets)


def test_family_l_is_epsilon_memorizable_with_n_tokens():
    fam = standard_family("L", 4, 2)
    losses = []
    for K in (2, 4, 8, 16):
        prompt = epsilon_prompt(fam, Fraction(K))
        loss = 0.0
        for ex in fam.dataset.examples:
            out = layer_exact(fam.model, prompt, ex.input)[0]
            assert not out.equals(ex.target[0])  # never exact
            loss += sum((float(o) - float(t)) ** 2 for o, t in zip(out.entries(), ex.target[0]))
        losses.append(loss)
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-10


@given(models(d=st.integers(2, 4), heads=st.integers(1, 2), hidden=st.integers(2, 4), positions=1,
              lipschitz=Fraction(1, 2), v_rank=1, head_size=st.integers(1, 2), **small),
       st.sampled_from("XL"), st.integers(1, 2))
@settings(max_examples=20)
def test_family_for_a_given_model(model, family, n):
    try:
        fam = build_family(family, model, n)
    except InputError:
        return
    layer = model.layers[0]
    for ex, q in zip(fam.dataset.examples, fam.queries):
        assert tokens_with_positions(model, ex.input)[0] == q
    if fam.lora is not None:
        assert verify(model, fam.lora)
    if family == "X":
        assert fam.outside is not None  # Lipschitz 1/2: preimages are unique and known
        assert fam.lora is None or fam.lora.rank <= 1
    else:
        assert fam.prompt_lower_bound == -(-n // len(layer.heads))


def test_refusals():
    with pytest.raises(InputError, match="d >= 2"):
        standard_family("X", 1, 1)
    with pytest.raises(InputError, match="d >= 4"):
        standard_family("L", 3, 2)
