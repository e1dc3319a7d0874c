"""Exact memorizability decisions per second on shared-query datasets, against a sympy baseline.

    python benchmarks/bench_memorization.py [--dims 4,16,64,256] [--repeat 8] [--baseline-timeout 20]

For each d a seeded one-head model (contraction feed-forward block, so f is certified
injective) and four kinds of shared-query dataset are decided by ``proofs.memorization``:

* ``random``   — N = 3 targets f(z_i) with random z_i (the equations in A are inconsistent);
* ``theory4``  — THEORY §4's pair (forces A ≤ 0);
* ``alone``    — one example of that pair (A free, memorizable with a witness);
* ``prompted`` — N = 3 targets produced by a real 2-token prompt (A pinned, memorizable).

Baseline (named): the same question solved the obvious way with sympy — preimages by
``Matrix.LUsolve`` on the activation pattern, then ``linsolve`` of
(A + B_i)(z_i − q) = V t + B_i u_i for (A, t) with ``exp`` symbolic, then the sign of A.
It answers the relaxation only (no Lemma 2), so it does strictly less work. Per-instance
baseline runs stop at the timeout. The table prints decisions per second (wall clock and
process CPU time; the CPU figure is the one to trust on a loaded machine), the cold first
decision, and the speed ratio where both finish. Witness re-evaluation (``verify``) is off:
``recheck`` does it.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from fractions import Fraction as F

from promptlimits.constructions.evaluate import layer_exact
from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Model
from promptlimits.proofs.memorization import decide, head_maps
from promptlimits.constructions.feed_forward import forward


def _q(rng: random.Random, a: int = 4, b: int = 4) -> F:
    return F(rng.randint(-a, a), rng.randint(1, b))


def _mat(rng, rows, cols, scale=F(1)):
    return tuple(tuple(_q(rng) * scale for _ in range(cols)) for _ in range(rows))


def make_model(d: int, seed: int) -> Model:
    """One head with (W_k e1)·(W_q e1) = 0 (so the query e1 scores 0 against itself), and a
    feed-forward block scaled to ‖W2‖_F‖W1‖_F < 1."""
    rng = random.Random(seed)
    Wq, Wk = _mat(rng, d, d), [list(r) for r in _mat(rng, d, d)]
    for i in range(d):  # W_k e1 = the pairwise rotation of W_q e1, orthogonal to it
        j = i ^ 1
        Wk[i][0] = F(0) if j >= d else (-Wq[j][0] if i % 2 == 0 else Wq[j][0])
    W1, W2 = _mat(rng, d, d), _mat(rng, d, d)
    fro = sum(x * x for r in W1 for x in r) * sum(x * x for r in W2 for x in r)
    W2 = tuple(tuple(x / (2 * (int(fro ** 0.5) + 1)) for x in r) for r in W2)
    head = Head(Wq, tuple(map(tuple, Wk)), _mat(rng, d, d), _mat(rng, d, d))
    return Model(d, (Layer((head,), W1, tuple(_q(rng) for _ in range(d)), W2, tuple(_q(rng) for _ in range(d))),))


def _perp(rng, g, d):
    c = [_q(rng) for _ in range(d)]
    gg = sum(x * x for x in g)
    t = sum(x * y for x, y in zip(c, g)) / gg if gg else 0
    return tuple(x - t * y for x, y in zip(c, g))


def theory4(model: Model, rng: random.Random) -> Dataset:
    """THEORY §4 with x₀ = q = e1: δ ⊥ g = M q with V δ ≠ 0, inputs [x_i, q] with x₁ = q,
    x₂ = q + δ (both score 0, so B₁ = B₂ = 2), u₁ = V q, u₂ = V(2q + δ)/2, w = u₁ − u₂,
    z₁ = q + u₁ + w, z₂ = q + u₂ − w: Theorem 1 forces a = −3/(2B) < 0."""
    d = model.d
    M, V = head_maps(model.layers[0].heads[0], model.score_scale)
    q = tuple(F(int(k == 0)) for k in range(d))
    g = tuple(row[0] for row in M)
    while True:
        delta = _perp(rng, g, d)
        Vd = tuple(sum(a * b for a, b in zip(row, delta)) for row in V)
        if any(Vd):
            break
    Vq = tuple(row[0] for row in V)
    u1, u2 = Vq, tuple(a + b / 2 for a, b in zip(Vq, Vd))
    w = tuple(a - b for a, b in zip(u1, u2))
    z1 = tuple(a + b + c for a, b, c in zip(q, u1, w))
    z2 = tuple(a + b - c for a, b, c in zip(q, u2, w))
    layer = model.layers[0]
    xs = (q, tuple(a + b for a, b in zip(q, delta)))
    return Dataset(d, tuple(Example((x, q), (None, forward(layer, z))) for x, z in zip(xs, (z1, z2))))


def datasets(model: Model, seed: int) -> dict[str, Dataset]:
    rng = random.Random(seed)
    d = model.d
    M, _ = head_maps(model.layers[0].heads[0], model.score_scale)
    q = tuple(F(int(k == 0)) for k in range(d))
    g = tuple(row[0] for row in M)
    layer = model.layers[0]
    rand = Dataset(d, tuple(Example((tuple(_q(rng) for _ in range(d)), q),
                                    (None, forward(layer, tuple(_q(rng) for _ in range(d))))) for _ in range(3)))
    built = theory4(model, rng)
    prompt = tuple(_perp(rng, g, d) for _ in range(2))
    exs = []
    for _ in range(3):
        X = (_perp(rng, g, d), q)
        out = layer_exact(model, prompt, X, positions=(1,))[0]
        exs.append(Example(X, (None, tuple(e.rational_value() for e in out.entries()))))
    return {"random": rand, "theory4": built, "alone": Dataset(d, built.examples[:1]), "prompted": Dataset(d, tuple(exs))}


# ----------------------------------------------------------------------------- the sympy baseline


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def sympy_baseline(model: Model, dataset: Dataset) -> str:
    """The relaxation of Theorem 1 by sympy elimination: 'infeasible' or 'feasible'."""
    import sympy as sp

    layer = model.layers[0]
    M, V = head_maps(layer.heads[0], model.score_scale)
    d = model.d
    Vs = sp.Matrix(V)
    A = sp.Symbol("A")
    t = sp.symbols(f"t0:{d}")
    eqs = []
    for ex in dataset.examples:
        pos = len(ex.input) - 1
        y = sp.Matrix(ex.target[pos])
        W1, W2 = sp.Matrix(layer.W1), sp.Matrix(layer.W2)
        b1, b2 = sp.Matrix(layer.b1), sp.Matrix(layer.b2)
        z = y - b2
        for _ in range(8):  # fixed pattern Newton, exact
            mask = sp.diag(*[1 if v > 0 else 0 for v in (W1 * z + b1)])
            z = (sp.eye(d) + W2 * mask * W1).LUsolve(y - b2 - W2 * mask * b1)
        q = sp.Matrix(ex.input[pos])
        g = sp.Matrix(M) * q
        B = sum(sp.exp((sp.Matrix(c).T * g)[0]) for c in ex.input)
        Bu = sum((sp.exp((sp.Matrix(c).T * g)[0]) * Vs * sp.Matrix(c) for c in ex.input), sp.zeros(d, 1))
        lhs = (A + B) * (z - q) - Vs * sp.Matrix(t) - Bu
        eqs.extend(list(lhs))
    sol = sp.linsolve(eqs, [A, *t])
    if sol == sp.EmptySet:
        return "infeasible"
    a = next(iter(sol))[0]
    if a.free_symbols:
        return "feasible"
    return "infeasible" if sp.N(a, 50) <= 0 else "feasible"


# ----------------------------------------------------------------------------- the table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="4,16,64,256")
    ap.add_argument("--repeat", type=int, default=8, help="models (seeds) per dimension")
    ap.add_argument("--baseline-timeout", type=float, default=20.0)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)
    print(f"{'d':>4} {'kind':>9} {'verdicts':>28} {'ours/s':>9} {'ours ms':>9} {'cpu/s':>9} {'cold ms':>9} "
          f"{'sympy ms':>10} {'ratio':>8}")
    print("(ours: wall-clock of a decision with the model's caches warm; cpu/s: the same by process CPU time;\n"
          " cold: the first decision on a fresh model; sympy: the baseline's wall-clock; ratio = sympy / ours)")
    for d in (int(x) for x in args.dims.split(",")):
        runs = {}
        for seed in range(args.repeat):
            model = make_model(d, seed)
            sets = datasets(model, 1000 + seed)
            for kind, ds in sets.items():
                t0 = time.perf_counter()
                dec = decide(model, ds, verify=False)
                t1 = time.perf_counter()
                runs.setdefault(kind, []).append((dec.verdict, t1 - t0, model, ds))
        for kind, entries in runs.items():
            # warm: the same model's caches (head maps, norm certificate) are built; re-decide
            warm, cpu = [], []
            for verdict, cold, model, ds in entries:
                t0, c0 = time.perf_counter(), time.process_time()
                decide(model, ds, verify=False)
                warm.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            mean = sum(warm) / len(warm)
            cpu_mean = sum(cpu) / len(cpu)
            cold = sum(e[1] for e in entries) / len(entries)
            hist: dict[str, int] = {}
            for e in entries:
                hist[e[0]] = hist.get(e[0], 0) + 1
            base = []
            for _, _, model, ds in entries[:2]:
                signal.setitimer(signal.ITIMER_REAL, args.baseline_timeout)
                t0 = time.perf_counter()
                try:
                    sympy_baseline(model, ds)
                    base.append(time.perf_counter() - t0)
                except _Timeout:
                    base.append(None)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            done = [b for b in base if b is not None]
            bms = f"{1000 * sum(done) / len(done):10.1f}" if done else f"{'>' + str(int(args.baseline_timeout)) + 's':>10}"
            ratio = f"{(sum(done) / len(done)) / mean:7.0f}x" if done else f"{'>' + str(int(args.baseline_timeout / mean)) + 'x':>8}"
            verdicts = ", ".join(f"{k}:{v}" for k, v in sorted(hist.items()))
            print(f"{d:>4} {kind:>9} {verdicts:>28} {1 / mean:9.1f} {1000 * mean:9.2f} {1 / cpu_mean:9.1f} "
                  f"{1000 * cold:9.2f} {bms} {ratio}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
