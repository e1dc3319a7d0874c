"""The frame of a fuzz campaign's cross-checks: the case under test, the registry, shared helpers.

A check is ``check(case) -> Disagreement | None``; ``case`` wraps one adversarial
:class:`Instance` with its seed (checks draw their own randomness from it, so a replay of
the same (instance, seed) repeats the same check exactly), its profile, and memoised shared
work. Checks are registered by name in ``CHECKS``; a new layer of the project joins the
campaign by registering one more function (``fuzz_layer_checks``, ``fuzz_decision_checks``).

Torch is compared with exact values at 1e-12 relative to the size of the computation
(float64 rounding is ~1e-16 per operation, amplified by cancellation in the residual sums
and by |score| in the softmax weights, which ``float_scale`` accounts for).
"""

from __future__ import annotations

import random
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterator, Optional, Sequence

import torch

from promptlimits.constructions.adversarial import Instance
from promptlimits.constructions.evaluate import ExpVector, context, layer_exact, tokens_with_positions
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.seeded import derive
from promptlimits.constructions.spec import Matrix, Model, Vector
from promptlimits.numerics.twin import Twin, tensor
from promptlimits.proofs.linalg import matmul

F = Fraction

#: Relative tolerance of float64 torch against exact values (see the module docstring).
TWIN_RTOL = 1e-12

#: Wall-clock budget of one check on one example (seconds), per profile. The decision
#: procedures are given far smaller time limits, so a check running past this is hanging:
#: that is reported. Deep examples are larger and their floor check also trains prompts.
CHECK_SECONDS = {"ci": 30.0, "deep": 120.0}


class CheckTimeout(Exception):
    """A check ran past ``CHECK_SECONDS``."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CheckTimeout in this (main) thread after ``seconds``; a no-op off the main thread.

    The alarm repeats every second until cleared, because an exception raised while Python
    runs a callback it cannot propagate from (a gc callback, a __del__) is dropped. It
    interrupts Python code only: a single native call that never returns is not cut.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise CheckTimeout(f"ran past its {seconds:g} s budget")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass(frozen=True)
class Disagreement:
    """Two layers of the project disagree on one instance: which check, and what differed."""

    check: str
    what: str
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"check": self.check, "what": self.what, "details": self.details}


class AlreadyReported(Exception):
    """Shared work that failed in an earlier check of the same case (reported once, there)."""


class Case:
    """One instance under test: its seed and profile, derived randomness, memoised work and verdicts seen."""

    def __init__(self, instance: Instance, seed: int, profile: str = "ci") -> None:
        self.instance = instance
        self.seed = seed
        self.profile = profile
        self.verdicts: dict[str, str] = {}
        self._memo: dict[str, Any] = {}

    def rng(self, label: str) -> random.Random:
        """A random source fixed by (seed, label): a replay draws the same numbers."""
        return random.Random(derive(self.seed, label))

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per case (decisions shared by several checks).

        When it raised, the first caller gets the error and later callers AlreadyReported.
        """
        if key not in self._memo:
            self._memo[key] = AlreadyReported(key)
            self._memo[key] = compute()
        value = self._memo[key]
        if isinstance(value, AlreadyReported):
            raise value
        return value

    def record(self, claim: str, verdict: str) -> None:
        """Note a verdict for the campaign's histogram."""
        self.verdicts[claim] = verdict

    def outputs(self, k: int) -> tuple[ExpVector, ...]:
        """Exact outputs of example k under the instance's prompt (memoised)."""
        inst = self.instance
        return self.memo(f"outputs/{k}", lambda: layer_exact(inst.model, inst.prompt, inst.dataset.examples[k].input))

    @property
    def exact(self) -> bool:
        """The instance is inside the exact evaluator's scope (one ReLU layer, no norm)."""
        model = self.instance.model
        return model.is_exact and len(model.layers) == 1


Check = Callable[[Case], Optional[Disagreement]]

