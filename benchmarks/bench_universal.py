"""Certifying THEORY §9's g: the per-cell bound vs the generic rigorous evaluator at cell centres.

For each (d, n, ε) (L = 1, built-in target), "ours" is ``bound_cells``: a proof for every
point of every cell minus its bands (exact token-wise prefix, prompt enclosures computed
once, balls at the n input positions only). The baseline is ``stack_balls`` on the whole
sequence [P, X] at ONE point per cell (the centre): it carries all N prompt states through
every layer, O((N + n)²) per layer and cell, and proves the error only at those points.
Printed: seconds of each, the ratio baseline/ours, and both maximal errors to f(c̄).

    python benchmarks/bench_universal.py [--full]
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import flint

from promptlimits.constructions.evaluate import stack_balls
from promptlimits.constructions.universal import choose_params, universal_model
from promptlimits.constructions.universal_prompt import builtin_target, centre, construct_prompt, grid_indices
from promptlimits.proofs.interval import upper
from promptlimits.proofs.universal_bound import Grid, bound_cells


def _baseline(model, prompt, p, target) -> float:
    worst = Fraction(0)
    for idx, val in zip(grid_indices(p.d, p.n, p.K), target.values):
        c = centre(idx, p.K)
        X = [tuple(c[i * p.d:(i + 1) * p.d]) + (Fraction(0),) * (model.d - p.d) for i in range(p.n)]
        out = stack_balls(model, prompt, X)
        for i in range(p.n):
            diff = [out[i][k] - flint.arb(flint.fmpq(v.numerator, v.denominator)) for k, v in enumerate(val[i])]
            sq = sum((e * e for e in diff), flint.arb(0)).nonnegative_part()
            worst = max(worst, upper(sq.sqrt()))
    return float(worst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also larger grids")
    args = ap.parse_args()
    configs = [(1, 1, Fraction(1, 10), "linear"), (1, 1, Fraction(1, 40), "linear"), (1, 2, Fraction(1, 4), "sort"),
               (1, 2, Fraction(1, 6), "sort"), (2, 1, Fraction(1, 2), "smooth")]
    if args.full:
        configs += [(1, 2, Fraction(1, 10), "sort"), (1, 3, Fraction(1, 2), "sort")]
    print(f"{'d':>2} {'n':>2} {'eps':>5} {'N':>5} | {'ours s':>8} {'max err':>9} | {'stack_balls s':>13} {'max err':>9} | ratio")
    for d, n, eps, name in configs:
        L = Fraction(3, 2) if name == "smooth" else Fraction(1)
        p = choose_params(d, n, L, eps)
        model = universal_model(p)
        target = builtin_target(name, p, L)
        prompt = construct_prompt(p, target)
        t0 = time.perf_counter()
        cb = bound_cells(model, prompt, Grid(d, n, p.K, p.eta), target.values, L)
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        base_err = _baseline(model, prompt, p, target)
        base = time.perf_counter() - t0
        print(f"{d:>2} {n:>2} {str(eps):>5} {len(prompt):>5} | {ours:>8.3f} {float(max(cb.cells)):>9.2e} | "
              f"{base:>13.3f} {base_err:>9.2e} | {base / ours:5.1f}x")


if __name__ == "__main__":
    main()
