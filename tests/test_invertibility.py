"""Injectivity of residual ReLU blocks (THEORY §7): hand-derived answers, the naive SMT
oracle, metamorphic relations, and certificates that reject tampering."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from fractions import Fraction as F

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from promptlimits.constructions.spec import Head, Layer, Model
from promptlimits.proofs.certificate import CheckFailed, make_certificate
from promptlimits.proofs.invertibility import decide
from promptlimits.proofs.linalg import det, inverse, matmul, matvec
from promptlimits.proofs.recheck import recheck
from promptlimits.proofs.region_search import bfs_regions
from promptlimits.proofs.regions import Block, arrangement, flats_count, region_count
from promptlimits.proofs.smt_injectivity import naive_injectivity, smtlib


def layer(w1, b1, w2, b2, activation="relu"):
    d = len(b2)
    eye = tuple(tuple(F(int(i == j)) for j in range(d)) for i in range(d))
    return Layer((Head(eye, eye, eye, eye),), tuple(tuple(F(x) for x in r) for r in w1), tuple(F(x) for x in b1),
                 tuple(tuple(F(x) for x in r) for r in w2), tuple(F(x) for x in b2), activation=activation)


H = F(1, 2)
#: The PL analogue of z ↦ z²: f(x) = (|x1| − |x2|, (|x1 + x2| − |x1 − x2|)/2) as x + g(x).
Z2 = layer([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1], [1, -1], [-1, 1]], [0] * 8,
           [[0, 2, -1, -1, 0, 0, 0, 0], [0, 0, -1, 1, H, H, -H, -H]], [0, 0])


def certificate(lay: Layer, dec) -> dict:
    d = len(lay.b2)
    model = Model(d, (lay,))
    cert = make_certificate("invertible", dec.verdict, dec.method, dict(dec.evidence, layer=0), model)
    return json.loads(json.dumps(cert))


def test_z2_map_is_two_to_one_although_coherently_oriented():
    block = Block.of(Z2)
    for x in ([F(3), F(-1)], [F(1, 3), F(2)]):  # f is the z² analogue: f(x) = f(−x)
        fx = block(x)
        assert fx == (abs(x[0]) - abs(x[1]), (abs(x[0] + x[1]) - abs(x[0] - x[1])) / 2)
        assert block([-v for v in x]) == fx
    dec = decide(Z2)
    assert dec.verdict == "not-injective"
    assert dec.det_signs == {"positive": 8, "negative": 0, "zero": 0} and dec.region_count == 8
    x, y = dec.collision
    assert x != y and block(x) == block(y)
    assert recheck(certificate(Z2, dec))


def test_orientation_flip_one_dimensional():
    """f(x) = x − 3 ReLU(x) is x on x < 0 and −2x on x > 0: det −2 < 0 < 1."""
    lay = layer([[1]], [0], [[-3]], [0])
    dec = decide(lay)
    assert dec.verdict == "not-injective"
    x, y = dec.collision
    assert Block.of(lay)(x) == Block.of(lay)(y) and x != y
    assert recheck(certificate(lay, dec))


def test_orientation_flip_two_dimensional():
    """f(x) = (x1 − 2 ReLU(x1 − 1), x2): the half plane x1 > 1 is mirrored (det −1)."""
    lay = layer([[1, 0]], [-1], [[-2], [0]], [0, 0])
    dec = decide(lay, method="exact")
    assert dec.verdict == "not-injective"
    x, y = dec.collision
    assert x[1] == y[1] and x[0] + y[0] == 2  # the fold x1 ↦ 2 − x1 pairs points across x1 = 1


def test_orientation_reversing_homeomorphism_is_injective():
    """f(x) = −x = x − 2 ReLU(x) + 2 ReLU(−x): every det is −1, one preimage: injective."""
    lay = layer([[1], [-1]], [0, 0], [[-2, 2]], [0])
    dec = decide(lay)
    assert dec.verdict == "injective" and dec.det_signs == {"positive": 0, "negative": 2, "zero": 0}
    assert recheck(certificate(lay, dec))


def test_contraction_is_decided_by_norms():
    lay = layer([[F(1, 2), 0], [0, F(1, 3)]], [0, -1], [[F(1, 2), 0], [0, F(1, 4)]], [1, 1])
    dec = decide(lay)
    assert dec.verdict == "injective" and dec.method == "lipschitz" and dec.norm_product < 1
    assert recheck(certificate(lay, dec))


def test_gelu_is_outside_the_hypotheses():
    lay = layer([[1]], [0], [[F(1, 2)]], [0], activation="gelu")
    dec = decide(lay)
    assert dec.verdict == "unknown" and "outside the hypotheses" in dec.reason


def test_singular_piece_collides():
    """f(x) = x − ReLU(x): constant 0 on x > 0."""
    lay = layer([[1]], [0], [[-1]], [0])
    dec = decide(lay)
    x, y = dec.collision
    assert dec.verdict == "not-injective" and x[0] > 0 and y[0] > 0


# --------------------------------------------------------------------------- generated blocks

small = st.fractions(min_value=-3, max_value=3, max_denominator=4)


@st.composite
def blocks(draw, max_d=3, max_r=5):
    d = draw(st.integers(1, max_d))
    r = draw(st.integers(1, max_r))
    w1 = [[draw(small) for _ in range(d)] for _ in range(r)]
    b1 = [draw(small) for _ in range(r)]
    w2 = [[draw(small) for _ in range(r)] for _ in range(d)]
    b2 = [draw(small) for _ in range(d)]
    return layer(w1, b1, w2, b2)


@st.composite
def convex_gradient_blocks(draw):
    """f = x + ∇φ with φ(x) = Σ λ_j ReLU(w_j·x + b_j)²/2 convex: W2 = W1ᵀ diag(λ), λ > 0.
    f is strongly monotone ((f(x) − f(y))·(x − y) ≥ ‖x − y‖²), hence injective."""
    d = draw(st.integers(1, 3))
    r = draw(st.integers(1, 6))
    w1 = [[draw(st.integers(-4, 4)) for _ in range(d)] for _ in range(r)]
    lam = [draw(st.integers(1, 6)) for _ in range(r)]
    b1 = [draw(small) for _ in range(r)]
    w2 = [[F(w1[j][i] * lam[j]) for j in range(r)] for i in range(d)]
    return layer(w1, b1, w2, [draw(small) for _ in range(d)])


@settings(max_examples=25)
@given(convex_gradient_blocks())
def test_gradient_of_convex_blocks_are_injective(lay):
    """Both the monotone certificate and the region route (all regions, one preimage) say so."""
    dec = decide(lay, method="exact")
    assert dec.verdict == "injective" and dec.method == "monotone"
    assert recheck(certificate(lay, dec))
    regions = decide(lay, method="exact", use_monotone=False)
    assert regions.verdict == "injective" and regions.method == "exact"
    assert recheck(certificate(lay, regions))


def test_gradient_of_convex_block_with_large_lipschitz_product():
    w1 = [[3, 1, 0], [-1, 2, 2], [0, -3, 1], [2, 2, -2], [1, 0, 4]]
    lam = [5, 3, 7, 2, 4]
    w2 = [[w1[j][i] * lam[j] for j in range(5)] for i in range(3)]
    lay = layer(w1, [1, -2, 0, 3, -1], w2, [0, 1, 0])
    dec = decide(lay)
    assert dec.verdict == "injective" and dec.method == "monotone" and dec.norm_product > 50
    assert decide(lay, use_monotone=False).method == "exact"
    assert decide(lay, method="lipschitz").verdict == "unknown"


def test_monotone_route_survives_conjugation():
    """T⁻¹∘(x + ∇φ)∘T is strongly monotone in the P = TᵀT norm: found via the nullspace."""
    w1 = [[1, 2], [3, -1], [1, 1]]
    grad = layer(w1, [1, 0, -2], [[1, 3, 1], [2, -1, 1]], [0, 0])
    conj = _conjugate(grad, [[2, 1], [0, 1]])
    dec = decide(conj)
    assert dec.verdict == "injective" and dec.method == "monotone"
    assert recheck(certificate(conj, dec))


@settings(max_examples=40)
@given(blocks())
def test_agrees_with_the_naive_smt_oracle(lay):
    dec = decide(lay, timeout=20)
    smt = naive_injectivity(Block.of(lay), timeout=20)
    if dec.verdict != "unknown" and smt.verdict != "unknown":
        assert dec.verdict == smt.verdict
    assert dec.verdict != "unknown"
    if dec.collision:
        x, y = dec.collision
        assert x != y and Block.of(lay)(x) == Block.of(lay)(y)


def _conjugate(lay: Layer, t) -> Layer:
    """T⁻¹∘f∘T as a residual block: W1' = W1 T, W2' = T⁻¹ W2, b2' = T⁻¹ b2."""
    ti = inverse(t)
    return layer(matmul(lay.W1, t), lay.b1, matmul(ti, lay.W2), matvec(ti, lay.b2))


