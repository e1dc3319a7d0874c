"""Lower-precision training phases without losing the exact float64 model.

The Adam phase may run in float32 or bfloat16; the L-BFGS polish runs in float64. Casting
a float32 twin back up would polish a model whose frozen weights (and data) were rounded
to float32. So the float64 values of every frozen tensor are kept and restored when the
module returns to float64; trainable tensors keep their (trained) values.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def float64_state(module: nn.Module) -> dict[str, Tensor]:
    """float64 copies of the module's buffers and non-trainable parameters."""
    out = {}
    for name, t in module.state_dict(keep_vars=True).items():
        if not (isinstance(t, nn.Parameter) and t.requires_grad):
            out[name] = t.detach().to(torch.float64).clone()
    return out


def cast_module(module: nn.Module, dtype: torch.dtype, exact: dict[str, Tensor]) -> None:
    """Move ``module`` to ``dtype``; back in float64 its frozen tensors get their exact values."""
    module.to(dtype)
    if dtype == torch.float64:
        module.load_state_dict(exact, strict=False)
