"""The one training loop: Adam with a warm-up + cosine schedule, then batched L-BFGS in float64.

An :class:`Objective` holds R independent runs whose trainable tensors either all have a
leading run dimension R or R == 1; ``losses()`` returns the R run losses. Because the runs
share no parameter, Adam on Σ_r loss_r updates each run exactly as its own Adam would
(Adam is element-wise). L-BFGS is not, so the polishing phase keeps one history and one
Armijo backtracking line search per run, vectorised over runs: run r follows the same
iterates as a single-run L-BFGS on loss_r alone.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Optional, Protocol

import torch
from torch import Tensor
from tqdm import tqdm

from promptlimits.numerics.config import TrainConfig

ARMIJO = 1e-4
MAX_BACKTRACKS = 30
STALL = 1e-14


class Objective(Protocol):
    runs: int

    def parameters(self) -> list[Tensor]:
        """Trainable leaf tensors, each [runs, ...] (or any shape when runs == 1)."""

    def losses(self, subset: Optional[Tensor] = None) -> Tensor:
        """The run losses [runs] at the current parameters (differentiable).

        With a boolean ``subset`` [runs], runs outside it may be skipped (their entry is 0).
        """

    def to_dtype(self, dtype: torch.dtype) -> None:
        """Move every tensor (parameters keep their values) to ``dtype``."""


@dataclass(frozen=True)
class Trace:
    """Per run: the best loss, the flat parameters where it was reached, the loss curve [steps, runs]."""

    best: Tensor
    best_flat: Tensor
    curve: Tensor
    steps: int


def lr_factor(step: int, steps: int, warmup: float, final_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup·steps`` steps, then cosine decay to ``final_ratio``."""
    w = max(1, int(round(warmup * steps)))
    if step < w:
        return (step + 1) / w
    t = (step - w) / max(1, steps - w)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def _flat(params: list[Tensor], runs: int) -> Tensor:
    return torch.cat([p.detach().reshape(runs, -1) for p in params], dim=1)


def _assign(params: list[Tensor], x: Tensor, runs: int) -> None:
    offset = 0
    with torch.no_grad():
        for p in params:
            k = p.numel() // runs
            p.copy_(x[:, offset:offset + k].reshape(p.shape))
            offset += k


