"""The cross-checks of a fuzz campaign: each one a property that a bug in some layer breaks.

A check is ``check(case) -> Disagreement | None``; ``case`` wraps one adversarial
:class:`Instance` with its seed (checks draw their own randomness from it, so a replay of
the same (instance, seed) repeats the same check exactly) and with memoised shared work.
Checks are registered by name in ``CHECKS``; a new layer of the project joins the campaign
by registering one more function.

Exact relations are compared exactly (exp-polynomial equality, Lindemann–Weierstrass);
torch is compared with the exact evaluator at 1e-12 relative to the size of the
computation (float64 rounding is ~1e-16 per operation, amplified by cancellation in the
residual sums and by |score| in the softmax weights, which the scale accounts for).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Optional, Sequence

import torch

from promptlimits.constructions.adversarial import (
    Instance, conjugate, conjugate_point, feed_forward_rational, rational_vector, scale_hidden,
)
from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.lora import lora_update, updated_model, verify_rational_model
from promptlimits.constructions.evaluate import (
    ExpVector, context, head_output_exact, layer_exact, tokens_with_positions,
)
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.seeded import derive
from promptlimits.constructions.spec import LIMITS, Head, Matrix, Model, Vector
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.prompt_tuning import tune_prompts
from promptlimits.numerics.twin import Twin, tensor
from promptlimits.proofs.certificate import CheckFailed, make_certificate
from promptlimits.proofs.exp_linalg import TooLarge
from promptlimits.proofs.linalg import inverse, matmul, matvec
from promptlimits.proofs.loss_floor import LossFloor, loss_floor
from promptlimits.proofs.invertibility import Decision as InvDecision
from promptlimits.proofs.invertibility import decide as decide_injective
from promptlimits.proofs.memorization import Decision, decide
from promptlimits.proofs.regions import Block
from promptlimits.proofs.smt_injectivity import naive_injectivity
from promptlimits.proofs.recheck import recheck

F = Fraction

#: Relative tolerance of float64 torch against exact values (see the module docstring).
TWIN_RTOL = 1e-12
#: The time limit handed to each decision procedure (seconds); past it they must say "unknown".
DECISION_TIMEOUT = 2.0
#: The naive SMT encoding's time limit (seconds); it is a baseline, often unknown past small sizes.
SMT_TIMEOUT = 1.0
#: Numbers of a certificate's evidence that ``recheck_certificate`` mutates per certificate.
MUTATIONS = 3


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


def _vec(v: Sequence[Fraction]) -> list[str]:
    return [format_exact(x) for x in v]


def _equal(a: ExpVector, b: ExpVector) -> bool:
    """Exact equality of two exp-polynomial vectors (cross-multiplied, zero test symbolic)."""
    if a.den == b.den:
        return a.nums == b.nums
    return all((x * b.den - y * a.den).is_zero() for x, y in zip(a.nums, b.nums))


def _random_rational(rng: random.Random, bound: int = 6, den: int = 4) -> Fraction:
    return F(rng.randint(-bound * den, bound * den), rng.randint(1, den))


def _random_vector(rng: random.Random, d: int) -> Vector:
    return tuple(_random_rational(rng) for _ in range(d))


def _random_invertible(rng: random.Random, d: int) -> Matrix:
    """L·D·U with unit triangular L, U and a non-zero diagonal D: always invertible."""
    L = tuple(tuple(F(1) if i == j else _random_rational(rng, 2, 2) if j < i else F(0) for j in range(d)) for i in range(d))
    U = tuple(tuple(F(1) if i == j else _random_rational(rng, 2, 2) if j > i else F(0) for j in range(d)) for i in range(d))
    D = tuple(tuple(F(rng.choice((-3, -2, -1, 1, 2, 3)), rng.randint(1, 3)) if i == j else F(0) for j in range(d))
              for i in range(d))
    return matmul(matmul(L, D), U)


# ----------------------------------------------------------------------------- exact vs torch


def _float_scale(model: Model, prompt: Sequence[Vector], X: Sequence[Vector]) -> list[float]:
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


@register("twin_matches_exact")
def twin_matches_exact(case: Case) -> Optional[Disagreement]:
    """The float64 torch twin equals the exact evaluator to 1e-12 relative, with and without the prompt."""
    if not case.exact:
        return None
    inst = case.instance
    twin = Twin(inst.model)
    met = True
    for k, ex in enumerate(inst.dataset.examples):
        for prompt in (inst.prompt, ()):
            exact = case.outputs(k) if prompt == inst.prompt else layer_exact(inst.model, prompt, ex.input)
            if prompt == inst.prompt:
                met = met and all(y is None or o.equals(y) for o, y in zip(exact, ex.target))
            got = twin_outputs(inst.model, prompt, ex.input, twin)
            scale = _float_scale(inst.model, prompt, ex.input)
            for i, out in enumerate(exact):
                want = out.floats()
                for j, w in enumerate(want):
                    err = abs(float(got[i, j]) - w)
                    if not err <= TWIN_RTOL * max(scale[i], abs(w), 1e-300):
                        return Disagreement("twin_matches_exact", f"example {k} position {i} coordinate {j}: "
                                            f"torch {float(got[i, j])!r} vs exact {w!r}",
                                            {"example": k, "position": i, "coordinate": j, "prompt_length": len(prompt),
                                             "torch": float(got[i, j]), "exact": str(out.entries()[j]),
                                             "scale": scale[i]})
    case.record("prompt-meets-targets", "yes" if met else "no")
    return None


# ----------------------------------------------------------------------------- Lemma 1


@register("lemma1_decomposition")
def lemma1_decomposition(case: Case) -> Optional[Disagreement]:
    """Lemma 1, exactly: every head's output is (A v + B u)/(A + B), and B, B·u ignore the prompt."""
    if not case.exact:
        return None
    inst = case.instance
    model = inst.model
    for k, ex in enumerate(inst.dataset.examples):
        seq = tuple(inst.prompt) + tokens_with_positions(model, ex.input)
        m, n = len(inst.prompt), len(ex.input)
        for h, head in enumerate(model.layers[0].heads):
            for i in range(n):
                dec = decompose(model, inst.prompt, ex.input, i, head=h)
                direct = head_output_exact(model, head, seq, m + i, context(model, m, i, n))
                if not _equal(dec.head_output(), direct):
                    return Disagreement("lemma1_decomposition", f"example {k} head {h} position {i}: "
                                        "λv + (1 − λ)u differs from the head output", {"example": k, "head": h, "position": i})
                free = decompose(model, (), ex.input, i, head=h)
                if free.B != dec.B or free.Bu != dec.Bu:
                    return Disagreement("lemma1_decomposition", f"example {k} head {h} position {i}: "
                                        "B or B·u depends on the prompt", {"example": k, "head": h, "position": i})
    return None


