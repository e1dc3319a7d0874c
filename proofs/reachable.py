"""Lemma 2 (THEORY §2): exactly which (A, v) a prompt produces at one query, with witnesses.

With g = M q a prompt token p scores p·g and contributes value V p. For A > 0 and
v ∈ col(V) (given as A and w = A·v, exp-polynomials):

(a) g ∉ row(V) (some n ∈ ker V has n·g ≠ 0): reachable with any number m of tokens, all equal to
    p = p₀ − (p₀·g / n·g)·n + log(A/m)·n/(n·g), where V p₀ = v: each scores log(A/m), values V p₀.
(b) g = Vᵀη ≠ 0: scores are w_j·η, and A = e^{η·v}·e^{H(α)}. Reachable iff A ≥ e^{η·v}; equality
    only with m = 1 (the token p₀); with a fixed m ≥ 2 iff 1 < R := A/e^{η·v} ≤ m (R = m: m copies of
    p₀; R < m: the entropy prompt of ``prompt_witness``).
(c) g = 0: every score is 0, so A = m exactly and v is the mean of the V p_j: reachable iff A is a
    positive integer (equal to the length when it is fixed); witness: A copies of p₀.

Comparisons of A with e^{η·v} are exact when η·v is rational (then e^{η·v} is an exp-polynomial)
and otherwise proven by intervals at rising precision; equality with an irrational η·v cannot
be proven, and then the answer is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

import flint

from promptlimits.constructions.evaluate import ExpVector, dot
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.spec import Matrix, Vector
from promptlimits.proofs import interval, linalg
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly
from promptlimits.constructions.feed_forward import by_identity
from promptlimits.proofs.prompt_witness import (
    EntropyPrompt, NotVerified, PromptWitness, SymToken, as_rational,
)

#: Precision cap (bits) for interval comparisons with e^{η·v} when η·v is irrational.
MAX_COMPARE_BITS = 4096
#: Longest witness prompt written out (longer ones exist but are reported as "unknown").
MAX_WITNESS_TOKENS = 4096


@dataclass(frozen=True)
class Lemma2Case:
    """Which case of Lemma 2 a query g falls in, with the vector that proves it."""

    kind: str  # "a" | "b" | "c"
    n: Optional[Vector] = None  # (a): n ∈ ker V with n·g ≠ 0
    eta: Optional[Vector] = None  # (b): Vᵀη = g


@dataclass(frozen=True)
class Reachability:
    """Whether (A, v) is produced by some prompt (of the given length, if any)."""

    status: str  # "reachable" | "unreachable" | "unknown"
    case: str
    reason: str
    witness: Optional[PromptWitness] = None
    violation: dict = field(default_factory=dict)


@by_identity
def _kernel(V: Matrix) -> tuple[Vector, ...]:
    return linalg.nullspace(V)


def classify(g: Sequence[Fraction], V: Matrix) -> Lemma2Case:
    """Decide Lemma 2's case exactly: g = 0, g ∉ row(V) = (ker V)^⊥, or g = Vᵀη."""
    return _classify(V, tuple(g))


@by_identity
def _classify(V: Matrix, g: Vector) -> Lemma2Case:
    if not any(g):
        return Lemma2Case("c")
    for n in _kernel(V):
        if dot(n, g) != 0:
            return Lemma2Case("a", n=n)
    eta = linalg.solve(linalg.transpose(V), g)
    assert eta is not None, "g ⊥ ker V but g ∉ col(Vᵀ): linear algebra bug"
    return Lemma2Case("b", eta=eta)


@by_identity
def _colspace_solver(V: Matrix) -> tuple[tuple[int, ...], tuple[int, ...], flint.fmpq_mat]:
    """(I, J, V_IJ): pivot columns J of V, rows I with V_IJ (k×k) non-singular."""
    _, J = linalg.rref(V)
    VJ = tuple(tuple(row[j] for j in J) for row in V)
    _, I = linalg.rref(linalg.transpose(VJ))
    return I, J, linalg.to_flint(tuple(VJ[i] for i in I))


