"""Prompt tuning, batched: every restart × prompt length × dataset in one computation.

All runs share one trainable tensor P [R, M, d] (M = the longest prompt) and one
optimizer. Run r with length m_r uses P[r, :m_r]; its slots past m_r get zero gradient.
Each step evaluates the runs grouped by prompt length (one forward per distinct length,
so no prompt slot is padded); inputs of different lengths are padded and masked out of
the softmax. Every row of the batch (a run's example) computes exactly τ_{P_r}(X) of
THEORY §0, and the loss of run r is its dataset's Σ_examples Σ_constrained
‖τ_{P_r}(X)_i − y_i‖², the quantity THEORY §5 bounds below.
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
from promptlimits.numerics.precision import cast_module, float64_state
from promptlimits.numerics.results import RunResult
from promptlimits.numerics.twin import Twin


class PromptObjective:
    """R independent prompt-tuning runs on one frozen twin; run r has prompt length ``lengths[r]``.

    ``twin`` and ``batch`` come in float64; training starts in ``dtype``.
    """

    def __init__(self, twin: Twin, batch: ExampleBatch, lengths: Sequence[int], init: Tensor,
                 dtype: torch.dtype) -> None:
        self.twin = twin
        self.exact_state = float64_state(twin)
        self.runs = batch.runs
        self.prompt = init.detach().to(device=batch.X.device, dtype=dtype).clone().requires_grad_(True)
        of_row = torch.tensor(list(lengths), device=batch.X.device)[batch.run]
        self.exact_groups = [(m, batch.take(of_row == m)) for m in sorted(set(lengths))]
        self.to_dtype(dtype)

    def parameters(self) -> list[Tensor]:
        return [self.prompt]

    def losses(self, subset: Optional[Tensor] = None) -> Tensor:
        total = self.prompt.new_zeros(self.runs)
        for m, batch in self.groups:
            if subset is not None:
                batch = batch.take(subset[batch.run])
                if batch.X.shape[0] == 0:
                    continue
            key_mask = None
            if batch.input_mask is not None:
                real = torch.ones(batch.X.shape[0], m, dtype=torch.bool, device=batch.X.device)
                key_mask = torch.cat([real, batch.input_mask], dim=1)
            out = self.twin(batch.X, self.prompt[batch.run, :m], key_mask, batch.positions)
            total = total + batch.losses(out)
        return total

    def to_dtype(self, dtype: torch.dtype) -> None:
        cast_module(self.twin, dtype, self.exact_state)
        self.groups = [(m, batch.to(dtype)) for m, batch in self.exact_groups]
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
    twin = Twin(model, dtype=torch.float64, device=config.device)
    batch = ExampleBatch.build(datasets, [k for k, _, _ in runs], torch.float64, config.device)
    objective = PromptObjective(twin, batch, [m for _, m, _ in runs], init, config.dtype)
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
