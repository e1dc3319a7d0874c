"""Theorem 1 (THEORY §3): can some prompt make a one-layer model meet every constrained target?

Shared query, one head (the exact route). Every constrained (example, position) — an "item" —
has the same encoded query q, so g = M q and the prompt's (A, v) of Lemma 1 are common to all
items. Item i has prompt-free B_i, B_i·u_i (its own input context) and a chosen preimage
z_i ∈ f⁻¹(y_i). The target is met iff (A + B_i)(z_i − q) = A·v + B_i·u_i. With c_i = z_i − q,
e_i = B_i c_i − B_i u_i and w = A·v (THEORY's a = 1/A; multiplying its equation by A gives this
one, linear in (A, w)):

    w = A·c_i + e_i for every i,   w ∈ col(V),   A > 0,   (A, w/A) reachable (Lemma 2).

Eliminating w leaves equations α·A = β with α rational and β an exp-polynomial:
(c_i − c_0)_k·A = (e_0 − e_i)_k (item i, coordinate k) and (ℓ·c_0)·A = −ℓ·e_0 for each ℓ with
ℓᵀV = 0. One with α ≠ 0 pins A = β/α (an exp-polynomial), and every other one is then an exact
zero test; with all α = 0, A is free once every β is 0 and is chosen to make (A, v) reachable.
Evidence of impossibility: an inconsistent pair (its residual α₁β₂ − α₂β₁ ≠ 0), the pinned
A ≤ 0, or the violated Lemma 2 condition.

A non-injective f makes z_i range over f⁻¹(y_i): when every such set is finite and provably
complete without Z3 (norm certificate or all 2^r patterns), every combination is decided as
above. Several heads or differing queries: sound relaxations only (THEORY §2), which prove
impossibility or leave the answer unknown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from fractions import Fraction
from itertools import product
from typing import Optional, Sequence

from promptlimits.constructions.evaluate import ExpVector, context, dot, matvec, score_matrix, tokens_with_positions, value_matrix
from promptlimits.constructions.numbers import format_exact, unlimited_digits
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.spec import Dataset, Head, Matrix, Model, Vector
from promptlimits.constructions.surd import require_rational
from promptlimits.proofs import linalg
from promptlimits.proofs.exppoly import ExpPoly
from promptlimits.constructions.feed_forward import by_identity
from promptlimits.proofs.preimage import Preimages, preimages
from promptlimits.proofs.prompt_witness import (
    NotVerified, PromptWitness, SymToken, exppoly_to_json, output_with_aggregate,
)
from promptlimits.proofs.reachable import Reachability, classify, left_null, reachable

#: Most preimage combinations tried for a non-injective block.
MAX_COMBINATIONS = 1024



@dataclass(frozen=True)
class Item:
    """One constrained output: example index, input position, encoded query, target."""

    example: int
    position: int
    query: Vector
    target: Vector


@dataclass(frozen=True)
class Decision:
    """The verdict, how it was reached, and what proves it."""

    verdict: str  # "memorizable" | "not-memorizable" | "unknown"
    method: str
    reason: str
    witness: Optional[PromptWitness] = None
    query: Optional[Vector] = None  # g = M q of the witness's query (to print decimals)
    facts: dict = field(default_factory=dict)
    smtlib: Optional[str] = None  # the Z3 query behind an SMT-only answer
    smt_result: Optional[str] = None

    @cached_property
    def evidence(self) -> dict:
        """The certificate's evidence (JSON): the facts, plus the witness prompt when there is one
        (serialised only on demand, which keeps decisions fast)."""
        if self.witness is None:
            return self.facts
        return {**self.facts, "prompt_length": self.witness.length, "witness": self.witness.to_json()}


class Deadline:
    """A wall-clock budget; ``expired()`` is polled between steps."""

    def __init__(self, seconds: Optional[float]) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() > self.end

    def left(self) -> float:
        return 1e9 if self.end is None else max(0.0, self.end - time.monotonic())


# ----------------------------------------------------------------------------- prompt-free parts


def constrained_items(model: Model, dataset: Dataset) -> tuple[Item, ...]:
    """Every constrained (example, position) with its encoded query."""
    out = []
    for i, ex in enumerate(dataset.examples):
        xs = tokens_with_positions(model, ex.input)
        for t in ex.constrained():
            out.append(Item(i, t, xs[t], ex.target[t]))
    return tuple(out)


@by_identity
def head_maps(head: Head, scale: Fraction) -> tuple[Matrix, Matrix]:
    """(M, V) = (κ·W_kᵀW_q, W_o W_v), multiplied exactly by flint (κ rational, no biases)."""
    scale = require_rational(scale)
    if head.has_bias:
        raise InputError("model: exact procedures need attention heads without biases")
    M = linalg.matmul(linalg.transpose(head.W_k), head.W_q)
    return tuple(tuple(scale * x for x in row) for row in M), linalg.matmul(head.W_o, head.W_v)


@by_identity
def _flint(V: Matrix):
    return linalg.to_flint(V)


def prompt_free(model: Model, X: Sequence[Vector], position: int, M: Matrix, V: Matrix) -> tuple[ExpPoly, tuple[ExpPoly, ...]]:
    """(B, B·u) of Lemma 1 for the query at ``position``: B = Σ_c e^{c·g}, B·u = Σ_c e^{c·g} V c."""
    xs = tokens_with_positions(model, X)
    ctx = [xs[c] for c in context(model, 0, position, len(xs))]
    C = linalg.to_flint(ctx).transpose()  # d × n, the context tokens as columns
    g = _flint(M) * linalg.to_flint([[x] for x in xs[position]])
    S = C.transpose() * g  # the scores c·g
    VX = _flint(V) * C
    scores = [Fraction(int(S[j, 0].p), int(S[j, 0].q)) for j in range(len(ctx))]
    B = ExpPoly._canonical(_collect((s, Fraction(1)) for s in scores))
    Bu = []
    for row in VX.tolist():
        Bu.append(ExpPoly._canonical(_collect(
            (s, Fraction(int(x.p), int(x.q))) for s, x in zip(scores, row) if x != 0)))
    return B, tuple(Bu)


def query_vector(M: Matrix, q: Vector) -> Vector:
    """g = M q, exactly (flint)."""
    g = _flint(M) * linalg.to_flint([[x] for x in q])
    return tuple(Fraction(int(g[i, 0].p), int(g[i, 0].q)) for i in range(g.nrows()))


def _collect(pairs) -> dict:
    out: dict = {}
    for r, c in pairs:
        out[r] = out.get(r, Fraction(0)) + c
    return out


# ----------------------------------------------------------------------------- the linear system in A


@dataclass(frozen=True)
class Equation:
    """α·A = β from item ``item`` and coordinate ``coordinate`` (a "pair" equation) or from the
    left-null vector ``ell`` of V (a "range" equation)."""

    alpha: Fraction
    beta: ExpPoly
    item: int = 0
    coordinate: int = 0
    ell: Optional[Vector] = None

    @property
    def label(self) -> dict:
        """JSON naming the equation and its coefficients (enough to recompute and compare)."""
        where = ({"kind": "pair", "item": self.item, "coordinate": self.coordinate} if self.ell is None
                 else {"kind": "range", "ell": [format_exact(x) for x in self.ell]})
        return {**where, "alpha": format_exact(self.alpha), "beta": exppoly_to_json(self.beta)}


def equations(cs: Sequence[Vector], es: Sequence[Sequence[ExpPoly]], ells: Sequence[Vector]) -> list[Equation]:
    """Theorem 1's equations in A after eliminating w (see the module docstring)."""
    eqs = []
    c0, e0 = cs[0], es[0]
    for i in range(1, len(cs)):
        ci, ei = cs[i], es[i]
        for k in range(len(c0)):
            alpha = ci[k] - c0[k]
            if alpha != 0 or ei[k] != e0[k]:
                eqs.append(Equation(alpha, e0[k] - ei[k], i, k))
    for ell in ells:
        alpha = dot(ell, c0)
        beta = -sum((e * l for e, l in zip(e0, ell) if l), ExpPoly())
        if alpha != 0 or not beta.is_zero():
            eqs.append(Equation(alpha, beta, ell=ell))
    return eqs


