"""Lemma 2 (proofs/reachable.py): the exact reachable set of (A, v), with witness prompts."""

import math
from fractions import Fraction as F

from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions.evaluate import dot, matvec
from promptlimits.constructions.strategies import matrices, vectors
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly
from promptlimits.proofs.reachable import classify, reachable

I2 = ((F(1), F(0)), (F(0), F(1)))
P1 = ((F(1), F(0)), (F(0), F(0)))  # V = projector on e1: ker V = span(e2)


def realised(prompt, g, V):
    """(A, w = A·v) of a rational prompt at the query g (Lemma 1)."""
    A, w = ExpPoly(), [ExpPoly()] * len(V)
    for p in prompt:
        e = ExpPoly.exp(dot(p, g))
        A = A + e
        w = [wk + e * vk for wk, vk in zip(w, matvec(V, p))]
    return A, tuple(w)


def same_aggregate(witness, g, V, A, w):
    A2, Av2 = witness.aggregate(g, V)
    return A2 == ExpFrac(A) and all(x == ExpFrac(y) for x, y in zip(Av2, w))


@settings(max_examples=40)
@given(st.integers(1, 3).flatmap(lambda d: st.tuples(
    matrices(d, d, rank=st.integers(0, d)), vectors(d), st.integers(1, 3).flatmap(lambda m: st.lists(vectors(d), min_size=m, max_size=m)),
    st.sampled_from(["any", "zero", "row"]))))
def test_what_a_prompt_produces_is_reachable_at_its_own_length(args):
    """Soundness of 'unreachable': (A, v) produced by a real prompt of m tokens must be reachable
    with any length and with exactly m tokens, and the witness must produce the same (A, A·v)."""
    V, g, prompt, kind = args
    if kind == "zero":
        g = tuple(F(0) for _ in g)
    elif kind == "row":  # g = Vᵀη lies in row(V)
        g = matvec(tuple(zip(*V)), g)
    A, w = realised(prompt, g, V)
    for length in (None, len(prompt)):
        r = reachable(g, V, A, w, length)
        assert r.status in ("reachable", "unknown"), r.reason
        if r.status == "reachable":
            assert same_aggregate(r.witness, g, V, A, w)
            assert length is None or r.witness.length == length


def test_case_a_any_mass_with_any_length():
    # V = diag(1, 0), g = (0, 1): n = e2 ∈ ker V scores 1, so A = 7/3 is reached by m tokens
    # scoring log(7/(3m)) each, with value v = (1/2, 0).
    g = (F(0), F(1))
    assert classify(g, P1).kind == "a"
    A, w = ExpPoly.const(F(7, 3)), (ExpPoly.const(F(7, 6)), ExpPoly())
    for m in (None, 1, 4):
        r = reachable(g, P1, A, w, m)
        assert r.status == "reachable" and r.witness.length == (m or 1)
        assert same_aggregate(r.witness, g, P1, A, w)
    # v = (0, 1) ∉ col(V): unreachable whatever A.
    assert reachable(g, P1, A, (ExpPoly(), A), None).violation["kind"] == "value-outside-colV"


def test_integer_trap_g_zero():
    # g = 0: every score is 0, A = m. A = 3/2 is not an integer: no prompt; A = 2 needs m = 2.
    g = (F(0), F(0))
    w = (ExpPoly.const(1), ExpPoly())
    assert reachable(g, I2, ExpPoly.const(F(3, 2)), w).violation["kind"] == "mass-not-integer"
    two = reachable(g, I2, ExpPoly.const(2), w)
    assert two.status == "reachable" and two.witness.length == 2
    assert reachable(g, I2, ExpPoly.const(2), w, 3).violation["kind"] == "mass-not-length"
    assert reachable(g, I2, ExpPoly.const(2), w, 2).status == "reachable"


def test_exp_trap_g_in_row_space():
    # V = I, g = (1, 0) = Vᵀη with η = e1; v = (1, 0) gives η·v = 1, so A ≥ e is needed.
    g, v = (F(1), F(0)), (F(1), F(0))

    def w_of(A):
        return tuple(A * x for x in v)

    one = ExpPoly.const(1)
    assert classify(g, I2).kind == "b"
    assert reachable(g, I2, one, w_of(one)).violation["kind"] == "below-exp"  # 1 < e
    e = ExpPoly.exp(1)
    assert reachable(g, I2, e, w_of(e)).witness.length == 1  # A = e: the token v itself
    assert reachable(g, I2, e, w_of(e), 2).violation["kind"] == "equal-exp-needs-one"
    three = ExpPoly.const(3)  # R = 3/e ≈ 1.10: two tokens of entropy log R; not one token
    r = reachable(g, I2, three, w_of(three))
    assert r.status == "reachable" and r.witness.entropy is not None and r.witness.length == 2
    assert same_aggregate(r.witness, g, I2, three, w_of(three))
    assert reachable(g, I2, three, w_of(three), 1).violation["kind"] == "above-exp-one-token"
    two_e = ExpPoly.exp(1, 2)  # R = 2 exactly: two copies of v
    assert reachable(g, I2, two_e, w_of(two_e), 2).witness.entropy is None
    big = ExpPoly.exp(1, F(5, 2))  # R = 5/2 > 2: two tokens cannot, three can
    assert reachable(g, I2, big, w_of(big), 2).violation["kind"] == "above-m-exp"
    assert reachable(g, I2, big, w_of(big), 3).witness.entropy is not None


def test_entropy_witness_decimals_solve_the_entropy_equation():
    # R = 3/e: the first token's weight α solves H(α) = log R with m = 2 (binary entropy).
    g = (F(1), F(0))
    three = ExpPoly.const(3)
    r = reachable(g, I2, three, (three, ExpPoly()))
    lo, hi = r.witness.entropy.alpha_bracket(g)
    alpha = float((lo + hi) / 2)
    H = -alpha * math.log(alpha) - (1 - alpha) * math.log(1 - alpha)
    assert abs(H - (math.log(3) - 1)) < 1e-12 and hi - lo < F(1, 10**30)
    rows = r.witness.decimals(g)
    digits = [len(x.lstrip("-").replace(".", "").split("e")[0].lstrip("0")) for row in rows for x in row if x != "0"]
    assert min(digits) >= 30
    # token j scores σ + x_j with σ = 1; the weights e^{x_j} sum to R = 3/e
    xs = [float(row[0]) - 1 for row in rows]
    assert abs(sum(math.exp(x) for x in xs) - 3 / math.e) < 1e-12