@settings(max_examples=25)
@given(blocks(max_d=2, max_r=4), st.data())
def test_conjugation_and_translation_preserve_the_verdict(lay, data):
    d = len(lay.b2)
    t = [[data.draw(st.integers(-2, 2)) for _ in range(d)] for _ in range(d)]
    assume(det(t) != 0)
    s = [data.draw(small) for _ in range(d)]
    verdict = decide(lay, method="exact").verdict
    conj = _conjugate(lay, t)
    x = [F(1, 3)] * d
    tx = matvec(t, x)  # T⁻¹ f(T x) = f'(x)
    assert matvec(inverse(t), Block.of(lay)(tx)) == Block.of(conj)(x)
    assert decide(conj, method="exact").verdict == verdict
    shifted = layer(lay.W1, [b + sum(w * v for w, v in zip(row, s)) for row, b in zip(lay.W1, lay.b1)],
                    lay.W2, [b + v for b, v in zip(lay.b2, s)])
    assert Block.of(shifted)(x) == Block.of(lay)([a + b for a, b in zip(x, s)])  # f'(x) = f(x + s)
    assert decide(shifted, method="exact").verdict == verdict


@settings(max_examples=25)
@given(blocks(max_d=2, max_r=4), st.data())
def test_scaling_a_hidden_unit_changes_nothing(lay, data):
    j = data.draw(st.integers(0, len(lay.b1) - 1))
    c = data.draw(st.fractions(min_value=F(1, 5), max_value=5, max_denominator=5).filter(lambda v: v > 0))
    w1 = [list(r) for r in lay.W1]
    b1 = list(lay.b1)
    w2 = [list(r) for r in lay.W2]
    w1[j] = [c * v for v in w1[j]]
    b1[j] *= c
    for row in w2:
        row[j] /= c
    scaled = layer(w1, b1, w2, lay.b2)
    x = [F(2, 7)] * len(lay.b2)
    assert Block.of(scaled)(x) == Block.of(lay)(x)
    assert decide(scaled, method="exact").verdict == decide(lay, method="exact").verdict