@dataclass(frozen=True)
class MassSolution:
    """A pinned (``A`` set), free (every equation 0 = 0), or inconsistent (``conflict``)."""

    kind: str
    A: Optional[ExpPoly] = None
    pivot: Optional[dict] = None
    conflict: Optional[dict] = None


def solve_mass(eqs: Sequence[Equation]) -> MassSolution:
    """Solve α·A = β for all equations exactly (exp-polynomial zero tests)."""
    pivot = next((e for e in eqs if e.alpha != 0), None)
    if pivot is None:
        bad = next((e for e in eqs if not e.beta.is_zero()), None)
        if bad is not None:
            return MassSolution("inconsistent", conflict={"kind": "inconsistent", "first": bad.label, "second": None,
                                                          "residual": exppoly_to_json(bad.beta)})
        return MassSolution("free")
    A = pivot.beta * (1 / pivot.alpha)
    for e in eqs:
        if e is pivot:
            continue
        residual = pivot.alpha * e.beta - e.alpha * pivot.beta  # = α₁(β₂ − α₂A)
        if not residual.is_zero():
            return MassSolution("inconsistent", conflict={"kind": "inconsistent", "first": pivot.label,
                                                          "second": e.label, "residual": exppoly_to_json(residual)})
    return MassSolution("pinned", A=A, pivot=pivot.label)


