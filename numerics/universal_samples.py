"""Measured error of THEORY §9's g on random inputs (float64 torch twin), beside the certificate.

Samples X uniformly in [0,1]^{d×n}, runs the twin on [P_f, X] (tokens [x_i; 0]), reads the
first d coordinates and compares them with f(X) when f is known (built-in targets), else
with the value at the sample's cell centre f(c̄). Samples inside a band are reported apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import torch

from promptlimits.constructions.spec import Model, Vector
from promptlimits.constructions.universal import UniversalParams
from promptlimits.constructions.universal_prompt import GridTarget
from promptlimits.numerics.twin import Twin, tensor


@dataclass(frozen=True)
class SampleErrors:
    """Max over samples of max_i ‖g([P,X])_i − ref_i‖, outside and inside the bands; ``reference`` is
    "f(X)" or "f(centre)"."""

    samples: int
    outside: int
    max_outside: float
    max_inside: float
    mean_outside: float
    reference: str
    seconds: float


def sample_errors(model: Model, prompt: Sequence[Vector], p: UniversalParams, target: GridTarget,
                  count: int = 2000, seed: int = 0, batch: int = 500) -> SampleErrors:
    start = time.perf_counter()
    twin = Twin(model)
    P = tensor(prompt)
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(count, p.n, p.d, generator=gen, dtype=torch.float64)
    j = torch.clamp(torch.floor(X * p.K), max=p.K - 1)
    inside = ((X - j / p.K) < float(p.eta)) & (j > 0)
    in_band = inside.flatten(1).any(1)
    values = torch.tensor([[[float(v) for v in tok] for tok in val] for val in target.values], dtype=torch.float64)
    flat = j.long().flatten(1)
    cell = torch.zeros(count, dtype=torch.long)
    for col in range(flat.shape[1]):
        cell = cell * p.K + flat[:, col]
    if target.exact is not None:
        ref = torch.tensor([[[float(v) for v in tok] for tok in target.exact(
            tuple(tuple(Fraction(float(v)) for v in tok) for tok in x))] for x in X.tolist()], dtype=torch.float64)
        reference = "f(X)"
    else:
        ref = values[cell]
        reference = "f(centre)"
    errs = []
    with torch.no_grad():
        for s in range(0, count, batch):
            xb = X[s:s + batch]
            tokens = torch.zeros(xb.shape[0], p.n, model.d, dtype=torch.float64)
            tokens[:, :, :p.d] = xb
            out = twin(tokens, P[None].expand(xb.shape[0], *P.shape))[:, :, :p.d]
            errs.append((out - ref[s:s + batch]).norm(dim=-1).max(dim=-1).values)
    err = torch.cat(errs)
    good = err[~in_band]
    return SampleErrors(count, int(good.numel()), float(good.max()) if good.numel() else 0.0,
                        float(err[in_band].max()) if bool(in_band.any()) else 0.0,
                        float(good.mean()) if good.numel() else 0.0, reference, time.perf_counter() - start)
