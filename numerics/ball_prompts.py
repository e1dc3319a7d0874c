"""Prompt tuning with every prompt token kept in the ball ‖p‖ ≤ ρ (THEORY §8's admissible prompts).

The trainable tensor U is unconstrained; the twin sees the radial projection
P = U · min(1, ρ/‖U‖) token by token, the nearest point of the ball. So every loss the
optimizer evaluates, records and reports is the loss of an admissible prompt, and the
shared training loop (Adam, then L-BFGS) is used unchanged. Reported prompts are projected.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import torch
from torch import Tensor

from promptlimits.constructions.spec import Dataset, Model
from promptlimits.numerics.batch import ExampleBatch
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.optim import optimize
from promptlimits.numerics.prompt_tuning import PromptObjective, _check, _results, initial_prompts, run_grid
from promptlimits.numerics.results import RunResult
from promptlimits.numerics.twin import Twin


def project(U: Tensor, radius: float) -> Tensor:
    """Each token (last axis) scaled into the ball of ``radius``: U·min(1, ρ/‖U‖)."""
    norms = U.norm(dim=-1, keepdim=True)
    return U * torch.clamp(radius / norms.clamp_min(torch.finfo(U.dtype).tiny), max=1.0)


class BallPromptObjective(PromptObjective):
    """PromptObjective whose runs see the projected prompt P = project(U, ρ)."""

    def __init__(self, twin: Twin, batch: ExampleBatch, lengths: Sequence[int], init: Tensor,
                 dtype: torch.dtype, radius: float) -> None:
        super().__init__(twin, batch, lengths, init, dtype)
        self.radius = radius

    def losses(self, subset: Optional[Tensor] = None) -> Tensor:
        raw = self.prompt
        self.prompt = project(raw, self.radius)
        try:
            return super().losses(subset)
        finally:
            self.prompt = raw


def tune_prompts_in_ball(model: Model, datasets: Sequence[Dataset], lengths: Sequence[int], restarts: int,
                         config: TrainConfig, radius: float) -> list[RunResult]:
    """Batched prompt tuning over prompts with tokens ‖p‖ ≤ radius; best admissible prompt per
    (dataset, length), its loss, and the loss curve (every entry an admissible prompt's loss)."""
    _check(model, datasets, lengths, restarts)
    runs = run_grid(datasets, lengths, restarts)
    init = initial_prompts(runs, model.d, config)
    start = time.perf_counter()
    twin = Twin(model, dtype=torch.float64, device=config.device)
    batch = ExampleBatch.build(datasets, [k for k, _, _ in runs], torch.float64, config.device)
    objective = BallPromptObjective(twin, batch, [m for _, m, _ in runs], init, config.dtype, radius)
    trace = optimize(objective, config, desc=f"prompt tuning in a ball ({len(runs)} runs)")
    seconds = time.perf_counter() - start
    M = init.shape[1]
    flat = project(trace.best_flat.reshape(len(runs), M, model.d), radius).reshape(len(runs), -1)
    curves = [trace.curve[:, r] for r in range(len(runs))]
    return _results(runs, lengths, len(datasets), trace.best, flat, curves, [trace.steps] * len(runs),
                    restarts, seconds, model.d)
