"""The PyTorch twin: the transformer of a :class:`Model` spec as an ``nn.Module``.

It computes THEORY §0 in floating point, batched: the prompt P is prepended, the whole
stack is applied to [P, X] (prompt states pass through every layer, as in the real model)
and the outputs are read at the n input positions. Per layer and query position t,

    a_t = x_t + Σ_h W_o Σ_{c ∈ ctx(t)} softmax_c(κ (W_k c + b_k)ᵀ(W_q x_t + b_q)) (W_v c + b_v) + b_o,
    y_t = a_t + W2 act(W1 a_t + b1) + b2,

with ctx(t) every position (bidirectional) or the positions ≤ t in [P, X] (causal: the
prompt precedes the input, so it is in every input position's context). Positional
encodings are added to the input positions only. With ``norm == "layernorm"`` the layer is
post-norm as in BERT: a = LN1(x + attn), y = LN2(a + g(a)). The activation is ReLU or the
exact (erf) GELU.

Weights are ``nn.Linear`` submodules with stable names so PEFT can target them:
``layers.{i}.heads.{h}.W_q/W_k/W_v/W_o`` (W_q, W_k, W_v with the head's biases when it has
them; W_o never: the layer's b_o is added once) and ``layers.{i}.W1`` / ``layers.{i}.W2``
(biases b1 / b2). All are frozen by default. An irrational κ (a Surd) is rounded to float
once. The twin agrees with the exact evaluator
(``constructions.evaluate``) to rounding; floats here never decide a verdict.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from promptlimits.constructions.spec import Head, Layer, Model


def tensor(vectors: Sequence[Sequence[Fraction]], dtype: torch.dtype = torch.float64,
           device: str | torch.device = "cpu") -> Tensor:
    """Rational vectors (or a matrix as rows) as a 2-D tensor; each entry rounded once.

    Entries are converted with ``float(Fraction)`` (correctly rounded to float64) and then
    cast to ``dtype``; an empty sequence gives shape (0, 0).
    """
    rows = [[float(x) for x in row] for row in vectors]
    out = torch.tensor(rows, dtype=torch.float64) if rows else torch.zeros((0, 0), dtype=torch.float64)
    return out.to(device=device, dtype=dtype)


def _linear(weight: Sequence[Sequence[Fraction]], bias: Optional[Sequence[Fraction]],
            dtype: torch.dtype, device: str | torch.device) -> nn.Linear:
    """A frozen ``nn.Linear`` computing x ↦ W x (+ b) with the spec's W (rows = outputs)."""
    w = tensor(weight, dtype, device)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, device=device, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(w)
        if bias is not None:
            lin.bias.copy_(tensor([bias], dtype, device)[0])
    lin.requires_grad_(False)
    return lin


class TwinHead(nn.Module):
    """One attention head: W_q, W_k, W_v (s×d, with the head's biases) and W_o (d×s) as linear maps."""

    def __init__(self, head: Head, dtype: torch.dtype, device: str | torch.device) -> None:
        super().__init__()
        self.W_q = _linear(head.W_q, head.b_q, dtype, device)
        self.W_k = _linear(head.W_k, head.b_k, dtype, device)
        self.W_v = _linear(head.W_v, head.b_v, dtype, device)
        self.W_o = _linear(head.W_o, None, dtype, device)

    def forward(self, seq: Tensor, queries: Tensor, scale: float, allowed: Optional[Tensor]) -> Tensor:
        """W_o Σ_c softmax_c(κ (W_k c + b_k)ᵀ(W_q x + b_q)) (W_v c + b_v) for every query x of ``queries`` [B, Q, d],
        the keys c running over ``seq`` [B, T, d].

        ``allowed`` [B or 1, Q, T] is True where a query may attend to key c (None: all).
        """
        weights = torch.softmax(self.scores(seq, queries, scale, allowed), dim=-1)
        return self.W_o(torch.matmul(weights, self.W_v(seq)))

    def scores(self, seq: Tensor, queries: Tensor, scale: float, allowed: Optional[Tensor]) -> Tensor:
        """The attention scores [B, Q, T]: κ (W_k c + b_k)ᵀ(W_q x + b_q), −inf where not allowed."""
        scores = scale * torch.matmul(self.W_q(queries), self.W_k(seq).transpose(-1, -2))
        return scores if allowed is None else scores.masked_fill(~allowed, float("-inf"))


class TwinLayer(nn.Module):
    """Attention heads with residual, then the residual feed-forward block (post-norm optional)."""

    def __init__(self, layer: Layer, d: int, dtype: torch.dtype, device: str | torch.device) -> None:
        super().__init__()
        self.heads = nn.ModuleList(TwinHead(h, dtype, device) for h in layer.heads)
        self.W1 = _linear(layer.W1, layer.b1, dtype, device)
        self.W2 = _linear(layer.W2, layer.b2, dtype, device)
        self.activation = layer.activation
        self.norm = layer.norm
        self.ln_eps = float(layer.ln_eps)
        self.register_buffer("b_o", tensor([layer.b_o], dtype, device)[0] if layer.b_o is not None else None)
        for name, default in (("ln1_gain", 1), ("ln1_bias", 0), ("ln2_gain", 1), ("ln2_bias", 0)):
            vec = getattr(layer, name)
            value = tensor([vec], dtype, device)[0] if vec is not None else torch.full(
                (d,), float(default), dtype=dtype, device=device)
            self.register_buffer(name, value)

    def _act(self, h: Tensor) -> Tensor:
        return torch.relu(h) if self.activation == "relu" else F.gelu(h, approximate="none")

    def forward(self, seq: Tensor, scale: float, allowed: Optional[Tensor], rows: Optional[Tensor] = None) -> Tensor:
        """The layer's outputs at every position of ``seq``, or only at the positions ``rows``."""
        a = seq if rows is None else seq[:, rows]
        if rows is not None and allowed is not None:
            allowed = allowed[:, rows]
        queries = a
        for head in self.heads:
            a = a + head(seq, queries, scale, allowed)
        if self.b_o is not None:
            a = a + self.b_o
        if self.norm == "layernorm":
            a = F.layer_norm(a, a.shape[-1:], self.ln1_gain, self.ln1_bias, self.ln_eps)
        y = a + self.W2(self._act(self.W1(a)))
        if self.norm == "layernorm":
            y = F.layer_norm(y, y.shape[-1:], self.ln2_gain, self.ln2_bias, self.ln_eps)
        return y


