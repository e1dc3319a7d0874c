"""promptlimits reproduce: the report's files, agreement, and the bad-input contract."""

import json

from promptlimits.main import main


def test_invariance_experiment_writes_report_json_and_plot(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["reproduce", "--quick", "--only", "E4", "--out", str(out), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["agree"] is True
    assert [r["experiment"] for r in payload["rows"]] == ["E4"]
    assert payload["rows"][0]["details"]["max_relative_shift"] < 1e-12
    report = (out / "report.md").read_text()
    assert "| E4 |" in report and "| yes |" in report
    assert json.loads((out / "results.json").read_text())["rows"] == payload["rows"]
    assert (out / "e4_attention_mass.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_experiment_is_bad_input_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "--quick", "--only", "E9", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "E9" in err[0]
    assert not out.exists()


def test_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["reproduce", "--quick", "--only", "E4", "--out", str(target)]) == 2
    assert target.read_text() == "x"