# ----------------------------------------------------------------------------- metamorphic relations


@register("prompt_order")
def prompt_order(case: Case) -> Optional[Disagreement]:
    """One layer: an input position attends to every prompt token (bidirectional, or causal with the
    prompt first), so permuting the prompt's tokens leaves every input output unchanged, exactly."""
    inst = case.instance
    if not case.exact or len(inst.prompt) < 2:
        return None
    order = list(range(len(inst.prompt)))
    case.rng("prompt_order").shuffle(order)
    if order == sorted(order):
        order.reverse()
    permuted = tuple(inst.prompt[j] for j in order)
    for k, ex in enumerate(inst.dataset.examples):
        for i, (a, b) in enumerate(zip(case.outputs(k), layer_exact(inst.model, permuted, ex.input))):
            if not _equal(a, b):
                return Disagreement("prompt_order", f"example {k} position {i}: permuting the prompt changed the output",
                                    {"example": k, "position": i, "order": order})
    return None


@register("hidden_scaling")
def hidden_scaling(case: Case) -> Optional[Disagreement]:
    """Scaling hidden unit j by c > 0 (row j of W1 and b1[j] by c, column j of W2 by 1/c) leaves f,
    hence every output, unchanged exactly."""
    inst = case.instance
    if not case.exact:
        return None
    rng = case.rng("hidden_scaling")
    layer = inst.model.layers[0]
    j = rng.randrange(layer.hidden)
    c = F(rng.randint(1, 10**6), rng.choice((1, 7, 1000, 10**6)))
    model = replace(inst.model, layers=(scale_hidden(layer, j, c),))
    for k, ex in enumerate(inst.dataset.examples):
        for i, (a, b) in enumerate(zip(case.outputs(k), layer_exact(model, inst.prompt, ex.input))):
            if not _equal(a, b):
                return Disagreement("hidden_scaling", f"example {k} position {i}: scaling hidden unit {j} by "
                                    f"{format_exact(c)} changed the output", {"example": k, "position": i, "unit": j,
                                                                           "factor": format_exact(c)})
    return None