# ----------------------------------------------------------------------------- one combination


@dataclass(frozen=True)
class Attempt:
    """Outcome of one choice of preimages: a witness, a refutation (evidence), or unknown."""

    status: str  # "witness" | "refuted" | "unknown"
    reason: str
    witness: Optional[PromptWitness] = None
    evidence: dict = field(default_factory=dict)


def _show(x: ExpPoly) -> str:
    """x for a reason text: exact when short, else a float (the evidence keeps it exact)."""
    if len(x.terms) <= 4 and all(abs(c.numerator) < 10**30 and c.denominator < 10**30 and r.denominator < 10**6
                                 for r, c in x.terms):
        return str(x)
    return f"≈{float(x):.6g}"


def _free_mass_candidates(g: Vector, V: Matrix, c0: Vector, e0: Sequence[ExpPoly], length: Optional[int]):
    """Masses A to try, lazily, when the equations leave A free (each is then decided exactly).

    Case (b): v = c0 + e0/A, so log R(A) = log A − η·c0 − (η·e0)/A. After the cheap guesses,
    rational A are proposed where R(A) lies well inside (1, m) (m = 2 for any length), found
    by bisection in ball arithmetic; ``reachable`` then decides each proposal exactly.
    """
    case = classify(g, V)
    if case.kind == "a":
        yield ExpPoly.const(1)
        return
    if case.kind == "c":
        yield ExpPoly.const(length or 1)
        return
    eta_e = sum((e * x for e, x in zip(e0, case.eta) if x), ExpPoly())
    if eta_e.is_zero():
        yield ExpPoly.exp(dot(case.eta, c0))  # A = e^{η·v} with v = c0 + e0/A, η·e0 = 0
    if length != 1:
        for k in (0, 4, 16):
            yield ExpPoly.const(Fraction(2) ** k)
        for A in _masses_with_ratio(dot(case.eta, c0), eta_e, length or 2):
            yield ExpPoly.const(A)


