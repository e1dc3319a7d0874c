"""E1 — THEORY §4's dataset: no prompt of any length memorizes it; LoRA and fine-tuning do.

Built-in instances: random one-layer, one-head models (d = 4 quick; up to 64 in the full
run, drawn by ``constructions.random_models`` above d = 8) with feed-forward product ≤ 1/2, so f is injective and Theorem 3's floor applies.
For each: the exact verdict (Theorem 1 forces a = −3/(2B) < 0), the certified loss floor,
batched prompt tuning for several prompt lengths (which must never go below the floor),
LoRA of rank 2 on W2 and full fine-tuning (which reach about 0).
E5 reads the same runs: the ratio of the best prompt-tuning loss to the floor.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from fractions import Fraction

import matplotlib.pyplot as plt
import torch

from promptlimits.constructions import strategies
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.impossible import impossible_dataset
from promptlimits.constructions.lora import lora_update
from promptlimits.constructions.random_models import random_layer_model
from promptlimits.constructions.seeded import derive, draw_seeded
from promptlimits.constructions.spec import Dataset, Model
from promptlimits.numerics.catalogue import ClaimRow, ExperimentResult, Settings, png
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.finetune import fine_tune
from promptlimits.numerics.lora import train_lora
from promptlimits.numerics.prompt_tuning import tune_prompts
from promptlimits.numerics.results import RunResult
from promptlimits.proofs.certify import bounds_certificate, invertible_certificate, memorizable_certificate
from promptlimits.proofs.loss_floor import loss_floor
from promptlimits.proofs.memorization import decide

KEY = "E1"
TITLE = "THEORY §4's impossible dataset: prompts plateau above the certified floor, LoRA and fine-tuning fit it"

#: Relative slack for comparing a float64 loss with a rigorous floor (rounding of the twin).
ROUNDING = 1e-9


@dataclass(frozen=True)
class Instance:
    """One built-in model with its §4 dataset and everything measured on it."""

    d: int
    model: Model
    dataset: Dataset
    verdict: str
    lora_rank: int  # rank of the exact update ΔW2 = E·H⁺ (constructions.lora)
    floor: Fraction
    prompt_runs: tuple[RunResult, ...]
    lora: RunResult
    full: RunResult

    @property
    def best_prompt_loss(self) -> float:
        return min(r.best_loss for r in self.prompt_runs)


def sizes(settings: Settings) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(dimensions of the built-in models, prompt lengths tried)."""
    if settings.quick:
        return (4, 4), (1, 2, 4, 8)
    return (4, 4, 8, 8, 16, 16, 32, 64), (1, 2, 4, 8, 16, 32)


@functools.lru_cache(maxsize=4)
def instances(settings: Settings) -> tuple[tuple[Instance, ...], int]:
    """Build and measure the E1 instances, and count the layers skipped because their hidden
    features are dependent (no update of W2 alone fits then). Cached: E5 reads the same runs.
    """
    dims, lengths = sizes(settings)
    config = TrainConfig(steps=300 if settings.quick else 1500, polish=50 if settings.quick else 300,
                         lr=0.1, seed=settings.seed, device=torch.device(settings.device),
                         progress=settings.progress)
    out, skipped = [], 0
    for k, d in enumerate(dims):
        for attempt in itertools.count():
            seed = derive(settings.seed, KEY, k, d, attempt)
            model = (random_layer_model(d, d, seed) if d > 8 else
                     draw_seeded(strategies.models(d=d, heads=1, hidden=d, lipschitz=Fraction(1, 2), positional=False,
                                                   attention="bidirectional"), seed))
            dataset = impossible_dataset(model).dataset
            try:
                update = lora_update(model, dataset)
                break
            except InputError:
                skipped += 1
        verdict = decide(model, dataset).verdict
        floor = loss_floor(model, dataset).value
        runs = tuple(tune_prompts(model, [dataset], lengths, restarts=2, config=config))
        lora = train_lora(model, dataset, [2], ["W2"], restarts=1, config=config)[0]
        full = fine_tune(model, dataset, restarts=1, config=config)
        out.append(Instance(d, model, dataset, verdict, update.rank, floor, runs, lora, full))
    return tuple(out), skipped


def run(settings: Settings) -> ExperimentResult:
    insts, skipped = instances(settings)
    _, lengths = sizes(settings)
    n = len(insts)
    not_mem = sum(i.verdict == "not-memorizable" for i in insts)
    above = all(r.best_loss >= float(i.floor) * (1 - ROUNDING) for i in insts for r in i.prompt_runs)
    positive_floor = all(i.floor > 0 for i in insts)
    lora_fit = max(i.lora.best_loss for i in insts)
    full_fit = max(i.full.best_loss for i in insts)
    rows = (
        ClaimRow(KEY, "no prompt of any length memorizes the §4 dataset (Theorem 2)",
                 f"not-memorizable on {not_mem}/{n} random layers; certified floor > 0 on "
                 f"{sum(i.floor > 0 for i in insts)}/{n}",
                 f"prompt tuning, m = {lengths[0]}…{lengths[-1]}: best loss never below the floor "
                 f"({'yes' if above else 'NO'}); min ratio best/floor "
                 f"{min(i.best_prompt_loss / float(i.floor) for i in insts if i.floor > 0):.3g}",
                 not_mem == n and above and positive_floor,
                 {"d": [i.d for i in insts], "floor": [str(i.floor) for i in insts],
                  "best_prompt_loss": [[r.best_loss for r in i.prompt_runs] for i in insts]}),
        ClaimRow(KEY, "LoRA of rank 2 on W2 memorizes the same dataset",
                 f"exact ΔW2 = E·H⁺ of rank ≤ {max(i.lora_rank for i in insts)} verified on {n}/{n} "
                 f"({skipped} drawn layers with dependent hidden features skipped)",
                 f"worst best loss {lora_fit:.1e}", lora_fit < 1e-8, {"lora_loss": [i.lora.best_loss for i in insts]}),
        ClaimRow(KEY, "full fine-tuning memorizes the same dataset",
                 "weights are unconstrained", f"worst best loss {full_fit:.1e}", full_fit < 1e-8,
                 {"full_loss": [i.full.best_loss for i in insts]}),
    )
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for j, inst in enumerate(insts):
        line = ax.plot(lengths, [r.best_loss for r in inst.prompt_runs], "o-", ms=3, label=f"d={inst.d} #{j}")
        ax.axhline(float(inst.floor), color=line[0].get_color(), ls="--", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("prompt length m")
    ax.set_ylabel("best prompt-tuning loss (dashed: certified floor)")
    ax.legend(fontsize=7, ncol=2)
    certs = {}
    if settings.certificates:
        for j, inst in enumerate(insts):
            certs[f"e1_{j}_d{inst.d}_memorizable.json"] = memorizable_certificate(inst.model, inst.dataset)
            certs[f"e1_{j}_d{inst.d}_bounds.json"] = bounds_certificate(inst.model, inst.dataset)
            certs[f"e1_{j}_d{inst.d}_invertible.json"] = invertible_certificate(inst.model)
    return ExperimentResult(KEY, TITLE, rows, {"e1_prompt_vs_floor.png": png(fig)},
                            {name: c for name, c in certs.items() if c is not None})
