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

    X [rows, n, d]; ``positions`` [k] are the input positions constrained in some row;
    Y [rows, k, d] the targets there (0 where a row leaves one free) and ``weight``
    [rows, k] 1 where constrained; ``input_mask`` [rows, n] is True at real positions
    (None when nothing is padded); ``run`` [rows] is the run each row belongs to.
    """

    X: Tensor
    Y: Tensor
    weight: Tensor
    input_mask: Optional[Tensor]
    run: Tensor
    runs: int
    positions: Tensor

    @classmethod
    def build(cls, datasets: Sequence[Dataset], run_dataset: Sequence[int],
              dtype: torch.dtype, device: torch.device) -> "ExampleBatch":
        """One row per example of ``datasets[run_dataset[r]]`` for every run r."""
        d = datasets[0].d
        n = max(len(ex.input) for ds in datasets for ex in ds.examples)
        X, Y, W, mask = [], [], [], []
        for ds in datasets:  # each dataset converted once, then indexed per run
            for ex in ds.examples:
                pad = n - len(ex.input)
                X.append([[float(v) for v in tok] for tok in ex.input] + [[0.0] * d] * pad)
                Y.append([[float(v) for v in y] if y is not None else [0.0] * d for y in ex.target] + [[0.0] * d] * pad)
                W.append([1.0 if y is not None else 0.0 for y in ex.target] + [0.0] * pad)
                mask.append([True] * len(ex.input) + [False] * pad)
        first = [0]
        for ds in datasets:
            first.append(first[-1] + len(ds.examples))
        rows = [i for k in run_dataset for i in range(first[k], first[k + 1])]
        run = [r for r, k in enumerate(run_dataset) for _ in range(len(datasets[k].examples))]
        index = torch.tensor(rows, dtype=torch.long)

        def as_t(v: list) -> Tensor:
            return torch.tensor(v, dtype=torch.float64)[index].to(device=device, dtype=dtype)

        m = torch.tensor(mask)[index].to(device)
        weight = as_t(W)
        positions = torch.nonzero(weight.sum(0) > 0).flatten()
        return cls(as_t(X), as_t(Y)[:, positions], weight[:, positions], None if bool(m.all()) else m,
                   torch.tensor(run, device=device), len(run_dataset), positions)

    def take(self, rows: Tensor) -> "ExampleBatch":
        """The rows selected by ``rows`` (indices or a boolean mask); run indices are kept."""
        mask = None if self.input_mask is None else self.input_mask[rows]
        return ExampleBatch(self.X[rows], self.Y[rows], self.weight[rows], mask, self.run[rows], self.runs,
                            self.positions)

    def to(self, dtype: torch.dtype) -> "ExampleBatch":
        return ExampleBatch(self.X.to(dtype), self.Y.to(dtype), self.weight.to(dtype),
                            self.input_mask, self.run, self.runs, self.positions)

    def losses(self, out: Tensor) -> Tensor:
        """Per-run dataset loss [runs] of the outputs ``out`` [rows, k, d] at ``positions``."""
        row = (((out - self.Y) ** 2).sum(-1) * self.weight).sum(-1)
        return torch.zeros(self.runs, dtype=row.dtype, device=row.device).index_add(0, self.run, row)
