"""What a subcommand returns, how it is printed, and atomic file output."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlimits.constructions.errors import InputError

EXIT_DECIDED = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3


@dataclass
class Outcome:
    """A command's result: the JSON payload, the human text, and the exit code."""

    payload: dict[str, Any]
    text: str
    code: int = EXIT_DECIDED
    files: dict[str, bytes] = field(default_factory=dict)


def emit(outcome: Outcome, as_json: bool) -> int:
    """Write the outcome's files atomically, then print it; returns its exit code."""
    for path, data in outcome.files.items():
        write_atomic(path, data)
    if as_json:
        sys.stdout.write(json.dumps(outcome.payload, indent=2, sort_keys=False, default=str) + "\n")
    else:
        sys.stdout.write(outcome.text.rstrip("\n") + "\n")
    sys.stdout.flush()
    return outcome.code


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail early (InputError) when ``path``'s folder does not exist or is not writable."""
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected an {what} file path")
    if not folder.is_dir():
        raise InputError(f"{p}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{p}: folder {str(folder)!r} is not writable")
    return p


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: never a partial file."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent) or ".")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; an output file gets the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def json_bytes(obj: Any) -> bytes:
    """Pretty JSON bytes for an output file."""
    return (json.dumps(obj, indent=2) + "\n").encode("utf-8")
