"""Re-verify a ``memorizable`` certificate without Z3 (Fractions, exp-polynomials, intervals).

Everything that can be recomputed from the embedded model and dataset is recomputed, and
every number stored in the evidence must equal its recomputed value:

* memorizable: the witness prompt is re-run exactly at every constrained output (entropy
  prompts: exact algebra plus the interval proof that their root exists), and its length is
  the one claimed;
* not-memorizable: the constrained items, the preimage sets f⁻¹(y_i) (recomputed with Z3-free
  completeness: the norm certificate or all 2^r activation patterns), the queries B_i, B_i u_i,
  and for every preimage combination the stated refutation — an inconsistent pair of
  equations (non-zero residual), the pinned A ≤ 0, or the violated Lemma 2 inequality —
  or, for the relaxations, their per-query or head-sum argument.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import product
from typing import Optional, Sequence

from promptlimits.constructions.evaluate import dot, matvec, score_matrix, value_matrix
from promptlimits.constructions.numbers import format_exact, unlimited_digits
from promptlimits.proofs.certificate import CheckFailed, Subjects
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly
from promptlimits.proofs.memorization import Item, constrained_items, equations, head_sum_left_null, prompt_free, verify_witness
from promptlimits.proofs.preimage import certified_injective, preimages
from promptlimits.proofs.prompt_witness import NotVerified, PromptWitness, as_rational, exppoly_from_json
from promptlimits.proofs.reachable import classify, left_null, sign_against_exp



@unlimited_digits()
def recheck(cert: dict, subj: Subjects) -> list[str]:
    """Verify a memorizability certificate; returns what was verified, raises CheckFailed."""
    model, dataset = subj.model, subj.dataset
    if dataset is None:
        raise CheckFailed("a memorizable certificate needs its dataset")
    if len(model.layers) != 1 or not model.is_exact:
        raise CheckFailed("the certificate's model is outside the exact route (one ReLU layer, no norm)")
    ev = cert["evidence"]
    items = constrained_items(model, dataset)
    if ev["route"] != "trivial" and ev["items"] != [[it.example, it.position] for it in items]:
        raise CheckFailed("the evidence's constrained items differ from the dataset's")
    if cert["verdict"] == "memorizable":
        return _witness(model, dataset, items, ev)
    if cert["verdict"] != "not-memorizable":
        raise CheckFailed(f"verdict {cert['verdict']!r} is not one a certificate can carry")
    length = ev["length"]
    if length is not None and (not isinstance(length, int) or length < 1):
        raise CheckFailed("the prompt length must be a positive integer or null")
    layer = model.layers[0]
    pres = []
    for it in items:
        pre = preimages(layer, it.target, allow_smt=False)
        if not pre.complete:
            raise CheckFailed(f"f⁻¹(y) of example {it.example} is not provably complete without Z3: {pre.reason}")
        pres.append(pre.points)
    grade = "injective-norm" if certified_injective(layer) else "exhaustive"
    if ev["completeness"] != grade:
        raise CheckFailed(f"completeness is {grade!r}, the certificate says {ev['completeness']!r}")
    checked = [f"{len(items)} constrained outputs; every f⁻¹(y_i) recomputed and complete ({grade})"]
    route = ev["route"]
    if route == "outside-range":
        k = ev["item"]
        if pres[k]:
            raise CheckFailed(f"target {k} has a preimage: it is in the range of f")
        return checked + [f"target {k} is outside the range of f"]
    heads = layer.heads
    if route == "head-sum-relaxation":
        return checked + _head_sum(heads, model, items, pres, ev)
    if len(heads) != 1:
        raise CheckFailed(f"route {route!r} needs one head")
    M, V = score_matrix(heads[0], model.score_scale), value_matrix(heads[0])
    if route == "shared-query":
        members = list(range(len(items)))
        if len({it.query for it in items}) != 1:
            raise CheckFailed("the constrained outputs do not share one query")
        relaxed = False
    elif route == "per-query-relaxation":
        members = ev["group"]
        q = items[members[0]].query
        if members != [k for k, it in enumerate(items) if it.query == q]:
            raise CheckFailed("the group is not exactly the items sharing one query")
        relaxed = True
    else:
        raise CheckFailed(f"unknown route {route!r}")
    group = [items[k] for k in members]
    parts = [prompt_free(model, dataset.examples[it.example].input, it.position, M, V) for it in group]
    q = group[0].query
    g = matvec(M, q)
    expected = {tuple(tuple(map(format_exact, pres[k][j])) for k, j in zip(members, choice))
                for choice in product(*(range(len(pres[k])) for k in members))}
    seen = set()
    for combo in ev["combinations"]:
        zs = tuple(tuple(format_exact(Fraction(x)) for x in z) for z in combo["preimages"])
        if zs not in expected or zs in seen:
            raise CheckFailed("a preimage combination is not one of the recomputed ones (or repeats)")
        seen.add(zs)
        cs = [tuple(Fraction(a) - b for a, b in zip(z, q)) for z in zs]
        es = [tuple(B * c - bu for c, bu in zip(ck, Bu)) for ck, (B, Bu) in zip(cs, parts)]
        _refutation(combo["reason"], g, V, cs, es, length, relaxed)
    if seen != expected:
        raise CheckFailed(f"{len(expected - seen)} preimage combination(s) are not refuted")
    what = "per-query relaxation (A > 0, v ∈ col(V))" if relaxed else "Theorem 1 with Lemma 2"
    return checked + [f"all {len(seen)} preimage combination(s) refuted exactly ({what}), "
                      f"prompt length {'any' if length is None else length}"]


def _witness(model, dataset, items: Sequence[Item], ev: dict) -> list[str]:
    if ev["route"] == "trivial":
        if items:
            raise CheckFailed("the dataset has constrained outputs; a trivial certificate does not apply")
        return ["no output is constrained: every prompt memorizes the dataset"]
    if ev["route"] != "witness":
        raise CheckFailed(f"unknown route {ev['route']!r} for a memorizable verdict")
    if len(model.layers[0].heads) != 1:
        raise CheckFailed("witness re-evaluation covers one head")
    witness = PromptWitness.from_json(ev["witness"])
    if witness.length != ev["prompt_length"] or (ev["length"] is not None and witness.length != ev["length"]):
        raise CheckFailed("the witness's length is not the claimed prompt length")
    try:
        n = verify_witness(model, dataset, witness)
    except NotVerified as err:
        raise CheckFailed(str(err)) from None
    kind = "an entropy prompt (root proven by intervals)" if witness.entropy is not None else "exact tokens"
    return [f"witness prompt of length {witness.length} ({kind}) reproduces all {n} constrained targets exactly"]


def _equation(label: dict, V, cs, es) -> tuple[Fraction, ExpPoly]:
    """Recompute α, β of a labelled equation and compare them with the stored ones."""
    if label["kind"] == "pair":
        i, k = label["item"], label["coordinate"]
        if not 1 <= i < len(cs):
            raise CheckFailed("equation label names no item")
        alpha, beta = cs[i][k] - cs[0][k], es[0][k] - es[i][k]
    elif label["kind"] == "range":
        ell = tuple(Fraction(x) for x in label["ell"])
        if ell not in left_null(V):
            raise CheckFailed("a range equation's ℓ is not one of the recomputed basis vectors of ker Vᵀ")
        alpha = dot(ell, cs[0])
        beta = -sum((e * l for e, l in zip(es[0], ell) if l), ExpPoly())
    else:
        raise CheckFailed(f"unknown equation kind {label['kind']!r}")
    if Fraction(label["alpha"]) != alpha or exppoly_from_json(label["beta"]) != beta:
        raise CheckFailed("a stored equation coefficient differs from the recomputed one")
    return alpha, beta


def _refutation(reason: dict, g, V, cs, es, length: Optional[int], relaxed: bool) -> None:
    kind = reason["kind"]
    if kind == "inconsistent":
        a1, b1 = _equation(reason["first"], V, cs, es)
        if reason["second"] is None:
            residual = b1
            if a1 != 0:
                raise CheckFailed("a single inconsistent equation must read 0·A = β")
        else:
            a2, b2 = _equation(reason["second"], V, cs, es)
            if a1 == 0:
                raise CheckFailed("the first equation of an inconsistent pair must pin A")
            residual = a1 * b2 - a2 * b1
        if residual.is_zero() or exppoly_from_json(reason["residual"]) != residual:
            raise CheckFailed("the stated residual is zero or differs from the recomputed one")
        return
    if kind == "free-mass-ratio":
        _free_mass_ratio(reason, g, V, cs, es, length, relaxed)
        return
    if kind not in ("nonpositive", "unreachable"):
        raise CheckFailed(f"unknown refutation {kind!r}")
    alpha, beta = _equation(reason["pivot"], V, cs, es)
    if alpha == 0:
        raise CheckFailed("the pivot equation does not pin A")
    A = beta * (1 / alpha)
    if exppoly_from_json(reason["A"]) != A:
        raise CheckFailed("the stored A differs from the recomputed one")
    if kind == "nonpositive":
        if A.sign() > 0:
            raise CheckFailed("the pinned A is positive")
        return
    if relaxed:
        raise CheckFailed("a relaxation cannot use Lemma 2's reachability")
    if A.sign() <= 0:
        raise CheckFailed("an unreachability refutation needs A > 0")
    _violation(reason["violation"], g, V, A, tuple(A * c + e for c, e in zip(cs[0], es[0])), length)


def _free_mass_ratio(reason: dict, g, V, cs, es, length: Optional[int], relaxed: bool) -> None:
    """Every equation reads 0 = 0 (A free), g = Vᵀη, β = η·e0 < 0 and (−β)·e^{1−η·c0} > m."""
    if relaxed or length is None or reason["length"] != length:
        raise CheckFailed("the free-mass bound needs Lemma 2 with the certificate's fixed prompt length")
    if any(e.alpha != 0 or not e.beta.is_zero() for e in equations(cs, es, left_null(V))):
        raise CheckFailed("A is not free: some equation constrains it")
    case = classify(g, V)
    eta = tuple(Fraction(x) for x in reason["eta"])
    if case.kind != "b" or eta != case.eta:
        raise CheckFailed("g is not a non-zero vector of row(V), or η is not the recomputed solution of Vᵀη = g")
    s = dot(eta, cs[0])
    beta = sum((e * x for e, x in zip(es[0], eta) if x), ExpPoly())
    if beta.sign() >= 0 or ((-beta).shift(1 - s) - length).sign() <= 0:
        raise CheckFailed("the bound (−η·e0)·e^(1 − η·c0) > m does not hold")


def _violation(vio: dict, g, V, A: ExpPoly, w: Sequence[ExpPoly], length: Optional[int]) -> None:
    """Re-prove the violated Lemma 2 condition for (A, v = w/A)."""
    kind = vio["kind"]
    if vio.get("length") != length:
        raise CheckFailed("the violation speaks about another prompt length")
    if kind in ("mass-not-integer", "mass-not-length"):
        if any(g):
            raise CheckFailed("A = m needs g = M q = 0")
        k = A.rational_value()
        if kind == "mass-not-integer" and k is not None and k.denominator == 1:
            raise CheckFailed("A is an integer")
        if kind == "mass-not-length" and (length is None or k == length):
            raise CheckFailed("A equals the prompt length")
        return
    eta = tuple(Fraction(x) for x in vio["eta"])
    case = classify(g, V)
    if case.kind != "b" or eta != case.eta:
        raise CheckFailed("g is not a non-zero vector of row(V), or η is not the recomputed solution of Vᵀη = g")
    sigma = ExpFrac(sum((x * e for x, e in zip(w, eta) if e), ExpPoly()), A)
    if kind == "below-exp":
        ok = sign_against_exp(A, sigma) == -1
    elif kind == "equal-exp-needs-one":
        q = as_rational(sigma)
        ok = length is not None and length >= 2 and q is not None and (A - ExpPoly.exp(q)).is_zero()
    elif kind == "above-exp-one-token":
        ok = length == 1 and sign_against_exp(A, sigma) == 1
    elif kind == "above-m-exp":
        ok = length is not None and sign_against_exp(A, sigma, length) == 1
    else:
        raise CheckFailed(f"unknown Lemma 2 violation {kind!r}")
    if not ok:
        raise CheckFailed(f"the Lemma 2 violation {kind!r} does not hold")


def _head_sum(heads, model, items: Sequence[Item], pres, ev: dict) -> list[str]:
    k = ev["item"]
    it = items[k]
    Vs = [value_matrix(h) for h in heads]
    basis = head_sum_left_null(Vs)
    outside = ev["outside"]
    if sorted(tuple(map(Fraction, e["preimage"])) for e in outside) != sorted(pres[k]):
        raise CheckFailed("the head-sum evidence does not cover exactly the recomputed preimages")
    for e in outside:
        z = tuple(Fraction(x) for x in e["preimage"])
        ell = tuple(Fraction(x) for x in e["ell"])
        if ell not in basis:
            raise CheckFailed("ℓ is not one of the recomputed basis vectors orthogonal to every col(V_h)")
        if dot(ell, tuple(a - b for a, b in zip(z, it.query))) == 0:
            raise CheckFailed("ℓ·(z − q) = 0")
    return [f"item {k}: every z − q with f(z) = y has a non-zero component outside Σ_h col(V_h)"]