def with_score_shift(model: Model, shifts: Sequence[tuple[Vector, Fraction]]) -> Model:
    """The model on Q^{d+1} whose tokens carry a last coordinate 1 and whose head h scores key c
    against query x as κ(cᵀMx + w_h·x + β_h): the same shift for every key of a query.

    W_q' = [[W_q, 0], [w_hᵀ, β_h]], W_k' = [[W_k, 0], [0, 1]]; values, W1 and W2 ignore the new
    coordinate and the residual keeps it at 1, so outputs are (τ_P(X), 1) with the original τ.
    """
    layer = model.layers[0]
    zero_col = lambda a: tuple(tuple(row) + (F(0),) for row in a)  # noqa: E731
    heads = []
    for head, (w, beta) in zip(layer.heads, shifts):
        W_q = zero_col(head.W_q) + (tuple(w) + (beta,),)
        W_k = zero_col(head.W_k) + ((F(0),) * model.d + (F(1),),)
        heads.append(Head(W_q, W_k, zero_col(head.W_v), tuple(head.W_o) + ((F(0),) * len(head.W_v),)))
    new_layer = replace(
        layer, heads=tuple(heads), W1=zero_col(layer.W1), W2=tuple(layer.W2) + ((F(0),) * layer.hidden,),
        b2=tuple(layer.b2) + (F(0),),
    )
    positional = None if model.positional is None else tuple(tuple(p) + (F(0),) for p in model.positional)
    return replace(model, d=model.d + 1, layers=(new_layer,), positional=positional)


@register("score_shift")
def score_shift(case: Case) -> Optional[Disagreement]:
    """Adding one constant (depending on the query only) to all scores of a query changes nothing:
    the (d+1)-dimensional model of ``with_score_shift`` outputs (τ_P(X), 1) exactly."""
    inst = case.instance
    if not case.exact:
        return None
    rng = case.rng("score_shift")
    model = inst.model
    shifts = [(_random_vector(rng, model.d), _random_rational(rng)) for _ in model.layers[0].heads]
    shifted = with_score_shift(model, shifts)
    lift = lambda toks: tuple(tuple(t) + (F(1),) for t in toks)  # noqa: E731
    for k, ex in enumerate(inst.dataset.examples):
        base = case.outputs(k)
        moved = layer_exact(shifted, lift(inst.prompt), lift(ex.input))
        for i, (a, b) in enumerate(zip(base, moved)):
            if not _equal(a, ExpVector(b.nums[:-1], b.den)) or not (b.nums[-1] - b.den).is_zero():
                return Disagreement("score_shift", f"example {k} position {i}: shifting every score of the "
                                    "query by one constant changed the output", {"example": k, "position": i})
    return None


@register("conjugation_function")
def conjugation_function(case: Case) -> Optional[Disagreement]:
    """The conjugated block h(x) = T⁻¹(f(Tx + t) − t) + c built by ``conjugate`` computes exactly that
    map at random rational points (so conjugation, used to hide structure, is what it claims)."""
    inst = case.instance
    if not case.exact:
        return None
    rng = case.rng("conjugation_function")
    d = inst.model.d
    layer = inst.model.layers[0]
    T, t, c = _random_invertible(rng, d), _random_vector(rng, d), _random_vector(rng, d)
    h = conjugate(layer, T, t, c)
    Tinv = inverse(T)
    for _ in range(4):
        x = _random_vector(rng, d)
        fx = feed_forward_rational(layer, tuple(a + b for a, b in zip(matvec(T, x), t)))
        want = tuple(a + b for a, b in zip(matvec(Tinv, tuple(a - b for a, b in zip(fx, t))), c))
        got = feed_forward_rational(h, x)
        if got != want:
            return Disagreement("conjugation_function", "the conjugated block differs from T⁻¹(f(Tx + t) − t) + c",
                                {"x": _vec(x), "got": _vec(got), "want": _vec(want)})
    return None


# ----------------------------------------------------------------------------- known answers