def _free_mass_floor(g: Vector, V: Matrix, c0: Vector, e0: Sequence[ExpPoly], length: Optional[int]) -> Optional[Attempt]:
    """A free, case (b), fixed length m: refute every A at once when R(A) > m for all A > 0.

    With s = η·c0 and β = η·e0, log R(A) = log A − s − β/A. For β < 0 this is minimal at
    A = −β, so R(A) ≥ (−β)·e^{1−s} for every A > 0; when that exceeds m, no A is reachable
    with m tokens (m tokens give R ≤ m, and m = 1 gives R = 1). Decided exactly:
    (−β)·e^{1−s} − m is an exp-polynomial.
    """
    if length is None:
        return None
    case = classify(g, V)
    if case.kind != "b":
        return None
    s = dot(case.eta, c0)
    beta = sum((e * x for e, x in zip(e0, case.eta) if x), ExpPoly())
    if beta.sign() >= 0 or ((-beta).shift(1 - s) - length).sign() <= 0:
        return None
    return Attempt("refuted", f"A is free, but A/e^(eta.v) ≥ (−eta·e0)·e^(1 − eta·c0) > {length} for every A > 0",
                   evidence={"kind": "free-mass-ratio", "eta": [format_exact(x) for x in case.eta], "length": length})


def _masses_with_ratio(s: Fraction, beta: ExpPoly, m: int) -> list[Fraction]:
    """Rational A with log A − s − β/A ≈ log((1 + m)/2) (proposals only; never decides).

    In x = log A the gap x − s − β·e^{−x} − t is scanned around x = s + t and x = log|β| (its
    turning point) and bisected at every sign change, in ball arithmetic (huge exponents are
    fine); each root becomes the dyadic rational nearest e^x.
    """
    import flint

    from promptlimits.proofs import interval

    with interval.precision(160):
        b = beta.ball(160)
        if not b.is_finite():
            return []
        t = flint.arb((1 + m) / 2).log()
        sa = interval.rational(s, 160)

        def gap(x: flint.arb) -> flint.arb:
            return x - sa - b * (-x).exp() - t

        centers = [sa + t]
        if b != 0 and b.abs_lower() > 0:
            centers.append(b.abs_lower().log())
        out: list[Fraction] = []
        for c in centers:
            xs = [c + j for j in range(-300, 301)]
            vals = [gap(x).mid() for x in xs]
            for (x1, v1), (x2, v2) in zip(zip(xs, vals), zip(xs[1:], vals[1:])):
                if not (v1.is_finite() and v2.is_finite()) or (v1 > 0) == (v2 > 0):
                    continue
                for _ in range(100):
                    mid = (x1 + x2) / 2
                    vm = gap(mid).mid()
                    if (vm > 0) == (v1 > 0):
                        x1, v1 = mid, vm
                    else:
                        x2 = mid
                A = ((x1 + x2) / 2).exp().mid()
                if A.is_finite() and A > 0:
                    out.append(interval.lower(A))
                if len(out) >= 4:
                    return out
        return out