def solve_in_colspace(V: Matrix, w: Sequence[ExpPoly]) -> tuple[ExpPoly, ...]:
    """Some p with V p = w, for w ∈ col(V) (the caller has checked that): p is supported on the
    pivot columns J and solves V_IJ p_J = w_I; since V_J has full column rank and w = V_J y,
    the rows I determine y = p_J."""
    I, J, VIJ = _colspace_solver(V)
    d = len(V[0])
    out = [ExpPoly() for _ in range(d)]
    if not J:
        return tuple(out)
    exps = sorted({r for i in I for r, _ in w[i].terms})
    if not exps:
        return tuple(out)
    col = {r: j for j, r in enumerate(exps)}
    C = flint.fmpq_mat(len(I), len(exps))
    for a, i in enumerate(I):
        for r, c in w[i].terms:
            C[a, col[r]] = flint.fmpq(c.numerator, c.denominator)
    X = VIJ.solve(C)
    for a, j in enumerate(J):
        terms = {}
        for b, r in enumerate(exps):
            x = X[a, b]
            if x != 0:
                terms[r] = Fraction(int(x.p), int(x.q))
        out[j] = ExpPoly._canonical(terms)
    return tuple(out)


@by_identity
def left_null(V: Matrix) -> tuple[Vector, ...]:
    """A basis of {ℓ : ℓᵀV = 0}: v ∈ col(V) iff ℓ·v = 0 for all of them."""
    return linalg.nullspace(linalg.transpose(V))


def _lin(P: Matrix, w: Sequence[ExpPoly]) -> tuple[ExpPoly, ...]:
    """P·w for a rational matrix P and a vector of exp-polynomials (one flint product per call:
    w = Σ_r e^r·c_r with rational vectors c_r, so P·w = Σ_r e^r·(P c_r))."""
    return exp_matvec(_flint(P), w)


@by_identity
def _flint(P: Matrix):
    return linalg.to_flint(P)


def exp_matvec(P, w: Sequence[ExpPoly]) -> tuple[ExpPoly, ...]:
    """P·w with P an fmpq_mat and w a vector of exp-polynomials, exactly."""
    exps = sorted({r for x in w for r, _ in x.terms})
    if not exps:
        return tuple(ExpPoly() for _ in range(P.nrows()))
    col = {r: j for j, r in enumerate(exps)}
    C = flint.fmpq_mat(len(w), len(exps))
    for i, x in enumerate(w):
        for r, c in x.terms:
            C[i, col[r]] = flint.fmpq(c.numerator, c.denominator)
    PC = P * C
    out = []
    for i in range(P.nrows()):
        terms = {}
        for j, r in enumerate(exps):
            v = PC[i, j]
            if v != 0:
                terms[r] = Fraction(int(v.p), int(v.q))
        out.append(ExpPoly._canonical(terms))
    return tuple(out)


def sign_against_exp(A: ExpPoly, sigma: ExpFrac, factor: int = 1) -> Optional[int]:
    """sign(A − factor·e^σ): exact when σ is rational, by intervals otherwise (None: unresolved)."""
    q = as_rational(sigma)
    if q is not None:
        return (A - ExpPoly.exp(q, factor)).sign()
    bits = 64
    while bits <= MAX_COMPARE_BITS:
        with interval.precision(bits):
            s = interval.sign_of(A.ball(bits) - factor * sigma.ball(bits).exp())
        if s != 0:
            return s
        bits *= 2
    return None


def reachable(g: Sequence[Fraction], V: Matrix, A: ExpPoly, w: Sequence[ExpPoly],
              length: Optional[int] = None) -> Reachability:
    """Decide whether a prompt (of ``length`` tokens, or of any length) produces mass A and
    mean value v = w/A at the query g, and build it when it does (Lemma 2, exactly).

    Requires A > 0 (checked). v ∉ col(V) is reported unreachable with the left-null vector.
    """
    if A.sign() <= 0:
        return Reachability("unreachable", "-", "the prompt mass A must be positive",
                            violation={"kind": "mass-nonpositive"})
    for ell in left_null(V):
        if not _lin((ell,), w)[0].is_zero():
            return Reachability("unreachable", "-", "v is not in col(V)",
                                violation={"kind": "value-outside-colV", "ell": [format_exact(x) for x in ell]})
    case = classify(g, V)
    Pw = solve_in_colspace(V, w)
    p0 = ExpVector(Pw, A)
    if case.kind == "a":
        return _case_a(g, case.n, A, Pw, length)
    if case.kind == "c":
        return _case_c(A, p0, length)
    return _case_b(g, case.eta, A, w, p0, length)


def _case_a(g: Sequence[Fraction], n: Vector, A: ExpPoly, Pw: Sequence[ExpPoly], length: Optional[int]) -> Reachability:
    m = length or 1
    ng = dot(n, g)
    shift = ExpPoly()
    for x, gk in zip(Pw, g):
        if gk:
            shift = shift + x * gk
    base = ExpVector(tuple(x - shift * (nk / ng) for x, nk in zip(Pw, n)), A)
    token = SymToken(base, tuple(nk / ng for nk in n), ExpFrac(A) / m)
    return Reachability("reachable", "a", f"g ∉ row(V): {m} token(s) scoring log(A/{m}) each",
                        PromptWitness(tokens=(token,) * m))


