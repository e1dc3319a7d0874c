"""``promptlimits fuzz``: DESIGN.md's summary keys, exit codes, files, and one-line usage errors."""

from __future__ import annotations

import json

import pytest

from promptlimits import main as cli

FAST = ["--checks", "twin_matches_exact,prompt_order,known_answers", "--no-progress"]


def _run(args, capsys):
    code = cli.main(["fuzz", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_summary_has_the_design_keys_and_writes_summary(tmp_path, capsys):
    out_dir = tmp_path / "campaign"
    code, out, err = _run(["--examples", "11", "--seed", "9", "--json", "--out", str(out_dir), *FAST], capsys)
    assert code == 0, err
    payload = json.loads(out)
    for key in ("examples", "disagreements", "verdicts", "examples_per_second"):
        assert key in payload
    assert payload["examples"] == 11 and payload["disagreements"] == 0
    assert sum(payload["families"].values()) == 11
    assert payload["fixtures"] == []
    assert json.loads((out_dir / "summary.json").read_text())["verdicts"] == payload["verdicts"]
    assert err == ""  # no progress bar when stderr is not a tty


def test_same_seed_same_summary_in_text_mode(capsys):
    first = _run(["--examples", "6", "--seed", "1", *FAST], capsys)
    second = _run(["--examples", "6", "--seed", "1", *FAST], capsys)
    assert first[0] == second[0] == 0
    strip = lambda text: text.splitlines()[1:]  # noqa: E731  (line 1 carries the speed)
    assert strip(first[1]) == strip(second[1])
    assert "0 disagreement(s)" in first[1]


@pytest.mark.parametrize("args, message", [
    (["--examples", "0"], "--examples"),
    (["--workers", "0"], "--workers"),
    (["--address", "127.0.0.1:6379"], "--address needs --backend ray"),
    (["--checks", "no_such_check"], "no_such_check"),
    (["--profile", "huge"], "invalid choice"),
    (["--backend", "dask"], "invalid choice"),
])
def test_bad_usage_is_one_line_and_exit_2(args, message, capsys):
    code, out, err = _run(args, capsys)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_out_must_be_a_writable_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(["--examples", "1", "--out", str(blocker)], capsys)
    assert code == 2 and "not a folder" in err
    code, _, err = _run(["--examples", "1", "--out", str(tmp_path / "missing" / "deeper")], capsys)
    assert code == 2 and "cannot write" in err
