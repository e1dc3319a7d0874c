"""Audit of a model's GELU feed-forward blocks against the paper's hypotheses (issue 6, part 3, reduced).

Per audited layer of a promptlimits Model (a model file, or a BERT checkpoint imported by
``constructions.bert_import``, optionally sliced): certified lower bounds q1 ≤ ‖W1‖₂,
q2 ≤ ‖W2‖₂ from float-proposed integer witnesses with exact squared norms
(``proofs.norm_lower_bound``; q1·q2 ≥ 1 means THEORY §7's sufficient condition cannot
hold); float64 signs of the Jacobian determinant of x ↦ x + W2 GELU(W1 x + b1) + b2 at
seeded random points (a histogram, proposals only) and, when both signs occur, a pair of
points whose signs are certified in arb ball arithmetic (``proofs.gelu_orientation``),
which proves that block NOT injective. The layer norm's non-injectivity is exact:
LN(x + t·1) = LN(x) for every t (the mean subtraction removes the shift, whatever the
gains, biases and ε), shown on a rational pair. The attention shift of THEORY §1 per
layer (``numerics.attention_shift``): 0 at layer 1 by Lemma 1, certified > 0 at deeper
layers where a prompt moves it. ``audit_evidence`` is the evidence of an ``audit``
certificate (re-verified by ``proofs.check_audit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.spec import Model
from promptlimits.numerics.attention_shift import ShiftStudy
from promptlimits.numerics.catalogue import png
from promptlimits.proofs.relative_attention import rounded
from promptlimits.proofs.gelu_orientation import BITS, GeluBlock, SignFlip, find_sign_flip, float_det_signs, sample_points
from promptlimits.proofs.norm_lower_bound import certified_lower, integer_witness, squared_norms


@dataclass(frozen=True)
class NormWitness:
    """‖W‖₂ ≥ ‖Wv‖/‖v‖ ≥ ``lower``: the integer vector v and the exact squared norms."""

    v: tuple[int, ...]
    v_norm2: int
    wv_norm2: Fraction
    lower: Fraction

    @classmethod
    def of(cls, W: Sequence[Sequence[Fraction]], proposal: np.ndarray) -> "NormWitness":
        v = integer_witness(proposal)
        v2, wv2 = squared_norms(W, v)
        return cls(v, v2, wv2, certified_lower(v2, wv2))

    def to_json(self) -> dict:
        return {"v": [str(x) for x in self.v], "v_norm2": str(self.v_norm2),
                "Wv_norm2": format_exact(self.wv_norm2), "lower": format_exact(self.lower)}


@dataclass(frozen=True)
class LayerAudit:
    index: int
    width: int
    hidden: int
    w1: NormWitness
    w2: NormWitness
    positive: int
    negative: int
    flip: Optional[SignFlip]

    @property
    def product(self) -> Fraction:
        return self.w1.lower * self.w2.lower

    @property
    def product_at_least_one(self) -> bool:
        """Exact: the certified lower bound of ‖W2‖‖W1‖ is ≥ 1."""
        return self.product >= 1

    def to_json(self) -> dict:
        return {"layer": self.index, "width": self.width, "hidden": self.hidden,
                "W1_norm_lower": float(self.w1.lower), "W2_norm_lower": float(self.w2.lower),
                "norm_product_lower": float(self.product), "norm_condition_fails": self.product_at_least_one,
                "float_det_signs": {"positive": self.positive, "negative": self.negative},
                "certified_sign_flip": None if self.flip is None else self.flip.to_json()}

    def evidence(self) -> dict:
        """The layer's entry in an ``audit`` certificate (exact strings; see proofs.check_audit)."""
        return {"layer": self.index, "verdict": "unknown" if self.flip is None else "not-injective",
                "W1": self.w1.to_json(), "W2": self.w2.to_json(),
                "norm_product_lower": format_exact(self.product), "norm_condition_fails": self.product_at_least_one,
                "sign_flip": None if self.flip is None else self.flip.to_json()}


def layer_norm_collision(d: int) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...]]:
    """x = e_1 and x' = e_1 + 1: different points whose centred vectors x − mean(x) agree
    exactly, so every layer norm (any gains, biases, ε > 0) maps them to one output."""
    x = tuple(Fraction(1 if i == 0 else 0) for i in range(d))
    x2 = tuple(v + 1 for v in x)
    centre = lambda v: tuple(a - sum(v) / d for a in v)  # noqa: E731
    if centre(x) != centre(x2) or x == x2:
        raise ArithmeticError("layer norm collision failed: exact arithmetic bug")
    return x, x2


