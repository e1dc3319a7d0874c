"""``promptlimits train``: the DESIGN.md JSON keys, the two output files, and bad arguments
giving exit 2 with one line and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptlimits.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL, DATASET = str(EXAMPLES / "one_layer.json"), str(EXAMPLES / "two_examples.json")
FAST = ["--steps", "10", "--polish", "3", "--restarts", "2", "--device", "cpu", "--no-progress"]


def test_prompt_json_and_files(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", MODEL, DATASET, "--method", "prompt", "--prompt-lengths", "1,2", *FAST,
                 "--json", "--out", str(out)])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) >= {"runs", "loss_floor", "seconds"}
    assert [r["prompt_length"] for r in payload["runs"]] == [1, 2]
    for r in payload["runs"]:
        assert set(r) == {"method", "prompt_length", "best_loss", "steps", "restarts", "seconds"}
        assert r["method"] == "prompt" and r["restarts"] == 2 and r["best_loss"] >= 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == payload["runs"] and len(saved["curves"]) == 2
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lora_and_full_report_rank_or_method(capsys):
    assert main(["train", MODEL, DATASET, "--method", "lora", "--ranks", "1", "--lora-targets", "W_o,W_v",
                 *FAST, "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)["runs"]
    assert run["method"] == "lora" and run["rank"] == 1
    assert main(["train", MODEL, DATASET, "--method", "full", *FAST, "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)["runs"]
    assert run["method"] == "full" and "rank" not in run and "prompt_length" not in run


@pytest.mark.parametrize("bad", [
    ["--method", "prompt", "--ranks", "1"],
    ["--method", "lora", "--prompt-lengths", "2"],
    ["--method", "prompt", "--prompt-lengths", "0"],
    ["--method", "prompt", "--prompt-lengths", "1,x"],
    ["--method", "lora", "--lora-targets", "W_z"],
    ["--method", "prompt", "--steps", "-3"],
    ["--method", "prompt", "--steps", "0", "--polish", "0"],
    ["--method", "prompt", "--restarts", "0"],
    ["--method", "prompt", "--lr", "nan"],
    ["--method", "prompt", "--device", "tpu"],
    ["--method", "prompt", "--dtype", "int8"],
    ["--method", "sgd"],
])
def test_bad_arguments_exit_2_nothing_written(tmp_path, capsys, bad):
    out = tmp_path / "run"
    assert main(["train", MODEL, DATASET, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_mismatched_dataset_exit_2(tmp_path, capsys):
    ds = tmp_path / "d3.json"
    ds.write_text(json.dumps({"format": "promptlimits/dataset@1", "d": 3,
                              "examples": [{"input": [[0, 1, 2]], "target": [[1, 1, 1]]}]}))
    assert main(["train", MODEL, str(ds), "--method", "prompt", *FAST]) == 2
    assert "d = 3" in capsys.readouterr().err


def test_prompt_tuning_stays_above_the_certified_floor(tmp_path, capsys):
    """THEORY §4's dataset for the example layer has a positive certified floor (§5); the
    best prompt-tuning loss must not fall below it, and the plot is drawn with it."""
    from promptlimits.constructions.formats import dataset_to_json, load_model
    from promptlimits.constructions.impossible import impossible_dataset

    ds = tmp_path / "impossible.json"
    ds.write_text(json.dumps(dataset_to_json(impossible_dataset(load_model(MODEL)).dataset)))
    out = tmp_path / "run"
    code = main(["train", MODEL, str(ds), "--method", "prompt", "--prompt-lengths", "1,3", "--steps", "60",
                 "--polish", "20", "--restarts", "2", "--no-progress", "--json", "--out", str(out)])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["floor_respected"] is True
    assert 0.2 < payload["loss_floor"] <= min(r["best_loss"] for r in payload["runs"])
    assert (out / "loss_curves.png").stat().st_size > 1000
