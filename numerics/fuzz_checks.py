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
    Instance, conjugate, feed_forward_rational, scale_hidden,
)
from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.evaluate import (
    ExpVector, context, head_output_exact, layer_exact, tokens_with_positions,
)
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.seeded import derive
from promptlimits.constructions.spec import Head, Matrix, Model, Vector
from promptlimits.numerics.twin import Twin, tensor
from promptlimits.proofs.certificate import CheckFailed, make_certificate
from promptlimits.proofs.linalg import inverse, matmul, matvec
from promptlimits.proofs.memorization import Decision, decide
from promptlimits.proofs.recheck import recheck

F = Fraction

#: Relative tolerance of float64 torch against exact values (see the module docstring).
TWIN_RTOL = 1e-12
#: The time limit handed to each decision procedure (seconds); past it they must say "unknown".
DECISION_TIMEOUT = 2.0
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
    """One instance under test: its seed, derived randomness, memoised work and verdicts seen."""

    def __init__(self, instance: Instance, seed: int) -> None:
        self.instance = instance
        self.seed = seed
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
    constrained target in the float64 twin (to 1e-12 relative to the computation's size)."""
    dec = memorization(case)
    if dec.witness is None or dec.query is None:
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


def _number_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every exact number in a JSON value: ints (not bools) and strings that parse as rationals."""
    if isinstance(obj, dict):
        return [p for k in sorted(obj) for p in _number_paths(obj[k], path + (k,))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _number_paths(v, path + (i,))]
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int):
        return [path]
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
    holder[path[-1]] = old + 1 if isinstance(old, int) else format_exact(F(old) + 1)
    return out


@register("recheck_certificate")
def recheck_certificate(case: Case) -> Optional[Disagreement]:
    """``recheck`` accepts the certificate of every decided verdict, and rejects it once any one
    number of its evidence is changed (a few numbers per certificate, chosen by the seed)."""
    dec = memorization(case)
    if dec.verdict == "unknown":
        return None
    inst = case.instance
    cert = json.loads(json.dumps(make_certificate("memorizable", dec.verdict, dec.method, dec.evidence,
                                                  inst.model, inst.dataset)))
    try:
        recheck(cert)
    except CheckFailed as err:
        return Disagreement("recheck_certificate", f"recheck rejects the emitted {dec.verdict} certificate: {err}",
                            {"verdict": dec.verdict, "method": dec.method})
    paths = _number_paths(cert["evidence"])
    rng = case.rng("recheck_certificate")
    for path in rng.sample(paths, min(MUTATIONS, len(paths))):
        try:
            recheck(_mutated(cert, path))
        except CheckFailed:
            continue
        return Disagreement("recheck_certificate", f"recheck accepts the {dec.verdict} certificate with evidence "
                            f"{'/'.join(map(str, path))} changed by +1", {"verdict": dec.verdict, "path": list(path)})
    return None
