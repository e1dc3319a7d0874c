"""``promptlimits construct``: files written atomically, exact content, clear refusals."""

import json
from fractions import Fraction

from promptlimits.constructions.formats import load_dataset, load_model
from promptlimits.constructions.lora import verify_rational_model
from promptlimits.main import main

MODEL = "examples/one_layer.json"


def test_impossible_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "imp.json"
    assert main(["construct", "impossible", MODEL, "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    data = load_dataset(out)
    assert len(data.examples) == 2 and data.examples[0].target[0] is None
    assert payload["f_injective_certified"] is True
    assert Fraction(payload["separation"]) < -Fraction(payload["radius"])
    assert payload["forced_a"].startswith("(-3/2)")


def test_separation_standard_and_lora_roundtrip(tmp_path, capsys):
    folder = tmp_path / "famX"
    assert main(["construct", "separation", "--d", "3", "--family", "X", "--n", "2", "--out", str(folder), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["prompt_impossible"] and payload["lora_rank"] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.json", "lora.json", "model.json", "model_lora.json"]
    assert verify_rational_model(load_model(folder / "model_lora.json"), load_dataset(folder / "dataset.json"))
    update = tmp_path / "up.json"
    assert main(["construct", "lora", str(folder / "model.json"), str(folder / "dataset.json"),
                 "--out", str(update)]) == 0
    doc = json.loads(update.read_text())
    assert doc["format"] == "promptlimits/lora-update@1" and doc["rank"] == 1 and not doc["model_rounded"]


def test_refusals_leave_no_file(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["construct", "separation", MODEL, "--family", "X", "--n", "1", "--out", str(out)]) == 2
    assert main(["construct", "separation", "--family", "L", "--n", "3", "--d", "4", "--out", str(out)]) == 2
    assert main(["construct", "lora", MODEL, "examples/two_examples.json", "--out", str(tmp_path / "u.json")]) == 2
    assert main(["construct"]) == 2
    assert not out.exists() and not (tmp_path / "u.json").exists()
    err = capsys.readouterr().err
    assert "ker V = {0}" in err and "W2 alone" in err
