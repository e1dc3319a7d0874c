"""The ``audit`` certificate: produced by ``promptlimits audit --cert``, re-verified by ``recheck``.

Hand model: x ↦ x − 2 GELU(x) coordinate-wise in R² (det J changes sign, see
test_gelu_orientation) with a layer norm; ‖W1‖ = 1 and ‖W2‖ = 2 exactly."""

import json
import subprocess
import sys

import pytest

from promptlimits.constructions.formats import load_model
from promptlimits.main import main
from promptlimits.numerics.checkpoint_audit import audit_evidence, audit_model
from promptlimits.proofs.certificate import CheckFailed, make_certificate
from promptlimits.proofs.recheck import recheck
from promptlimits.proofs.tamper import mutated, number_paths

EYE = [[1, 0], [0, 1]]


def _write_model(path, W1, W2, activation="gelu", norm="layernorm"):
    layer = {"heads": [{"W_q": EYE, "W_k": EYE, "W_v": EYE, "W_o": EYE}], "W1": W1, "b1": [0, 0], "W2": W2,
             "b2": [0, 0], "activation": activation, "norm": norm}
    path.write_text(json.dumps({"format": "promptlimits/model@1", "d": 2, "attention": "bidirectional",
                                "score_scale": "1", "positional": None, "layers": [layer]}))
    return path


@pytest.fixture(scope="module")
def fold(tmp_path_factory):
    """(model path, certificate) of the fold model, written by ``audit --cert``."""
    folder = tmp_path_factory.mktemp("fold")
    model = _write_model(folder / "fold.json", EYE, [[-2, 0], [0, -2]])
    assert main(["audit", str(model), "--cert", str(folder / "cert.json")]) == 0
    return model, json.loads((folder / "cert.json").read_text())


def test_audit_cert_rechecks_from_the_command_line(fold, tmp_path, capsys):
    model, cert = fold
    ev = cert["evidence"]
    assert cert["claim"] == "audit" and "embedded" in cert["model"]
    assert ev["not_injective_layers"] == [0] and ev["layers"][0]["verdict"] == "not-injective"
    assert (ev["layers"][0]["W1"]["lower"], ev["layers"][0]["W2"]["lower"]) == ("1", "2")  # exact: ‖W1‖ = 1, ‖W2‖ = 2
    assert ev["layers"][0]["norm_product_lower"] == "2" and ev["layers"][0]["norm_condition_fails"] is True
    path = tmp_path / "cert.json"
    path.write_text(json.dumps(cert))
    capsys.readouterr()
    assert main(["recheck", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and any("not injective" in c for c in out["checked"])


def test_every_tampered_evidence_number_fails(fold):
    _, cert = fold
    # the attention-shift input and prompt are free data: the claim is about whichever are stored
    paths = list(number_paths(cert["evidence"], skip=("input", "prompt")))
    assert len(paths) > 20
    for path in paths:
        with pytest.raises(CheckFailed):
            recheck(mutated(cert, path))


@pytest.mark.parametrize("change", [
    lambda ev: ev["layers"][0].update(verdict="unknown"),
    lambda ev: ev["layers"][0].update(norm_condition_fails=False),
    lambda ev: ev["layers"][0]["sign_flip"].update(positive=ev["layers"][0]["sign_flip"]["negative"]),
    lambda ev: ev["layers"][0]["sign_flip"]["det_positive"].update(mantissa="1.9"),
    lambda ev: ev["layers"][0]["sign_flip"].update(positive=["1/3", "0"]),  # not binary64
    lambda ev: ev["layers"][0]["W1"].update(v=["0", "0"]),
    lambda ev: ev.update(layer_norm_collision=None),
])
def test_tampered_labels_fail(fold, change):
    cert = json.loads(json.dumps(fold[1]))
    change(cert["evidence"])
    with pytest.raises(CheckFailed):
        recheck(cert)


def test_bits_above_the_cap_are_refused_before_any_arithmetic(fold):
    cert = json.loads(json.dumps(fold[1]))
    cert["evidence"]["layers"][0]["sign_flip"]["bits"] = 1 << 20
    with pytest.raises(CheckFailed, match="bits"):
        recheck(cert)


def test_a_flip_claimed_on_an_injective_block_is_refused(fold, tmp_path):
    # W1 = I, W2 = I/8 (0.1 is not binary64): J = I + diag(GELU′(x))/8 with GELU′ ≥ −0.13, so det J > 0 everywhere
    model = load_model(_write_model(tmp_path / "small.json", EYE, [["1/8", 0], [0, "1/8"]]))
    evidence = audit_evidence(model, audit_model(model, None, 40, 0))
    assert evidence["not_injective_layers"] == [] and evidence["layers"][0]["verdict"] == "unknown"
    honest = make_certificate(claim="audit", verdict="audited", method="m", evidence=evidence, model=model)
    assert recheck(honest)
    evidence["layers"][0].update(verdict="not-injective", sign_flip=fold[1]["evidence"]["layers"][0]["sign_flip"])
    evidence["not_injective_layers"] = [0]
    forged = make_certificate(claim="audit", verdict="audited", method="m", evidence=evidence, model=model)
    with pytest.raises(CheckFailed, match="det J"):
        recheck(forged)


def test_relu_layers_are_outside_the_audit(tmp_path, capsys):
    path = _write_model(tmp_path / "relu.json", EYE, [[-2, 0], [0, -2]], activation="relu")
    capsys.readouterr()
    assert main(["audit", str(path), "--cert", str(tmp_path / "c.json")]) == 2
    assert not (tmp_path / "c.json").exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # no progress line before the error


def test_recheck_never_imports_z3(fold, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(fold[1]))
    code = ("import sys, json; from promptlimits.proofs.recheck import recheck; "
            f"recheck(json.load(open({str(path)!r}))); assert 'z3' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_two_layer_attention_shift_is_rechecked(tmp_path, capsys):
    """Two fold layers whose heads attend (W_q = W_k = I): the prompt moves layer-1 relative
    attention (proven), never layer 0's; a forged 'moved' claim for layer 0 is refused."""
    layer = json.loads(_write_model(tmp_path / "one.json", EYE, [[-2, 0], [0, -2]], norm=None).read_text())["layers"][0]
    (tmp_path / "two.json").write_text(json.dumps({"format": "promptlimits/model@1", "d": 2,
                                                   "attention": "bidirectional", "score_scale": "1",
                                                   "positional": None, "layers": [layer, layer]}))
    assert main(["audit", str(tmp_path / "two.json"), "--prompts", "3", "--cert", str(tmp_path / "c.json")]) == 0
    cert = json.loads((tmp_path / "c.json").read_text())
    shift = cert["evidence"]["attention_shift"]
    assert shift["moved_layers"] == [1] and shift["layers"][0]["lower"] == "0"
    assert recheck(cert)
    forged = json.loads(json.dumps(cert))
    forged["evidence"]["attention_shift"]["moved_layers"] = [0, 1]
    with pytest.raises(CheckFailed, match="moved_layers"):
        recheck(forged)
    forged["evidence"]["attention_shift"]["moved_layers"] = [1]
    forged["evidence"]["attention_shift"]["layers"][0]["lower"] = "1/1000"
    with pytest.raises(CheckFailed, match="lower end"):
        recheck(forged)
