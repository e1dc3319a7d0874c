"""The result of one training configuration (a prompt length or a LoRA rank, best over restarts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class RunResult:
    """Best dataset loss Σ_examples Σ_constrained ‖τ(X)_i − y_i‖² over ``restarts`` random starts.

    ``curve`` is the loss of the best restart after each optimisation step (Adam steps,
    then L-BFGS iterations); ``steps`` counts both. ``seconds`` is the wall time of the
    computation that produced this result (shared by every configuration trained in
    the same batch). ``best_prompt`` is the best prompt found (prompt tuning only).
    """

    method: str
    best_loss: float
    steps: int
    restarts: int
    seconds: float
    curve: tuple[float, ...]
    prompt_length: Optional[int] = None
    rank: Optional[int] = None
    dataset: int = 0
    best_prompt: Optional[tuple[tuple[float, ...], ...]] = None

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md ``train`` run entry."""
        out: dict[str, Any] = {"method": self.method}
        if self.prompt_length is not None:
            out["prompt_length"] = self.prompt_length
        if self.rank is not None:
            out["rank"] = self.rank
        out.update(best_loss=self.best_loss, steps=self.steps, restarts=self.restarts, seconds=self.seconds)
        return out
