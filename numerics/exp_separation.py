"""E3 — THEORY §6's separation families: prompt length against LoRA rank, side by side.

Family L (standard model, N examples): the exact rank certificate says no prompt shorter
than N memorizes the targets, and the explicit prompt of length N drives the loss to 0.
Prompt tuning must fail below N and succeed at N.
Family X (standard model): no prompt of ANY length memorizes (a non-zero component of
z_i − q_i outside col V), while an exact rank-1 update of W2 (d + r parameters) does;
prompt tuning must stay above the certified floor and rank-1 LoRA must reach about 0.
"""

from __future__ import annotations

from fractions import Fraction

import matplotlib.pyplot as plt
import torch

from promptlimits.constructions.separation import Family, epsilon_prompt, standard_family
from promptlimits.numerics.catalogue import ClaimRow, ExperimentResult, Settings, png
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.exp_impossible import ROUNDING
from promptlimits.numerics.lora import train_lora
from promptlimits.numerics.prompt_tuning import tune_prompts
from promptlimits.numerics.twin import Twin, tensor
from promptlimits.proofs.certify import bounds_certificate, memorizable_certificate
from promptlimits.proofs.loss_floor import loss_floor

KEY = "E3"
TITLE = "separation families: prompts need length N (family L) or fail at any length (family X); LoRA fits"

#: A run "succeeds" below this loss and "fails" above FAIL.
SUCCESS, FAIL = 1e-6, 1e-3


def _config(settings: Settings) -> TrainConfig:
    return TrainConfig(steps=400 if settings.quick else 2000, polish=60 if settings.quick else 300, lr=0.1,
                       seed=settings.seed, device=torch.device(settings.device), progress=settings.progress)


def epsilon_loss(fam: Family, K: Fraction) -> float:
    """Loss of family L's explicit length-N prompt at score gap K (float64 twin)."""
    twin = Twin(fam.model)
    prompt = tensor(epsilon_prompt(fam, K))[None]
    loss = 0.0
    for ex in fam.dataset.examples:
        out = twin(tensor(ex.input)[None], prompt)[0, -1]
        loss += float(((out - tensor([ex.target[-1]])[0]) ** 2).sum())
    return loss


def run(settings: Settings) -> ExperimentResult:
    n = 3 if settings.quick else 4
    config = _config(settings)
    fam_l = standard_family("L", 2 * n, n)
    lengths = tuple(range(1, n + 1))
    l_runs = tune_prompts(fam_l.model, [fam_l.dataset], lengths, restarts=3, config=config)
    l_losses = [r.best_loss for r in l_runs]
    eps = [(K, epsilon_loss(fam_l, Fraction(K))) for K in (2, 5, 10, 20)]
    l_lora = train_lora(fam_l.model, fam_l.dataset, [fam_l.lora.rank], ["W2"], restarts=1, config=config)[0]
    d_l, r_l = fam_l.model.d, fam_l.model.layers[0].hidden
    agree_l = (fam_l.prompt_lower_bound == n and all(x > FAIL for x in l_losses[:-1]) and l_losses[-1] < SUCCESS
               and l_lora.best_loss < SUCCESS)
    row_l = ClaimRow(
        KEY, f"family L (N = {n}): prompts shorter than N cannot memorize; length N can (ε); LoRA fits",
        f"min prompt length {fam_l.prompt_lower_bound} (rank certificate); explicit length-{n} prompt loss "
        f"{eps[-1][1]:.1e} at K = {eps[-1][0]}; exact LoRA rank {fam_l.lora.rank}",
        "prompt tuning best loss by m: " + ", ".join(f"m={m}: {x:.1e}" for m, x in zip(lengths, l_losses))
        + f"; LoRA {l_lora.best_loss:.1e}; parameters: prompt {n * d_l}, LoRA {fam_l.lora.rank * (d_l + r_l)}",
        agree_l,
        {"prompt_losses": dict(zip(map(str, lengths), l_losses)), "epsilon_family": eps,
         "lora_loss": l_lora.best_loss, "prompt_parameters": n * d_l,
         "lora_parameters": fam_l.lora.rank * (d_l + r_l)},
    )
    fam_x = standard_family("X", 3, n)
    x_lengths = (1, 2, 4, 8) if settings.quick else (1, 2, 4, 8, 16, 32)
    x_runs = tune_prompts(fam_x.model, [fam_x.dataset], x_lengths, restarts=2, config=config)
    floor = loss_floor(fam_x.model, fam_x.dataset).value
    x_lora = train_lora(fam_x.model, fam_x.dataset, [1], ["W2"], restarts=1, config=config)[0]
    d_x, r_x = fam_x.model.d, fam_x.model.layers[0].hidden
    x_best = [r.best_loss for r in x_runs]
    agree_x = (fam_x.outside is not None and fam_x.lora is not None and fam_x.lora.rank == 1
               and all(x >= float(floor) * (1 - ROUNDING) for x in x_best) and min(x_best) > FAIL
               and x_lora.best_loss < SUCCESS)
    row_x = ClaimRow(
        KEY, f"family X (N = {n}): no prompt of any length memorizes; rank-1 LoRA on W2 does",
        f"not-memorizable (component of z_{fam_x.outside[0] if fam_x.outside else '?'} − q outside col V); "
        f"floor {float(floor):.3g}; exact rank-{fam_x.lora.rank if fam_x.lora else '?'} ΔW2",
        f"prompt tuning m = {x_lengths[0]}…{x_lengths[-1]}: best {min(x_best):.3g} (≥ floor); "
        f"LoRA rank 1: {x_lora.best_loss:.1e}; parameters: prompt ∞, LoRA {d_x + r_x}",
        agree_x,
        {"prompt_losses": dict(zip(map(str, x_lengths), x_best)), "floor": str(floor),
         "lora_loss": x_lora.best_loss, "lora_parameters": d_x + r_x},
    )
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(lengths, l_losses, "o-", label=f"family L (N = {n})")
    ax.plot(x_lengths, x_best, "s-", label="family X")
    ax.axhline(float(floor), color="C1", ls="--", lw=0.8, label="family X certified floor")
    ax.axvline(n, color="C0", ls=":", lw=0.8, label="rank bound N")
    ax.set_yscale("log")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prompt length m")
    ax.set_ylabel("best prompt-tuning loss")
    ax.legend(fontsize=7)
    certs = {}
    if settings.certificates:
        certs = {"e3_family_l_bounds.json": bounds_certificate(fam_l.model, fam_l.dataset),
                 "e3_family_x_memorizable.json": memorizable_certificate(fam_x.model, fam_x.dataset),
                 "e3_family_x_bounds.json": bounds_certificate(fam_x.model, fam_x.dataset)}
    return ExperimentResult(KEY, TITLE, (row_l, row_x), {"e3_separation.png": png(fig)},
                            {name: c for name, c in certs.items() if c is not None})