@register("known_answers")
def known_answers(case: Case) -> Optional[Disagreement]:
    """What the construction knows holds exactly: a known collision is one (x ≠ x', f(x) = f(x')),
    and a generating prompt reproduces every target, exactly and in float64 torch."""
    inst = case.instance
    if inst.collision is not None:
        x, x2 = inst.collision
        layer = inst.model.layers[0]
        fx, fx2 = feed_forward_rational(layer, x), feed_forward_rational(layer, x2)
        if x == x2 or fx != fx2:
            return Disagreement("known_answers", "the known collision is not one",
                                {"x": _vec(x), "x2": _vec(x2), "f(x)": _vec(fx), "f(x2)": _vec(fx2)})
    if inst.expects("memorizable") == "memorizable" and inst.prompt:
        twin = Twin(inst.model)
        for k, ex in enumerate(inst.dataset.examples):
            outs = case.outputs(k)
            got = twin_outputs(inst.model, inst.prompt, ex.input, twin)
            scale = _float_scale(inst.model, inst.prompt, ex.input)
            for i, (out, y) in enumerate(zip(outs, ex.target)):
                if y is None:
                    continue
                if not out.equals(y):
                    return Disagreement("known_answers", f"example {k} position {i}: the generating prompt misses "
                                        "its target exactly", {"example": k, "position": i, "target": _vec(y)})
                err = max(abs(float(got[i, j]) - float(yj)) for j, yj in enumerate(y))
                if not err <= TWIN_RTOL * scale[i]:
                    return Disagreement("known_answers", f"example {k} position {i}: the generating prompt misses its "
                                        f"target in float64 by {err!r}", {"example": k, "position": i, "error": err})
    return None


def check_names() -> tuple[str, ...]:
    """The registered checks, in campaign order."""
    return tuple(CHECKS)



# ----------------------------------------------------------------------------- decisions


def memorization(case: Case, length: Optional[int] = None) -> Decision:
    """The exact memorizability decision of the instance (memoised per prompt length)."""
    inst = case.instance
    return case.memo(f"memorization/{length}",
                     lambda: decide(inst.model, inst.dataset, length=length, timeout=DECISION_TIMEOUT))


@register("memorization_verdict")
def memorization_verdict(case: Case) -> Optional[Disagreement]:
    """A decided memorizability verdict agrees with what the construction knows: a dataset whose
    targets a prompt of m tokens produced is memorizable, by prompts of any length and of exactly m."""
    inst = case.instance
    dec = memorization(case)
    case.record("memorizable", dec.verdict)
    known = inst.expects("memorizable")
    if known is None:
        return None
    if dec.verdict not in (known, "unknown"):
        return Disagreement("memorization_verdict", f"decided {dec.verdict}, the construction says {known}: {dec.reason}",
                            {"verdict": dec.verdict, "expected": known, "method": dec.method})
    if known == "memorizable" and inst.prompt:
        fixed = memorization(case, len(inst.prompt))
        case.record(f"memorizable, m = {len(inst.prompt)}", fixed.verdict)
        if fixed.verdict == "not-memorizable":
            return Disagreement("memorization_verdict", f"not memorizable with {len(inst.prompt)} tokens, but a prompt "
                                f"of that length produced the targets: {fixed.reason}",
                                {"verdict": fixed.verdict, "length": len(inst.prompt), "method": fixed.method})
    return None


@register("witness_reproduces")
def witness_reproduces(case: Case) -> Optional[Disagreement]:
    """A memorizable verdict's witness prompt, as the decimals the tool prints, reproduces every
    constrained target in the float64 twin (to 1e-12 relative to the computation's size); witnesses
    longer than the input limit on sequences (an entropy prompt may need astronomically many
    tokens) are beyond any torch run and are only counted."""
    dec = memorization(case)
    if dec.witness is None or dec.query is None:
        return None
    if dec.witness.length > LIMITS["sequence"]:
        case.record("witness in torch", f"longer than {LIMITS['sequence']} tokens")
        return None
    inst = case.instance
    prompt = tuple(tuple(float(x) for x in row) for row in dec.witness.decimals(dec.query))
    twin = Twin(inst.model)
    P = torch.tensor(prompt, dtype=torch.float64).reshape(1, len(prompt), inst.model.d)
    for k, ex in enumerate(inst.dataset.examples):
        got = twin(tensor(ex.input)[None], P)[0]
        scale = _float_scale(inst.model, prompt, ex.input)
        for i, y in enumerate(ex.target):
            if y is None:
                continue
            err = max(abs(float(got[i, j]) - float(yj)) for j, yj in enumerate(y))
            if not err <= TWIN_RTOL * scale[i]:
                return Disagreement("witness_reproduces", f"example {k} position {i}: the witness misses its target "
                                    f"in float64 by {err!r} (scale {scale[i]!r})",
                                    {"example": k, "position": i, "error": err, "prompt": [list(map(repr, p)) for p in prompt]})
    return None


