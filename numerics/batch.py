"""Datasets as padded tensors, and the dataset loss Σ_examples Σ_constrained ‖out − y‖² per run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from promptlimits.constructions.spec import Dataset


@dataclass(frozen=True)
class ExampleBatch:
    """Rows = (run, example) pairs; inputs padded to the longest sequence.

    X, Y [rows, n, d] (Y is 0 where unconstrained), ``weight`` [rows, n] is 1 at the
    constrained positions, ``input_mask`` [rows, n] is True at real positions (None when
    nothing is padded), ``run`` [rows] is the run each row belongs to.
    """

    X: Tensor
    Y: Tensor
    weight: Tensor
    input_mask: Optional[Tensor]
    run: Tensor
    runs: int

    @classmethod
    def build(cls, datasets: Sequence[Dataset], run_dataset: Sequence[int],
              dtype: torch.dtype, device: torch.device) -> "ExampleBatch":
        """One row per example of ``datasets[run_dataset[r]]`` for every run r."""
        d = datasets[0].d
        n = max(len(ex.input) for ds in datasets for ex in ds.examples)
        X, Y, W, mask, run = [], [], [], [], []
        for r, k in enumerate(run_dataset):
            for ex in datasets[k].examples:
                pad = n - len(ex.input)
                X.append([[float(v) for v in tok] for tok in ex.input] + [[0.0] * d] * pad)
                Y.append([[float(v) for v in y] if y is not None else [0.0] * d for y in ex.target] + [[0.0] * d] * pad)
                W.append([1.0 if y is not None else 0.0 for y in ex.target] + [0.0] * pad)
                mask.append([True] * len(ex.input) + [False] * pad)
                run.append(r)
        as_t = lambda v: torch.tensor(v, dtype=torch.float64).to(device=device, dtype=dtype)  # noqa: E731
        m = torch.tensor(mask, device=device)
        return cls(as_t(X), as_t(Y), as_t(W), None if bool(m.all()) else m,
                   torch.tensor(run, device=device), len(run_dataset))

    def to(self, dtype: torch.dtype) -> "ExampleBatch":
        return ExampleBatch(self.X.to(dtype), self.Y.to(dtype), self.weight.to(dtype),
                            self.input_mask, self.run, self.runs)

    def losses(self, out: Tensor) -> Tensor:
        """Per-run dataset loss [runs] of the outputs ``out`` [rows, n, d]."""
        row = (((out - self.Y) ** 2).sum(-1) * self.weight).sum(-1)
        return torch.zeros(self.runs, dtype=row.dtype, device=row.device).index_add(0, self.run, row)