def decide_shared(g: Vector, V: Matrix, cs: Sequence[Vector], es: Sequence[Sequence[ExpPoly]],
                  length: Optional[int], relaxed: bool = False) -> Attempt:
    """Theorem 1 for one preimage choice: witness, or refutation with evidence.

    ``relaxed`` drops Lemma 2's reachability (the sound relaxation: any A > 0, v ∈ col(V)).
    """
    sol = solve_mass(equations(cs, es, left_null(V)))
    if sol.kind == "inconsistent":
        return Attempt("refuted", "the equations in A are inconsistent (non-zero residual)", evidence=sol.conflict)
    if sol.kind == "pinned":
        A = sol.A
        if A.sign() <= 0:
            return Attempt("refuted", f"the equations force A = {_show(A)} ≤ 0 (a = 1/A ≤ 0)",
                           evidence={"kind": "nonpositive", "pivot": sol.pivot, "A": exppoly_to_json(A)})
        if relaxed:
            return Attempt("unknown", "the relaxation is feasible")
        w = tuple(A * c + e for c, e in zip(cs[0], es[0]))
        reach = reachable(g, V, A, w, length)
        if reach.status == "reachable":
            return Attempt("witness", reach.reason, reach.witness)
        if reach.status == "unreachable":
            return Attempt("refuted", f"A = {_show(A)} is forced, and (A, v) is not reachable: {reach.reason}",
                           evidence={"kind": "unreachable", "pivot": sol.pivot, "A": exppoly_to_json(A),
                                     "case": reach.case, "violation": reach.violation})
        return Attempt("unknown", reach.reason)
    if relaxed:
        return Attempt("unknown", "the relaxation is feasible (A free)")
    floor = _free_mass_floor(g, V, cs[0], es[0], length)
    if floor is not None:
        return floor
    tried: list[Reachability] = []
    for A in _free_mass_candidates(g, V, cs[0], es[0], length):
        w = tuple(A * c + e for c, e in zip(cs[0], es[0]))
        reach = reachable(g, V, A, w, length)
        if reach.status == "reachable":
            return Attempt("witness", f"A is free; A = {_show(A)}: {reach.reason}", reach.witness)
        tried.append(reach)
    last = f" ({tried[-1].reason})" if tried else ""
    return Attempt("unknown", f"A is free but no tried A gave a reachable (A, v){last}")


# ----------------------------------------------------------------------------- the decision


def _completeness(layer, items: Sequence[Item], deadline: Deadline) -> tuple[list[Preimages], str]:
    pres = [preimages(layer, it.target, timeout=max(1.0, deadline.left())) for it in items]
    methods = {p.method for p in pres}
    grade = "injective-norm" if methods == {"injective-norm"} else (
        "exhaustive" if methods <= {"injective-norm", "exhaustive"} else "smt" if methods <= {"injective-norm", "exhaustive", "smt"} else "partial")
    return pres, grade


def _zjson(z: Vector) -> list[str]:
    return [format_exact(x) for x in z]


@unlimited_digits()
def decide(model: Model, dataset: Dataset, length: Optional[int] = None,
           timeout: Optional[float] = None, verify: bool = True) -> Decision:
    """Decide memorizability of ``dataset`` by prompts (of ``length`` tokens, or any length)."""
    deadline = Deadline(timeout)
    if len(model.layers) != 1 or not model.is_exact:
        return Decision("unknown", "none", "exact decisions cover one ReLU layer without layer norm")
    layer = model.layers[0]
    items = constrained_items(model, dataset)
    if not items:
        zero = tuple(Fraction(0) for _ in range(model.d))
        tok = SymToken(ExpVector(tuple(ExpPoly() for _ in zero), ExpPoly.const(1)), zero)
        return Decision("memorizable", "no constrained outputs", "no target is constrained: any prompt works",
                        PromptWitness(tokens=(tok,) * (length or 1)), zero, {"route": "trivial", "length": length})
    pres, grade = _completeness(layer, items, deadline)
    heads = layer.heads
    Ms = [head_maps(h, model.score_scale)[0] for h in heads]
    Vs = [head_maps(h, model.score_scale)[1] for h in heads]
    base = {"items": [[it.example, it.position] for it in items], "length": length, "completeness": grade}
    empty = next((k for k, p in enumerate(pres) if p.complete and not p.points), None)
    if empty is not None and grade in ("injective-norm", "exhaustive"):
        return Decision("not-memorizable", "preimages", f"target {empty} is outside the range of f",
                        facts={**base, "route": "outside-range", "item": empty})
    if len(heads) > 1:
        return _head_sum_relaxation(items, pres, grade, Vs, base)
    M, V = Ms[0], Vs[0]
    groups: dict[Vector, list[int]] = {}
    for k, it in enumerate(items):
        groups.setdefault(it.query, []).append(k)
    parts = [prompt_free(model, dataset.examples[it.example].input, it.position, M, V) for it in items]
    if len(groups) > 1:
        return _per_query_relaxation(groups, items, pres, grade, parts, M, V, base, deadline)
    q = items[0].query
    g = query_vector(M, q)
    return _shared(model, dataset, items, pres, grade, parts, g, q, M, V, length, base, deadline, verify)


