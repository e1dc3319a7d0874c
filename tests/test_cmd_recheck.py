"""promptlimits recheck on a folder: proof-check CI over a catalogue of certificates."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from promptlimits.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture()
def catalogue(tmp_path):
    """A folder with a model, a dataset, and three honest certificates about them."""
    model = tmp_path / "model.json"
    shutil.copy(EXAMPLES / "one_layer.json", model)
    dataset = tmp_path / "impossible.json"
    assert main(["construct", "impossible", str(model), "--out", str(dataset)]) == 0
    assert main(["memorizable", str(model), str(dataset), "--out", str(tmp_path / "mem.json")]) == 0
    assert main(["invertible", str(model), "--out", str(tmp_path / "inv.json")]) == 0
    assert main(["bounds", str(model), str(dataset), "--out", str(tmp_path / "bounds.json")]) == 0
    return tmp_path


def _junit(path):
    suite = ET.parse(path).getroot()
    return suite, {case.get("name").rsplit("/", 1)[-1]: case for case in suite.iter("testcase")}


def test_folder_rechecks_every_certificate_and_skips_its_subjects(catalogue, tmp_path_factory, capsys):
    report = tmp_path_factory.mktemp("out") / "junit.xml"
    capsys.readouterr()
    assert main(["recheck", str(catalogue), "--junit", str(report), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] is True
    assert sorted(Path(c["path"]).name for c in payload["certificates"]) == ["bounds.json", "inv.json", "mem.json"]
    suite, cases = _junit(report)
    assert suite.get("tests") == "3" and suite.get("failures") == "0"
    assert all(case.find("failure") is None for case in cases.values())


def test_a_tampered_or_truncated_certificate_fails_the_folder(catalogue, tmp_path_factory, capsys):
    cert = json.loads((catalogue / "mem.json").read_text())
    cert["verdict"] = "memorizable"
    (catalogue / "flipped.json").write_text(json.dumps(cert))
    (catalogue / "truncated.json").write_text('{"format": "promptlimits/certificate@1", "claim": ')
    report = tmp_path_factory.mktemp("out") / "junit.xml"
    assert main(["recheck", str(catalogue), "--junit", str(report)]) == 1
    suite, cases = _junit(report)
    assert suite.get("tests") == "5" and suite.get("failures") == "2"
    assert cases["flipped.json"].find("failure") is not None
    assert cases["truncated.json"].find("failure") is not None
    assert cases["mem.json"].find("failure") is None


def test_a_folder_without_certificates_is_bad_input(tmp_path, capsys):
    shutil.copy(EXAMPLES / "one_layer.json", tmp_path / "model.json")
    report = tmp_path / "junit.xml"
    assert main(["recheck", str(tmp_path), "--junit", str(report)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not report.exists()


def test_output_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through a private temporary file; the result must not stay 0600."""
    import os
    import stat

    out = tmp_path / "impossible.json"
    old = os.umask(0o022)
    try:
        assert main(["construct", "impossible", str(EXAMPLES / "one_layer.json"), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
