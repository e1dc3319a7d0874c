"""Cross-checks of the exact and numeric layers: evaluator against torch, Lemma 1, the
metamorphic relations of THEORY §1/§7, what constructions know, and exact LoRA updates.

Exact relations are compared exactly (exp-polynomial equality, Lindemann–Weierstrass).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Optional, Sequence

import numpy as np

from promptlimits.constructions.adversarial import conjugate, feed_forward_rational, rational_vector, scale_hidden
from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import ExpVector, context, head_output_exact, layer_exact, tokens_with_positions
from promptlimits.constructions.lora import lora_update, updated_model, verify_rational_model
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.spec import Head, Model, Vector
from promptlimits.numerics.fuzz_case import (
    TWIN_RTOL, Case, Disagreement, exact_equal, float_scale, random_invertible, random_rational, random_vector,
    register, twin_outputs, vec_json,
)
from promptlimits.numerics.attention_shift import float_shifts
from promptlimits.numerics.twin import Twin
from promptlimits.proofs.relative_attention import first_layer_invariant
from promptlimits.proofs.exp_linalg import TooLarge
from promptlimits.proofs.linalg import inverse, matvec

F = Fraction


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
            scale = float_scale(inst.model, prompt, ex.input)
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
                if not exact_equal(dec.head_output(), direct):
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
            if not exact_equal(a, b):
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
            if not exact_equal(a, b):
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
    shifts = [(random_vector(rng, model.d), random_rational(rng)) for _ in model.layers[0].heads]
    shifted = with_score_shift(model, shifts)
    lift = lambda toks: tuple(tuple(t) + (F(1),) for t in toks)  # noqa: E731
    for k, ex in enumerate(inst.dataset.examples):
        base = case.outputs(k)
        moved = layer_exact(shifted, lift(inst.prompt), lift(ex.input))
        for i, (a, b) in enumerate(zip(base, moved)):
            if not exact_equal(a, ExpVector(b.nums[:-1], b.den)) or not (b.nums[-1] - b.den).is_zero():
                return Disagreement("score_shift", f"example {k} position {i}: shifting every score of the "
                                    "query by one constant changed the output", {"example": k, "position": i})
    return None


@register("relative_attention")
def relative_attention(case: Case) -> Optional[Disagreement]:
    """THEORY §1 (i): at the first layer the prompt leaves the relative attention among the input
    tokens unchanged, decided exactly (``proofs.relative_attention``), for every model kind
    (several layers, GELU, layer norm included: only the first layer's scores matter); and the
    twin's float64 relative attention agrees to 1e-9."""
    inst = case.instance
    model = inst.model
    for k, ex in enumerate(inst.dataset.examples):
        if not first_layer_invariant(model, ex.input, inst.prompt):
            return Disagreement("relative_attention", f"example {k}: the prompt changed first-layer relative "
                                "attention among the input tokens (exactly)", {"example": k})
        moved = float_shifts(model, np.array([[float(v) for v in t] for t in ex.input]),
                             np.array([[[float(v) for v in t] for t in inst.prompt]]).reshape(1, len(inst.prompt), model.d))
        if not moved[0, 0] <= 1e-9:
            return Disagreement("relative_attention", f"example {k}: torch moves first-layer relative attention "
                                f"by {moved[0, 0]!r}", {"example": k, "shift": float(moved[0, 0])})
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
    T, t, c = random_invertible(rng, d), random_vector(rng, d), random_vector(rng, d)
    h = conjugate(layer, T, t, c)
    Tinv = inverse(T)
    for _ in range(4):
        x = random_vector(rng, d)
        fx = feed_forward_rational(layer, tuple(a + b for a, b in zip(matvec(T, x), t)))
        want = tuple(a + b for a, b in zip(matvec(Tinv, tuple(a - b for a, b in zip(fx, t))), c))
        got = feed_forward_rational(h, x)
        if got != want:
            return Disagreement("conjugation_function", "the conjugated block differs from T⁻¹(f(Tx + t) − t) + c",
                                {"x": vec_json(x), "got": vec_json(got), "want": vec_json(want)})
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
                                {"x": vec_json(x), "x2": vec_json(x2), "f(x)": vec_json(fx), "f(x2)": vec_json(fx2)})
    if inst.expects("memorizable") == "memorizable" and inst.prompt:
        twin = Twin(inst.model)
        for k, ex in enumerate(inst.dataset.examples):
            outs = case.outputs(k)
            got = twin_outputs(inst.model, inst.prompt, ex.input, twin)
            scale = float_scale(inst.model, inst.prompt, ex.input)
            for i, (out, y) in enumerate(zip(outs, ex.target)):
                if y is None:
                    continue
                if not out.equals(y):
                    return Disagreement("known_answers", f"example {k} position {i}: the generating prompt misses "
                                        "its target exactly", {"example": k, "position": i, "target": vec_json(y)})
                err = max(abs(float(got[i, j]) - float(yj)) for j, yj in enumerate(y))
                if not err <= TWIN_RTOL * scale[i]:
                    return Disagreement("known_answers", f"example {k} position {i}: the generating prompt misses its "
                                        f"target in float64 by {err!r}", {"example": k, "position": i, "error": err})
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
        scale = float_scale(model, (), ex.input)
        for i, y in enumerate(ex.target):
            if y is None:
                continue
            err = max(abs(float(got[i, j]) - float(yj)) for j, yj in enumerate(y))
            if not err <= TWIN_RTOL * scale[i]:
                return Disagreement("lora_exact", f"example {k} position {i}: W2 + ΔW2 misses its target in float64 "
                                    f"by {err!r} (scale {scale[i]!r})",
                                    {"example": k, "position": i, "error": err, "rank": update.rank})
    return None
