"""The torch twin computes THEORY §0: it agrees with the exact evaluator and the rigorous balls.

Hand-built models cover causal and bidirectional attention, two heads, positional
encodings, GELU / layer norm, and prompt lengths 0, 1, 3. A wrong context (e.g. the prompt
missing from a causal context), a missing residual or a transposed weight breaks these.
(The large Hypothesis agreement property lives in its own test file.)
"""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from promptlimits.constructions.evaluate import layer_exact, stack_balls
from promptlimits.constructions.formats import load_dataset, load_model, load_prompt
from promptlimits.constructions.spec import Head, Layer, Model
from promptlimits.numerics.twin import Twin, tensor

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _q(rng: random.Random) -> Fraction:
    return Fraction(rng.randint(-6, 6), rng.choice((2, 3, 4)))


def _mat(rng: random.Random, rows: int, cols: int):
    return tuple(tuple(_q(rng) for _ in range(cols)) for _ in range(rows))


def _vec(rng: random.Random, k: int):
    return tuple(_q(rng) for _ in range(k))


def _model(seed: int, d: int = 3, heads: int = 2, layers: int = 1, causal: bool = False,
           positional: bool = True, activation: str = "relu", norm=None) -> Model:
    rng = random.Random(seed)
    s, r = 2, 4
    return Model(
        d=d,
        layers=tuple(
            Layer(
                heads=tuple(Head(_mat(rng, s, d), _mat(rng, s, d), _mat(rng, s, d), _mat(rng, d, s)) for _ in range(heads)),
                W1=_mat(rng, r, d), b1=_vec(rng, r), W2=_mat(rng, d, r), b2=_vec(rng, d),
                activation=activation, norm=norm,
                ln1_gain=_vec(rng, d) if norm else None, ln2_bias=_vec(rng, d) if norm else None,
            )
            for _ in range(layers)
        ),
        attention="causal" if causal else "bidirectional",
        score_scale=Fraction(1, 2),
        positional=tuple(_vec(rng, d) for _ in range(4)) if positional else None,
    )


def _exact_floats(model, prompt, X):
    return torch.tensor([o.floats() for o in layer_exact(model, prompt, X)], dtype=torch.float64)


def _twin_out(model, prompt, X, **kw):
    twin = Twin(model, **kw)
    P = tensor(prompt, twin.dtype, twin.device).reshape(1, len(prompt), model.d)
    return twin(tensor(X, twin.dtype, twin.device)[None], P)[0]


def test_examples_match_exact_evaluator():
    model = load_model(EXAMPLES / "one_layer.json")
    dataset = load_dataset(EXAMPLES / "two_examples.json")
    prompt = load_prompt(EXAMPLES / "prompt.json")
    for ex in dataset.examples:
        for P in ((), prompt[:1], prompt):
            got = _twin_out(model, P, ex.input)
            torch.testing.assert_close(got, _exact_floats(model, P, ex.input), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("m", [0, 1, 3])
def test_one_layer_two_heads_positional_matches_exact(causal, m):
    model = _model(seed=10 * m + causal, causal=causal)
    rng = random.Random(99 + m)
    X = _mat(rng, 3, model.d)
    prompt = _mat(rng, m, model.d)
    got = _twin_out(model, prompt, X)
    torch.testing.assert_close(got, _exact_floats(model, prompt, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("activation,norm", [("relu", None), ("gelu", "layernorm")])
def test_two_layer_stack_matches_balls(causal, activation, norm):
    model = _model(seed=7, layers=2, causal=causal, activation=activation, norm=norm)
    rng = random.Random(5)
    X, prompt = _mat(rng, 3, model.d), _mat(rng, 2, model.d)
    balls = stack_balls(model, prompt, X, bits=128)
    want = torch.tensor([[float(b.mid()) for b in row] for row in balls], dtype=torch.float64)
    torch.testing.assert_close(_twin_out(model, prompt, X), want, rtol=1e-12, atol=1e-12)


def test_causal_input_does_not_change_earlier_outputs():
    """Causal: output t depends on [P, x_1..x_t] only, so changing the last token leaves the rest."""
    model = _model(seed=3, layers=2, causal=True)
    twin = Twin(model)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1, 3, 3, generator=g, dtype=torch.float64)
    P = torch.randn(1, 2, 3, generator=g, dtype=torch.float64)
    Y = X.clone()
    Y[0, 2] += 1.0
    torch.testing.assert_close(twin(X, P)[:, :2], twin(Y, P)[:, :2], rtol=0, atol=1e-15)


@pytest.mark.parametrize("causal", [False, True])
def test_padded_prompts_equal_unpadded(causal):
    """Padding a prompt with masked slots (after the real ones) changes no output."""
    model = _model(seed=4, layers=2, causal=causal)
    twin = Twin(model)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(1, 3, 3, generator=g, dtype=torch.float64)
    P = torch.randn(1, 2, 3, generator=g, dtype=torch.float64)
    padded = torch.cat([P, 100 * torch.randn(1, 3, 3, generator=g, dtype=torch.float64)], dim=1)
    mask = torch.tensor([[True, True, False, False, False, True, True, True]])
    torch.testing.assert_close(twin(X, padded, key_mask=mask), twin(X, P), rtol=1e-13, atol=1e-13)
    empty = torch.tensor([[False] * 5 + [True] * 3])
    torch.testing.assert_close(twin(X, padded, key_mask=empty), twin(X), rtol=1e-13, atol=1e-13)


def test_prompted_batches_prompts_and_examples():
    model = _model(seed=8)
    twin = Twin(model)
    g = torch.Generator().manual_seed(2)
    X = torch.randn(4, 3, 3, generator=g, dtype=torch.float64)
    prompts = torch.randn(5, 2, 3, generator=g, dtype=torch.float64)
    out = twin.prompted(X, prompts)
    assert out.shape == (5, 4, 3, 3)
    torch.testing.assert_close(out[3, 1], twin(X[1:2], prompts[3:4])[0], rtol=1e-14, atol=1e-14)


def test_names_frozen_and_dtypes():
    twin = Twin(_model(seed=1, layers=2), dtype=torch.float32)
    names = {n for n, _ in twin.named_modules()}
    for want in ("layers.1.heads.1.W_q", "layers.0.heads.0.W_o", "layers.0.W1", "layers.1.W2"):
        assert want in names
    assert all(not p.requires_grad for p in twin.parameters())
    assert twin.dtype == torch.float32
    bf = Twin(_model(seed=1), dtype=torch.bfloat16)
    out = bf(torch.zeros(2, 3, 3, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.shape == (2, 3, 3)


def test_positions_select_outputs():
    """Asking for some input positions returns exactly those rows of the full output."""
    for causal in (False, True):
        twin = Twin(_model(seed=9, layers=2, causal=causal))
        g = torch.Generator().manual_seed(3)
        X = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
        P = torch.randn(2, 2, 3, generator=g, dtype=torch.float64)
        pos = torch.tensor([3, 0])
        torch.testing.assert_close(twin(X, P, positions=pos), twin(X, P)[:, [3, 0]], rtol=1e-14, atol=1e-14)