def _combos(pres: Sequence[Preimages], members: Sequence[int]) -> Optional[list[tuple[int, ...]]]:
    total = 1
    for k in members:
        total *= len(pres[k].points)
    if total > MAX_COMBINATIONS:
        return None
    return list(product(*(range(len(pres[k].points)) for k in members)))


def _shared(model, dataset, items, pres, grade, parts, g, q, M, V, length, base, deadline, verify) -> Decision:
    members = list(range(len(items)))
    combos = _combos(pres, members)
    if combos is None:
        return Decision("unknown", "preimage combinations", f"more than {MAX_COMBINATIONS} preimage combinations")
    refutations = []
    unknown_reason = None
    for choice in combos:
        if deadline.expired():
            return Decision("unknown", "timeout", "the time limit ran out")
        zs = [pres[k].points[j] for k, j in zip(members, choice)]
        cs = [tuple(a - b for a, b in zip(z, q)) for z in zs]
        es = [tuple(B * c - bu for c, bu in zip(ck, Bu)) for ck, (B, Bu) in zip(cs, parts)]
        att = decide_shared(g, V, cs, es, length)
        if att.status == "witness":
            if verify:
                verify_witness(model, dataset, att.witness)
            return Decision("memorizable", "Theorem 1 (shared query) + Lemma 2 witness", att.reason,
                            att.witness, g, {**base, "route": "witness"})
        if att.status == "unknown":
            unknown_reason = att.reason
        refutations.append({"preimages": [_zjson(z) for z in zs], "reason": att.evidence, "text": att.reason})
    if unknown_reason is not None:
        return Decision("unknown", "Theorem 1 (shared query)", unknown_reason)
    complete = all(p.complete for p in pres)
    if not complete:
        why = next(p.reason for p in pres if not p.complete)
        return _smt_relaxation(model, items, parts, q, V, deadline, why)
    if grade == "smt":
        return Decision("unknown", "Theorem 1 (shared query) + Z3 preimage enumeration",
                        "every preimage combination is refuted, but the completeness of f⁻¹(y) rests on Z3 alone "
                        "(a singular activation region or more than 12 hidden units), which recheck cannot verify")
    return Decision("not-memorizable", "Theorem 1 (shared query)", refutations[0]["text"] if len(refutations) == 1
                    else f"all {len(refutations)} preimage combinations are refuted",
                    facts={**base, "route": "shared-query", "combinations": refutations})


def _smt_relaxation(model, items, parts, q, V, deadline, why: str) -> Decision:
    """f⁻¹(y_i) is not a finite list: ask Z3 (QF_NRA) about the relaxation over its pieces."""
    from promptlimits.proofs.memorization_smt import relaxed_query

    ans = relaxed_query(model.layers[0], V, q, [it.target for it in items], parts, max(1.0, min(deadline.left(), 60.0)))
    method = "Z3 QF_NRA over the activation pieces of f⁻¹(y_i)"
    if ans.result == "unsat":
        reason = ("Z3 finds no A > 0, w ∈ col(V) and preimages z_i (e^r bounded by rationals), so no prompt exists "
                  "if Z3 is right; the verdict stays unknown because recheck cannot verify it without Z3 "
                  f"(f⁻¹(y) is not a finite list: {why})")
    elif ans.result == "sat":
        reason = f"the Z3 relaxation is satisfiable and f⁻¹(y) is not a finite list ({why}); no witness was built"
    else:
        reason = f"Z3 gave no answer ({ans.reason}); f⁻¹(y) is not a finite list: {why}"
    return Decision("unknown", method, reason, smtlib=ans.smtlib, smt_result=ans.result)


