"""The naive SMT encoding of injectivity (THEORY §7): the baseline and a differential oracle.

Two copies of f(x) = x + W2 ReLU(W1 x + b1) + b2 in QF_LRA, ReLU as ``ite``:
    ∃ x, x' :  f(x) = f(x')  ∧  x ≠ x'.
sat gives a collision (Z3's model is exact; it is re-evaluated with Fractions before it is
reported), unsat means f is injective, anything else (timeout, rlimit) is unknown. The
unsat answer has no Z3-free certificate; it is used to cross-check the exact route.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import z3

from promptlimits.proofs.regions import Block, Vector


@dataclass(frozen=True)
class SmtAnswer:
    """verdict: "injective" | "not-injective" | "unknown"; collision for not-injective."""

    verdict: str
    collision: Optional[tuple[Vector, Vector]]
    reason: str
    seconds: float


def _image(block: Block, xs: list[z3.ArithRef]) -> list[z3.ArithRef]:
    hidden = []
    for row, bias in zip(block.W1, block.b1):
        pre = z3.Sum([z3.RealVal(str(w)) * x for w, x in zip(row, xs) if w != 0] + [z3.RealVal(str(bias))])
        hidden.append(z3.If(pre > 0, pre, z3.RealVal(0)))
    out = []
    for k, (row, bias) in enumerate(zip(block.W2, block.b2)):
        terms = [z3.RealVal(str(w)) * h for w, h in zip(row, hidden) if w != 0]
        out.append(z3.Sum([xs[k], z3.RealVal(str(bias))] + terms))
    return out


def encode(block: Block) -> tuple[z3.Solver, list[z3.ArithRef], list[z3.ArithRef]]:
    """A solver holding ∃ x ≠ x' with f(x) = f(x'), and the two variable vectors."""
    xs = [z3.Real(f"x{i}") for i in range(block.d)]
    ys = [z3.Real(f"y{i}") for i in range(block.d)]
    solver = z3.SolverFor("QF_LRA")
    for a, b in zip(_image(block, xs), _image(block, ys)):
        solver.add(a == b)
    solver.add(z3.Or([x != y for x, y in zip(xs, ys)]))
    return solver, xs, ys


def smtlib(block: Block) -> str:
    """The SMT-LIB 2 text of the query (for certificates and other solvers)."""
    solver, _, _ = encode(block)
    return solver.to_smt2()


def naive_injectivity(block: Block, timeout: Optional[float] = None, rlimit: Optional[int] = None) -> SmtAnswer:
    """Decide injectivity by the two-copy encoding; unknown on timeout or rlimit."""
    start = time.perf_counter()
    solver, xs, ys = encode(block)
    if timeout is not None:
        solver.set("timeout", max(1, int(timeout * 1000)))
    if rlimit is not None:
        solver.set("rlimit", rlimit)
    res = solver.check()
    seconds = time.perf_counter() - start
    if res == z3.unsat:
        return SmtAnswer("injective", None, "z3: no x ≠ x' with f(x) = f(x') (unsat)", seconds)
    if res == z3.sat:
        model = solver.model()
        x = tuple(Fraction(model.eval(v, model_completion=True).as_fraction()) for v in xs)
        y = tuple(Fraction(model.eval(v, model_completion=True).as_fraction()) for v in ys)
        if x != y and block(x) == block(y):
            return SmtAnswer("not-injective", (x, y), "z3 model re-evaluated exactly", seconds)
        return SmtAnswer("unknown", None, "z3 model failed exact re-evaluation", seconds)
    return SmtAnswer("unknown", None, f"z3: {solver.reason_unknown()}", seconds)
