"""BERT-family encoders from Hugging Face .safetensors files as promptlimits models.

Claim built. For each encoder layer ℓ the model computes, exactly as BERT does (post-norm,
no dropout, no padding mask), with H heads of size s = D/H:

    q = W_q x + b_q,  k = W_k c + b_k,  v = W_v c + b_v   (head h: rows h·s … (h+1)·s − 1)
    a = LN1(x + Σ_h W_o[:, head h] Σ_c softmax_c(qᵀk / √s) v_c + b_o)
    y = LN2(a + W2 GELU(W1 a + b1) + b2)

with κ = 1/√s kept exact (a rational when s is a square, else the Surd √(1/s)), ε the
config's ``layer_norm_eps`` as the exact decimal written, and every weight the exact
binary rational the file stores. The model's tokens are the encoder's inputs: BERT's
embedding sum and its layer norm (where the positions enter) are not part of the model,
so ``positional`` is null. ``width`` / ``hidden`` / ``layers`` take a slice: the first
``width`` coordinates of every token (all heads, full head size), the first ``hidden``
feed-forward units, the chosen layers in order. A slice is a smaller model built from the
same weights, not the checkpoint's function.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import numpy as np

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.numbers import parse_exact
from promptlimits.constructions.spec import Head, Layer, Model
from promptlimits.constructions.surd import sqrt_scale

#: The exact (erf) GELU is the model format's; tanh approximations are refused.
ACTIVATIONS = {"gelu": "gelu", "relu": "relu"}
_PROBE = "encoder.layer.0.attention.self.query.weight"


def locate(checkpoint: str | Path) -> tuple[Path, Optional[dict]]:
    """(weights file, config dict or None) for a directory holding model.safetensors or a file."""
    p = Path(checkpoint)
    weights, config = (p / "model.safetensors", p / "config.json") if p.is_dir() else (p, p.parent / "config.json")
    if not weights.is_file():
        raise InputError(f"{checkpoint}: no model.safetensors found")
    try:
        cfg = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{config}: not a readable JSON config: {err}") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise InputError(f"{config}: expected a JSON object")
    return weights, cfg


def _tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file (never pickle); InputError when unreadable."""
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise InputError(f"{path}: not a readable .safetensors file: {err}") from None


def _prefix(names: set[str], weights: Path) -> str:
    """The key prefix of the encoder ("" for BertModel, "bert." for task models)."""
    for name in names:
        if name.endswith(_PROBE):
            return name[: -len(_PROBE)]
    raise InputError(f"{weights}: no BERT encoder (no key ending in {_PROBE!r})")


def _exact(arr: np.ndarray) -> Any:
    """Exact rationals of a float array (rows of tuples for a matrix)."""
    values = arr.astype(np.float64).tolist()
    if arr.ndim == 1:
        return tuple(map(Fraction, values))
    return tuple(tuple(map(Fraction, row)) for row in values)


def parse_layers(text: Optional[str]) -> Optional[list[int]]:
    """``--layers 0,2`` as a list of indices (None: every layer)."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--layers: expected comma-separated integers, got {text!r}") from None


def import_bert(checkpoint: str | Path, width: Optional[int] = None, hidden: Optional[int] = None,
                layers: Optional[list[int]] = None) -> Model:
    """The BERT encoder of ``checkpoint`` (a directory with model.safetensors and config.json,
    or the file) as a :class:`Model`, sliced when asked (see the module docstring)."""
    weights, cfg = locate(checkpoint)
    if cfg is None:
        raise InputError(f"{weights}: config.json not found beside it (heads, activation and ε are read from it)")
    t = _tensors(weights)
    prefix = _prefix(set(t), weights)
    count = 0
    while f"{prefix}encoder.layer.{count}.attention.self.query.weight" in t:
        count += 1
    chosen = list(range(count)) if layers is None else layers
    for i in chosen:
        if not 0 <= i < count:
            raise InputError(f"--layers: layer {i} out of range (the checkpoint has {count})")
    act = cfg.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise InputError(f"config.json: hidden_act {act!r} is not supported (exact 'gelu' or 'relu' only)")
    D = t[f"{prefix}{_PROBE}"].shape[1]
    H = cfg.get("num_attention_heads")
    if not isinstance(H, int) or H < 1 or D % H:
        raise InputError(f"config.json: num_attention_heads {H!r} does not divide the width {D}")
    s = D // H
    eps = parse_exact(str(cfg.get("layer_norm_eps", "1e-12")), "config.json.layer_norm_eps")
    w = D if width is None else min(width, D)
    built = []
    for i in chosen:
        def arr(name: str) -> np.ndarray:
            key = f"{prefix}encoder.layer.{i}.{name}"
            if key not in t:
                raise InputError(f"{weights}: missing tensor {key!r}")
            return t[key]

        Wq, Wk, Wv, Wo = (arr(f"attention.{n}.weight") for n in ("self.query", "self.key", "self.value", "output.dense"))
        bq, bk, bv = (arr(f"attention.self.{n}.bias") for n in ("query", "key", "value"))
        heads = []
        for h in range(H):
            rows = slice(h * s, (h + 1) * s)
            heads.append(Head(W_q=_exact(Wq[rows, :w]), W_k=_exact(Wk[rows, :w]), W_v=_exact(Wv[rows, :w]),
                              W_o=_exact(Wo[:w, rows]), b_q=_exact(bq[rows]), b_k=_exact(bk[rows]),
                              b_v=_exact(bv[rows])))
        W1 = arr("intermediate.dense.weight")
        r = W1.shape[0] if hidden is None else min(hidden, W1.shape[0])
        built.append(Layer(
            heads=tuple(heads),
            W1=_exact(W1[:r, :w]), b1=_exact(arr("intermediate.dense.bias")[:r]),
            W2=_exact(arr("output.dense.weight")[:w, :r]), b2=_exact(arr("output.dense.bias")[:w]),
            activation=ACTIVATIONS[act], norm="layernorm", ln_eps=eps,
            ln1_gain=_exact(arr("attention.output.LayerNorm.weight")[:w]),
            ln1_bias=_exact(arr("attention.output.LayerNorm.bias")[:w]),
            ln2_gain=_exact(arr("output.LayerNorm.weight")[:w]),
            ln2_bias=_exact(arr("output.LayerNorm.bias")[:w]),
            b_o=_exact(arr("attention.output.dense.bias")[:w]),
        ))
    return Model(d=w, layers=tuple(built), attention="bidirectional", score_scale=sqrt_scale(Fraction(1, s)),
                 positional=None, from_floats=True)