def _per_query_relaxation(groups, items, pres, grade, parts, M, V, base, deadline) -> Decision:
    """Differing queries: each query's items alone, with Lemma 2 relaxed to A > 0, v ∈ col(V)."""
    for q, members in groups.items():
        combos = _combos(pres, members)
        if combos is None or not all(pres[k].complete for k in members) or grade not in ("injective-norm", "exhaustive"):
            continue
        refutations = []
        for choice in combos:
            if deadline.expired():
                return Decision("unknown", "timeout", "the time limit ran out")
            zs = [pres[k].points[j] for k, j in zip(members, choice)]
            cs = [tuple(a - b for a, b in zip(z, q)) for z in zs]
            es = [tuple(parts[k][0] * c - bu for c, bu in zip(ck, parts[k][1])) for k, ck in zip(members, cs)]
            att = decide_shared(query_vector(M, q), V, cs, es, None, relaxed=True)
            if att.status != "refuted":
                break
            refutations.append({"preimages": [_zjson(z) for z in zs], "reason": att.evidence, "text": att.reason})
        else:
            return Decision("not-memorizable", "per-query relaxation of Theorem 1",
                            f"the items sharing query {list(map(format_exact, q))} alone are not realisable "
                            f"by any A > 0, v ∈ col(V): {refutations[0]['text']}",
                            facts={**base, "route": "per-query-relaxation", "group": members, "combinations": refutations})
    return Decision("unknown", "per-query relaxation of Theorem 1",
                    "constrained positions have different queries and each query alone passes the relaxation; "
                    "no joint witness was searched")


def head_sum_left_null(Vs: Sequence[Matrix]) -> tuple[Vector, ...]:
    """A basis of {ℓ : ℓᵀV_h = 0 for every h}, the complement of Σ_h col(V_h)."""
    stacked = tuple(tuple(x for row in rows for x in row) for rows in zip(*Vs))  # [V_1 | … | V_H]
    return linalg.nullspace(linalg.transpose(stacked))


def _head_sum_relaxation(items, pres, grade, Vs, base) -> Decision:
    """Several heads: z_i − q_i must lie in Σ_h col(V_h) (every head output does)."""
    ells = head_sum_left_null(Vs)
    if grade in ("injective-norm", "exhaustive"):
        for k, (it, pre) in enumerate(zip(items, pres)):
            witnesses = []
            for z in pre.points:
                c = tuple(a - b for a, b in zip(z, it.query))
                ell = next((l for l in ells if dot(l, c) != 0), None)
                if ell is None:
                    break
                witnesses.append({"preimage": _zjson(z), "ell": [format_exact(x) for x in ell]})
            else:
                return Decision("not-memorizable", "head-sum relaxation",
                                f"item {k}: every z − q with f(z) = y lies outside Σ_h col(V_h)",
                                facts={**base, "route": "head-sum-relaxation", "item": k, "outside": witnesses})
    return Decision("unknown", "head-sum relaxation",
                    "several heads: the exact route covers one head; the sound relaxation (z − q ∈ Σ_h col(V_h)) holds")


@unlimited_digits()
def verify_witness(model: Model, dataset: Dataset, witness: PromptWitness) -> int:
    """Re-run the witness exactly (entropy prompts: exact algebra plus an interval-proven root)
    at every constrained item of a one-head model; returns how many targets it met, raises
    NotVerified on the first mismatch or on a witness that cannot be evaluated exactly."""
    head = model.layers[0].heads[0]
    M, V = score_matrix(head, model.score_scale), value_matrix(head)
    items = constrained_items(model, dataset)
    for it in items:
        A, Av = witness.aggregate(matvec(M, it.query), V)
        out = output_with_aggregate(model, dataset.examples[it.example].input, it.position, A, Av, M, V)
        if not out.equals(it.target):
            raise NotVerified(f"the witness prompt does not reproduce the target of example {it.example}, "
                              f"position {it.position}")
    return len(items)
