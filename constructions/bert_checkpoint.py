"""BERT-family feed-forward blocks and layer norms read from a Hugging Face .safetensors file.

Only what the checkpoint audit needs: per encoder layer ℓ the block
x ↦ x + W2 GELU(W1 x + b1) + b2 (``intermediate.dense`` and ``output.dense``), optionally
sliced to the first ``width`` coordinates and ``hidden`` units (a small, fast instance of
the same weights), and the two layer norms' parameters. Weights are float32/float64 arrays
widened to float64, i.e. exactly the binary rationals stored in the file. Never pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from promptlimits.constructions.errors import InputError

PREFIX = "encoder.layer.{}."


@dataclass(frozen=True)
class BertLayerWeights:
    """One encoder layer's feed-forward weights (float64, exact) and its configuration."""

    index: int
    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    activation: str
    heads: int


def _tensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:  # pragma: no cover - safetensors is a dependency of the formats module
        raise InputError("reading .safetensors needs the 'safetensors' package") from None
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise InputError(f"{path}: not a readable .safetensors file: {err}") from None


def locate(checkpoint: str | Path) -> tuple[Path, Optional[dict]]:
    """(weights file, config dict or None) for a directory holding model.safetensors or a file."""
    p = Path(checkpoint)
    if p.is_dir():
        weights, config = p / "model.safetensors", p / "config.json"
    else:
        weights, config = p, p.parent / "config.json"
    if not weights.is_file():
        raise InputError(f"{checkpoint}: no model.safetensors found")
    cfg = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else None
    return weights, cfg


def load_layers(checkpoint: str | Path, width: Optional[int] = None, hidden: Optional[int] = None,
                layers: Optional[list[int]] = None) -> list[BertLayerWeights]:
    """The feed-forward weights of the chosen encoder layers (all by default), sliced to
    W1[:hidden, :width], b1[:hidden], W2[:width, :hidden], b2[:width] when asked."""
    weights, cfg = locate(checkpoint)
    t = _tensors(weights)
    count = 0
    while f"{PREFIX.format(count)}intermediate.dense.weight" in t:
        count += 1
    if count == 0:
        raise InputError(f"{weights}: no BERT encoder layers (encoder.layer.N.intermediate.dense.weight)")
    chosen = list(range(count)) if layers is None else layers
    for i in chosen:
        if not 0 <= i < count:
            raise InputError(f"--layers: layer {i} out of range (the checkpoint has {count})")
    activation = (cfg or {}).get("hidden_act", "gelu")
    heads = int((cfg or {}).get("num_attention_heads", 0))
    out = []
    for i in chosen:
        p = PREFIX.format(i)
        W1 = t[p + "intermediate.dense.weight"].astype(np.float64)
        b1 = t[p + "intermediate.dense.bias"].astype(np.float64)
        W2 = t[p + "output.dense.weight"].astype(np.float64)
        b2 = t[p + "output.dense.bias"].astype(np.float64)
        w = W1.shape[1] if width is None else min(width, W1.shape[1])
        r = W1.shape[0] if hidden is None else min(hidden, W1.shape[0])
        out.append(BertLayerWeights(i, W1[:r, :w], b1[:r], W2[:w, :r], b2[:w], activation, heads))
    return out
