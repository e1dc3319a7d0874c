"""The ``promptlimits`` command: subcommand dispatch and the common contract of DESIGN.md.

Exit codes: 0 decided (whatever the verdict), 3 unknown, 2 bad input or usage (one line on
stderr, no traceback, nothing written), 1 internal error or failed recheck. With ``--json``
stdout is exactly one JSON object. Each subcommand lives in its own ``cmd_*.py`` module
exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> Outcome``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from typing import Optional, Sequence

from promptlimits import __version__
from promptlimits import (
    cmd_audit, cmd_bounds, cmd_construct, cmd_eval, cmd_fuzz, cmd_import, cmd_invertible, cmd_layers, cmd_memorizable, cmd_recheck,
    cmd_reproduce, cmd_train,
)
from promptlimits.constructions.errors import InputError
from promptlimits.outcome import EXIT_BAD_INPUT, EXIT_INTERNAL, Outcome, emit

#: In the order ``--help`` lists them: decisions, constructions, numerics, campaigns, re-checking.
COMMANDS = (cmd_invertible, cmd_layers, cmd_memorizable, cmd_bounds, cmd_construct, cmd_import, cmd_eval, cmd_train,
            cmd_reproduce, cmd_fuzz, cmd_audit, cmd_recheck)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="promptlimits",
        description="Exact, certificate-producing checks of what soft-prompt tuning can and cannot do.",
    )
    parser.add_argument("--version", action="version", version=f"promptlimits {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns the exit code. Exact numbers of any size are printed and read
    (the process is ours: CPython's 4300-digit int ↔ str cap is lifted for the run)."""
    sys.set_int_max_str_digits(0)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "_module", None) is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        start = time.perf_counter()
        outcome: Outcome = args._module.run(args)
        outcome.payload.setdefault("seconds", round(time.perf_counter() - start, 6))
        return emit(outcome, as_json=getattr(args, "json", False))
    except InputError as err:
        print(f"promptlimits: error: {_one_line(str(err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("promptlimits: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as err:  # an internal error: one line, full trace only on request
        if os.environ.get("PROMPTLIMITS_DEBUG"):
            traceback.print_exc()
        print(f"promptlimits: internal error: {type(err).__name__}: {_one_line(str(err))}", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


if __name__ == "__main__":
    raise SystemExit(main())
