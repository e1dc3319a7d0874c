"""promptlimits layers and memorizable on several layers: verdicts, exit codes, JSON keys, certificates."""

import json
from dataclasses import replace
from fractions import Fraction as F

import pytest

from promptlimits.constructions.formats import dataset_to_json, model_to_json
from promptlimits.constructions.layered_models import folding_model, mirrored_pair, sorting_model
from promptlimits.main import main


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


@pytest.fixture()
def files(tmp_path):
    return {
        "sorting": _write(tmp_path / "sorting.json", model_to_json(sorting_model())),
        "folding": _write(tmp_path / "folding.json", model_to_json(folding_model())),
        "bidir": _write(tmp_path / "bidir.json", model_to_json(replace(sorting_model(), attention="bidirectional"))),
        "pair": _write(tmp_path / "pair.json", dataset_to_json(mirrored_pair(F(1, 4), (F(1, 5), F(4, 3))))),
        "dir": tmp_path,
    }


def _run(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_injective_verdict_with_keys_and_a_certificate_that_rechecks(files, capsys):
    cert = str(files["dir"] / "cert.json")
    code, p = _run(capsys, ["layers", files["sorting"], "--input-radius", "1/4", "--prompt-radius", "0.25",
                            "--out", cert, "--json"])
    assert code == 0 and p["verdict"] == "injective" and p["status"] == "decided"
    assert {"verdict", "status", "method", "reason", "seconds", "product", "sublayers", "radii"} <= set(p)
    assert [(s["layer"], s["kind"]) for s in p["sublayers"]] == [(0, "attention"), (0, "feed-forward"),
                                                                  (1, "attention"), (1, "feed-forward")]
    assert abs(p["sublayers"][0]["lipschitz_float"] - 0.625) < 1e-9
    code, r = _run(capsys, ["recheck", cert, "--json"])
    assert code == 0 and r["valid"] is True


def test_failing_condition_and_outside_exit_3_without_certificate(files, capsys):
    cert = files["dir"] / "none.json"
    code, p = _run(capsys, ["layers", files["folding"], "--input-radius", "1/4", "--prompt-radius", "1/4",
                            "--out", str(cert), "--json"])
    assert code == 3 and p["verdict"] == "unknown" and p["failures"] and not p["outside_theorem"]
    assert p["certificate"] is None and not cert.exists()
    code, p = _run(capsys, ["layers", files["bidir"], "--json"])
    assert code == 3 and p["outside_theorem"] and "outside the theorem" in p["reason"]


def test_bad_radius_is_bad_input(files, capsys):
    assert main(["layers", files["sorting"], "--prompt-radius", "-1"]) == 2
    assert main(["layers", files["sorting"], "--input-radius", "x"]) == 2


def test_memorizable_on_two_layers_uses_theorem_5(files, capsys):
    cert = str(files["dir"] / "mem.json")
    code, p = _run(capsys, ["memorizable", files["sorting"], files["pair"], "--prompt-radius", "1/4",
                            "--out", cert, "--json"])
    assert code == 0 and p["verdict"] == "not-memorizable" and F(p["loss_floor"]) > 0
    assert p["input_radius"] == "1/4"  # the dataset's largest token norm, exact
    assert "‖p‖ ≤ 1/4" in p["scope"]
    code, r = _run(capsys, ["recheck", cert, "--json"])
    assert code == 0 and r["valid"] is True
    code, p = _run(capsys, ["memorizable", files["sorting"], files["pair"], "--prompt-radius", "64", "--json"])
    assert code == 3 and p["verdict"] == "unknown" and p["loss_floor"] == "0"


def test_bounds_on_two_layers_reports_the_certified_floor(files, capsys):
    cert = str(files["dir"] / "bounds.json")
    code, p = _run(capsys, ["bounds", files["sorting"], files["pair"], "--prompt-radius", "1/4", "--out", cert, "--json"])
    assert code == 0 and p["status"] == "decided" and p["verdict"] == "not-memorizable"
    assert F(p["loss_floor"]) > 0 and p["lora_rank"] is None and p["min_prompt_length"] is None
    code, r = _run(capsys, ["recheck", cert, "--json"])
    assert code == 0 and r["valid"] is True
    code, p = _run(capsys, ["bounds", files["folding"], files["pair"], "--prompt-radius", "1/4", "--json"])
    assert code == 0 and p["verdict"] == "bounded" and p["loss_floor"] == "0" and p["loss_floor_reason"]
