"""The ``@1`` file formats: exact numbers, canonical JSON with a stable sha256, binary weights.

A reader that goes through float, a writer whose bytes depend on key order or number
spelling, or a weights loader that rounds or unpickles breaks these.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from safetensors.numpy import save_file

from promptlimits.constructions import strategies as S
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import (
    canonical_bytes, dataset_from_json, dataset_to_json, load_dataset, load_model, load_prompt, model_from_json,
    model_to_json, parse_json_text, prompt_from_json, prompt_to_json, sha256_of,
)
from promptlimits.constructions.spec import Head, Layer, Model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MODELS = S.models(d=st.integers(1, 3), layers=st.integers(1, 2), heads=st.integers(1, 2),
                  norm=st.sampled_from((None, "layernorm")), activation=st.sampled_from(("relu", "gelu")),
                  score_scale=S.rationals(4, 4, nonzero=True).map(abs), max_numerator=50, max_denominator=30)


def _reparse(obj: dict, indent=None) -> dict:
    """obj written as ordinary JSON text (any key order, whitespace) and read back exactly."""
    return parse_json_text(json.dumps(obj, indent=indent, sort_keys=False), "x")


@given(MODELS)
def test_model_round_trip_and_stable_hash(model):
    obj = model_to_json(model)
    back = model_from_json(_reparse(obj, indent=2), "x")
    assert back == model
    assert model_to_json(back) == obj
    assert sha256_of(model_to_json(back)) == sha256_of(obj)
    shuffled = dict(reversed(list(obj.items())))
    assert canonical_bytes(shuffled) == canonical_bytes(obj)


@given(S.datasets(st.integers(1, 3), constrained="any", max_numerator=99, max_denominator=99), st.data())
def test_dataset_and_prompt_round_trip(dataset, data):
    obj = dataset_to_json(dataset)
    assert dataset_from_json(_reparse(obj), "x") == dataset
    assert sha256_of(dataset_to_json(dataset_from_json(_reparse(obj), "x"))) == sha256_of(obj)
    prompt = data.draw(S.prompts(dataset.d, st.integers(0, 3)))
    assert prompt_from_json(_reparse(prompt_to_json(prompt, dataset.d)), "p") == prompt


def test_hash_distinguishes_models_and_ignores_spelling():
    a = model_from_json(parse_json_text((EXAMPLES / "one_layer.json").read_text(), "a"), "a")
    text = (EXAMPLES / "one_layer.json").read_text().replace('"1/3"', '"2/6"').replace("0.5", "5e-1")
    b = model_from_json(parse_json_text(text, "b"), "b")
    assert a == b and sha256_of(model_to_json(a)) == sha256_of(model_to_json(b))
    c = model_from_json(parse_json_text(text.replace('"2/6"', '"0.3333333333333333"'), "c"), "c")
    assert c != a and sha256_of(model_to_json(c)) != sha256_of(model_to_json(a))


def test_json_decimals_are_exact():
    model = load_model(EXAMPLES / "one_layer.json")
    assert model.layers[0].heads[0].W_o[0][0] == Fraction(1, 2)
    assert model.layers[0].W2[0][0] == Fraction(1, 3)
    text = (EXAMPLES / "one_layer.json").read_text().replace("0.5", "0.1")
    tenth = model_from_json(parse_json_text(text, "t"), "t")
    assert tenth.layers[0].heads[0].W_o[0][0] == Fraction(1, 10) != Fraction(0.1)
    assert model_to_json(tenth)["layers"][0]["heads"][0]["W_o"][0][0] == "1/10"
    assert not model.from_floats
    assert load_prompt(EXAMPLES / "prompt.json")[1] == (Fraction(-1, 2), Fraction(3))
    assert load_dataset(EXAMPLES / "two_examples.json").examples[0].target == (None, (Fraction(1), Fraction(0)))


# ----------------------------------------------------------------------------- binary weights


def _float_model(rng: np.random.Generator, d=3, s=2, r=4, dtype=np.float64):
    """Random float arrays with the documented key names, and the model they denote exactly."""
    arrays = {}
    heads = []
    for h in range(2):
        mats = {k: rng.standard_normal((s, d) if k != "W_o" else (d, s)).astype(dtype) for k in ("W_q", "W_k", "W_v", "W_o")}
        arrays.update({f"layers.0.heads.{h}.{k}": v for k, v in mats.items()})
        heads.append(Head(*(tuple(tuple(Fraction(float(x)) for x in row) for row in mats[k])
                            for k in ("W_q", "W_k", "W_v", "W_o"))))
    arrays["layers.0.W1"] = rng.standard_normal((r, d)).astype(dtype)
    arrays["layers.0.b1"] = rng.standard_normal(r).astype(dtype)
    arrays["layers.0.W2"] = rng.standard_normal((d, r)).astype(dtype)
    arrays["layers.0.b2"] = rng.standard_normal(d).astype(dtype)
    arrays["positional"] = rng.standard_normal((5, d)).astype(dtype)

    def mat(a):
        return tuple(tuple(Fraction(float(x)) for x in row) for row in a)

    def vec(a):
        return tuple(Fraction(float(x)) for x in a)

    model = Model(
        d=d,
        layers=(Layer(tuple(heads), mat(arrays["layers.0.W1"]), vec(arrays["layers.0.b1"]),
                      mat(arrays["layers.0.W2"]), vec(arrays["layers.0.b2"])),),
        attention="causal",
        positional=mat(arrays["positional"]),
    )
    return arrays, model


def _header(tmp_path: Path, weights: str, d=3) -> Path:
    header = {"format": "promptlimits/model@1", "d": d, "attention": "causal", "weights": weights,
              "layers": [{"heads": [{}, {}], "activation": "relu", "norm": None}]}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(header))
    return path


@pytest.mark.parametrize("kind", ["npz", "safetensors"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_weights_load_as_the_exact_rationals_of_the_floats(kind, dtype, tmp_path, monkeypatch):
    arrays, expected = _float_model(np.random.default_rng(7), dtype=dtype)
    if kind == "npz":
        np.savez(tmp_path / "w.npz", **arrays)
    else:
        save_file(arrays, str(tmp_path / "w.safetensors"))
    header = _header(tmp_path, f"w.{kind}")
    monkeypatch.chdir(EXAMPLES)  # the weights path is relative to the header, not the cwd
    model = load_model(header)
    assert model == expected
    assert model.from_floats
    assert model.layers[0].W1[0][0] == Fraction(float(arrays["layers.0.W1"][0, 0]))
    if dtype == np.float32:  # the float32 value itself, not the float64 nearest to its decimal print
        x = arrays["layers.0.b1"][0]
        assert model.layers[0].b1[0] == Fraction(float(x)) != Fraction(str(x))
    # JSON entries win over arrays, and the canonical form embeds every weight as an exact string
    obj = model_to_json(model)
    assert model_from_json(_reparse(obj), "x") == model


def test_pickled_object_array_is_refused(tmp_path):
    arrays, _ = _float_model(np.random.default_rng(1))
    arrays["layers.0.W1"] = np.array([{"evil": 1}, None], dtype=object)
    np.savez(tmp_path / "w.npz", **arrays)  # numpy pickles object arrays
    with pytest.raises(InputError) as err:
        load_model(_header(tmp_path, "w.npz"))
    message = str(err.value)
    assert "w.npz" in message and "\n" not in message


def test_non_numeric_and_non_finite_arrays_are_refused(tmp_path):
    arrays, _ = _float_model(np.random.default_rng(2))
    arrays["layers.0.b2"] = np.array([1.0, np.inf, 0.0])
    np.savez(tmp_path / "w.npz", **arrays)
    with pytest.raises(InputError, match="NaN or Inf"):
        load_model(_header(tmp_path, "w.npz"))
    arrays["layers.0.b2"] = np.array(["a", "b", "c"])
    np.savez(tmp_path / "w.npz", **arrays)
    with pytest.raises(InputError, match="not numeric"):
        load_model(_header(tmp_path, "w.npz"))
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 32)
    with pytest.raises(InputError, match="cannot read weights"):
        load_model(_header(tmp_path, "bad.safetensors"))
