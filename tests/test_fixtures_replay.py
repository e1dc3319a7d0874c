"""Fuzz fixtures replay: every fixture committed under tests/fixtures/ must now agree.

A fixture is what ``promptlimits fuzz --out DIR`` wrote for a disagreement; committing it
turns the bug it found into a regression test. Findings not fixed yet wait in
tests/fixtures/open/ (not replayed here); move one up a folder once its bug is fixed. The folder may be empty, so the round trip
is also tested on a fixture produced through the real code path: a planted bug makes the
campaign write one, its replay reproduces the disagreement while the bug is there, and
agrees once it is gone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promptlimits import main as cli
from promptlimits.numerics.fuzz_fixtures import (
    FIXTURE_FORMAT, instance_from_json, instance_to_json, load_fixture, replay,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
COMMITTED = sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_fixture_now_agrees(path):
    fixture = load_fixture(path)
    assert replay(fixture, str(path)) is None, f"{path.name}: {fixture['check']} disagrees again: {fixture['what']}"


def test_fixture_written_by_the_cli_replays(tmp_path, monkeypatch, capsys):
    from promptlimits.proofs.exppoly import ExpPoly

    honest = ExpPoly.sign

    def flipped(self):
        s = honest(self)
        return -s if {c > 0 for _, c in self.terms} == {True, False} else s

    monkeypatch.setattr(ExpPoly, "sign", flipped)
    out = tmp_path / "found"
    code = cli.main(["fuzz", "--examples", "12", "--seed", "3", "--checks", "twin_matches_exact",
                     "--out", str(out), "--no-progress", "--json"])
    capsys.readouterr()
    assert code == 1
    paths = sorted(p for p in out.glob("*.json") if p.name != "summary.json")
    assert paths and (out / "summary.json").is_file()
    fixture = load_fixture(paths[0])
    assert fixture["format"] == FIXTURE_FORMAT and fixture["check"] == "twin_matches_exact"
    again = replay(fixture)
    assert again is not None and again.what == fixture["what"]
    monkeypatch.setattr(ExpPoly, "sign", honest)
    assert replay(fixture) is None


def test_instance_json_round_trip_is_exact():
    from promptlimits.numerics.fuzz_campaign import make_instance

    for i in range(11):  # one of every family
        inst = make_instance(4, i, "ci")
        assert instance_from_json(instance_to_json(inst), "instance") == inst
