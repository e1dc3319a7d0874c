"""E4 — Lemma 1's invariance: a prompt never changes the relative attention among inputs.

Exact side: for every head and input query, the prompt-free quantities B and B·u computed
from the prompted sequence equal those of the unprompted sequence, and λ v + (1 − λ) u
equals the directly evaluated head output (exp-polynomial identities, checked exactly).
Numeric side: the torch twin's first-layer attention, renormalised over the input keys,
is the same with and without the prompt up to rounding; the absolute attention mass on the
inputs (1 − λ) moves, which is all a prompt can do.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from promptlimits.constructions import strategies
from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.evaluate import context, head_output_exact, tokens_with_positions
from promptlimits.constructions.seeded import derive, draw_seeded
from promptlimits.constructions.spec import Model, Vector
from promptlimits.numerics.catalogue import ClaimRow, ExperimentResult, Settings, png
from promptlimits.numerics.twin import Twin, tensor

KEY = "E4"
TITLE = "Lemma 1: prompts leave relative attention among input tokens unchanged"


def first_layer_attention(twin: Twin, X: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """Softmax weights of every first-layer head, [H, B, T, T] over [P, X] (T = m + n)."""
    seq = torch.cat([prompt, X + (twin.positional[: X.shape[1]] if twin.positional is not None else 0)], dim=1)
    idx = torch.arange(seq.shape[1])
    hidden = (idx[None, :] > idx[:, None]) if twin.causal else torch.zeros(len(idx), len(idx), dtype=torch.bool)
    out = []
    for head in twin.layers[0].heads:
        scores = twin.score_scale * torch.matmul(head.W_q(seq), head.W_k(seq).transpose(-1, -2))
        out.append(torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1))
    return torch.stack(out)


def relative_input_attention(twin: Twin, X: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """Attention of input queries over input keys, renormalised to sum 1: [H, B, n, n]."""
    m = prompt.shape[1]
    weights = first_layer_attention(twin, X, prompt)[:, :, m:, m:]
    return weights / weights.sum(dim=-1, keepdim=True)


def exact_invariance(model: Model, prompt: tuple[Vector, ...], X: tuple[Vector, ...]) -> bool:
    """Lemma 1 exactly: B, B·u unchanged by the prompt; λv + (1−λ)u equals the head output."""
    xs = tokens_with_positions(model, X)
    seq = tuple(prompt) + xs
    m = len(prompt)
    for h, head in enumerate(model.layers[0].heads):
        for i in range(len(X)):
            with_prompt = decompose(model, prompt, X, i, head=h)
            without = decompose(model, (), X, i, head=h)
            if with_prompt.B != without.B or with_prompt.Bu != without.Bu:
                return False
            direct = head_output_exact(model, head, seq, m + i, context(model, m, i, len(xs)))
            if any(a != b for a, b in zip(with_prompt.head_output().entries(), direct.entries())):
                return False
    return True


def run(settings: Settings) -> ExperimentResult:
    count = 4 if settings.quick else 24
    lengths = (1, 2, 4) if settings.quick else (1, 2, 4, 8, 16)
    exact_ok = True
    max_shift = 0.0
    mass_rows: dict[int, list[float]] = {m: [] for m in lengths}
    for k in range(count):
        model = draw_seeded(strategies.models(d=3, heads=2, positional=False), derive(settings.seed, KEY, k))
        X = draw_seeded(strategies.prompts(3, 3), derive(settings.seed, KEY, k, "X"))
        twin = Twin(model)
        xt = tensor(X)[None]
        base = relative_input_attention(twin, xt, xt.new_zeros((1, 0, 3)))
        for m in lengths:
            P = draw_seeded(strategies.prompts(3, m), derive(settings.seed, KEY, k, "P", m))
            if m <= 2:
                exact_ok &= exact_invariance(model, P, X)
            pt = tensor(P)[None]
            shifted = relative_input_attention(twin, xt, pt)
            max_shift = max(max_shift, float((shifted - base).abs().max()))
            weights = first_layer_attention(twin, xt, pt)[:, 0, m:, m:]
            mass_rows[m].append(float(weights.sum(dim=-1).mean()))
    agree = exact_ok and max_shift < 1e-12
    row = ClaimRow(
        experiment=KEY,
        claim="a prompt leaves the relative attention among input tokens unchanged (Lemma 1)",
        exact="proved: B, u unchanged and λv + (1−λ)u = head output, exactly" if exact_ok else "VIOLATED",
        numerics=f"max change of renormalised attention {max_shift:.2e} over {count} models × {len(lengths)} prompt lengths",
        agree=agree,
        details={"models": count, "prompt_lengths": list(lengths), "max_relative_shift": max_shift,
                 "exact_identity_holds": exact_ok,
                 "mean_input_mass": {str(m): sum(v) / len(v) for m, v in mass_rows.items()}},
    )
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(list(lengths), [sum(mass_rows[m]) / len(mass_rows[m]) for m in lengths], "o-",
            label="attention mass on inputs (1 − λ): moves")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prompt length m")
    ax.set_ylabel("mean over heads and queries")
    ax.set_title(f"relative attention among inputs: max change {max_shift:.1e}")
    ax.legend(fontsize=8)
    return ExperimentResult(KEY, TITLE, (row,), {"e4_attention_mass.png": png(fig)})