# --------------------------------------------------------------------------- completeness counts


@settings(max_examples=30)
@given(st.data())
def test_zaslavsky_count_matches_z3_search_on_degenerate_arrangements(data):
    """Lines drawn from a small pool (repeats, parallels, concurrency): the flats/Möbius
    count equals the number of regions Z3's breadth-first search finds."""
    pool = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, -1, 0], [1, 0, 1], [1, 0, -1], [2, 1, 1], [0, 1, 1]]
    rows = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
    lay = layer([r[:2] for r in rows], [r[2] for r in rows], [[1] * len(rows), [2] * len(rows)], [0, 0])
    arr = arrangement(Block.of(lay))
    count = flats_count(arr, 2, 10_000)
    found = bfs_regions(arr, 2, [F(1, 7), F(3, 11)], 10**6, 10_000)
    assert count == len(found)
    assert region_count(arr, 2, 10_000)[0] == count


# --------------------------------------------------------------------------- certificates


def _mutations(ev):
    """(path, mutated evidence) for every number string and int in the evidence."""
    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, path + (i,))
        elif isinstance(node, str) and path[-1] not in ("route", "how", "side", "method"):
            yield path, str(F(node) + 1)
        elif isinstance(node, bool):
            yield path, not node
        elif isinstance(node, int) and path != ("layer",):
            yield path, node + 1
    for path, value in walk(ev, ()):
        mutated = copy.deepcopy(ev)
        target = mutated
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        yield path, mutated


#: −x plus a small kink: coherently oriented (det 1 and 1/2), injective, not monotone.
NEG = layer([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1]], [0, 0, 0, 0, -1],
            [[-2, 2, 0, 0, F(1, 4)], [0, 0, -2, 2, F(1, 4)]], [0, 0])