def audit_block(index: int, block: GeluBlock, W1: Sequence[Sequence[Fraction]], W2: Sequence[Sequence[Fraction]],
                samples: int, seed: int, bits: int = BITS) -> LayerAudit:
    """Audit one feed-forward block (``W1``, ``W2``: the exact values of ``block``'s weights)."""
    per_scale = max(1, samples // 5)
    signs = float_det_signs(block, sample_points(block.d, seed, per_scale))
    flip = find_sign_flip(block, seed, bits, per_scale) if (signs > 0).any() and (signs < 0).any() else None
    return LayerAudit(index, block.d, block.W1.shape[0], NormWitness.of(W1, block.W1), NormWitness.of(W2, block.W2),
                      int((signs > 0).sum()), int((signs < 0).sum()), flip)


def gelu_blocks(model: Model, layers: Optional[list[int]]) -> list[tuple[int, GeluBlock]]:
    """The chosen layers' feed-forward blocks (all by default); InputError unless each is a
    binary64 GELU layer of the model."""
    chosen = list(range(len(model.layers))) if layers is None else layers
    out = []
    for i in chosen:
        if not 0 <= i < len(model.layers):
            raise InputError(f"--layers: layer {i} out of range (the model has {len(model.layers)})")
        try:
            out.append((i, GeluBlock.of_layer(model.layers[i])))
        except (ValueError, OverflowError) as err:
            raise InputError(f"model.layers[{i}]: {err}") from None
    return out


def audit_model(model: Model, layers: Optional[list[int]], samples: int, seed: int) -> list[LayerAudit]:
    """Audit the chosen layers (all by default) of a model; each must be a binary64 GELU layer."""
    return [audit_block(i, block, model.layers[i].W1, model.layers[i].W2, samples, seed)
            for i, block in gelu_blocks(model, layers)]


def shift_evidence(study: ShiftStudy) -> dict:
    """The ``attention_shift`` entry of an audit certificate (enclosures rounded outward)."""
    layers = [(s.layer, *rounded(s.lower, s.upper)) for s in study.layers]
    tokens = lambda ts: [[format_exact(v) for v in t] for t in ts]  # noqa: E731
    return {"input": tokens(study.X), "prompt": tokens(study.prompt), "bits": study.bits,
            "first_layer_exact": study.first_layer_exact,
            "layers": [{"layer": l, "lower": format_exact(lo), "upper": format_exact(hi)} for l, lo, hi in layers],
            "moved_layers": [l for l, lo, _ in layers if lo > 0]}


def audit_evidence(model: Model, audits: list[LayerAudit], shifts: Optional[ShiftStudy] = None) -> dict:
    """The evidence of an ``audit`` certificate about ``model`` (layout: proofs.check_audit)."""
    normed = [i for i, layer in enumerate(model.layers) if layer.norm == "layernorm"]
    collision = None
    if normed:
        x, y = layer_norm_collision(model.d)
        collision = {"layers": normed, "x": [format_exact(v) for v in x], "y": [format_exact(v) for v in y]}
    return {"layers": [a.evidence() for a in audits],
            "not_injective_layers": [a.index for a in audits if a.flip is not None],
            "layer_norm_collision": collision,
            "attention_shift": None if shifts is None else shift_evidence(shifts)}


def _shift_row(shifts: ShiftStudy) -> tuple[str, str, str]:
    moved = [s.layer for s in shifts.layers if s.certified_moved]
    first = shifts.layers[0]
    exact = "decided exactly (exp-polynomial identity)" if shifts.first_layer_exact else "not decided"
    evidence = (f"layer 0: 0, {exact}, as Lemma 1 says (ball enclosure ≤ {float(first.upper):.1e}); "
                + (f"a {len(shifts.prompt)}-token prompt provably moves it at layers {moved} "
                   f"(up to {max(s.max for s in shifts.layers):.3g} in total variation)" if moved
                   else "no deeper layer certified to move"))
    holds = ("layer 0 only" if moved else "yes") if shifts.first_layer_exact else "unknown"
    return ("prompts leave relative attention unchanged (THEORY §1)", holds, evidence)


def hypotheses(audits: list[LayerAudit], activation: str, bidirectional: bool = True,
               layer_norm: bool = True, shifts: Optional[ShiftStudy] = None) -> list[tuple[str, str, str]]:
    """(hypothesis, holds, evidence) rows of the report's table."""
    flips = [a.index for a in audits if a.flip is not None]
    fails = [a.index for a in audits if a.product_at_least_one]
    return ([_shift_row(shifts)] if shifts is not None else []) + [
        ("ReLU activation (THEORY §0)", "no" if activation != "relu" else "yes", f"activation is {activation}"),
        ("no layer norm", "no", "post-layer-norm; LN(x) = LN(x + t·1) exactly (collision e₁, e₁ + 1)")
        if layer_norm else ("no layer norm", "yes", "no layer norm in the model"),
        ("‖W2‖‖W1‖ < 1 (§7 sufficient condition)", "no" if fails else "not refuted",
         f"certified lower bound ≥ 1 on layers {fails}" if fails else "lower bounds < 1"),
        ("feed-forward blocks injective (Theorems 1–3)", "no" if flips else "unknown",
         f"certified opposite det J signs on layers {flips}" if flips else "no certified sign flip found"),
        ("causal attention (Theorem 5, L ≥ 2)", "no" if bidirectional else "yes",
         "attention is bidirectional: Theorem 5 says nothing"),
    ]


def report(audits: list[LayerAudit], activation: str, source: str, bidirectional: bool = True,
           layer_norm: bool = True, shifts: Optional[ShiftStudy] = None) -> tuple[str, dict[str, bytes]]:
    """Markdown report and its plots (PNG bytes by file name)."""
    lines = [f"# Checkpoint audit: {source}", "",
             "Weights are the exact binary values of the file. Certified numbers are arb balls; "
             "float64 sign counts are proposals only.", "",
             "| hypothesis | holds | evidence |", "|---|---|---|"]
    lines += [f"| {h} | {ok} | {ev} |" for h, ok, ev in hypotheses(audits, activation, bidirectional, layer_norm, shifts)]
    lines += ["", "| layer | width × hidden | ‖W1‖ ≥ | ‖W2‖ ≥ | product ≥ | det J > 0 / < 0 (floats) | certified flip |",
              "|---|---|---|---|---|---|---|"]
    for a in audits:
        flip = "no" if a.flip is None else "yes: " + " / ".join(
            f"{r['mantissa']}·2^{r['exponent']}" for r in a.flip.dets)
        lines.append(f"| {a.index} | {a.width} × {a.hidden} | {float(a.w1.lower):.4g} | {float(a.w2.lower):.4g} | "
                     f"{float(a.product):.4g} | {a.positive} / {a.negative} | {flip} |")
    plots: dict[str, bytes] = {}
    if shifts is not None:
        lines += ["", f"Attention shift S_ℓ (total variation of the input tokens' renormalised attention, max over "
                  f"heads and queries) for {len(shifts.prompt)}-token Gaussian prompts on {len(shifts.X)} Gaussian "
                  "tokens: float64 over the prompts, and a rigorous enclosure on the worst prompt.", "",
                  "| layer | float mean | float max | certified enclosure (worst prompt) | moved (proven) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {s.layer} | {s.mean:.3g} | {s.max:.3g} | [{float(s.lower):.6g}, {float(s.upper):.6g}] | "
                  f"{'yes' if s.certified_moved else 'no'} |" for s in shifts.layers]
        plots["audit_attention_shift.png"] = _shift_plot(shifts)
    lines += ["", "![norms](audit_norms.png)", "", "![signs](audit_det_signs.png)", ""]
    if shifts is not None:
        lines += ["![attention shift](audit_attention_shift.png)", ""]
    xs = [a.index for a in audits]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(xs, [float(a.product) for a in audits])
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
    return "\n".join(lines), {"audit_norms.png": norms, "audit_det_signs.png": signs, **plots}


def _shift_plot(shifts: ShiftStudy) -> bytes:
    xs = [s.layer for s in shifts.layers]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([x - 0.2 for x in xs], [s.mean for s in shifts.layers], width=0.4, label="float mean")
    ax.bar([x + 0.2 for x in xs], [s.max for s in shifts.layers], width=0.4, label="float max")
    ax.plot(xs, [float(s.lower) for s in shifts.layers], "kv", label="certified lower (worst prompt)")
    ax.set_xlabel("layer")
    ax.set_ylabel("relative-attention shift (TV)")
    ax.legend(fontsize=7)
    return png(fig)
