"""Theorem 1 with a non-injective feed-forward block, by Z3 (QF_NRA): THEORY §3's last paragraph.

When f⁻¹(y_i) is not a finite list (a continuum of preimages, or too many activation regions
to enumerate), z_i ranges over the pieces of f⁻¹(y_i) and the conditions

    z_i + W2 h_i + b2 = y_i,  h_ij = max(W1 z_i + b1, 0)_j   (one disjunction per hidden unit)
    (A + B_i)(z_i − q) = w + B_i u_i,  ℓ·w = 0 (ℓᵀV = 0),  A > 0

are bilinear in (A, z_i). B_i and B_i u_i are exp-polynomials Σ c·e^r: every distinct e^r
(r ≠ 0) becomes a fresh positive real E_r pinned between rational bounds from a rigorous
interval, which over-approximates the true constants. So "unsat" is a sound proof that no
prompt exists — but only as sound as Z3, and ``recheck`` cannot repeat it; the decision
therefore stays "unknown" and carries the SMT-LIB text. "sat" says nothing (the constants
and Lemma 2 are relaxed). This module is imported only by the decision, never by checkers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from promptlimits.constructions.spec import Layer, Matrix, Vector
from promptlimits.proofs import interval
from promptlimits.proofs.exppoly import ExpPoly
from promptlimits.proofs.reachable import left_null

#: Width of the rational enclosure of each e^r (bits of working precision).
BOUND_BITS = 96


@dataclass(frozen=True)
class SmtAnswer:
    """Z3's answer ("unsat" | "sat" | "unknown") and the SMT-LIB text of the query."""

    result: str
    smtlib: str
    reason: str


def relaxed_query(layer: Layer, V: Matrix, q: Vector, targets: Sequence[Vector],
                  parts: Sequence[tuple[ExpPoly, Sequence[ExpPoly]]], timeout: float) -> SmtAnswer:
    """Decide the relaxation above with Z3; ``parts`` are the items' (B_i, B_i u_i)."""
    import z3

    d, r = len(q), len(layer.W1)

    def Q(x: Fraction) -> z3.ArithRef:
        return z3.RealVal(f"{x.numerator}/{x.denominator}")

    s = z3.SolverFor("QF_NRA")
    consts: dict[Fraction, z3.ArithRef] = {}

    def const(r_: Fraction) -> z3.ArithRef:
        if r_ == 0:
            return z3.RealVal(1)
        if r_ not in consts:
            E = z3.Real(f"exp_{len(consts)}")
            ball = interval.exp_sum(((r_, Fraction(1)),), BOUND_BITS)
            if ball.is_finite():
                s.add(E >= Q(interval.lower(ball)), E <= Q(interval.upper(ball)))
            else:  # beyond arb's reach at this precision: keep only E > 0 (still sound for unsat)
                s.add(E > 0)
            consts[r_] = E
        return consts[r_]

    def poly(p: ExpPoly) -> z3.ArithRef:
        return z3.Sum([Q(c) * const(e) for e, c in p.terms]) if p.terms else z3.RealVal(0)

    A = z3.Real("A")
    w = [z3.Real(f"w{k}") for k in range(d)]
    s.add(A > 0)
    for ell in left_null(V):
        s.add(z3.Sum([Q(x) * w[k] for k, x in enumerate(ell) if x]) == 0)
    for i, (y, (B, Bu)) in enumerate(zip(targets, parts)):
        z = [z3.Real(f"z{i}_{k}") for k in range(d)]
        h = [z3.Real(f"h{i}_{j}") for j in range(r)]
        for j in range(r):
            pre = z3.Sum([Q(x) * z[k] for k, x in enumerate(layer.W1[j]) if x]) + Q(layer.b1[j])
            s.add(z3.Or(z3.And(pre >= 0, h[j] == pre), z3.And(pre <= 0, h[j] == 0)))
        for k in range(d):
            g_k = z3.Sum([Q(x) * h[j] for j, x in enumerate(layer.W2[k]) if x]) + Q(layer.b2[k])
            s.add(z[k] + g_k == Q(y[k]))
            s.add((A + poly(B)) * (z[k] - Q(q[k])) == w[k] + poly(Bu[k]))
    s.set("timeout", max(1, int(timeout * 1000)))
    text = s.to_smt2()
    res = s.check()
    reason = "" if res != z3.unknown else s.reason_unknown()
    return SmtAnswer(str(res), text, reason)