class Twin(nn.Module):
    """The model spec's transformer in torch (float64 by default; float32 / bfloat16; CPU or CUDA)."""

    def __init__(self, model: Model, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.d = model.d
        self.causal = model.attention == "causal"
        self.score_scale = float(model.score_scale)
        self.layers = nn.ModuleList(TwinLayer(layer, model.d, dtype, device) for layer in model.layers)
        pos = tensor(model.positional, dtype, device) if model.positional is not None else None
        self.register_buffer("positional", pos)

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].W1.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.layers[0].W1.weight.device

    def _allowed(self, total: int, key_mask: Optional[Tensor]) -> Optional[Tensor]:
        """Which key each query may attend to (None: every key): causality, then the real keys.

        A query always sees itself, so padded positions keep finite states (they are
        masked out as keys of every other position and never influence a real output).
        """
        idx = torch.arange(total, device=self.device)
        allowed = (idx[None, :] <= idx[:, None])[None] if self.causal else None
        if key_mask is not None:
            keys = key_mask[:, None, :] | torch.eye(total, dtype=torch.bool, device=self.device)[None]
            allowed = keys if allowed is None else allowed & keys
        return allowed

    def forward(self, X: Tensor, prompt: Optional[Tensor] = None, key_mask: Optional[Tensor] = None,
                positions: Optional[Tensor] = None) -> Tensor:
        """τ_P(X): outputs [B, n, d] at the input positions of the stack applied to [P, X].

        With ``positions`` (indices into the n input positions) only those outputs are
        returned, [B, len(positions), d]; the last layer then computes nothing else.

        X is [B, n, d]; ``prompt`` is [B, m, d] (m = 0 allowed) or None. ``key_mask``
        [B, m + n] (True = real token) removes padded prompt or input slots from every
        other position's softmax; a batch of prompts of different lengths padded to one m
        then computes exactly what each prompt alone would (padding must follow the real
        prompt tokens so that causal contexts are unchanged).
        """
        if X.dim() != 3 or X.shape[-1] != self.d:
            raise ValueError(f"X must be [B, n, {self.d}], got {tuple(X.shape)}")
        n = X.shape[1]
        if self.positional is not None:
            if n > self.positional.shape[0]:
                raise ValueError(f"input has {n} positions but positional encodings cover {self.positional.shape[0]}")
            X = X + self.positional[:n]
        if prompt is None:
            prompt = X.new_zeros((X.shape[0], 0, self.d))
        if prompt.dim() != 3 or prompt.shape[0] != X.shape[0] or prompt.shape[-1] != self.d:
            raise ValueError(f"prompt must be [{X.shape[0]}, m, {self.d}], got {tuple(prompt.shape)}")
        m = prompt.shape[1]
        seq = torch.cat([prompt, X], dim=1)
        if key_mask is not None and key_mask.shape != seq.shape[:2]:
            raise ValueError(f"key_mask must be {tuple(seq.shape[:2])}, got {tuple(key_mask.shape)}")
        allowed = self._allowed(m + n, key_mask)
        for layer in self.layers[:-1]:
            seq = layer(seq, self.score_scale, allowed)
        wanted = torch.arange(m, m + n, device=seq.device) if positions is None else m + positions
        return self.layers[-1](seq, self.score_scale, allowed, wanted)

    def scores(self, X: Tensor, prompt: Optional[Tensor] = None) -> list[Tensor]:
        """Every layer's attention scores on [P, X]: one [B, H, m + n, m + n] tensor per layer
        (query rows, key columns, −inf outside a query's context; positional encodings added
        to X as in forward). A softmax over any set of keys gives their (relative) attention."""
        if self.positional is not None:
            X = X + self.positional[: X.shape[1]]
        seq = X if prompt is None else torch.cat([prompt, X], dim=1)
        allowed = self._allowed(seq.shape[1], None)
        out = []
        for layer in self.layers:
            out.append(torch.stack([h.scores(seq, seq, self.score_scale, allowed) for h in layer.heads], dim=1))
            seq = layer(seq, self.score_scale, allowed)
        return out

    def prompted(self, X: Tensor, prompts: Tensor) -> Tensor:
        """Many prompts at once: X [E, n, d] (or [n, d]), prompts [K, m, d] -> outputs [K, E, n, d]."""
        if X.dim() == 2:
            X = X[None]
        K, E = prompts.shape[0], X.shape[0]
        xs = X[None].expand(K, *X.shape).reshape(K * E, *X.shape[1:])
        ps = prompts[:, None].expand(K, E, *prompts.shape[1:]).reshape(K * E, *prompts.shape[1:])
        return self.forward(xs, ps).reshape(K, E, *X.shape[1:])
