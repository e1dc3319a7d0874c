"""Each adversarial family builds what its docstring promises, checked exactly.

A family that drifted (a norm product that is not ρ, a collision that is not one, a query
whose g is not 0, targets a prompt does not produce) would make the campaign's expectations
wrong; these properties pin them. The steered test drives near-intersecting rays towards
the smallest certificate margin with ``hypothesis.target``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings, target

from promptlimits.constructions import adversarial as adv
from promptlimits.constructions.evaluate import layer_exact, matvec, score_matrix, value_matrix
from promptlimits.constructions.spec import Layer
from promptlimits.proofs import linalg
from promptlimits.proofs.certificate import make_certificate
from promptlimits.proofs.exppoly import ExpPoly
from promptlimits.proofs.memorization import decide
from promptlimits.proofs.recheck import recheck

CI = adv.SIZES["ci"]
FEW = settings(max_examples=25)


def _gram(a):
    return linalg.matmul(linalg.transpose(a), a) if len(a) >= len(a[0]) else linalg.matmul(a, linalg.transpose(a))


def _scaled_identity(m) -> Fraction | None:
    c = m[0][0]
    ok = all(m[i][j] == (c if i == j else 0) for i in range(len(m)) for j in range(len(m)))
    return c if ok else None


@FEW
@given(adv.boundary(CI))
def test_boundary_norm_product_is_exactly_rho(inst):
    """W1 and W2 have orthogonal rows or columns, so ‖W2‖₂²‖W1‖₂² is the product of the Gram scalars."""
    layer = inst.model.layers[0]
    g1, g2 = _scaled_identity(_gram(layer.W1)), _scaled_identity(_gram(layer.W2))
    assert g1 is not None and g2 is not None
    assert g1 * g2 in ((1 - inst.margin) ** 2, (1 + inst.margin) ** 2)  # ρ² with |1 − ρ| = margin
    assert (inst.expects("invertible") == "injective") == (g1 * g2 < 1)


def _collides(layer: Layer, x, x2) -> bool:
    return x != x2 and adv.feed_forward_rational(layer, x) == adv.feed_forward_rational(layer, x2)


@FEW
@given(adv.flip(CI))
def test_flip_has_its_collision_and_both_orientations(inst):
    layer = inst.model.layers[0]
    assert _collides(layer, *inst.collision)
    # the single hidden unit splits R^d; det(I + W2 D W1) is 1 with the unit off and < 0 with it on
    on = linalg.det(tuple(tuple((i == j) + sum(layer.W2[i][k] * layer.W1[k][j] for k in range(layer.hidden))
                                for j in range(inst.model.d)) for i in range(inst.model.d)))
    assert on < 0
    assert inst.expects("invertible") == "not-injective"


@FEW
@given(adv.fold(CI))
def test_fold_is_two_to_one_through_the_conjugation(inst):
    assert _collides(inst.model.layers[0], *inst.collision)


def test_fold_base_is_the_z_squared_map():
    """The unconjugated block computes (|x₁| − |x₂|, (|x₁+x₂| − |x₁−x₂|)/2) at sample points."""
    W1 = tuple(tuple(Fraction(w) for w in row) for row in adv.FOLD_W1)
    W2 = tuple(tuple(Fraction(w) for w in row) for row in adv.FOLD_W2)
    layer = Layer(heads=(), W1=W1, b1=(Fraction(0),) * 5, W2=W2, b2=(Fraction(0),) * 2)
    for a in range(-3, 4):
        for b in range(-3, 4):
            x = (Fraction(a, 2), Fraction(b, 3))
            want = (abs(x[0]) - abs(x[1]), (abs(x[0] + x[1]) - abs(x[0] - x[1])) / 2)
            assert adv.feed_forward_rational(layer, x) == want


@FEW
@given(adv.rank_deficient(CI))
def test_rank_deficient_value_map(inst):
    assert linalg.rank(value_matrix(inst.model.layers[0].heads[0])) < inst.model.d


@FEW
@given(adv.zero_query(CI))
def test_zero_query_scores_are_all_zero(inst):
    head = inst.model.layers[0].heads[0]
    M = score_matrix(head, inst.model.score_scale)
    q = inst.dataset.examples[0].input[-1]
    assert all(ex.input[-1] == q for ex in inst.dataset.examples)
    assert not any(matvec(M, q))


@FEW
@given(adv.row_query(CI))
def test_row_query_g_lies_in_the_row_space_of_V(inst):
    head = inst.model.layers[0].heads[0]
    M, V = score_matrix(head, inst.model.score_scale), value_matrix(head)
    for ex in inst.dataset.examples:
        g = matvec(M, ex.input[-1])
        assert linalg.in_column_space(linalg.transpose(V), g)


@FEW
@given(adv.generated(CI))
def test_generated_targets_are_met_exactly_by_the_prompt(inst):
    for ex in inst.dataset.examples:
        outs = layer_exact(inst.model, inst.prompt, ex.input)
        assert all(y is None or o.equals(y) for o, y in zip(outs, ex.target))
    assert inst.expects("memorizable") == "memorizable"


@FEW
@given(adv.same_output(CI))
def test_same_output_pairs(inst):
    a, b = inst.dataset.examples
    assert a.input != b.input and a.target[-1] == b.target[-1]


@FEW
@given(adv.near_degenerate(CI))
def test_near_degenerate_rewrites_keep_the_generated_targets(inst):
    """The 10^±k rewrites change weights by many orders of magnitude but no output."""
    for ex in inst.dataset.examples:
        outs = layer_exact(inst.model, inst.prompt, ex.input)
        assert all(y is None or o.equals(y) for o, y in zip(outs, ex.target))


def test_conjugate_and_scale_hidden_are_exact_identities():
    layer = Layer(heads=(), W1=((Fraction(1), Fraction(-2)), (Fraction(3), Fraction(1, 2))),
                  b1=(Fraction(1), Fraction(-1)), W2=((Fraction(2), Fraction(1)), (Fraction(-1), Fraction(3))),
                  b2=(Fraction(1, 3), Fraction(0)))
    T = ((Fraction(2), Fraction(1)), (Fraction(1), Fraction(1)))
    t, c = (Fraction(1), Fraction(-2)), (Fraction(5), Fraction(7))
    h = adv.conjugate(layer, T, t, c)
    s = adv.scale_hidden(layer, 1, Fraction(7, 3))
    for x in [(Fraction(a), Fraction(b, 2)) for a in range(-2, 3) for b in range(-2, 3)]:
        fx = adv.feed_forward_rational(layer, tuple(p + q for p, q in zip(matvec(T, x), t)))
        want = tuple(p + q for p, q in zip(adv.conjugate_point(T, t, fx), c))
        assert adv.feed_forward_rational(h, x) == want
        assert adv.feed_forward_rational(s, x) == adv.feed_forward_rational(layer, x)


def _certificate_margin(evidence: dict) -> float | None:
    """How close a shared-query refutation came to failing: the smallest |residual| of an
    inconsistent pair, or |A| of a pinned A ≤ 0, over the refuted preimage combinations."""
    margins = []
    for combo in evidence.get("combinations", []):
        reason = combo["reason"]
        key = {"inconsistent": "residual", "nonpositive": "A"}.get(reason.get("kind"))
        if key is not None:
            margins.append(abs(float(ExpPoly((Fraction(r), Fraction(c)) for r, c in reason[key]))))
    return min(margins) if margins else None


@settings(max_examples=30)
@given(adv.near_intersecting(CI))
def test_near_intersecting_refutations_recheck_while_steered_to_small_margins(inst):
    """Rays that nearly meet: a not-memorizable verdict's certificate rechecks, and Hypothesis
    is steered towards the smallest margins the certificates show."""
    dec = decide(inst.model, inst.dataset, timeout=2)
    if dec.verdict != "not-memorizable":
        return
    margin = _certificate_margin(dec.evidence)
    if margin is not None and 0 < margin < math.inf:
        target(-math.log10(margin), label="-log10 certificate margin")
    cert = make_certificate("memorizable", dec.verdict, dec.method, dec.evidence, inst.model, inst.dataset)
    assert recheck(cert)