def invertibility(case: Case) -> Optional[InvDecision]:
    """The injectivity decision of the layer's feed-forward block (memoised; None off the exact scope)."""
    if not case.exact:
        return None
    layer = case.instance.model.layers[0]
    return case.memo("invertibility", lambda: decide_injective(layer, timeout=DECISION_TIMEOUT))


def floor_of(case: Case) -> Optional[LossFloor]:
    """THEORY §5's certified loss floor of the instance (memoised; None off the exact scope)."""
    if not case.exact:
        return None
    inst = case.instance
    return case.memo("loss_floor", lambda: loss_floor(inst.model, inst.dataset))


def _collision_error(layer, pair) -> Optional[str]:
    x, x2 = pair
    if x == x2:
        return "the two points are equal"
    fx, fx2 = feed_forward_rational(layer, x), feed_forward_rational(layer, x2)
    return None if fx == fx2 else f"f(x) = {_vec(fx)} but f(x') = {_vec(fx2)}"


@register("invertibility_verdict")
def invertibility_verdict(case: Case) -> Optional[Disagreement]:
    """A decided injectivity verdict agrees with the construction (ρ < 1 blocks are injective, flips
    and folds are not), a not-injective verdict's collision is one (re-evaluated here), and an
    injective verdict meets no collision the construction knows."""
    dec = invertibility(case)
    if dec is None:
        return None
    case.record("invertible", dec.verdict)
    inst = case.instance
    known = inst.expects("invertible")
    if known is not None and dec.verdict not in (known, "unknown"):
        return Disagreement("invertibility_verdict", f"decided {dec.verdict}, the construction says {known}: {dec.reason}",
                            {"verdict": dec.verdict, "expected": known, "method": dec.method})
    if dec.verdict == "not-injective":
        why = _collision_error(inst.model.layers[0], dec.collision)
        if why is not None:
            return Disagreement("invertibility_verdict", f"the reported collision is not one: {why}",
                                {"collision": [_vec(v) for v in dec.collision]})
    if dec.verdict == "injective" and inst.collision is not None:
        return Disagreement("invertibility_verdict", "decided injective, but the construction's collision is one",
                            {"collision": [_vec(v) for v in inst.collision], "method": dec.method})
    return None


@register("conjugation_verdict")
def conjugation_verdict(case: Case) -> Optional[Disagreement]:
    """h(x) = T⁻¹(f(Tx + t) − t) + c is injective iff f is: both decided verdicts agree, and a
    collision (x, x') of f maps to the collision (T⁻¹(x − t), T⁻¹(x' − t)) of h."""
    dec = invertibility(case)
    if dec is None:
        return None
    rng = case.rng("conjugation_verdict")
    d = case.instance.model.d
    T, t, c = _random_invertible(rng, d), _random_vector(rng, d), _random_vector(rng, d)
    layer = case.instance.model.layers[0]
    h = conjugate(layer, T, t, c)
    if dec.collision is not None:
        moved = tuple(conjugate_point(T, t, x) for x in dec.collision)
        why = _collision_error(h, moved)
        if why is not None:
            return Disagreement("conjugation_verdict", f"f's collision does not carry over to the conjugate: {why}",
                                {"collision": [_vec(v) for v in moved]})
    other = decide_injective(h, timeout=DECISION_TIMEOUT)
    if "unknown" not in (dec.verdict, other.verdict) and dec.verdict != other.verdict:
        return Disagreement("conjugation_verdict", f"f is {dec.verdict} ({dec.method}) but its conjugate is "
                            f"{other.verdict} ({other.method})", {"T": [_vec(r) for r in T], "t": _vec(t), "c": _vec(c)})
    return None


