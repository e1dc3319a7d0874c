"""Malformed input through the command line (issue 2 acceptance): exit code 2, exactly one
line on stderr that names the file, the field and the problem, no traceback, nothing on
stdout, and no output file.

Every case starts from the shipped, valid examples and breaks one thing. The cases run
in-process through ``promptlimits.main.main``; a few also run through the installed
console script in a subprocess.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

from promptlimits.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = json.loads((EXAMPLES / "one_layer.json").read_text())
DATASET = json.loads((EXAMPLES / "two_examples.json").read_text())


def _model(edit: Callable[[dict], None]) -> dict:
    obj = copy.deepcopy(MODEL)
    edit(obj)
    return obj


def _dataset(edit: Callable[[dict], None]) -> dict:
    obj = copy.deepcopy(DATASET)
    edit(obj)
    return obj


def _set(path: str, value) -> Callable[[dict], None]:
    """An edit that sets obj[k1][k2]... (dotted path, integer parts index lists)."""

    def edit(obj: dict) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        target = obj
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return edit


def _delete(path: str) -> Callable[[dict], None]:
    def edit(obj: dict) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        target = obj
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return edit


HEAD = "layers.0.heads.0"

# name -> (model object or raw text or None (valid), dataset object or None (valid), fragments
# the message must contain besides the bad file's path). Raw text (str) or bytes are written
# verbatim.
CASES: dict[str, tuple] = {
    "wrong model format tag": (_model(_set("format", "promptlimits/model@2")), None, ["format", "model@1"]),
    "wrong dataset format tag": (None, _dataset(_set("format", "promptlimits/model@1")), ["format", "dataset@1"]),
    "missing layers": (_model(_delete("layers")), None, ["missing key 'layers'"]),
    "missing W_q": (_model(_delete(f"{HEAD}.W_q")), None, ["heads[0]", "W_q"]),
    "missing examples": (None, _dataset(_delete("examples")), ["missing key 'examples'"]),
    "missing target": (None, _dataset(_delete("examples.0.target")), ["examples[0]", "target"]),
    "ragged W1": (_model(_set("layers.0.W1", [[1, 0], [1]])), None, ["W1", "ragged"]),
    "mis-shaped W_q": (_model(_set(f"{HEAD}.W_q", [[1, 0, 0], [0, 1, 0]])), None, ["W_q", "shape"]),
    "mis-shaped W_o": (_model(_set(f"{HEAD}.W_o", [[1, 0]])), None, ["W_o", "shape"]),
    "mis-shaped W1": (_model(_set("layers.0.W1", [[1, 0, 0], [0, 1, 0]])), None, ["W1", "shape"]),
    "b1 wrong length": (_model(_set("layers.0.b1", [0, 0, 0])), None, ["b1", "length"]),
    "b2 wrong length": (_model(_set("layers.0.b2", [0])), None, ["b2", "length"]),
    "d differs": (None, _dataset(lambda o: (o.__setitem__("d", 3), [
        ex.__setitem__("input", [t + [0] for t in ex["input"]]) for ex in o["examples"]], [
        ex.__setitem__("target", [None if t is None else t + [0] for t in ex["target"]]) for ex in o["examples"]])),
        ["d = 3", "d = 2"]),
    "token wrong length": (None, _dataset(_set("examples.0.input.1", [1, 2, 3])), ["input[1]", "length"]),
    "NaN literal": (json.dumps(MODEL).replace('"1/3"', "NaN"), None, ["W2[0][0]", "not a finite number"]),
    "Infinity literal": (json.dumps(MODEL).replace('"1/3"', "-Infinity"), None, ["W2[0][0]", "not a finite number"]),
    "division by zero": (_model(_set("layers.0.W2.0.0", "1/0")), None, ["W2[0][0]", "divides by zero"]),
    "non-numeric string": (_model(_set("layers.0.b1.1", "minus one")), None, ["b1[1]", "not a number"]),
    "boolean entry": (_model(_set(f"{HEAD}.W_v.0.0", True)), None, ["W_v[0][0]", "boolean"]),
    "null in a matrix": (_model(_set(f"{HEAD}.W_k.1.1", None)), None, ["W_k[1][1]", "null"]),
    "huge exponent": (json.dumps(MODEL).replace('"1/3"', "1e999999"), None, ["W2[0][0]", "exponent"]),
    "empty sequence": (None, _dataset(lambda o: o["examples"][0].update(input=[], target=[])), ["examples[0].input"]),
    "empty dataset": (None, _dataset(_set("examples", [])), ["examples"]),
    "empty matrix": (_model(_set("layers.0.W1", [])), None, ["W1", "empty"]),
    "empty row": (_model(_set("layers.0.W1", [[], []])), None, ["W1[0]", "empty"]),
    "target length differs": (None, _dataset(_set("examples.1.target", [None])), ["examples[1].target", "1 entries for 2"]),
    "absurd d": (_model(_set("d", 10**9)), None, ["d", "limit"]),
    "d zero": (_model(_set("d", 0)), None, [".d", "integer"]),
    "d not an integer": (_model(_set("d", "2.5")), None, [".d", "integer"]),
    "unknown attention": (_model(_set("attention", "sideways")), None, ["attention", "sideways"]),
    "unknown activation": (_model(_set("layers.0.activation", "tanh")), None, ["activation", "tanh"]),
    "zero score scale": (_model(_set("score_scale", "0")), None, ["score_scale", "positive"]),
    "root of a negative score scale": (_model(_set("score_scale", "sqrt(-2)")), None, ["score_scale", "positive"]),
    "garbled root score scale": (_model(_set("score_scale", "sqrt(2")), None, ["score_scale", "sqrt(R)"]),
    "query bias wrong length": (_model(_set(f"{HEAD}.b_q", [1, 2, 3])), None, ["heads[0].b_q", "length"]),
    "output bias wrong length": (_model(_set("layers.0.b_o", [1])), None, ["b_o", "length"]),
    "no heads": (_model(_set("layers.0.heads", [])), None, ["heads"]),
    "top level not an object": ("[1, 2, 3]", None, ["expected a JSON object"]),
    "invalid JSON": ('{"format": "promptlimits/model@1", "d": 2,', None, ["not valid JSON"]),
    "non-UTF-8 file": (b'{"format": "\xff\xfe"}', None, ["cannot read"]),
    "input longer than positional encodings": (
        _model(_set("positional", [[0, 0], [0, 1]])),
        _dataset(lambda o: o["examples"][1].update(input=[[0, 1], [1, 1], [2, 2]], target=[None, None, [0, 0]])),
        ["examples[1].input", "3 positions", "cover 2"]),
    "weights file missing": (_model(_set("weights", "absent.npz")), None, ["weights", "not found"]),
    "weights file not npz or safetensors": (_model(_set("weights", "model.json")), None, ["weights", ".json"]),
    "missing format tag": (_model(_delete("format")), None, ["missing key 'format'"]),
    "empty positional list": (_model(_set("positional", [])), None, ["positional", "empty"]),
    "head not an object": (_model(_set("layers.0.heads", [5])), None, ["heads[0]", "JSON object"]),
    "row not a list": (_model(_set("layers.0.W1", [{"a": 1}, [1, 2]])), None, ["W1[0]", "row"]),
    "too many layers": (_model(lambda o: o.__setitem__("layers", o["layers"] * 100)), None, ["layers", "limit 64"]),
    "number text too long": (json.dumps(MODEL).replace('"1/3"', "9" * 5000), None, ["W2[0][0]", "longer than"]),
    "JSON nested too deeply": ("[" * 100000 + "]" * 100000, None, ["nested too deeply"]),
    "target token not a list": (None, _dataset(_set("examples.0.target", [None, 5])), ["target[1]", "list"]),
    "layer norm gain wrong length": (
        _model(lambda o: o["layers"][0].update(norm="layernorm", ln1_gain=[1])), None, ["ln1_gain", "length"]),
}


def _write(folder: Path, name: str, content) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_clear_line(code: int, out: str, err: str, fragments: list[str]) -> None:
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("promptlimits: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_eval_input_exits_2_with_one_line(name, tmp_path, capsys):
    model, dataset, fragments = CASES[name]
    model_path = _write(tmp_path, "model.json", model) if model is not None else EXAMPLES / "one_layer.json"
    data_path = _write(tmp_path, "data.json", dataset) if dataset is not None else EXAMPLES / "two_examples.json"
    bad = data_path if dataset is not None else model_path  # a cross-file mismatch is the dataset's
    code, out, err = _run(capsys, ["eval", str(model_path), str(data_path)])
    _assert_one_clear_line(code, out, err, [str(bad)] + fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        n for n, c in (("model.json", model), ("data.json", dataset)) if c is not None)


def test_there_are_at_least_twenty_distinct_cases():
    assert len(CASES) >= 20


# ----------------------------------------------------------------------------- files, options


def _files_case(tmp_path: Path, kind: str) -> tuple[list[str], list[str]]:
    model, data, prompt = (str(EXAMPLES / n) for n in ("one_layer.json", "two_examples.json", "prompt.json"))
    if kind == "directory instead of file":
        return ["eval", str(tmp_path), data], [str(tmp_path), "directory"]
    if kind == "missing file":
        return ["eval", model, str(tmp_path / "nope.json")], ["nope.json", "cannot read"]
    if kind == "prompt with wrong d":
        bad = _write(tmp_path, "prompt.json", {"format": "promptlimits/prompt@1", "prompt": [[1, 2, 3]]})
        return ["eval", model, data, "--prompt", str(bad)], [str(bad), "[0]", "length"]
    if kind == "prompt with wrong format tag":
        bad = _write(tmp_path, "prompt.json", {"format": "promptlimits/prompt@9", "prompt": [[1, 2]]})
        return ["eval", model, data, "--prompt", str(bad)], [str(bad), "format"]
    if kind == "prompt entry not a number":
        bad = _write(tmp_path, "prompt.json", [[1, "x"]])
        return ["eval", model, data, "--prompt", str(bad)], [str(bad), "[0][1]", "not a number"]
    if kind == "bad --bits":
        return ["eval", model, data, "--bits", "3"], ["--bits"]
    if kind == "non-integer --bits":
        return ["eval", model, data, "--bits", "many"], ["--bits", "invalid int"]
    if kind == "unknown option":
        return ["eval", model, data, "--frobnicate"], ["unrecognized arguments", "--frobnicate"]
    if kind == "unknown command":
        return ["frobnicate", model], ["invalid choice", "frobnicate"]
    if kind == "missing argument":
        return ["eval", model], ["DATASET"]
    raise AssertionError(kind)


FILE_CASES = [
    "directory instead of file", "missing file", "prompt with wrong d", "prompt with wrong format tag",
    "prompt entry not a number", "bad --bits", "non-integer --bits", "unknown option", "unknown command",
    "missing argument",
]


@pytest.mark.parametrize("kind", FILE_CASES)
def test_bad_files_and_options_exit_2_with_one_line(kind, tmp_path, capsys):
    argv, fragments = _files_case(tmp_path, kind)
    code, out, err = _run(capsys, argv)
    _assert_one_clear_line(code, out, err, fragments)


# ----------------------------------------------------------------------------- binary weights


def _npz_model(tmp_path: Path, arrays: dict, allow_pickle: bool = False) -> Path:
    np.savez(tmp_path / "weights.npz", **arrays)
    header = {k: v for k, v in MODEL.items()}
    header["layers"] = [{"heads": [{}], "activation": "relu", "norm": None}]
    header["weights"] = "weights.npz"
    return _write(tmp_path, "model.json", header)


def _good_arrays() -> dict:
    eye = np.eye(2)
    return {"layers.0.heads.0.W_q": eye, "layers.0.heads.0.W_k": eye, "layers.0.heads.0.W_v": eye,
            "layers.0.heads.0.W_o": eye, "layers.0.W1": eye, "layers.0.b1": np.zeros(2),
            "layers.0.W2": eye, "layers.0.b2": np.zeros(2)}


@pytest.mark.parametrize("kind,fragments", [
    ("pickled object array", ["weights.npz", "cannot read weights"]),
    ("NaN weight", ["weights.npz", "NaN"]),
    ("wrong rank array", ["W1", "2-dimensional"]),
    ("missing array", ["W2", "missing"]),
])
def test_bad_binary_weights_exit_2(kind, fragments, tmp_path, capsys):
    arrays = _good_arrays()
    if kind == "pickled object array":
        arrays["layers.0.W1"] = np.array([{"a": 1}, None], dtype=object)
    elif kind == "NaN weight":
        arrays["layers.0.W2"] = np.array([[np.nan, 0.0], [0.0, 1.0]])
    elif kind == "wrong rank array":
        arrays["layers.0.W1"] = np.zeros((2, 2, 2))
    else:
        del arrays["layers.0.W2"]
    model = _npz_model(tmp_path, arrays)
    code, out, err = _run(capsys, ["eval", str(model), str(EXAMPLES / "two_examples.json")])
    _assert_one_clear_line(code, out, err, fragments)


# ----------------------------------------------------------------------------- no output file on error


@pytest.mark.parametrize("content", ["not json at all", '{"format": "something/else@1"}', b"\xff\xfe\x00"])
def test_recheck_bad_certificate_writes_no_junit(content, tmp_path, capsys):
    cert = _write(tmp_path, "cert.json", content)
    junit = tmp_path / "report.xml"
    code, out, err = _run(capsys, ["recheck", str(cert), "--junit", str(junit)])
    _assert_one_clear_line(code, out, err, [str(cert)])
    assert not junit.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.json"]


def test_recheck_missing_certificate(tmp_path, capsys):
    code, out, err = _run(capsys, ["recheck", str(tmp_path / "absent.json"), "--junit", str(tmp_path / "r.xml")])
    _assert_one_clear_line(code, out, err, ["absent.json"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["memorizable", "{model}", "{data}"], ["invertible", "{model}"]])
def test_deciding_commands_write_no_certificate_on_bad_input(command, tmp_path, capsys):
    bad = _write(tmp_path, "model.json", CASES["mis-shaped W1"][0])
    out_file = tmp_path / "cert.json"
    argv = [a.format(model=bad, data=EXAMPLES / "two_examples.json") for a in command] + ["--out", str(out_file)]
    code, out, err = _run(capsys, argv)
    _assert_one_clear_line(code, out, err, [str(bad), "W1"])
    assert not out_file.exists()


# ----------------------------------------------------------------------------- the console script


def _console_script() -> Optional[str]:
    local = Path(sys.executable).parent / "promptlimits"
    return str(local) if local.exists() else shutil.which("promptlimits")


@pytest.mark.parametrize("name", ["NaN literal", "d differs", "invalid JSON"])
def test_console_script_reports_one_line_and_exit_2(name, tmp_path):
    script = _console_script()
    if script is None:
        pytest.skip("console script promptlimits not installed")
    model, dataset, fragments = CASES[name]
    model_path = _write(tmp_path, "model.json", model) if model is not None else EXAMPLES / "one_layer.json"
    data_path = _write(tmp_path, "data.json", dataset) if dataset is not None else EXAMPLES / "two_examples.json"
    env = {k: v for k, v in os.environ.items() if k != "PROMPTLIMITS_DEBUG"}
    proc = subprocess.run([script, "eval", str(model_path), str(data_path), "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    _assert_one_clear_line(proc.returncode, proc.stdout, proc.stderr, fragments)


def test_console_script_recheck_with_junit_leaves_nothing(tmp_path):
    script = _console_script()
    if script is None:
        pytest.skip("console script promptlimits not installed")
    cert = _write(tmp_path, "cert.json", "{")
    proc = subprocess.run([script, "recheck", str(cert), "--junit", str(tmp_path / "r.xml")],
                          capture_output=True, text=True, timeout=120)
    _assert_one_clear_line(proc.returncode, proc.stdout, proc.stderr, [str(cert), "not valid JSON"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.json"]