def _case_c(A: ExpPoly, p0: ExpVector, length: Optional[int]) -> Reachability:
    k = A.rational_value()
    if k is None or k.denominator != 1:
        return Reachability("unreachable", "c", "g = 0 forces A = m, an integer; A is not an integer",
                            violation={"kind": "mass-not-integer", "length": length})
    if length is not None and k != length:
        return Reachability("unreachable", "c", f"g = 0 forces A = m = {length}; A = {format_exact(k)}",
                            violation={"kind": "mass-not-length", "length": length})
    if k > MAX_WITNESS_TOKENS:
        return Reachability("unknown", "c", f"reachable with exactly {int(k)} tokens; witnesses longer than "
                            f"{MAX_WITNESS_TOKENS} tokens are not written out")
    return Reachability("reachable", "c", f"g = 0: {int(k)} copies of p₀",
                        PromptWitness(tokens=(SymToken(p0, tuple(Fraction(0) for _ in p0.nums)),) * int(k)))


def _case_b(g: Sequence[Fraction], eta: Vector, A: ExpPoly, w: Sequence[ExpPoly], p0: ExpVector,
            length: Optional[int]) -> Reachability:
    sigma = ExpFrac(sum((x * e for x, e in zip(w, eta) if e), ExpPoly()), A)
    q = as_rational(sigma)
    zero = tuple(Fraction(0) for _ in g)
    gg = dot(g, g)
    rho = tuple(gk / gg for gk in g)  # ρ̂·g = 1
    evidence = {"eta": [format_exact(x) for x in eta]}
    s1 = sign_against_exp(A, sigma)
    if s1 is None:
        return Reachability("unknown", "b", "A and e^(eta.v) agree to 4096 bits and eta.v is irrational")
    if s1 < 0:
        return Reachability("unreachable", "b", "g ∈ row(V) needs A ≥ e^(eta.v); here A < e^(eta.v)",
                            violation={"kind": "below-exp", "length": length, **evidence})
    if s1 == 0:  # only reached exactly, with η·v = q rational
        if length is None or length == 1:
            return Reachability("reachable", "b", "A = e^(eta.v): the single token p₀",
                                PromptWitness(tokens=(SymToken(p0, zero),)))
        return Reachability("unreachable", "b", f"A = e^(eta.v) needs m = 1, but the length is {length}",
                            violation={"kind": "equal-exp-needs-one", "length": length, **evidence})
    if length == 1:
        return Reachability("unreachable", "b", "one token gives A = e^(eta.v) exactly; here A > e^(eta.v)",
                            violation={"kind": "above-exp-one-token", "length": 1, **evidence})
    if length is not None:
        m = length
    else:
        if q is not None:
            k = as_rational(ExpFrac(A, ExpPoly.exp(q)))
            if k is not None and k.denominator == 1 and k <= MAX_WITNESS_TOKENS:
                m = int(k)
                return Reachability("reachable", "b", f"A = {m}·e^(eta.v): {m} copies of p₀",
                                    PromptWitness(tokens=(SymToken(p0, zero),) * m))
        with interval.precision(128):
            R = A.ball(128) * (-sigma.ball(128)).exp()
        if not R.is_finite() or R.upper() > MAX_WITNESS_TOKENS:
            return Reachability("unknown", "b", "A > e^(eta.v), but the prompt needs more than "
                                f"{MAX_WITNESS_TOKENS} tokens or A/e^(eta.v) cannot be sized; no witness is written out")
        m = max(2, int(interval.upper(R)) + 1)
    sm = sign_against_exp(A, sigma, m)
    if sm is None:
        return Reachability("unknown", "b", f"A and {m}·e^(eta.v) agree to 4096 bits and eta.v is irrational")
    if sm > 0:
        return Reachability("unreachable", "b", f"{m} tokens give at most A = {m}·e^(eta.v); A is larger",
                            violation={"kind": "above-m-exp", "length": m, **evidence})
    if sm == 0:
        return Reachability("reachable", "b", f"A = {m}·e^(eta.v): {m} copies of p₀",
                            PromptWitness(tokens=(SymToken(p0, zero),) * m))
    family = EntropyPrompt(p0, rho, ExpFrac(A), m)
    try:
        family.check(g)
    except NotVerified as err:
        return Reachability("unknown", "b", str(err))
    return Reachability("reachable", "b", f"1 < A/e^(eta.v) < {m}: {m} tokens with entropy log(A/e^(eta.v))",
                        PromptWitness(entropy=family))
