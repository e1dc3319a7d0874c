"""LoRA through PEFT on the twin: ΔW = B A of a chosen rank on chosen weight matrices.

Targets are the twin's module names: ``W2`` (and ``W1``) in every layer, ``W_o``/``W_v``
(the value map V = W_o W_v) and ``W_q``/``W_k`` (the score matrix M = κ W_kᵀ W_q) in every
head. PEFT's initialisation (A random, B = 0) makes the first iterate the model itself;
the scaling lora_alpha / r is 1. THEORY §6: rank k on W2 realises any targets of k
examples whose hidden features are independent.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.spec import Dataset, Model, check_compatible
from promptlimits.numerics.batch import ExampleBatch
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.finetune import WeightObjective, best_of
from promptlimits.numerics.optim import optimize
from promptlimits.numerics.results import RunResult
from promptlimits.numerics.twin import Twin

TARGETS = ("W2", "W1", "W_o", "W_v", "W_q", "W_k")


def check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    bad = [t for t in targets if t not in TARGETS]
    if not targets or bad:
        raise InputError(f"LoRA targets must be a non-empty subset of {', '.join(TARGETS)}; got {', '.join(targets) or 'none'}")
    return tuple(dict.fromkeys(targets))


def lora_twin(model: Model, rank: int, targets: Sequence[str], seed: int, config: TrainConfig) -> torch.nn.Module:
    """A fresh float64 twin with LoRA adapters of ``rank`` on ``targets``; adapter init seeded by ``seed``."""
    from peft import LoraConfig, get_peft_model  # imported on first use: it pulls in transformers (seconds)

    twin = Twin(model, dtype=torch.float64, device=config.device)
    lora = LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets), lora_dropout=0.0, bias="none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(twin, lora)


def train_lora(model: Model, dataset: Dataset, ranks: Sequence[int], targets: Sequence[str], restarts: int,
               config: TrainConfig) -> list[RunResult]:
    """One result per rank, best over ``restarts`` adapter initialisations."""
    check_compatible(model, dataset)
    targets = check_targets(targets)
    if not ranks or min(ranks) < 1:
        raise InputError("LoRA ranks must be positive integers")
    if restarts < 1:
        raise InputError("restarts must be at least 1")
    out = []
    for rank in ranks:
        start = time.perf_counter()
        traces = []
        for k in range(restarts):
            module = lora_twin(model, rank, targets, config.seed * 7919 + 101 * rank + k, config)
            batch = ExampleBatch.build([dataset], [0], torch.float64, config.device)
            traces.append(optimize(WeightObjective(module, batch, config.dtype), config, desc=f"LoRA rank {rank} {k + 1}/{restarts}"))
        out.append(best_of("lora", traces, time.perf_counter() - start, rank=rank))
    return out
