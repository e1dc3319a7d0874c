"""Training settings shared by prompt tuning, LoRA and full fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from promptlimits.constructions.errors import InputError

DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; ``cuda`` without a GPU is an InputError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise InputError(f"--device: {name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise InputError(f"--dtype: {name!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


@dataclass(frozen=True)
class TrainConfig:
    """Adam for ``steps`` steps (linear warm-up over ``warmup`` of them, then cosine decay
    from ``lr`` to ``lr * final_lr_ratio``), then up to ``polish`` L-BFGS iterations in
    float64 with ``history`` correction pairs. ``seed`` fixes every random draw;
    ``progress`` None means "a bar when stderr is a terminal". ``threads`` (CPU intra-op
    threads while training; None keeps torch's setting) defaults to 1: the batched runs
    are small, and on busy machines extra threads only contend (measured 2–6× slower).
    """

    steps: int = 500
    polish: int = 100
    lr: float = 0.05
    warmup: float = 0.05
    final_lr_ratio: float = 0.01
    history: int = 10
    seed: int = 0
    init_scale: float = 1.0
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float64
    progress: Optional[bool] = None
    threads: Optional[int] = 1

    def __post_init__(self) -> None:
        if self.steps < 0 or self.polish < 0:
            raise InputError("steps and polish iterations must be non-negative")
        if self.steps + self.polish == 0:
            raise InputError("at least one Adam step or L-BFGS iteration is needed")
        if not self.lr > 0:
            raise InputError("the learning rate must be positive")
        if self.threads is not None and self.threads < 1:
            raise InputError("the number of CPU threads must be at least 1")
        if self.history < 1:
            raise InputError("the L-BFGS history must hold at least one pair")
