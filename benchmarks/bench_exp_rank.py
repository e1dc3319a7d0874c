"""Exact rank over the exp-polynomial field: modular fast path vs fraction-free elimination.

The matrices are the hidden features of ``bounds``' LoRA-rank check: h_k = ReLU(W1 a_k + b1)
for prompt-free attention outputs a_k of random one-layer models (exp-polynomial
quotients with distinct softmax denominators). The baseline is the exact fraction-free
Gauss–Jordan over Q(e^{1/L}) alone; ``exp_linalg.rank`` first tries the rank of a
specialisation X = x0 over GF(2^61 − 1), exact whenever it reaches min(rows, cols).

Run: python benchmarks/bench_exp_rank.py
"""

from __future__ import annotations

import random
import time
from fractions import Fraction

from promptlimits.constructions.lora import features
from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Model
from promptlimits.proofs import exp_linalg


def _instance(d: int, n: int, seed: int):
    rng = random.Random(seed)

    def r() -> Fraction:
        return Fraction(rng.randint(-3, 3), rng.randint(1, 2))

    def mat(a: int, b: int, s: Fraction = Fraction(1)):
        return tuple(tuple(r() * s for _ in range(b)) for _ in range(a))

    head = Head(mat(d, d, Fraction(1, 4)), mat(d, d, Fraction(1, 4)), mat(d, d), mat(d, d, Fraction(1, 4)))
    layer = Layer((head,), mat(n, d), tuple(Fraction(1) for _ in range(n)), mat(d, n, Fraction(1, 8)),
                  tuple(r() for _ in range(d)))
    model = Model(d, (layer,))
    examples = tuple(
        Example((tuple(r() for _ in range(d)), tuple(r() for _ in range(d))), (None, tuple(r() for _ in range(d))))
        for _ in range(n)
    )
    return [list(col) for col in zip(*features(model, Dataset(d, examples)).hidden)]


def _baseline(H) -> int:
    _, lifted = exp_linalg._lift_matrix(H)
    return len(exp_linalg._eliminate(lifted, len(H[0]))[0])


def main() -> None:
    print(f"{'d':>3} {'N':>3} {'rank':>5} {'fast path s':>12} {'elimination s':>14} {'ratio':>8}")
    for d, n in [(2, 2), (4, 3), (4, 4), (8, 5), (8, 6)]:
        H = _instance(d, n, seed=d * 100 + n)
        t = time.perf_counter()
        fast = exp_linalg.rank(H)
        t_fast = time.perf_counter() - t
        t = time.perf_counter()
        slow = _baseline(H)
        t_slow = time.perf_counter() - t
        assert fast == slow, "the two exact ranks disagree"
        print(f"{d:>3} {n:>3} {fast:>5} {t_fast:>12.4f} {t_slow:>14.4f} {t_slow / max(t_fast, 1e-9):>8.1f}")


if __name__ == "__main__":
    main()
