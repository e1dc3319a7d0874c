"""E6 — several layers (THEORY §8): inside the certified radii prompts cannot merge two inputs;
the conditions matter.

Instances (``constructions.layered_models``): two causal two-layer models in R², inputs
(1/4, 0) and (−1/4, 0) with one shared target y.
- Certified: the sorting model with R = ρ = 1/4 and the folding model with λ = 1/4: Theorem 5
  holds (every sublayer bound < 1), the pair is not memorizable by prompts within ρ, with the
  exact floor Π(1 − L_s)²·‖Δx‖²/2. Prompt tuning with tokens projected into the ball never
  goes below it.
- Large ρ: the sorting model with ρ = 64: the attention bounds exceed 1 and prompt tuning
  (within ρ = 64) drives the loss to about 0 by sorting the inputs onto one state.
- Lip ≥ 1: the folding model with λ = 1 (last feed-forward Lipschitz bound 2), ρ = 1/4:
  prompt tuning fits the pair (loss about 0).
The shared target y is the output of a hand-chosen admissible prompt of the failing
configuration (rounded to 12 decimals), so a near-zero loss is reachable there.
"""

from __future__ import annotations

from fractions import Fraction

import matplotlib.pyplot as plt
import torch

from promptlimits.constructions.layered_models import folding_model, mirrored_pair, sorting_model
from promptlimits.constructions.spec import Dataset, Model
from promptlimits.numerics.ball_prompts import tune_prompts_in_ball
from promptlimits.numerics.catalogue import ClaimRow, ExperimentResult, Settings, png
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.twin import Twin
from promptlimits.proofs.multilayer_injectivity import LayersDecision, decide, layers_certificate
from promptlimits.proofs.same_output_floor import same_output_floor

KEY = "E6"
TITLE = "several layers: certified injectivity within radii (loss floor holds), and fits when the conditions fail"

R = Fraction(1, 4)
SMALL_RHO = Fraction(1, 4)
LARGE_RHO = Fraction(64)
#: A loss below this counts as "fits" (the prompt-free losses are of order 1).
FITS = 1e-8


def shared_target(model: Model, prompt: list[list[float]]) -> Dataset:
    """The mirrored pair whose target is the mean output of ``prompt`` on both inputs (12 decimals)."""
    twin = Twin(model)
    X = torch.tensor([[[float(R), 0.0]], [[-float(R), 0.0]]], dtype=torch.float64)
    P = torch.tensor([prompt, prompt], dtype=torch.float64)
    y = twin(X, P).mean(0)[0]
    return mirrored_pair(R, [Fraction(round(float(v) * 10**12), 10**12) for v in y])


def _tune(model: Model, dataset: Dataset, rho: Fraction, settings: Settings) -> float:
    config = TrainConfig(steps=300 if settings.quick else 1200, polish=50 if settings.quick else 200, lr=0.1,
                         seed=settings.seed, device=torch.device(settings.device), progress=settings.progress)
    runs = tune_prompts_in_ball(model, [dataset], (1, 2) if settings.quick else (1, 2, 4),
                                restarts=4 if settings.quick else 8, config=config, radius=float(rho))
    return min(r.best_loss for r in runs)


def _constants(dec: LayersDecision) -> list[float]:
    return [float(x) for x in dec.sublayer_constants()]


def run(settings: Settings) -> ExperimentResult:
    sorting, folding, folded = sorting_model(), folding_model(Fraction(1)), folding_model(Fraction(1, 4))
    sort_data = shared_target(sorting, [[-0.5, -64.0], [0.5, 64.0]])
    fold_data = shared_target(folding, [[0.0, 0.25]])
    certs: dict[str, dict] = {}
    certified = []
    for name, model, data in (("sorting", sorting, sort_data), ("folding λ=1/4", folded, fold_data)):
        dec = decide(model, R, SMALL_RHO)
        floor = same_output_floor(model, data, dec)
        best = _tune(model, data, SMALL_RHO, settings)
        certified.append({"model": name, "verdict": dec.verdict, "constants": _constants(dec),
                          "product": float(dec.product) if dec.product is not None else None,
                          "floor": float(floor.value), "floor_exact": str(floor.value), "best_loss": best})
        if settings.certificates and floor.value > 0:
            certs[f"e6_{name.split()[0]}_not_memorizable.json"] = layers_certificate(model, dec, data, floor)
    exact_a = all(c["verdict"] == "injective" and c["floor"] > 0 for c in certified)
    # a numerical agreement check (the verdict itself is exact): float losses against the exact floor
    above = all(c["best_loss"] >= c["floor"] for c in certified)
    row_a = ClaimRow(
        experiment=KEY,
        claim="Theorem 5 (causal, L = 2, R = ρ = 1/4): same-output pairs are not memorizable within ρ; "
              "projected prompt tuning stays above the certified floor",
        exact="; ".join(f"{c['model']}: {c['verdict']}, Π(1 − L_s) ≥ {c['product']:.4g}, floor {c['floor']:.4g}"
                        for c in certified),
        numerics="; ".join(f"{c['model']}: best loss {c['best_loss']:.4g} ({c['best_loss'] / c['floor']:.3g}× the floor)"
                           for c in certified),
        agree=exact_a and above,
        details={"certified": certified},
    )
    large = decide(sorting, R, LARGE_RHO)
    large_best = _tune(sorting, sort_data, LARGE_RHO, settings)
    row_b = ClaimRow(
        experiment=KEY,
        claim="the radius matters: with ρ = 64 the attention bounds exceed 1 and prompts sort both inputs onto one output",
        exact=f"{large.verdict}: {'; '.join(large.failures)}",
        numerics=f"prompt tuning within ρ = 64 reaches loss {large_best:.2e}",
        agree=large.verdict == "unknown" and bool(large.failures) and large_best < FITS,
        details={"constants": _constants(large), "best_loss": large_best},
    )
    lip = decide(folding, R, SMALL_RHO)
    lip_best = _tune(folding, fold_data, SMALL_RHO, settings)
    row_c = ClaimRow(
        experiment=KEY,
        claim="Lip < 1 matters: a last feed-forward block with Lipschitz bound 2 folds both inputs onto one output",
        exact=f"{lip.verdict}: {'; '.join(lip.failures)}",
        numerics=f"prompt tuning within ρ = 1/4 reaches loss {lip_best:.2e}",
        agree=lip.verdict == "unknown" and bool(lip.failures) and lip_best < FITS,
        details={"constants": _constants(lip), "best_loss": lip_best},
    )
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    labels = [c["model"] for c in certified] + ["sorting ρ=64", "folding λ=1"]
    losses = [c["best_loss"] for c in certified] + [large_best, lip_best]
    floors = [c["floor"] for c in certified] + [None, None]
    xs = range(len(labels))
    ax.bar(xs, [max(v, 1e-32) for v in losses], color=["tab:blue", "tab:blue", "tab:red", "tab:red"])
    for x, f in zip(xs, floors):
        if f is not None:
            ax.hlines(f, x - 0.4, x + 0.4, colors="k", linestyles="--")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("best prompt-tuning loss (dashed: certified floor)")
    ax.set_title("Theorem 5: floors hold inside the radii, fits outside")
    return ExperimentResult(KEY, TITLE, (row_a, row_b, row_c), {"e6_layers.png": png(fig)}, certs)
