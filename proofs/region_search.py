"""Listing the realised regions of any hyperplane arrangement with Z3 (exact QF_LRA).

Breadth-first search over sign vectors: from a region with interior point p, flipping the
sign of one hyperplane h gives a candidate neighbour; it is realised iff the strict
system σ_g(a_g·x + β_g) > 0 (all g) is satisfiable, and Z3's model is an exact rational
interior point. Facet-adjacent regions differ in exactly one sign and the region graph of
an arrangement is connected, so the search reaches every region. It stops early once the
Zaslavsky count (computed without Z3 in ``regions.region_count``) is reached, which is
also what makes the list re-checkable without Z3.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Sequence

import z3

from promptlimits.proofs.regions import Arrangement, Budget, Deadline, Vector


def _value(model: z3.ModelRef, var: z3.ArithRef) -> Fraction:
    v = model.eval(var, model_completion=True)
    return Fraction(v.as_fraction())


def bfs_regions(arr: Arrangement, d: int, start: Sequence[Fraction], expected: int, limit: int,
                deadline: Deadline = Deadline(None)) -> dict[int, Vector]:
    """All realised regions (mask -> exact interior point), starting from the region of
    ``start`` (a point on no hyperplane). Raises Budget on time or when more than
    ``limit`` regions are found."""
    first = arr.mask(start)
    if first is None:
        raise ValueError("start point lies on a hyperplane")
    xs = [z3.Real(f"x{i}") for i in range(d)]
    lin = [sum((z3.RealVal(str(a)) * x for a, x in zip(n, xs) if a != 0), z3.RealVal(str(b)))
           for n, b in zip(arr.normals, arr.offsets)]
    solver = z3.Solver()
    found: dict[int, Vector] = {first: tuple(Fraction(v) for v in start)}
    rejected: set[int] = set()
    queue = deque([first])
    while queue and len(found) < expected:
        m = queue.popleft()
        for h in range(arr.size):
            cand = m ^ (1 << h)
            if cand in found or cand in rejected:
                continue
            deadline.check()
            left = deadline.left()
            solver.push()
            if left is not None:
                solver.set("timeout", max(1, int(left * 1000)))
            for g, e in enumerate(lin):
                solver.add(e > 0 if cand >> g & 1 else e < 0)
            res = solver.check()
            if res == z3.sat:
                model = solver.model()
                point = tuple(_value(model, x) for x in xs)
                solver.pop()
                if arr.mask(point) != cand:
                    raise ArithmeticError("Z3 model is not interior to its region")
                found[cand] = point
                queue.append(cand)
                if len(found) > limit:
                    raise Budget(f"more than {limit} regions")
            elif res == z3.unsat:
                solver.pop()
                rejected.add(cand)
            else:
                solver.pop()
                raise Budget(f"Z3 returned unknown while listing regions ({solver.reason_unknown()})")
    return found
