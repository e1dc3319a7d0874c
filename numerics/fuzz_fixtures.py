"""Fuzz fixtures: a disagreement saved as a self-contained JSON file, and its replay.

A fixture (``promptlimits/fuzz-fixture@1``) holds the model, dataset and prompt in the
exact canonical formats, what the construction knew (expected verdicts, collision,
margin), the check that disagreed with the seed its randomness came from, and what
disagreed. ``replay`` rebuilds the instance and runs the same check with the same seed, so
a committed fixture is a regression test: it passes once the bug it found is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from promptlimits.constructions.adversarial import Instance
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import (
    dataset_from_json, dataset_to_json, model_from_json, model_to_json, parse_json_text, prompt_from_json,
    prompt_to_json,
)
from promptlimits.constructions.numbers import format_exact, parse_exact
from promptlimits.numerics.fuzz_case import CHECK_SECONDS, time_limit
from promptlimits.numerics.fuzz_checks import CHECKS, Case, Disagreement

FIXTURE_FORMAT = "promptlimits/fuzz-fixture@1"


def instance_to_json(inst: Instance) -> dict:
    """The instance in canonical exact JSON (numbers as exact strings)."""
    return {
        "family": inst.family,
        "model": model_to_json(inst.model),
        "dataset": dataset_to_json(inst.dataset),
        "prompt": prompt_to_json(inst.prompt, inst.model.d),
        "expected": [list(pair) for pair in inst.expected],
        "collision": None if inst.collision is None else [[format_exact(x) for x in v] for v in inst.collision],
        "margin": None if inst.margin is None else format_exact(inst.margin),
    }


def instance_from_json(obj: Any, where: str) -> Instance:
    """Rebuild an :class:`Instance`; InputError names the field that is wrong."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object")
    try:
        collision = obj.get("collision")
        return Instance(
            family=str(obj["family"]),
            model=model_from_json(obj["model"], f"{where}.model"),
            dataset=dataset_from_json(obj["dataset"], f"{where}.dataset"),
            prompt=prompt_from_json(obj["prompt"], f"{where}.prompt"),
            expected=tuple((str(c), str(v)) for c, v in obj.get("expected", [])),
            collision=None if collision is None else tuple(
                tuple(parse_exact(x, f"{where}.collision") for x in vec) for vec in collision),  # type: ignore[arg-type]
            margin=None if obj.get("margin") is None else parse_exact(obj["margin"], f"{where}.margin"),
        )
    except KeyError as err:
        raise InputError(f"{where}: missing field {err.args[0]!r}") from None


def make_fixture(inst: Instance, seed: int, disagreement: Disagreement, origin: dict) -> dict:
    """A self-contained fixture for one disagreement (``origin``: campaign seed, index, profile)."""
    return {
        "format": FIXTURE_FORMAT,
        "check": disagreement.check,
        "seed": str(seed),
        "what": disagreement.what,
        "details": disagreement.details,
        "origin": origin,
        "instance": instance_to_json(inst),
    }


def fixture_name(fixture: dict) -> str:
    """A file name that is stable for the same (check, seed)."""
    return f"{fixture['check']}-{int(fixture['seed']):016x}.json"


def load_fixture(path: str | Path) -> dict:
    """Read a fixture file (exact number literals kept)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"{p}: cannot read fixture: {err.strerror or err}") from None
    obj = parse_json_text(text, str(p))
    if not isinstance(obj, dict) or obj.get("format") != FIXTURE_FORMAT:
        raise InputError(f"{p}.format: expected {FIXTURE_FORMAT!r}")
    return obj


def fixture_bytes(fixture: dict) -> bytes:
    return (json.dumps(fixture, indent=1, sort_keys=True) + "\n").encode("utf-8")


def replay(fixture: dict, where: str = "fixture") -> Optional[Disagreement]:
    """Run the fixture's check on its instance with its seed, within the campaign's time budget:
    None when they now agree (a check that still hangs raises CheckTimeout)."""
    check = str(fixture.get("check"))
    if check not in CHECKS:
        raise InputError(f"{where}.check: unknown check {check!r}")
    inst = instance_from_json(fixture.get("instance"), f"{where}.instance")
    profile = str((fixture.get("origin") or {}).get("profile", "ci"))
    if profile not in CHECK_SECONDS:
        raise InputError(f"{where}.origin.profile: unknown profile {profile!r}")
    with time_limit(CHECK_SECONDS[profile]):
        return CHECKS[check](Case(inst, int(str(fixture["seed"])), profile))