#: check name -> check function, in the order a campaign runs them.
CHECKS: dict[str, Check] = {}


def register(name: str) -> Callable[[Check], Check]:
    """Add a check to ``CHECKS`` under ``name``."""

    def add(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return add


def vec_json(v: Sequence[Fraction]) -> list[str]:
    return [format_exact(x) for x in v]


def exact_equal(a: ExpVector, b: ExpVector) -> bool:
    """Exact equality of two exp-polynomial vectors (cross-multiplied, zero test symbolic)."""
    if a.den == b.den:
        return a.nums == b.nums
    return all((x * b.den - y * a.den).is_zero() for x, y in zip(a.nums, b.nums))


def random_rational(rng: random.Random, bound: int = 6, den: int = 4) -> Fraction:
    return F(rng.randint(-bound * den, bound * den), rng.randint(1, den))


def random_vector(rng: random.Random, d: int) -> Vector:
    return tuple(random_rational(rng) for _ in range(d))


def random_invertible(rng: random.Random, d: int) -> Matrix:
    """L·D·U with unit triangular L, U and a non-zero diagonal D: always invertible."""
    L = tuple(tuple(F(1) if i == j else random_rational(rng, 2, 2) if j < i else F(0) for j in range(d)) for i in range(d))
    U = tuple(tuple(F(1) if i == j else random_rational(rng, 2, 2) if j > i else F(0) for j in range(d)) for i in range(d))
    D = tuple(tuple(F(rng.choice((-3, -2, -1, 1, 2, 3)), rng.randint(1, 3)) if i == j else F(0) for j in range(d))
              for i in range(d))
    return matmul(matmul(L, D), U)


def float_scale(model: Model, prompt: Sequence[Vector], X: Sequence[Vector]) -> list[float]:
    """Per input position, a bound on the magnitudes float64 rounding is relative to.

    |a_t| ≤ |x_t| + Σ_h max_c |W_o||W_v||c| · (1 + max_c |s_c|) (value sizes, and the softmax
    weights' relative error grows with the scores), then |y| ≤ |a| + |W2|(|W1||a| + |b1|) + |b2|.
    """
    layer = model.layers[0]
    seq = [tuple(map(float, p)) for p in prompt] + [tuple(map(float, x)) for x in tokens_with_positions(model, X)]
    m, n = len(prompt), len(X)
    absmat = lambda a: [[abs(float(w)) for w in row] for row in a]  # noqa: E731
    mv = lambda a, x: [sum(w * v for w, v in zip(row, x)) for row in a]  # noqa: E731
    heads = [(absmat(h.W_q), absmat(h.W_k), absmat(h.W_v), absmat(h.W_o)) for h in layer.heads]
    W1, W2 = absmat(layer.W1), absmat(layer.W2)
    b1, b2 = [abs(float(b)) for b in layer.b1], [abs(float(b)) for b in layer.b2]
    kappa = float(model.score_scale)
    out = []
    for i in range(n):
        x = [abs(v) for v in seq[m + i]]
        a = max(x)
        for Wq, Wk, Wv, Wo in heads:
            keys = [[abs(v) for v in seq[c]] for c in context(model, m, i, n)]
            q = mv(Wq, x)
            score = max(kappa * sum(u * v for u, v in zip(mv(Wk, c), q)) for c in keys)
            value = max(max(mv(Wo, mv(Wv, c))) for c in keys)
            a += value * (1 + score)
        hidden = max(mv(W1, [a] * model.d)) + max(b1)
        out.append(a + max(mv(W2, [hidden] * len(W1))) + max(b2))
    return out


def twin_outputs(model: Model, prompt: Sequence[Vector], X: Sequence[Vector], twin: Twin) -> torch.Tensor:
    """τ_P(X) in float64 torch, [n, d]."""
    P = tensor(prompt, twin.dtype, twin.device).reshape(1, len(prompt), model.d)
    return twin(tensor(X, twin.dtype, twin.device)[None], P)[0]