@pytest.mark.parametrize("which", ["z2", "contraction", "exact", "monotone"])
def test_every_mutated_number_is_rejected(which):
    """Each number of the evidence, changed by +1, makes recheck fail — except a region's
    interior point that stays in the same region, an 'outside' index that names another
    strictly violated inequality, or a monotone certificate's (P, λ) that still satisfies
    every condition: those mutated certificates are still valid proofs."""
    if which == "z2":
        lay = Z2
    elif which == "contraction":
        lay = layer([[F(1, 2), 0], [0, F(1, 3)]], [0, -1], [[F(1, 2), 0], [0, F(1, 4)]], [1, 1])
    elif which == "exact":
        lay = NEG
    else:
        lay = layer([[1, 2], [3, -1], [1, 1]], [1, 0, -2], [[1, 3, 1], [2, -1, 1]], [0, 0])
    dec = decide(lay)
    assert dec.evidence["route"] == {"z2": "collision"}.get(which, which if which != "contraction" else "lipschitz")
    cert = certificate(lay, dec)
    assert recheck(cert)
    block = Block.of(lay)
    arr = arrangement(block)
    for path, ev in _mutations(cert["evidence"]):
        bad = dict(cert, evidence=ev)
        still_valid = False
        if path[0] == "regions":
            old = [F(v) for v in cert["evidence"]["regions"][path[1]]]
            new = [F(v) for v in ev["regions"][path[1]]]
            still_valid = arr.mask(old) == arr.mask(new)
        if path[0] == "outside" and cert["evidence"]["outside"][path[1]] != -1:
            still_valid = _violates(block, arr, cert["evidence"], path[1], ev["outside"][path[1]])
        if path[0] == "lambda":  # λ_j of a unit is pinned by P·W2[:, j] = λ_j W1[j]ᵀ
            still_valid = False
        if still_valid:
            assert recheck(bad)
        else:
            with pytest.raises(CheckFailed):
                recheck(bad)


def _violates(block, arr, ev, i, h):
    from promptlimits.proofs.regions import Pieces, violates

    if h >= arr.size:
        return False
    pts = [[F(v) for v in p] for p in ev["regions"]]
    m = arr.mask(pts[i])
    _, vals = Pieces(block, arr).solution_values(m, [F(v) for v in ev["y"]])
    return violates(m, h, vals[h])


def test_checker_never_imports_z3():
    code = ("import sys, promptlimits.proofs.check_invertible, promptlimits.proofs.recheck; "
            "assert 'z3' not in sys.modules, 'z3 imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_exit_codes(tmp_path):
    from promptlimits.main import main

    model = Model(2, (Z2,))
    from promptlimits.constructions.formats import model_to_json

    path = tmp_path / "z2.json"
    path.write_text(json.dumps(model_to_json(model)))
    out = tmp_path / "cert.json"
    assert main(["invertible", str(path), "--json", "--out", str(out)]) == 0
    assert main(["recheck", str(out)]) == 0
    assert main(["invertible", str(path), "--method", "lipschitz"]) == 3
    assert main(["invertible", str(path), "--layer", "1"]) == 2
    assert main(["invertible", str(path), "--timeout", "0"]) == 2


@pytest.mark.slow
def test_cvc5_agrees_with_z3_on_the_smt_query():
    cvc5 = pytest.importorskip("cvc5")

    for lay, expected in ((Z2, "sat"), (layer([[1], [-1]], [0, 0], [[-2, 2]], [0]), "unsat")):
        solver = cvc5.Solver()
        solver.setOption("produce-models", "true")
        solver.setLogic("QF_LRA")
        parser = cvc5.InputParser(solver)
        parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, smtlib(Block.of(lay)), "q")
        sm = parser.getSymbolManager()
        result = None
        while True:
            cmd = parser.nextCommand()
            if cmd.isNull():
                break
            out = cmd.invoke(solver, sm)
            if out.strip() in ("sat", "unsat", "unknown"):
                result = out.strip()
        assert result == expected


def test_limits_give_unknown_with_a_reason():
    """A tiny timeout or region limit never yields a wrong verdict: unknown, reason given."""
    w1 = [[3, 1, 0], [-1, 2, 2], [0, -3, 1], [2, 2, -2], [1, 0, 4]]
    w2 = [[w1[j][i] * 2 for j in range(5)] for i in range(3)]
    lay = layer(w1, [1, -2, 0, 3, -1], w2, [0, 1, 0])
    timed = decide(lay, method="exact", timeout=1e-9, use_monotone=False)
    assert timed.verdict == "unknown" and "timeout" in timed.reason
    limited = decide(lay, method="exact", region_limit=3, use_monotone=False)
    assert limited.verdict == "unknown" and "regions" in limited.reason
