"""THEORY §9: the universal transformer g, its prompts P_f, the per-cell bound, the certificate.

d = 1 with n = 1 and n = 2 only (the prompt has K^{dn} tokens), several targets and ε.
"""

import copy
import json
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import stack_balls
from promptlimits.constructions.formats import load_model, load_prompt
from promptlimits.constructions.universal import (
    budget, choose_params, read_params, universal_model,
)
from promptlimits.constructions.universal_prompt import (
    TARGET_FORMAT, builtin_target, centre, check_target, construct_prompt, grid_indices, target_from_json,
)
from promptlimits.main import main
from promptlimits.numerics.universal_samples import sample_errors
from promptlimits.proofs.certificate import CheckFailed
from promptlimits.proofs.interval import rational, upper
from promptlimits.proofs.recheck import recheck
from promptlimits.proofs.universal_bound import BoundFailed, Grid, bound_cells, tokenwise_constant
from promptlimits.proofs.universal_certificate import certify_universal

F = Fraction
CASES = [  # (d, n, L, ε, target)
    (1, 1, F(1), F(1, 10), "linear"),
    (1, 1, F(3, 2), F(1, 5), "smooth"),
    (1, 2, F(1), F(1, 4), "sort"),
    (1, 2, F(3, 2), F(2, 5), "smooth"),
    (1, 2, F(1), F(3, 10), "random"),
]


def _build(d, n, L, eps, name, seed=0):
    p = choose_params(d, n, L, eps)
    model = universal_model(p)
    target = builtin_target(name, p, L, seed)
    return p, model, target, construct_prompt(p, target)


def _good_point(p, rng):
    """A random X (n tokens of d) outside every band."""
    X = []
    for _ in range(p.n):
        tok = []
        for _ in range(p.d):
            j = rng.randrange(p.K)
            lo = F(j, p.K) + (p.eta if j else 0)
            tok.append(lo + (F(j + 1, p.K) - lo) * F(rng.randrange(1, 1000), 1000))
        X.append(tuple(tok))
    return tuple(X)


@pytest.mark.parametrize("d,n,L,eps,name", CASES)
def test_certificate_holds_and_rechecks(d, n, L, eps, name):
    p, model, target, P = _build(d, n, L, eps, name)
    v = certify_universal(model, P, Grid(d, n, p.K, p.eta), target, eps)
    assert v.verdict == "holds", v.reason
    assert v.bounds.total <= eps
    # the parameters keep the a-priori budget and the bands inside ε
    b = budget(p, L)
    assert b.total <= float(eps) and b.bands_measure <= float(eps) / 2
    assert Grid(d, n, p.K, p.eta).bands_measure() <= eps / 2
    assert len(P) == p.K ** (d * n) and len(model.layers) == 3
    assert recheck(json.loads(json.dumps(v.certificate)))


@pytest.mark.parametrize("d,n,L,eps,name", CASES)
def test_independent_samples_stay_within_epsilon(d, n, L, eps, name):
    """Points outside the bands, evaluated by the generic rigorous evaluator (whole sequence,
    prompt states carried through every layer): error to f(X) (or to f(c̄) plus L·‖X − c̄‖) ≤ ε."""
    p, model, target, P = _build(d, n, L, eps, name)
    rng = random.Random(12345)
    width = model.d
    for _ in range(3):
        X = _good_point(p, rng)
        out = stack_balls(model, P, [tuple(x) + (F(0),) * (width - d) for x in X])
        idx = tuple(min(int(v * p.K), p.K - 1) for tok in X for v in tok)
        cell = grid_indices(d, n, p.K).index(idx)
        ref = target.exact(X) if target.exact is not None else target.values[cell]
        for i in range(n):
            diff = [out[i][k] - rational(F(ref[i][k])) for k in range(d)]
            err = sum((e * e for e in diff), rational(0)).nonnegative_part().sqrt()
            if target.exact is None:  # grid values only: add L·‖X − c̄‖ ≤ L·δ·√(dn)/2
                err += rational(L) * rational(d * n).sqrt() / (2 * p.K)
            assert upper(err) <= eps, (X, float(upper(err)))
    s = sample_errors(model, P, p, target, count=300, seed=7)
    assert s.outside > 0 and s.max_outside <= float(eps)


