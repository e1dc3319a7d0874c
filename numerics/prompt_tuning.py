"""Prompt tuning, batched: every restart × prompt length × dataset in one computation.

All runs share one trainable tensor P [R, M, d] (M = the longest prompt). Run r with
length m_r uses P[r, :m_r]; its slots m_r … M−1 are masked out of every softmax, so they
change no output and get zero gradient, and each row of the batch (a run's example)
computes exactly τ_{P_r}(X) of THEORY §0. The loss of run r is its dataset's
Σ_examples Σ_constrained ‖τ_{P_r}(X)_i − y_i‖², the quantity THEORY §5 bounds below.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import torch
from torch import Tensor

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.spec import Dataset, Model, check_compatible
from promptlimits.numerics.batch import ExampleBatch
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.optim import Trace, optimize
from promptlimits.numerics.results import RunResult
from promptlimits.numerics.twin import Twin


class PromptObjective:
    """R independent prompt-tuning runs on one frozen twin; run r has prompt length ``lengths[r]``."""

    def __init__(self, twin: Twin, batch: ExampleBatch, lengths: Sequence[int], init: Tensor) -> None:
        self.twin = twin
        self.batch = batch
        self.runs = batch.runs
        device = batch.X.device
        self.prompt = init.detach().to(device=device, dtype=batch.X.dtype).clone().requires_grad_(True)
        slots = torch.arange(init.shape[1], device=device)
        self.prompt_mask = slots[None, :] < torch.tensor(list(lengths), device=device)[:, None]
        self.padded = not bool(self.prompt_mask.all()) or batch.input_mask is not None

    def parameters(self) -> list[Tensor]:
        return [self.prompt]

    def losses(self) -> Tensor:
        rows = self.batch.run
        key_mask = None
        if self.padded:
            inputs = self.batch.input_mask
            if inputs is None:
                inputs = torch.ones(self.batch.X.shape[:2], dtype=torch.bool, device=self.batch.X.device)
            key_mask = torch.cat([self.prompt_mask[rows], inputs], dim=1)
        return self.batch.losses(self.twin(self.batch.X, self.prompt[rows], key_mask))

    def to_dtype(self, dtype: torch.dtype) -> None:
        self.twin.to(dtype)
        self.batch = self.batch.to(dtype)
        self.prompt = self.prompt.detach().to(dtype).requires_grad_(True)


def run_grid(datasets: Sequence[Dataset], lengths: Sequence[int], restarts: int) -> list[tuple[int, int, int]]:
    """The runs (dataset index, prompt length, restart), dataset-major."""
    return [(k, m, j) for k in range(len(datasets)) for m in lengths for j in range(restarts)]


def initial_prompts(runs: Sequence[tuple[int, int, int]], d: int, config: TrainConfig) -> Tensor:
    """Seeded N(0, init_scale²) prompts [R, M, d] in float64; slots past a run's length are 0."""
    M = max(m for _, m, _ in runs)
    gen = torch.Generator().manual_seed(config.seed)
    init = config.init_scale * torch.randn(len(runs), M, d, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([m for _, m, _ in runs])
    return init * (torch.arange(M)[None, :] < lengths[:, None])[:, :, None]


def train_runs(model: Model, datasets: Sequence[Dataset], runs: Sequence[tuple[int, int, int]],
               init: Tensor, config: TrainConfig) -> Trace:
    """Train every run of ``runs`` together from ``init`` [R, M, d]; one optimizer for all."""
    twin = Twin(model, dtype=config.dtype, device=config.device)
    batch = ExampleBatch.build(datasets, [k for k, _, _ in runs], config.dtype, config.device)
    objective = PromptObjective(twin, batch, [m for _, m, _ in runs], init)
    return optimize(objective, config, desc=f"prompt tuning ({len(runs)} runs)")


def _check(model: Model, datasets: Sequence[Dataset], lengths: Sequence[int], restarts: int) -> None:
    if not datasets:
        raise InputError("prompt tuning needs at least one dataset")
    for k, ds in enumerate(datasets):
        check_compatible(model, ds, where=f"dataset {k}")
    if not lengths or min(lengths) < 1:
        raise InputError("prompt lengths must be positive integers")
    if restarts < 1:
        raise InputError("restarts must be at least 1")


def _results(runs: Sequence[tuple[int, int, int]], lengths: Sequence[int], n_datasets: int, best: Tensor,
             best_flat: Tensor, curves: list[Tensor], steps: list[int], restarts: int, seconds: float,
             d: int) -> list[RunResult]:
    """Best restart per (dataset, length), in the order of ``run_grid``."""
    out = []
    for k in range(n_datasets):
        for m in lengths:
            idx = [r for r, (kk, mm, _) in enumerate(runs) if kk == k and mm == m]
            r = min(idx, key=lambda i: float(best[i]))
            prompt = best_flat[r].reshape(-1, d)[:m]
            out.append(RunResult(
                method="prompt", best_loss=float(best[r]), steps=steps[r], restarts=restarts,
                seconds=seconds, curve=tuple(float(v) for v in curves[r]), prompt_length=m, dataset=k,
                best_prompt=tuple(tuple(float(v) for v in row) for row in prompt),
            ))
    return out


def tune_prompts(model: Model, datasets: Sequence[Dataset], lengths: Sequence[int], restarts: int,
                 config: TrainConfig, init: Optional[Tensor] = None) -> list[RunResult]:
    """Batched prompt tuning: one result per (dataset, prompt length), best over restarts."""
    _check(model, datasets, lengths, restarts)
    runs = run_grid(datasets, lengths, restarts)
    init = initial_prompts(runs, model.d, config) if init is None else init
    start = time.perf_counter()
    trace = train_runs(model, datasets, runs, init, config)
    seconds = time.perf_counter() - start
    curves = [trace.curve[:, r] for r in range(len(runs))]
    return _results(runs, lengths, len(datasets), trace.best, trace.best_flat, curves,
                    [trace.steps] * len(runs), restarts, seconds, model.d)


def tune_prompts_one_by_one(model: Model, datasets: Sequence[Dataset], lengths: Sequence[int], restarts: int,
                            config: TrainConfig, init: Optional[Tensor] = None) -> list[RunResult]:
    """The naive baseline: the same runs from the same starts, one optimizer per run, in a loop."""
    _check(model, datasets, lengths, restarts)
    runs = run_grid(datasets, lengths, restarts)
    init = initial_prompts(runs, model.d, config) if init is None else init
    M = init.shape[1]
    start = time.perf_counter()
    best, flats, curves, steps = [], [], [], []
    for r, (k, m, _) in enumerate(runs):
        trace = train_runs(model, [datasets[k]], [(0, m, 0)], init[r:r + 1, :m], config)
        best.append(trace.best[0])
        flats.append(torch.cat([trace.best_flat[0], torch.zeros((M - m) * model.d, dtype=torch.float64)]))
        curves.append(trace.curve[:, 0])
        steps.append(trace.steps)
    seconds = time.perf_counter() - start
    return _results(runs, lengths, len(datasets), torch.stack(best), torch.stack(flats), curves, steps,
                    restarts, seconds, model.d)
