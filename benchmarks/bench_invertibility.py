"""Injectivity of residual ReLU blocks: promptlimits (norms + exact regions) vs naive SMT.

A fixed seeded family: d ∈ {2, 3, 4, 5, 8}, r ∈ {4, 8, 16, 32} (--full adds 12 and 24),
target Lipschitz products ‖W2‖‖W1‖ ∈ {0.3, 2, 20} (--full adds 0.9 and 5), two kinds:
"random" (Gaussian weights, rounded to 1/256; injective or not) and "convex"
(W2 = W1ᵀ diag(λ), λ > 0: x + ∇φ with φ convex, injective whatever the product).
Each instance is decided by ``decide(layer, "auto", timeout=10)``, again without the
monotone route (``use_monotone=False``: norms, then activation regions only, column
"regions"), and by the naive two-copy Z3 encoding with a per-instance timeout (default
20 s). Printed per size: the fraction decided, median seconds, and the median speed-up
(naive / ours) where both decide; any disagreement between two decided verdicts is
printed loudly (it would be a bug).

    python benchmarks/bench_invertibility.py [--full] [--smt-timeout 20] [--ours-timeout 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from fractions import Fraction

import numpy as np

from promptlimits.constructions.spec import Head, Layer
from promptlimits.proofs.invertibility import decide
from promptlimits.proofs.regions import Block
from promptlimits.proofs.smt_injectivity import naive_injectivity

GRID = 256


def _rational(x: float) -> Fraction:
    return Fraction(round(x * GRID), GRID)


def instance(d: int, r: int, product: float, kind: str, seed: int) -> Layer:
    """One member of the family (deterministic in its arguments)."""
    rng = np.random.default_rng([d, r, int(product * 10), kind == "convex", seed])
    w1 = rng.normal(size=(r, d))
    b1 = rng.normal(size=r)
    if kind == "convex":
        lam = rng.uniform(0.5, 2.0, size=r)
        w2 = w1.T * lam[None, :]
    else:
        w2 = rng.normal(size=(d, r))
    w1q = [[_rational(x) for x in row] for row in w1]
    s = product / (np.linalg.norm(np.array(w1q, dtype=float), 2) * np.linalg.norm(w2, 2))
    if kind == "convex":
        lamq = [_rational(x * s) or Fraction(1, GRID) for x in lam]
        w2q = [[w1q[j][i] * lamq[j] for j in range(r)] for i in range(d)]
    else:
        w2q = [[_rational(x * s) for x in row] for row in w2]
    eye = tuple(tuple(Fraction(int(i == j)) for j in range(d)) for i in range(d))
    return Layer((Head(eye, eye, eye, eye),), tuple(map(tuple, w1q)), tuple(_rational(x) for x in b1),
                 tuple(map(tuple, w2q)), (Fraction(0),) * d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the full family (r 12 and 24, products 0.9 and 5 too)")
    ap.add_argument("--smt-timeout", type=float, default=20.0, help="seconds per naive SMT run (default 20)")
    ap.add_argument("--ours-timeout", type=float, default=10.0, help="seconds per promptlimits run (default 10)")
    ap.add_argument("--dims", default="2,3,4,5,8", help="comma-separated d values")
    args = ap.parse_args()
    dims = [int(x) for x in args.dims.split(",")]
    hidden = [4, 8, 12, 16, 24, 32] if args.full else [4, 8, 16, 32]
    products = [0.3, 0.9, 2.0, 5.0, 20.0] if args.full else [0.3, 2.0, 20.0]
    rows = []
    disagreements = 0
    header = (f"{'d':>2} {'r':>3} {'n':>3} | {'ours dec':>8} {'med s':>7} {'max s':>7} | {'regions dec':>11} {'med s':>7} | "
              f"{'smt dec':>7} {'med s':>7} | {'both':>4} {'speedup med':>11} {'min':>7} | verdicts (ours)")
    print(header)
    print("-" * len(header))
    for d in dims:
        for r in hidden:
            results = []
            for product in products:
                for kind in ("random", "convex"):
                    lay = instance(d, r, product, kind, 0)
                    t = time.perf_counter()
                    ours = decide(lay, "auto", timeout=args.ours_timeout)
                    ours_s = time.perf_counter() - t
                    t = time.perf_counter()
                    regions = decide(lay, "auto", timeout=args.ours_timeout, use_monotone=False)
                    regions_s = time.perf_counter() - t
                    smt = naive_injectivity(Block.of(lay), timeout=args.smt_timeout)
                    decided = {v for v in (ours.verdict, regions.verdict, smt.verdict) if v != "unknown"}
                    if len(decided) > 1:
                        disagreements += 1
                        print(f"!!! DISAGREEMENT d={d} r={r} p={product} {kind}: ours {ours.verdict}, "
                              f"regions {regions.verdict}, smt {smt.verdict}")
                    results.append((ours.verdict, ours_s, ours.method, smt.verdict, smt.seconds, kind,
                                    regions.verdict, regions_s))
            n = len(results)
            ours_dec = [x for x in results if x[0] != "unknown"]
            smt_dec = [x for x in results if x[3] != "unknown"]
            both = [x for x in results if x[0] != "unknown" and x[3] != "unknown"]
            ratios = [x[4] / max(x[1], 1e-6) for x in both]
            hist: dict[str, int] = {}
            for x in results:
                key = f"{x[0]}/{x[2]}"
                hist[key] = hist.get(key, 0) + 1
            row = (d, r, n, len(ours_dec) / n, statistics.median(x[1] for x in results), max(x[1] for x in results),
                   len(smt_dec) / n, statistics.median(x[4] for x in results), len(both),
                   statistics.median(ratios) if ratios else float("nan"), min(ratios) if ratios else float("nan"),
                   sum(x[6] != "unknown" for x in results) / n, statistics.median(x[7] for x in results))
            rows.append((row, results))
            print(f"{d:>2} {r:>3} {n:>3} | {row[3]:>8.0%} {row[4]:>7.3f} {row[5]:>7.3f} | {row[11]:>11.0%} {row[12]:>7.3f} | "
                  f"{row[6]:>7.0%} {row[7]:>7.3f} | {row[8]:>4} {row[9]:>11.1f} {row[10]:>7.1f} | {hist}", flush=True)
    small = [x for row, res in rows if row[0] <= 5 and row[1] <= 16 for x in res]
    decided = sum(x[0] != "unknown" for x in small)
    within = sum(x[0] != "unknown" and x[1] <= 10 for x in small)
    both = [x for x in small if x[0] != "unknown" and x[3] != "unknown"]
    ratios = [x[4] / max(x[1], 1e-6) for x in both]
    inj_both = [x for x in both if x[0] == "injective"]
    print()
    print(f"d <= 5, r <= 16: {decided}/{len(small)} decided ({decided / max(len(small), 1):.0%}), {within} within 10 s; "
          f"naive SMT decided {sum(x[3] != 'unknown' for x in small)}/{len(small)}")
    if ratios:
        print(f"speed-up where both decide: median {statistics.median(ratios):.1f}x, geometric mean "
              f"{float(np.exp(np.mean(np.log(ratios)))):.1f}x over {len(ratios)} instances")
    if inj_both:
        r_inj = [x[4] / max(x[1], 1e-6) for x in inj_both]
        print(f"  injective instances: median {statistics.median(r_inj):.1f}x over {len(r_inj)}")
    unknown_sizes = sorted({(row[0], row[1]) for row, res in rows if any(x[0] == "unknown" for x in res)})
    print(f"sizes with an unknown answer (ours): {unknown_sizes or 'none'}")
    unknown_regions = sorted({(row[0], row[1]) for row, res in rows if any(x[6] == "unknown" for x in res)})
    print(f"sizes with an unknown answer (without the monotone route): {unknown_regions or 'none'}")
    small_regions = sum(x[6] != "unknown" for x in small)
    print(f"d <= 5, r <= 16 without the monotone route: {small_regions}/{len(small)} decided")
    print(f"disagreements between decided verdicts: {disagreements}")


if __name__ == "__main__":
    main()
