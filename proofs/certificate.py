"""The ``promptlimits/certificate@1`` envelope shared by every decided verdict.

A certificate states a claim about a model (and maybe a dataset), its verdict, and the
evidence that ``promptlimits recheck`` re-verifies with Fractions, sympy and intervals
only. The model and dataset are embedded in canonical form with their sha256; above
``EMBED_LIMIT`` bytes only the hash and the path are stored and recheck needs them given.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional

from promptlimits import __version__
from promptlimits.constructions.formats import (
    canonical_bytes, dataset_from_json, dataset_to_json, model_from_json, model_to_json, sha256_of,
)
from promptlimits.constructions.spec import Dataset, Model

CERT_FORMAT = "promptlimits/certificate@1"
EMBED_LIMIT = 1 << 20


class CheckFailed(Exception):
    """A certificate did not re-verify; the message says which check failed."""


def exact_number(text: object) -> Fraction:
    """An evidence number: an exact string ("3", "-1/2", "0.25"); anything else fails the check."""
    if not isinstance(text, str):
        raise CheckFailed(f"expected an exact number string, got {type(text).__name__} {text!r}"[:200])
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise CheckFailed(f"not an exact number: {text!r}"[:200]) from None


def exact_vector(items: object, d: Optional[int] = None, what: str = "vector") -> tuple[Fraction, ...]:
    """A list of exact number strings (of length ``d`` when given)."""
    if not isinstance(items, list) or (d is not None and len(items) != d):
        raise CheckFailed(f"{what}: expected a list of {d if d is not None else 'exact'} numbers")
    return tuple(exact_number(x) for x in items)


def _subject(obj: dict, path: Optional[str]) -> dict:
    data = canonical_bytes(obj)  # once: for a large model this is most of the work
    entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest()}
    if len(data) <= EMBED_LIMIT:
        entry["embedded"] = obj
    else:
        entry["path"] = path
    return entry


def solver_versions() -> dict[str, str]:
    """Versions of the tools a certificate was produced with (z3 only if it is loaded)."""
    import sys

    import flint
    import sympy

    versions = {
        "promptlimits": __version__,
        "python": platform.python_version(),
        "python-flint": flint.__version__,
        "sympy": sympy.__version__,
    }
    z3 = sys.modules.get("z3")
    if z3 is not None:
        versions["z3"] = z3.get_version_string()
    return versions


def make_certificate(
    claim: str,
    verdict: str,
    method: str,
    evidence: dict,
    model: Model,
    dataset: Optional[Dataset] = None,
    seconds: float = 0.0,
    smtlib: Optional[str] = None,
    model_path: Optional[str] = None,
    dataset_path: Optional[str] = None,
) -> dict:
    """Assemble a certificate; ``evidence`` must hold only JSON values (exact strings)."""
    cert: dict[str, Any] = {
        "format": CERT_FORMAT,
        "claim": claim,
        "verdict": verdict,
        "method": method,
        "model": _subject(model_to_json(model), model_path),
        "dataset": None if dataset is None else _subject(dataset_to_json(dataset), dataset_path),
        "evidence": evidence,
        "tool": solver_versions(),
        "seconds": round(seconds, 6),
    }
    if smtlib is not None:
        cert["smtlib"] = smtlib
    return cert


@dataclass(frozen=True)
class Subjects:
    """The model and dataset a certificate speaks about, verified against their hashes."""

    model: Model
    dataset: Optional[Dataset]


def subjects(cert: dict, model: Optional[Model] = None, dataset: Optional[Dataset] = None) -> Subjects:
    """Recover (and hash-check) the model and dataset of a certificate.

    Raises CheckFailed when an embedded object does not match its sha256, or when a given
    file's canonical form differs from the hash the certificate names.
    """
    entry = cert.get("model")
    if not isinstance(entry, dict):
        raise CheckFailed("certificate has no model entry")
    m = _recover(entry, model, model_to_json, model_from_json, "model")
    d = None
    if cert.get("dataset") is not None:
        d = _recover(cert["dataset"], dataset, dataset_to_json, dataset_from_json, "dataset")
    return Subjects(m, d)


def _recover(entry: dict, given: Any, to_json: Any, from_json: Any, what: str) -> Any:
    expected = entry.get("sha256")
    if given is not None:
        if sha256_of(to_json(given)) != expected:
            raise CheckFailed(f"the given {what} is not the one the certificate speaks about (sha256 differs)")
        return given
    if "embedded" not in entry:
        raise CheckFailed(f"the certificate does not embed its {what}; pass --{what}")
    obj = entry["embedded"]
    if sha256_of(obj) != expected:
        raise CheckFailed(f"embedded {what} does not match its sha256")
    value = from_json(obj, f"certificate {what}")
    # Only the canonical form is unambiguous: a JSON number such as 0.1 parses as the binary
    # float here but as 1/10 from a file, so a non-canonical embedding is refused.
    if sha256_of(to_json(value)) != expected:
        raise CheckFailed(f"embedded {what} is not in canonical form")
    return value
