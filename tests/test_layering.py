"""The one-way data flow of DESIGN.md: proofs never imports torch, and the re-checker (with
every registered checker) never imports z3 — checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_proofs_never_import_torch():
    modules = sorted(p.stem for p in (ROOT / "proofs").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module('promptlimits.proofs.' + name)\n"
        "    assert 'torch' not in sys.modules, 'torch imported by promptlimits.proofs.' + name\n"
    )
    _run(code)


def test_recheck_and_every_checker_never_import_z3():
    code = (
        "import importlib, sys\n"
        "from promptlimits.proofs.recheck import CHECKERS\n"
        "import promptlimits.cmd_recheck\n"
        "for claim, name in sorted(CHECKERS.items()):\n"
        "    importlib.import_module('promptlimits.proofs.' + name)\n"
        "    assert 'z3' not in sys.modules, 'z3 imported by the checker of ' + claim\n"
    )
    _run(code)
