"""Audit of a real BERT-family checkpoint against the paper's hypotheses (issue 6, part 3, reduced).

Per encoder layer (optionally a slice of it): certified lower bounds on ‖W1‖₂, ‖W2‖₂ (their
product ≥ 1 means THEORY §7's sufficient condition cannot hold); float64 signs of the
Jacobian determinant of x ↦ x + W2 GELU(W1 x + b1) + b2 at seeded random points (a
histogram, proposals only) and, when both signs occur, a pair of points whose signs are
certified in arb ball arithmetic (``proofs.gelu_orientation``), which proves that block
NOT injective. The layer norm's non-injectivity is exact: LN(x + t·1) = LN(x) for every t
(the mean subtraction removes the shift, whatever the gains, biases and ε), shown on a
rational pair. Not measured here: the attention shift of THEORY §1 per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import matplotlib.pyplot as plt

from promptlimits.constructions.bert_checkpoint import BertLayerWeights
from promptlimits.numerics.catalogue import png
from promptlimits.proofs.gelu_orientation import BITS, GeluBlock, SignFlip, find_sign_flip, float_det_signs, sample_points
from promptlimits.proofs.norm_lower_bound import spectral_lower


@dataclass(frozen=True)
class LayerAudit:
    index: int
    width: int
    hidden: int
    w1_lower: float
    w2_lower: float
    product_lower: float
    product_at_least_one: bool  # certified: the lower-bound ball of the product is ≥ 1
    positive: int
    negative: int
    flip: Optional[SignFlip]

    def to_json(self) -> dict:
        return {"layer": self.index, "width": self.width, "hidden": self.hidden,
                "W1_norm_lower": self.w1_lower, "W2_norm_lower": self.w2_lower,
                "norm_product_lower": self.product_lower, "norm_condition_fails": self.product_at_least_one,
                "float_det_signs": {"positive": self.positive, "negative": self.negative},
                "certified_sign_flip": None if self.flip is None else self.flip.to_json()}


def layer_norm_collision(d: int) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...]]:
    """x = e_1 and x' = e_1 + 1: different points whose centred vectors x − mean(x) agree
    exactly, so every layer norm (any gains, biases, ε > 0) maps them to one output."""
    x = tuple(Fraction(1 if i == 0 else 0) for i in range(d))
    x2 = tuple(v + 1 for v in x)
    centre = lambda v: tuple(a - sum(v) / d for a in v)  # noqa: E731
    if centre(x) != centre(x2) or x == x2:
        raise ArithmeticError("layer norm collision failed: exact arithmetic bug")
    return x, x2


def audit_layer(w: BertLayerWeights, samples: int, seed: int, bits: int = BITS) -> LayerAudit:
    block = GeluBlock.of_arrays(w.W1, w.b1, w.W2)
    l1, l2 = spectral_lower(w.W1, bits), spectral_lower(w.W2, bits)
    product = l1 * l2
    per_scale = max(1, samples // 5)
    signs = float_det_signs(block, sample_points(block.d, seed, per_scale))
    flip = find_sign_flip(block, seed, bits, per_scale) if (signs > 0).any() and (signs < 0).any() else None
    return LayerAudit(w.index, block.d, w.W1.shape[0], float(l1.lower()), float(l2.lower()),
                      float(product.lower()), bool(product >= 1), int((signs > 0).sum()), int((signs < 0).sum()), flip)


def hypotheses(audits: list[LayerAudit], activation: str, bidirectional: bool = True) -> list[tuple[str, str, str]]:
    """(hypothesis, holds, evidence) rows of the report's table."""
    flips = [a.index for a in audits if a.flip is not None]
    fails = [a.index for a in audits if a.product_at_least_one]
    return [
        ("ReLU activation (THEORY §0)", "no" if activation != "relu" else "yes", f"activation is {activation}"),
        ("no layer norm", "no", "post-layer-norm; LN(x) = LN(x + t·1) exactly (collision e₁, e₁ + 1)"),
        ("‖W2‖‖W1‖ < 1 (§7 sufficient condition)", "no" if fails else "not refuted",
         f"certified lower bound ≥ 1 on layers {fails}" if fails else "lower bounds < 1"),
        ("feed-forward blocks injective (Theorems 1–3)", "no" if flips else "unknown",
         f"certified opposite det J signs on layers {flips}" if flips else "no certified sign flip found"),
        ("causal attention (Theorem 5, L ≥ 2)", "no" if bidirectional else "yes",
         "BERT attention is bidirectional: Theorem 5 says nothing"),
    ]


def report(audits: list[LayerAudit], activation: str, source: str) -> tuple[str, dict[str, bytes]]:
    """Markdown report and its plots (PNG bytes by file name)."""
    lines = [f"# Checkpoint audit: {source}", "",
             "Weights are the exact binary values of the file. Certified numbers are arb balls; "
             "float64 sign counts are proposals only.", "",
             "| hypothesis | holds | evidence |", "|---|---|---|"]
    lines += [f"| {h} | {ok} | {ev} |" for h, ok, ev in hypotheses(audits, activation)]
    lines += ["", "| layer | width × hidden | ‖W1‖ ≥ | ‖W2‖ ≥ | product ≥ | det J > 0 / < 0 (floats) | certified flip |",
              "|---|---|---|---|---|---|---|"]
    for a in audits:
        flip = "no" if a.flip is None else f"yes: {a.flip.dets[0]} / {a.flip.dets[1]}"
        lines.append(f"| {a.index} | {a.width} × {a.hidden} | {a.w1_lower:.4g} | {a.w2_lower:.4g} | "
                     f"{a.product_lower:.4g} | {a.positive} / {a.negative} | {flip} |")
    lines += ["", "Left out: the attention shift of THEORY §1 per layer (not measured).",
              "", "![norms](audit_norms.png)", "", "![signs](audit_det_signs.png)", ""]
    xs = [a.index for a in audits]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(xs, [a.product_lower for a in audits])
    ax.axhline(1, color="k", ls="--")
    ax.set_xlabel("layer")
    ax.set_ylabel("certified ‖W2‖‖W1‖ lower bound")
    norms = png(fig)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([x - 0.2 for x in xs], [a.positive for a in audits], width=0.4, label="det J > 0")
    ax.bar([x + 0.2 for x in xs], [a.negative for a in audits], width=0.4, label="det J < 0")
    ax.set_xlabel("layer")
    ax.set_ylabel("sampled points (float64 signs)")
    ax.legend()
    signs = png(fig)
    return "\n".join(lines), {"audit_norms.png": norms, "audit_det_signs.png": signs}
