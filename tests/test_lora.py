"""THEORY §6: the exact LoRA update of W2 reproduces every target (random layers, exact)."""

from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.lora import (
    features, lora_update, updated_model, verify, verify_rational_model,
)
from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Model
from promptlimits.constructions.strategies import models, vectors
from promptlimits.proofs import exp_linalg
from promptlimits.proofs.exppoly import ExpFrac

small = dict(max_numerator=3, max_denominator=2)


@st.composite
def instances(draw):
    model = draw(models(d=st.integers(1, 3), heads=st.integers(1, 2), hidden=st.integers(2, 4),
                        positional=False, **small))
    n = draw(st.integers(1, 3))
    examples = []
    for _ in range(n):
        length = draw(st.integers(1, 2))
        tokens = tuple(draw(vectors(model.d, **small)) for _ in range(length))
        target = tuple(None for _ in range(length - 1)) + (draw(vectors(model.d, **small)),)
        examples.append(Example(tokens, target))
    return model, Dataset(model.d, tuple(examples))


@given(instances())
@settings(max_examples=25)
def test_update_reproduces_every_target(inst):
    model, dataset = inst
    feats = features(model, dataset)
    independent = exp_linalg.rank([list(col) for col in zip(*feats.hidden)]) == len(feats.hidden)
    try:
        update = lora_update(model, dataset)
    except InputError:
        assert not independent  # with independent h_k, THEORY §6 says any targets are realizable
        return
    assert verify(model, update)
    K, d = len(feats.hidden), model.d
    assert update.rank <= min(K, d)
    assert update.rank == exp_linalg.rank(update.delta_W2)
    # rank of ΔW2 is exactly rank E (ΔW2·H = E forces ≥, the construction gives ≤)
    assert update.rank == exp_linalg.rank([list(col) for col in zip(*feats.residuals)])
    if independent:
        assert update.method == "moore-penrose"
    new, exact = updated_model(model, update)
    assert exact == update.rational
    if exact:
        assert verify_rational_model(new, dataset)


@given(instances())
@settings(max_examples=15)
def test_tampered_update_fails_verification(inst):
    model, dataset = inst
    try:
        update = lora_update(model, dataset)
    except InputError:
        return
    assume(update.rank > 0)
    bad_B = tuple(tuple(x + ExpFrac(Fraction(1, 7)) if (i, j) == (0, 0) else x for j, x in enumerate(row))
                  for i, row in enumerate(update.B))
    tampered = type(update)(update.delta_W2, bad_B, update.A, update.method, update.features)
    assert not verify(model, tampered) or all(x.is_zero() for x in update.A[0])


def test_hand_example_rational():
    """d = 1, V = 0 (attention adds nothing), W1 = [1; -1], b1 = 0, W2 = [0 0], b2 = 0:
    f(a) = a, h(a) = (ReLU(a), ReLU(-a)). Inputs 2 and -3, targets 5 and 0:
    E = [3, 3], H = [[2, 0], [0, 3]], ΔW2 = E·H⁻¹ = [3/2, 1]."""
    zero, one = Fraction(0), Fraction(1)
    head = Head(((one,),), ((one,),), ((zero,),), ((zero,),))
    layer = Layer((head,), ((one,), (-one,)), (zero, zero), ((zero, zero),), (zero,))
    model = Model(d=1, layers=(layer,))
    data = Dataset(1, (Example(((Fraction(2),),), ((Fraction(5),),)),
                       Example(((Fraction(-3),),), ((zero,),))))
    update = lora_update(model, data)
    assert update.delta_W2 == ((ExpFrac(Fraction(3, 2)), ExpFrac(1)),)
    assert update.rank == 1 and update.rational
    new, exact = updated_model(model, update)
    assert exact and new.layers[0].W2 == ((Fraction(3, 2), one),)


def test_dependent_features_with_inconsistent_targets_are_refused():
    zero, one = Fraction(0), Fraction(1)
    head = Head(((one,),), ((one,),), ((zero,),), ((zero,),))
    layer = Layer((head,), ((one,),), (zero,), ((zero,),), (zero,))
    model = Model(d=1, layers=(layer,))
    # h = ReLU(a): inputs 1 and 2 give h = 1, 2 (dependent: rank 1); residuals 1 and 1 break h's ratio
    data = Dataset(1, (Example(((one,),), ((Fraction(2),),)), Example(((Fraction(2),),), ((Fraction(3),),))))
    with pytest.raises(InputError, match="W2 alone"):
        lora_update(model, data)
