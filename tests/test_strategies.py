"""The Hypothesis strategies deliver what they promise, exactly: rank of matrices, rank of
V = W_o W_v, the Frobenius product bound of the feed-forward block, consistent instances."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptlimits.constructions import strategies as S
from promptlimits.constructions.evaluate import value_matrix
from promptlimits.constructions.spec import check_compatible, check_prompt
from promptlimits.proofs import linalg


def _frobenius_sq(m) -> Fraction:
    return sum((x * x for row in m for x in row), Fraction(0))


@given(st.integers(1, 5), st.integers(1, 5), st.data())
def test_matrices_have_the_requested_rank(rows, cols, data):
    k = data.draw(st.integers(0, min(rows, cols)))
    m = data.draw(S.matrices(rows, cols, rank=k))
    assert len(m) == rows and all(len(r) == cols for r in m)
    assert linalg.rank(m) == k


@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_heads_have_value_maps_of_the_requested_rank(d, s, data):
    k = data.draw(st.integers(0, min(d, s)))
    head = data.draw(S.heads(d, s, v_rank=k))
    assert len(head.W_q) == len(head.W_k) == len(head.W_v) == s and len(head.W_o) == d
    assert linalg.rank(value_matrix(head)) == k


@given(st.integers(1, 4), S.rationals(4, 4, nonzero=True).map(abs), st.data())
def test_lipschitz_bound_on_the_frobenius_product(d, bound, data):
    layer = data.draw(S.layers(d, heads=st.integers(1, 2), lipschitz=bound, max_numerator=20))
    assert _frobenius_sq(layer.W1) * _frobenius_sq(layer.W2) <= bound * bound


@given(S.instances(layers=st.integers(1, 2), v_rank=1, n_examples=st.integers(1, 3), seq_len=st.integers(1, 4)))
def test_instances_are_consistent(instance):
    model, dataset, prompt = instance
    check_compatible(model, dataset)
    check_prompt(model, prompt)
    assert all(linalg.rank(value_matrix(h)) == 1 for layer in model.layers for h in layer.heads)
    assert all(ex.constrained() == (len(ex.input) - 1,) for ex in dataset.examples)


@given(st.data())
def test_number_options_bound_the_entries(data):
    model = data.draw(S.models(max_numerator=2, max_denominator=3))
    entries = [x for layer in model.layers for h in layer.heads for m in (h.W_q, h.W_k, h.W_v, h.W_o)
               for row in m for x in row]
    assert all(abs(x.numerator) <= 2 and x.denominator <= 3 for x in entries)


@given(st.data())
def test_impossible_requests_are_refused(data):
    with pytest.raises(ValueError):
        data.draw(S.matrices(2, 3, rank=3))
    with pytest.raises(ValueError):
        S.examples(2, 2, constrained="first")
