"""Re-verify certificates without any SMT solver: Fractions, sympy and intervals only.

Each claim kind has a checker module exposing ``recheck(cert, subjects) -> list[str]``
(the list of what was re-verified) that raises :class:`CheckFailed` on any discrepancy.
Checkers are imported by name so that this module, and everything it loads, never
imports z3.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Optional

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.spec import Dataset, Model
from promptlimits.proofs.certificate import CERT_FORMAT, CheckFailed, subjects

#: claim name -> module (under promptlimits.proofs) whose ``recheck`` verifies it.
CHECKERS: dict[str, str] = {"memorizable": "check_memorizable", "invertible": "check_invertible", "bounds": "check_bounds",
                          "layers": "check_layers", "universal": "check_universal", "audit": "check_audit"}


def read_certificate(path: str | Path) -> dict:
    """Parse a certificate file; InputError when it is not JSON or not a certificate."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{p}: cannot read certificate: {getattr(err, 'strerror', None) or err}") from None
    try:
        cert = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise InputError(f"{p}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except ValueError as err:
        raise InputError(f"{p}: {err}") from None
    if not isinstance(cert, dict) or cert.get("format") != CERT_FORMAT:
        raise InputError(f"{p}.format: expected {CERT_FORMAT!r}")
    return cert


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a finite number")


def recheck(cert: dict, model: Optional[Model] = None, dataset: Optional[Dataset] = None) -> list[str]:
    """Re-verify one certificate; returns what was checked, raises CheckFailed otherwise."""
    claim = cert.get("claim")
    if claim not in CHECKERS:
        raise CheckFailed(f"unknown claim {claim!r} (known: {', '.join(sorted(CHECKERS)) or 'none'})")
    checker = importlib.import_module(f"promptlimits.proofs.{CHECKERS[claim]}")
    try:
        subj = subjects(cert, model, dataset)
        checked = checker.recheck(cert, subj)
    except CheckFailed:
        raise
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError, InputError) as err:
        raise CheckFailed(f"malformed evidence: {type(err).__name__}: {err}") from None
    if not checked:
        raise CheckFailed("checker verified nothing")
    return checked