@register("smt_agrees")
def smt_agrees(case: Case) -> Optional[Disagreement]:
    """The naive two-copy SMT encoding and the exact decision agree whenever both decide, and an
    SMT collision re-evaluates exactly as one."""
    dec = invertibility(case)
    if dec is None:
        return None
    layer = case.instance.model.layers[0]
    smt = naive_injectivity(Block.of(layer), timeout=SMT_TIMEOUT)
    case.record("naive smt", smt.verdict)
    if smt.verdict == "not-injective":
        why = _collision_error(layer, smt.collision)
        if why is not None:
            return Disagreement("smt_agrees", f"the SMT collision is not one: {why}",
                                {"collision": [_vec(v) for v in smt.collision]})
    if "unknown" not in (dec.verdict, smt.verdict) and dec.verdict != smt.verdict:
        return Disagreement("smt_agrees", f"exact decision {dec.verdict} ({dec.method}), naive SMT {smt.verdict}",
                            {"exact": dec.verdict, "smt": smt.verdict, "method": dec.method})
    return None


def _losses(model: Model, dataset, prompts: torch.Tensor, twin: Twin) -> torch.Tensor:
    """Σ_examples Σ_constrained ‖τ_P(X)_i − y_i‖² for each prompt of ``prompts`` [K, m, d]."""
    total = torch.zeros(prompts.shape[0], dtype=torch.float64)
    for ex in dataset.examples:
        out = twin.prompted(tensor(ex.input), prompts)[:, 0]
        for i, y in enumerate(ex.target):
            if y is not None:
                total += ((out[:, i] - tensor([y])[0]) ** 2).sum(-1)
    return total


@register("floor_not_beaten")
def floor_not_beaten(case: Case) -> Optional[Disagreement]:
    """No prompt beats the certified loss floor (THEORY §5): not the instance's prompt, not random
    prompts of lengths 1–4 at several scales, and (deep profile) not batched prompt tuning.
    Float64 losses get a relative slack of 1e-9 for rounding."""
    found = floor_of(case)
    if found is None:
        return None
    floor = found.value
    case.record("loss floor", "positive" if floor > 0 else "zero")
    if floor <= 0:
        return None
    inst = case.instance
    twin = Twin(inst.model)
    limit = float(floor) * (1 - 1e-9)
    gen = torch.Generator().manual_seed(derive(case.seed, "floor_not_beaten") % 2**63)
    candidates = []
    if inst.prompt:
        candidates.append(("instance prompt", tensor(inst.prompt)[None]))
    for m in (1, 2, 4):
        for scale in (0.5, 2.0, 8.0):
            candidates.append((f"random m = {m}, scale {scale}",
                               scale * torch.randn(16, m, inst.model.d, generator=gen, dtype=torch.float64)))
    if case.profile == "deep":
        config = TrainConfig(steps=200, polish=50, seed=derive(case.seed, "train") % 2**31, progress=False)
        for run in tune_prompts(inst.model, [inst.dataset], (1, 2, 4), 4, config):
            candidates.append((f"prompt tuning m = {run.prompt_length}", torch.tensor(run.best_prompt)[None]))
    for label, prompts in candidates:
        losses = _losses(inst.model, inst.dataset, prompts, twin)
        best = float(losses.min())
        if best < limit:
            return Disagreement("floor_not_beaten", f"{label}: loss {best!r} below the certified floor "
                                f"{format_exact(floor)} ({float(floor)!r})",
                                {"loss": best, "floor": format_exact(floor), "candidate": label})
    return None