def _evaluate(objective: Objective, params: list[Tensor], x: Tensor,
              subset: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """Run losses [R] and their gradients [R, N] at flat parameters x (runs in ``subset`` only)."""
    _assign(params, x, objective.runs)
    for p in params:
        p.grad = None
    losses = objective.losses(subset)
    grads = torch.autograd.grad(losses.sum(), params, allow_unused=True)
    g = torch.cat([
        (gr if gr is not None else torch.zeros_like(p)).reshape(objective.runs, -1)
        for gr, p in zip(grads, params)
    ], dim=1)
    return losses.detach(), g


def _direction(g: Tensor, S: Tensor, Y: Tensor, rho: Tensor) -> Tensor:
    """−H·g by the two-loop recursion, per run; pairs with rho = 0 are empty slots."""
    q = g.clone()
    k = S.shape[1]
    alpha = torch.zeros(g.shape[0], k, dtype=g.dtype, device=g.device)
    for i in range(k - 1, -1, -1):
        alpha[:, i] = rho[:, i] * (S[:, i] * q).sum(1)
        q = q - alpha[:, i:i + 1] * Y[:, i]
    last_sy = (S[:, -1] * Y[:, -1]).sum(1)
    last_yy = (Y[:, -1] * Y[:, -1]).sum(1)
    gamma = torch.where(rho[:, -1] > 0, last_sy / last_yy.clamp_min(torch.finfo(g.dtype).tiny), torch.ones_like(last_sy))
    r = gamma[:, None] * q
    for i in range(k):
        beta = rho[:, i] * (Y[:, i] * r).sum(1)
        r = r + (alpha[:, i] - beta)[:, None] * S[:, i]
    return -r


def _lbfgs(objective: Objective, config: TrainConfig, record, bar) -> int:
    """Batched L-BFGS with per-run Armijo backtracking; returns the iterations performed."""
    params = objective.parameters()
    R = objective.runs
    x = _flat(params, R)
    f, g = _evaluate(objective, params, x)
    N = x.shape[1]
    S = torch.zeros(R, config.history, N, dtype=x.dtype, device=x.device)
    Y = torch.zeros_like(S)
    rho = torch.zeros(R, config.history, dtype=x.dtype, device=x.device)
    active = torch.isfinite(f) & (g.abs().amax(1) > 0)
    done = 0
    for _ in range(config.polish):
        if not bool(active.any()):
            break
        d = _direction(g, S, Y, rho)
        gd = (g * d).sum(1)
        steep = gd >= 0
        d = torch.where(steep[:, None], -g, d)
        gd = torch.where(steep, -(g * g).sum(1), gd)
        fresh = rho[:, -1] == 0
        t = torch.where(fresh, (1.0 / g.abs().sum(1).clamp_min(1e-300)).clamp(max=1.0), torch.ones_like(f))
        t = torch.where(active, t, torch.zeros_like(t))
        accepted = ~active
        x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
        for _ in range(MAX_BACKTRACKS):
            trial = torch.where(accepted[:, None], x_new, x + t[:, None] * d)
            ft, gt = _evaluate(objective, params, trial, ~accepted)
            ok = ~accepted & torch.isfinite(ft) & (ft <= f + ARMIJO * t * gd)
            x_new = torch.where(ok[:, None], trial, x_new)
            f_new = torch.where(ok, ft, f_new)
            g_new = torch.where(ok[:, None], gt, g_new)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            t = torch.where(accepted, t, 0.5 * t)
        moved = accepted & active
        failed = active & ~accepted
        s, y = x_new - x, g_new - g
        sy = (s * y).sum(1)
        push = moved & (sy > 1e-10 * (s * s).sum(1).sqrt() * (y * y).sum(1).sqrt())
        S = torch.where(push[:, None, None], torch.cat([S[:, 1:], s[:, None]], 1), S)
        Y = torch.where(push[:, None, None], torch.cat([Y[:, 1:], y[:, None]], 1), Y)
        rho = torch.where(push[:, None], torch.cat([rho[:, 1:], (1 / sy.clamp_min(1e-300))[:, None]], 1), rho)
        # A failed line search from a quasi-Newton direction restarts from steepest descent;
        # one from steepest descent means the run has converged to rounding.
        # A run also stops once an accepted step no longer lowers its loss beyond rounding.
        stalled = moved & (f - f_new <= STALL * f.abs())
        stop = (failed & fresh) | stalled
        rho = torch.where((failed & ~fresh)[:, None], torch.zeros_like(rho), rho)
        active = active & ~stop & (g_new.abs().amax(1) > 0)
        x, f, g = x_new, f_new, g_new
        _assign(params, x, R)
        record(f, x)
        done += 1
        bar.update(1)
    return done


def optimize(objective: Objective, config: TrainConfig, desc: str = "training") -> Trace:
    """Adam (``config.steps``, scheduled) then L-BFGS polishing in float64 (``config.polish``).

    Records every run's loss before each Adam step and after each L-BFGS iteration, and
    keeps each run's best loss with its parameters. ``config.threads`` applies for the
    duration of the call.
    """
    before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _optimize(objective, config, desc)
    finally:
        torch.set_num_threads(before)


def _optimize(objective: Objective, config: TrainConfig, desc: str) -> Trace:
    R = objective.runs
    curve: list[Tensor] = []
    best = torch.full((R,), math.inf, dtype=torch.float64)
    best_flat = _flat(objective.parameters(), R).to(torch.float64).cpu()

    def record(losses: Tensor, x: Tensor) -> None:
        nonlocal best, best_flat
        values = losses.detach().to(torch.float64).cpu()
        values = torch.where(torch.isfinite(values), values, torch.full_like(values, math.inf))
        curve.append(values)
        better = values < best
        if bool(better.any()):
            best = torch.where(better, values, best)
            best_flat = torch.where(better[:, None], x.detach().to(torch.float64).cpu(), best_flat)

    show = config.progress if config.progress is not None else sys.stderr.isatty()
    total = config.steps + config.polish
    with tqdm(total=total, desc=desc, disable=not show or total < 50, leave=False) as bar:
        if config.steps:
            params = objective.parameters()
            opt = torch.optim.Adam(params, lr=config.lr)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda k: lr_factor(k, config.steps, config.warmup, config.final_lr_ratio))
            for _ in range(config.steps):
                opt.zero_grad(set_to_none=True)
                losses = objective.losses()
                record(losses, _flat(params, R))
                losses.sum().backward()
                opt.step()
                sched.step()
                bar.update(1)
            with torch.no_grad():
                record(objective.losses(), _flat(params, R))
        else:
            with torch.no_grad():
                record(objective.losses(), _flat(objective.parameters(), R))
        done = 0
        if config.polish:
            objective.to_dtype(torch.float64)
            done = _lbfgs(objective, config, record, bar)
    return Trace(best, best_flat, torch.stack(curve), config.steps + done)
