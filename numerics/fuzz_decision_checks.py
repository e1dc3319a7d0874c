"""Cross-checks of the decision layer: verdicts against constructions and numerics, witnesses
in torch, certificates through recheck (accepted as emitted, rejected once changed), the naive
SMT encoding against the exact invertibility decision, and the certified loss floor against
prompts.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Optional

import torch

from promptlimits.constructions.adversarial import Instance, conjugate, conjugate_point, feed_forward_rational
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.seeded import derive
from promptlimits.constructions.spec import LIMITS, Model
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.fuzz_case import (
    TWIN_RTOL, Case, Disagreement, float_scale, random_invertible, random_vector, register, vec_json,
)
from promptlimits.numerics.prompt_tuning import tune_prompts
from promptlimits.numerics.twin import Twin, tensor
from promptlimits.proofs.certificate import CheckFailed, make_certificate
from promptlimits.proofs.tamper import mutated, number_paths
from promptlimits.proofs.invertibility import Decision as InvDecision
from promptlimits.proofs.invertibility import decide as decide_injective
from promptlimits.proofs.loss_floor import LossFloor, loss_floor
from promptlimits.proofs.memorization import Decision, decide
from promptlimits.proofs.recheck import recheck
from promptlimits.proofs.regions import Block
from promptlimits.proofs.smt_injectivity import naive_injectivity

F = Fraction

#: The time limit handed to each decision procedure (seconds); past it they must say "unknown".
DECISION_TIMEOUT = 2.0
#: The naive SMT encoding's time limit (seconds); it is a baseline, often unknown past small sizes.
SMT_TIMEOUT = 1.0
#: Numbers of a certificate's evidence that ``recheck_certificate`` mutates per certificate.
MUTATIONS = 3


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
        scale = float_scale(inst.model, prompt, ex.input)
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
    return None if fx == fx2 else f"f(x) = {vec_json(fx)} but f(x') = {vec_json(fx2)}"


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
                                {"collision": [vec_json(v) for v in dec.collision]})
    if dec.verdict == "injective" and inst.collision is not None:
        return Disagreement("invertibility_verdict", "decided injective, but the construction's collision is one",
                            {"collision": [vec_json(v) for v in inst.collision], "method": dec.method})
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
    T, t, c = random_invertible(rng, d), random_vector(rng, d), random_vector(rng, d)
    layer = case.instance.model.layers[0]
    h = conjugate(layer, T, t, c)
    if dec.collision is not None:
        moved = tuple(conjugate_point(T, t, x) for x in dec.collision)
        why = _collision_error(h, moved)
        if why is not None:
            return Disagreement("conjugation_verdict", f"f's collision does not carry over to the conjugate: {why}",
                                {"collision": [vec_json(v) for v in moved]})
    other = decide_injective(h, timeout=DECISION_TIMEOUT)
    if "unknown" not in (dec.verdict, other.verdict) and dec.verdict != other.verdict:
        return Disagreement("conjugation_verdict", f"f is {dec.verdict} ({dec.method}) but its conjugate is "
                            f"{other.verdict} ({other.method})", {"T": [vec_json(r) for r in T], "t": vec_json(t), "c": vec_json(c)})
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
                                {"collision": [vec_json(v) for v in smt.collision]})
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


def _certificates(case: Case) -> list[tuple[dict, list[tuple]]]:
    """Every certificate the decisions emit for this instance, each with the evidence paths whose
    numbers are determined (a changed one must be rejected).

    Evidence ints are labels (which item, which coordinate) and a witness prompt is a free
    choice: changing either may legitimately give another valid proof, so only exact number
    strings outside the witness are mutated (witnesses are tested by ``witness_reproduces``).
    """
    inst = case.instance
    out = []
    dec = memorization(case)
    if dec.verdict != "unknown":
        cert = make_certificate("memorizable", dec.verdict, dec.method, dec.evidence, inst.model, inst.dataset)
        out.append((cert, list(number_paths(cert["evidence"], ints=False, skip=("witness",)))))
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
            changed = mutated(cert, path)
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
