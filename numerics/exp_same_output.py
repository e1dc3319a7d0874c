"""E2 — same-output pairs: exactly not memorizable, yet the loss tends to 0 as λ → 1.

Built-in instances: random one-layer, one-head models whose feed-forward product is ≤ 1/2
(so f is injective) and whose value map has rank d − 1, with the pair of
``constructions.same_output``. The query's g = M q must lie outside row(V) (Lemma 2 case
(a)): then one prompt token reaches every weight A. (When g ∈ row(V) a prompt of fixed
length m has A ≤ m·e^{η·v}, and λ → 1 needs ever longer prompts; instances of that kind
are skipped and counted.) Exact side: the
Theorem 1 decision says not-memorizable, and along the family "v = z − q, prompt weight A"
the loss L(A) is computed rigorously: every L(A) is proven > 0 and L(A) → 0 as A grows.
Numeric side: batched prompt tuning drives the loss far below its prompt-free value.
"""

from __future__ import annotations

from fractions import Fraction

import matplotlib.pyplot as plt
import torch

from promptlimits.constructions import strategies
from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.evaluate import (
    ExpVector, feed_forward_exact, layer_exact, matvec, score_matrix, value_matrix,
)
from promptlimits.constructions.same_output import SameOutputPair, same_output_pair
from promptlimits.constructions.seeded import derive, draw_seeded
from promptlimits.constructions.spec import Model
from promptlimits.numerics.catalogue import ClaimRow, ExperimentResult, Settings, png
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.prompt_tuning import tune_prompts
from promptlimits.proofs.exppoly import ExpPoly
from promptlimits.proofs.certify import memorizable_certificate
from promptlimits.proofs.memorization import decide
from promptlimits.proofs.reachable import classify

KEY = "E2"
TITLE = "same-output pairs: exactly not memorizable, loss tends to 0 without reaching it"

#: Prompt weights A at which the exact loss of the family is evaluated.
WEIGHTS = tuple(Fraction(10) ** k for k in range(0, 13, 2))


def family_loss(model: Model, pair: SameOutputPair, A: Fraction) -> ExpVector:
    """Σ_i ‖f(q + λ_i v + (1 − λ_i) u_i) − y‖² with v = z − q and λ_i = A/(A + B_i), exactly.

    Returned as a 1-vector ExpVector (numerator over a positive denominator) so that its
    sign and enclosure are exact/rigorous.
    """
    layer = model.layers[0]
    v = tuple(a - b for a, b in zip(pair.z, pair.query))
    total_num, total_den = ExpPoly(), ExpPoly.const(1)
    for ex in pair.dataset.examples:
        dec = decompose(model, (), ex.input, len(ex.input) - 1)
        den = dec.B + A
        nums = tuple(den * qk + vk * A + bu for qk, vk, bu in zip(pair.query, v, dec.Bu))
        out = feed_forward_exact(layer, ExpVector(nums, den))
        y = ex.target[-1]
        sq = ExpPoly()
        for n, yk in zip(out.nums, y):
            diff = n - out.den * yk
            sq = sq + diff * diff
        # add sq / den² to the running total num/den
        total_num = total_num * (out.den * out.den) + sq * total_den
        total_den = total_den * out.den * out.den
    return ExpVector((total_num,), total_den)


def run(settings: Settings) -> ExperimentResult:
    count = 3 if settings.quick else 12
    lengths = (1, 2, 4) if settings.quick else (1, 2, 4, 8, 16)
    config = TrainConfig(steps=300 if settings.quick else 1500, polish=50 if settings.quick else 200,
                         lr=0.3, seed=settings.seed, device=torch.device(settings.device), progress=settings.progress)
    verdicts, positive, decreasing, gaps = [], True, True, []
    certs: dict[str, dict] = {}
    curves: list[list[float]] = []
    best_losses: list[float] = []
    skipped, k = 0, 0
    while len(verdicts) < count:
        k += 1
        model = draw_seeded(strategies.models(d=3, heads=1, hidden=3, v_rank=2, lipschitz=Fraction(1, 2),
                                              positional=False), derive(settings.seed, KEY, k))
        pair = same_output_pair(model)
        head = model.layers[0].heads[0]
        if classify(matvec(score_matrix(head, model.score_scale), pair.query), value_matrix(head)).kind != "a":
            skipped += 1
            continue
        verdicts.append(decide(model, pair.dataset).verdict)
        if settings.certificates:
            certs[f"e2_{len(verdicts) - 1}_memorizable.json"] = memorizable_certificate(model, pair.dataset)
        losses = []
        for A in WEIGHTS:
            vec = family_loss(model, pair, A)
            entry = vec.entries()[0]
            positive &= entry.sign() > 0
            losses.append(float(entry))
        decreasing &= all(b < a for a, b in zip(losses, losses[1:]))
        curves.append(losses)
        free = sum(float(entry) for entry in _prompt_free_losses(model, pair))
        runs = tune_prompts(model, [pair.dataset], lengths, restarts=2, config=config)
        best = min(r.best_loss for r in runs)
        best_losses.append(best)
        gaps.append(best / free if free > 0 else 0.0)
    exact_ok = all(v == "not-memorizable" for v in verdicts) and positive and decreasing
    numerics_ok = all(g < 1e-3 for g in gaps)
    row = ClaimRow(
        experiment=KEY,
        claim="two inputs with one output: no prompt memorizes them, but the loss infimum is 0",
        exact=f"not-memorizable on {verdicts.count('not-memorizable')}/{count} models (g ∉ row V; {skipped} drawn with g ∈ row V skipped); family loss L(A) proven > 0 "
              f"and decreasing for A = 1 … 1e12 ({'yes' if positive and decreasing else 'NO'})",
        numerics=f"prompt tuning (m ≤ {max(lengths)}) reaches {max(gaps):.1e} of the prompt-free loss at worst "
                 f"(best losses {min(best_losses):.1e} … {max(best_losses):.1e})",
        agree=exact_ok and numerics_ok,
        details={"verdicts": verdicts, "skipped_g_in_row_V": skipped, "family_loss": curves, "weights": [str(a) for a in WEIGHTS],
                 "best_prompt_loss": best_losses, "relative_to_prompt_free": gaps},
    )
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for losses in curves:
        ax.plot([float(a) for a in WEIGHTS], losses, "o-", ms=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("prompt weight A (λ = A / (A + B))")
    ax.set_ylabel("exact loss L(A), proven > 0")
    ax.set_title("same-output pairs: loss → 0, never 0")
    return ExperimentResult(KEY, TITLE, (row,), {"e2_loss_vs_weight.png": png(fig)},
                            {name: c for name, c in certs.items() if c is not None})


def _prompt_free_losses(model: Model, pair: SameOutputPair):
    for ex in pair.dataset.examples:
        out = layer_exact(model, (), ex.input, positions=[len(ex.input) - 1])[0]
        yield sum(((e - yk) * (e - yk) for e, yk in zip(out.entries(), ex.target[-1])), start=out.entries()[0] * 0)