def test_quantiser_is_exact_off_bands_and_fails_across_a_band():
    p = choose_params(1, 1, F(1), F(1, 10))
    model = universal_model(p)
    layer, lay = model.layers[0], p.layout
    pos = model.positional[0]
    for j in range(p.K):
        lo = list(pos)
        hi = list(pos)
        lo[0] += F(j, p.K) + (p.eta if j else 0)
        hi[0] += F(j + 1, p.K)
        out = tokenwise_constant(layer, tuple(lo), tuple(hi))
        assert out[lay.Q] == F(j, p.K) and out[lay.X] == 0  # q = δ⌊x/δ⌋, x cancelled
    lo, hi = list(pos), list(pos)
    lo[0] += F(3, p.K)  # the band (3δ, 3δ + η) is inside this box
    hi[0] += F(4, p.K)
    with pytest.raises(BoundFailed):
        tokenwise_constant(layer, tuple(lo), tuple(hi))


def test_wrong_grid_values_are_seen_by_the_bound():
    p, model, target, P = _build(1, 2, F(1), F(1, 4), "sort")
    shifted = [tuple(tuple(v + F(3, 10) if c == 5 else v for v in tok) for tok in val)
               for c, val in enumerate(target.values)]
    cb = bound_cells(model, P, Grid(1, 2, p.K, p.eta), shifted, F(1))
    assert cb.cells[5] >= F(3, 10) - F(1, 1000)
    assert max(cb.cells[:5] + cb.cells[6:]) < F(1, 1000)


def test_bound_refuses_layers_it_does_not_cover():
    """A GELU (or layer-norm) layer is outside the evaluator: refused, never bounded as if ReLU."""
    p, model, target, P = _build(1, 1, F(1), F(1, 5), "linear")
    last = model.layers[2]
    gelu = type(model)(model.d, model.layers[:2] + (type(last)(last.heads, last.W1, last.b1, last.W2, last.b2, "gelu"),),
                       model.attention, model.score_scale, model.positional)
    with pytest.raises(BoundFailed):
        bound_cells(gelu, P, Grid(1, 1, p.K, p.eta), target.values, F(1))


def test_read_params_refuses_other_models():
    p, model, _, _ = _build(1, 2, F(1), F(1, 4), "sort")
    assert read_params(model) == p
    assert construct_prompt(model, builtin_target("sort", p)) == construct_prompt(p, builtin_target("sort", p))
    layer = model.layers[2]
    W2 = tuple(tuple(F(7) if (k, u) == (0, 0) else v for u, v in enumerate(row)) for k, row in enumerate(layer.W2))
    broken = type(model)(model.d, (model.layers[0], model.layers[1], type(layer)(layer.heads, layer.W1, layer.b1, W2, layer.b2)),
                         model.attention, model.score_scale, model.positional)
    with pytest.raises(InputError):
        read_params(broken)


def test_json_target_round_trip_and_lipschitz_check():
    p, _, target, P = _build(1, 2, F(1), F(1, 4), "sort")
    obj = {"format": TARGET_FORMAT, "d": 1, "n": 2, "K": p.K, "lipschitz": "1",
           "values": [[[str(v) for v in tok] for tok in val] for val in target.values]}
    again = target_from_json(obj, p, "t.json")
    assert construct_prompt(p, again) == P
    assert check_target(again) == len(P) * (len(P) - 1) // 2
    steep = dict(obj, values=[[[str(F(c % 2))] for _ in range(2)] for c in range(len(P))])  # jumps 1 over δ
    with pytest.raises(InputError):
        check_target(target_from_json(steep, p, "t.json"))
    with pytest.raises(InputError):
        target_from_json(dict(obj, K=p.K + 1), p, "t.json")


def test_builtin_values_are_the_target_at_the_centres():
    p = choose_params(1, 2, F(1), F(1, 4))
    t = builtin_target("sort", p)
    for idx, val in zip(grid_indices(1, 2, p.K), t.values):
        c = centre(idx, p.K)
        assert val == ((min(c),), (max(c),))


MUTATIONS = [
    ("prompt value", lambda ev: ev["prompt"][1].__setitem__(-5, "1/3")),
    ("target value", lambda ev: ev["values"][2][0].__setitem__(0, "1/7")),
    ("epsilon below the bound", lambda ev: ev.__setitem__("epsilon", "1/100")),
    ("bound", lambda ev: ev.__setitem__("bound", "1/5")),
    ("cell bound", lambda ev: ev["cell_bounds"].__setitem__(0, "0")),
    ("eta", lambda ev: ev.__setitem__("eta", "1/50")),
    ("lipschitz", lambda ev: ev.__setitem__("lipschitz", "1/2")),
    ("bands", lambda ev: ev.__setitem__("bands_measure", "0")),
]


