"""Training the weights of a twin: full fine-tuning, and the objective LoRA reuses.

The loss is the dataset's Σ_examples Σ_constrained ‖τ(X)_i − y_i‖² without a prompt; the
trainable tensors are whatever parameters of the module have ``requires_grad`` set (all
weights for full fine-tuning, the adapters for LoRA). One run per objective.
"""

from __future__ import annotations

import time
from typing import Optional

import torch
from torch import Tensor, nn

from promptlimits.constructions.spec import Dataset, Model, check_compatible
from promptlimits.constructions.errors import InputError
from promptlimits.numerics.batch import ExampleBatch
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.optim import Trace, optimize
from promptlimits.numerics.precision import cast_module, float64_state
from promptlimits.numerics.results import RunResult
from promptlimits.numerics.twin import Twin

#: Restart k > 0 of full fine-tuning starts from the weights plus N(0, σ²) noise, σ = PERTURB·init_scale.
PERTURB = 0.01


class WeightObjective:
    """One run: the dataset loss of ``module`` (a Twin, possibly wrapped by PEFT) in its trainable weights.

    ``module`` and ``batch`` come in float64; training starts in ``dtype``.
    """

    runs = 1

    def __init__(self, module: nn.Module, batch: ExampleBatch, dtype: torch.dtype) -> None:
        self.module = module
        self.exact_state = float64_state(module)
        self.exact_batch = batch
        self.to_dtype(dtype)

    def parameters(self) -> list[Tensor]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def losses(self, subset: Optional[Tensor] = None) -> Tensor:
        batch = self.batch
        return batch.losses(self.module(batch.X, key_mask=batch.input_mask, positions=batch.positions))

    def to_dtype(self, dtype: torch.dtype) -> None:
        cast_module(self.module, dtype, self.exact_state)
        self.batch = self.exact_batch.to(dtype)


def best_of(method: str, traces: list[Trace], seconds: float, **size: int) -> RunResult:
    """The best restart among ``traces`` (one run each) as a RunResult."""
    k = min(range(len(traces)), key=lambda i: float(traces[i].best[0]))
    t = traces[k]
    return RunResult(method=method, best_loss=float(t.best[0]), steps=t.steps, restarts=len(traces),
                     seconds=seconds, curve=tuple(float(v) for v in t.curve[:, 0]), **size)


def fine_tune(model: Model, dataset: Dataset, restarts: int, config: TrainConfig) -> RunResult:
    """Full fine-tuning of every weight and bias; restart 0 starts from the model's weights."""
    check_compatible(model, dataset)
    if restarts < 1:
        raise InputError("restarts must be at least 1")
    start = time.perf_counter()
    traces = []
    for k in range(restarts):
        twin = Twin(model, dtype=torch.float64, device=config.device)
        if k:
            gen = torch.Generator().manual_seed(config.seed * 7919 + k)
            with torch.no_grad():
                for p in twin.parameters():
                    noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                    p.add_((PERTURB * config.init_scale * noise).to(p.device))
        twin.requires_grad_(True)
        batch = ExampleBatch.build([dataset], [0], torch.float64, config.device)
        traces.append(optimize(WeightObjective(twin, batch, config.dtype), config, desc=f"full fine-tuning {k + 1}/{restarts}"))
    return best_of("full", traces, time.perf_counter() - start)
