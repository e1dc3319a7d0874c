"""THEORY §4: the impossible dataset, built for random one-layer models (exact throughout)."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import attention_exact, dot, tokens_with_positions, value_matrix
from promptlimits.constructions.impossible import impossible_dataset, witness_reproduces
from promptlimits.constructions.spec import Head, Layer, Model
from promptlimits.constructions.strategies import models, vectors
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.constructions.feed_forward import forward

single_head = models(d=st.integers(1, 3), heads=1, positions=2, lipschitz=Fraction(1, 2))
multi_head = models(d=st.integers(2, 4), heads=st.integers(2, 3), positions=2, lipschitz=Fraction(1, 2))


def _has_values(model: Model) -> bool:
    d = model.d
    return any(
        sum((value_matrix(h)[i][j] for h in model.layers[0].heads), Fraction(0)) != 0
        for i in range(d) for j in range(d)
    )


def _theorem1_a(model, built):
    """Solve Theorem 1's two equations for a, written out independently of the module."""
    q = tokens_with_positions(model, built.dataset.examples[0].input)[-1]
    rows = []
    for ex, z in zip(built.dataset.examples, built.z):
        part = decompose(model, (), ex.input, position=1)
        B, u = ExpFrac(part.B), part.u
        # v = (z − q) + B a (z − q − u): constant part and a-coefficient per coordinate
        rows.append(([ExpFrac(z[k] - q[k]) for k in range(model.d)],
                     [B * (z[k] - q[k] - u[k]) for k in range(model.d)], part.B))
    (c1, l1, B1), (c2, l2, _) = rows
    k = next(k for k in range(model.d) if not (l1[k] - l2[k]).is_zero())
    a = (c2[k] - c1[k]) / (l1[k] - l2[k])
    for j in range(model.d):  # the same a solves every coordinate
        assert (c1[j] + a * l1[j]) == (c2[j] + a * l2[j])
    return a, B1


@given(single_head)
@settings(max_examples=40)
def test_single_head_forces_negative_a(model):
    if not _has_values(model):
        with pytest.raises(InputError):
            impossible_dataset(model)
        return
    built = impossible_dataset(model)
    a, B = _theorem1_a(model, built)
    assert a == ExpFrac(-3) / (2 * ExpFrac(B))  # a = −3/(2B), exactly
    assert a.sign() < 0
    assert built.forced_a == a
    for k in range(2):
        assert forward(model.layers[0], built.z[k]) == built.targets[k]
        assert witness_reproduces(model, built, k)  # each target alone is reachable


@given(multi_head, st.lists(vectors(4), min_size=1, max_size=3))
@settings(max_examples=30)
def test_multi_head_pair_is_separated(model, raw_prompt):
    if not _has_values(model):
        return
    built = impossible_dataset(model)
    layer = model.layers[0]
    W, R = built.direction, built.radius
    assert built.separation == -(dot(W, W) + R) and built.separation < -R
    for k in range(2):
        assert witness_reproduces(model, built, k)
    # any prompt: the two attention outputs differ by at least −R along W, never by the separation
    prompt = tuple(tuple(t[: model.d]) for t in raw_prompt)
    outs = []
    for ex in built.dataset.examples:
        seq = prompt + tokens_with_positions(model, ex.input)
        outs.append(attention_exact(model, layer, seq, len(prompt), 1))
    along = sum(
        (ExpFrac(o1, outs[0].den) * w - ExpFrac(o2, outs[1].den) * w
         for o1, o2, w in zip(outs[0].nums, outs[1].nums, W)),
        ExpFrac(0),
    )
    assert along >= ExpFrac(-R)
    assert along > ExpFrac(built.separation)


def test_paper_dataset_on_the_example_model():
    """Hand check on examples/one_layer.json (M = [[1,0],[2,1]], V = diag(1/2, 1)):
    q = e1, Mq = (1, 2), δ = (−2, 1), Vδ = (−1, 1), u1 = (1/2, 0), w = (1/2, −1/2),
    z1 = q + u1 + w = (2, −1/2), z2 = q + u2 − w = (1/2, 1)."""
    from promptlimits.constructions.formats import load_model

    model = load_model("examples/one_layer.json")
    built = impossible_dataset(model)
    assert built.query == (1, 0) and built.delta == (-2, 1)
    assert built.z == ((2, Fraction(-1, 2)), (Fraction(1, 2), 1))
    assert built.witnesses == (((4, Fraction(-3, 2)),), ((-3, 2),))


def test_zero_value_map_is_refused():
    zero = ((Fraction(0), Fraction(0)),)
    one = ((Fraction(1), Fraction(0)),)
    head = Head(W_q=one, W_k=one, W_v=zero, W_o=((Fraction(0),), (Fraction(0),)))
    layer = Layer((head,), ((Fraction(1), Fraction(0)),), (Fraction(0),),
                  ((Fraction(0),), (Fraction(0),)), (Fraction(0), Fraction(0)))
    with pytest.raises(InputError, match="value maps"):
        impossible_dataset(Model(d=2, layers=(layer,)))


def test_rank_one_value_along_the_score_changes_query():
    """rank V = 1 with row(V) = span(M e1): q = e1 admits no δ, so another q is chosen."""
    I = ((Fraction(1), Fraction(0)), (Fraction(0), Fraction(1)))
    head = Head(W_q=I, W_k=I, W_v=((Fraction(1), Fraction(0)),), W_o=((Fraction(1),), (Fraction(0),)))
    layer = Layer((head,), I, (Fraction(0), Fraction(0)), tuple(tuple(x / 4 for x in r) for r in I),
                  (Fraction(0), Fraction(0)))
    model = Model(d=2, layers=(layer,))
    built = impossible_dataset(model)
    assert built.query != (1, 0)
    assert built.forced_a.sign() < 0


@given(models(d=st.integers(1, 3), heads=1, positions=2, lipschitz=Fraction(1, 2),
              max_numerator=3, max_denominator=2))
@settings(max_examples=10)
def test_memorizable_agrees(model):
    """Cross-check with the Theorem 1 decision: the pair is not memorizable, each example is."""
    from promptlimits.constructions.spec import Dataset
    from promptlimits.proofs.memorization import decide

    if not _has_values(model):
        return
    built = impossible_dataset(model)
    assert decide(model, built.dataset).verdict == "not-memorizable"
    for ex in built.dataset.examples:
        assert decide(model, Dataset(model.d, (ex,))).verdict == "memorizable"