@pytest.mark.parametrize("what,mutate", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_recheck_rejects_mutations(what, mutate):
    p, model, target, P = _build(1, 2, F(1), F(1, 4), "sort")
    cert = certify_universal(model, P, Grid(1, 2, p.K, p.eta), target, F(1, 4)).certificate
    bad = copy.deepcopy(cert)
    mutate(bad["evidence"])
    with pytest.raises(CheckFailed):
        recheck(bad)
    flipped = copy.deepcopy(cert)
    flipped["verdict"] = "unknown"
    with pytest.raises(CheckFailed):
        recheck(flipped)


def test_cli_universal_prompt_recheck(tmp_path, capsys):
    g, pr, cert = tmp_path / "g.json", tmp_path / "p.json", tmp_path / "c.json"
    assert main(["construct", "universal", "--d", "1", "--n", "1", "--lipschitz", "1", "--epsilon", "1/5",
                 "--out", str(g), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["depth"] == 3 and payload["prompt_length"] == payload["K"] and payload["budget"]["total"] <= 0.2
    assert main(["construct", "prompt", str(g), "linear", "--out", str(pr), "--epsilon", "1/5",
                 "--certificate", str(cert), "--samples", "50", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["verdict"] == "holds" and payload["samples"]["max_error"] <= 0.2
    assert main(["recheck", str(cert)]) == 0
    capsys.readouterr()
    # not provable: exit 3, no certificate; bad input: exit 2, no file
    cert2 = tmp_path / "c2.json"
    assert main(["construct", "prompt", str(g), "smooth", "--out", str(tmp_path / "p2.json"), "--epsilon", "1/100",
                 "--certificate", str(cert2)]) == 3
    assert not cert2.exists()
    assert main(["construct", "prompt", str(g), "sort2", "--out", str(tmp_path / "p3.json")]) == 2
    assert main(["construct", "prompt", str(tmp_path / "p.json"), "sort", "--out", str(tmp_path / "p4.json")]) == 2
    assert main(["construct", "universal", "--d", "1", "--n", "2", "--lipschitz", "1", "--epsilon", "1/1000",
                 "--out", str(tmp_path / "big.json")]) == 2
    assert not (tmp_path / "p3.json").exists() and not (tmp_path / "big.json").exists()


@settings(max_examples=6)
@given(n=st.sampled_from([1, 2]), eps=st.sampled_from([F(1, 3), F(1, 4), F(3, 10)]),
       L=st.sampled_from([F(1, 2), F(1)]), seed=st.integers(0, 10**6))
def test_held_back_random_targets(n, eps, L, seed):
    """Random Lipschitz grid targets, drawn ε and L: the certificate holds, and the twin on fresh
    random inputs off the bands stays within ε of the cell-centre value plus L·δ·√n/2."""
    p, model, target, P = _build(1, n, L, eps, "random", seed)
    v = certify_universal(model, P, Grid(1, n, p.K, p.eta), target, eps)
    assert v.verdict == "holds", v.reason
    s = sample_errors(model, P, p, target, count=200, seed=seed + 1)
    assert s.max_outside + float(L) * (n ** 0.5) / (2 * p.K) <= float(eps)


def test_cli_prompt_from_a_grid_target_file(tmp_path, capsys):
    g = tmp_path / "g.json"
    assert main(["construct", "universal", "--d", "1", "--n", "2", "--lipschitz", "1", "--epsilon", "1/2",
                 "--out", str(g)]) == 0
    capsys.readouterr()
    p = read_params(load_model(g))
    values = [[[str(F(1, 2) + F(j0 - j1, 4 * p.K))] for _ in range(2)] for j0, j1 in grid_indices(1, 2, p.K)]
    tfile = tmp_path / "t.json"
    tfile.write_text(json.dumps({"format": TARGET_FORMAT, "d": 1, "n": 2, "K": p.K, "lipschitz": "1",
                                 "values": values}))
    out, cert = tmp_path / "p.json", tmp_path / "c.json"
    assert main(["construct", "prompt", str(g), str(tfile), "--out", str(out), "--epsilon", "1/2",
                 "--certificate", str(cert), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["verdict"] == "holds" and payload["prompt_length"] == p.K ** 2
    assert [list(map(str, t[p.layout.VAL:p.layout.OUT])) for t in load_prompt(out)] == [v[0] + v[1] for v in values]
    assert main(["recheck", str(cert)]) == 0
    assert main(["construct", "prompt", str(g), str(tfile), "--out", str(tmp_path / "q.json"),
                 "--certificate", str(tmp_path / "c2.json")]) == 2


@pytest.mark.slow
def test_reproduce_e7_rows_agree_and_certificates_recheck():
    from promptlimits.numerics.catalogue import Settings
    from promptlimits.numerics.exp_universal import run

    result = run(Settings(quick=True, certificates=True))
    assert all(row.agree for row in result.rows)
    assert len(result.certificates) == len(result.rows[0].details["configs"])
    for cert in result.certificates.values():
        assert recheck(json.loads(json.dumps(cert)))