def _number_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every exact number string in a JSON value.

    Only determined values are mutated: a certificate's evidence states every computed number
    as an exact string that recheck recomputes. Its ints are labels (which item, which
    coordinate), and its witness prompt is a free choice: changing either may legitimately
    give another valid proof (a witness is tested by ``witness_reproduces`` instead).
    """
    if isinstance(obj, dict):
        return [p for k in sorted(obj) if k != "witness" for p in _number_paths(obj[k], path + (k,))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _number_paths(v, path + (i,))]
    if isinstance(obj, str):
        try:
            F(obj)
        except (ValueError, ZeroDivisionError):
            return []
        return [path]
    return []


def _mutated(cert: dict, path: tuple) -> dict:
    """A deep copy of ``cert`` with the number at ``path`` (under "evidence") changed by +1."""
    out = json.loads(json.dumps(cert))
    holder = out["evidence"]
    for key in path[:-1]:
        holder = holder[key]
    old = holder[path[-1]]
    holder[path[-1]] = format_exact(F(old) + 1)
    return out


def _certificates(case: Case) -> list[tuple[dict, list[tuple]]]:
    """Every certificate the decisions emit for this instance, each with the evidence paths whose
    numbers are determined (a changed one must be rejected)."""
    inst = case.instance
    out = []
    dec = memorization(case)
    if dec.verdict != "unknown":
        cert = make_certificate("memorizable", dec.verdict, dec.method, dec.evidence, inst.model, inst.dataset)
        out.append((cert, _number_paths(cert["evidence"])))
    inv = invertibility(case)
    if inv is not None and inv.verdict != "unknown" and inv.evidence is not None:
        cert = make_certificate("invertible", inv.verdict, inv.method, dict(inv.evidence, layer=0), inst.model)
        ev = cert["evidence"]
        paths = [("product",)] if ev.get("route") == "lipschitz" else []
        paths += [("collision", i, j) for i in range(2) for j in range(inst.model.d)] if "collision" in ev else []
        out.append((cert, paths))
    return [(json.loads(json.dumps(c)), paths) for c, paths in out]


def _still_true(cert: dict, inst: Instance) -> bool:
    """A mutated collision that is still a collision is a valid certificate (checked exactly)."""
    ev = cert["evidence"]
    if cert["claim"] != "invertible" or "collision" not in ev:
        return False
    x, x2 = (tuple(F(v) for v in p) for p in ev["collision"])
    layer = inst.model.layers[0]
    return x != x2 and feed_forward_rational(layer, x) == feed_forward_rational(layer, x2)


@register("recheck_certificate")
def recheck_certificate(case: Case) -> Optional[Disagreement]:
    """``recheck`` accepts every certificate the decisions emit (memorizable, invertible),
    and rejects it once a determined number of its evidence is changed by +1 (a few per
    certificate, chosen by the seed), unless the changed certificate is still true."""
    rng = case.rng("recheck_certificate")
    for cert, paths in _certificates(case):
        what = f"{cert['claim']} = {cert['verdict']}"
        try:
            recheck(cert)
        except CheckFailed as err:
            return Disagreement("recheck_certificate", f"recheck rejects the emitted {what} certificate: {err}",
                                {"claim": cert["claim"], "verdict": cert["verdict"], "method": cert["method"]})
        for path in rng.sample(paths, min(MUTATIONS, len(paths))):
            changed = _mutated(cert, path)
            try:
                recheck(changed)
            except CheckFailed:
                continue
            if _still_true(changed, case.instance):
                continue
            return Disagreement("recheck_certificate", f"recheck accepts the {what} certificate with evidence "
                                f"{'/'.join(map(str, path))} changed by +1",
                                {"claim": cert["claim"], "verdict": cert["verdict"], "path": list(path)})
    return None


@register("lora_exact")
def lora_exact(case: Case) -> Optional[Disagreement]:
    """THEORY §6's constructed update W2 + ΔW2 realizes every target, checked independently of the
    construction: exactly by the plain evaluator when ΔW2 is rational, else (ΔW2 rounded to 40
    digits) in the float64 twin to 1e-12 relative.

    The ci profile keeps to instances whose prompt-free outputs are rational (the construction
    then works over Q and is fast); deep takes every instance.
    """
    inst = case.instance
    if not case.exact:
        return None
    if case.profile == "ci" and not all(rational_vector(o) is not None for ex in inst.dataset.examples
                                        for o in layer_exact(inst.model, (), ex.input)):
        return None
    try:
        update = lora_update(inst.model, inst.dataset)
    except InputError:  # the hidden features are dependent and the residuals do not follow: no update exists
        case.record("lora", "none")
        return None
    except TooLarge:  # the exact route's documented size limit: no claim is made
        case.record("lora", "too large")
        return None
    case.record("lora", f"rank {update.rank}")
    model, exact = updated_model(inst.model, update)
    if exact:
        if not verify_rational_model(model, inst.dataset):
            return Disagreement("lora_exact", "the rational LoRA update misses a target in the plain evaluator",
                                {"rank": update.rank, "method": update.method})
        return None
    twin = Twin(model)
    for k, ex in enumerate(inst.dataset.examples):
        got = twin_outputs(model, (), ex.input, twin)
        scale = _float_scale(model, (), ex.input)
        for i, y in enumerate(ex.target):
            if y is None:
                continue
            err = max(abs(float(got[i, j]) - float(yj)) for j, yj in enumerate(y))
            if not err <= TWIN_RTOL * scale[i]:
                return Disagreement("lora_exact", f"example {k} position {i}: W2 + ΔW2 misses its target in float64 "
                                    f"by {err!r} (scale {scale[i]!r})",
                                    {"example": k, "position": i, "error": err, "rank": update.rank})
    return None
