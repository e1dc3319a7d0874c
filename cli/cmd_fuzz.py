"""``promptlimits fuzz``: adversarial instances cross-checked across the exact, symbolic and numeric layers.

Every example is drawn deterministically from (seed, index, profile), so the same seed
gives the same examples and verdicts on every backend. Each disagreement becomes a
self-contained JSON fixture under ``--out`` (with ``summary.json``); exit code 0 when no
check disagreed, 1 when one did (a disagreement is a bug in some layer).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from promptlimits.constructions.adversarial import SIZES
from promptlimits.constructions.errors import InputError
from promptlimits.outcome import EXIT_DECIDED, EXIT_INTERNAL, Outcome, json_bytes

NAME = "fuzz"
HELP = "fuzz the theory: adversarial instances cross-checked between exact, symbolic and torch layers"

MAX_EXAMPLES = 10_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--examples", type=int, default=200, metavar="N", help="number of examples (default 200)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="campaign seed (default 0)")
    p.add_argument("--profile", choices=tuple(SIZES), default="ci", help="instance sizes (default ci)")
    p.add_argument("--workers", type=int, default=1, metavar="K", help="parallel workers (default 1: in-process)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local process pool, or Ray (optional extra: pip install 'promptlimits[ray]')")
    p.add_argument("--address", metavar="A", help="with --backend ray: join the Ray cluster at A instead of starting one")
    p.add_argument("--checks", metavar="NAMES", help="comma-separated subset of the registered checks (default: all)")
    p.add_argument("--out", metavar="DIR", help="write one fixture per disagreement and summary.json here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it is off anyway when stderr is not a tty)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def _validate(args: argparse.Namespace) -> tuple[str, ...]:
    if not 1 <= args.examples <= MAX_EXAMPLES:
        raise InputError(f"promptlimits fuzz: --examples must be between 1 and {MAX_EXAMPLES}")
    if not 1 <= args.workers <= 1024:
        raise InputError("promptlimits fuzz: --workers must be between 1 and 1024")
    if args.address and args.backend != "ray":
        raise InputError("promptlimits fuzz: --address needs --backend ray")
    if args.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InputError("promptlimits fuzz: --backend ray needs Ray (pip install 'promptlimits[ray]')") from None
    from promptlimits.numerics.fuzz_checks import CHECKS  # torch is loaded only by this command

    checks = tuple(CHECKS) if not args.checks else tuple(c.strip() for c in args.checks.split(",") if c.strip())
    unknown = [c for c in checks if c not in CHECKS]
    if unknown or not checks:
        raise InputError(f"promptlimits fuzz: --checks: unknown {', '.join(unknown) or '(empty)'}; "
                         f"known: {', '.join(CHECKS)}")
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder")
        parent = out if out.exists() else out.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise InputError(f"{out}: cannot write there")
    return checks


def run(args: argparse.Namespace) -> Outcome:
    checks = _validate(args)
    from promptlimits.numerics.fuzz_campaign import run_campaign
    from promptlimits.numerics.fuzz_fixtures import fixture_bytes, fixture_name

    result = run_campaign(args.examples, args.seed, args.profile, args.workers, args.backend, args.address,
                          checks, progress=not args.no_progress)
    summary = result.summary()
    payload = {**summary, "seed": args.seed, "profile": args.profile, "workers": args.workers,
               "backend": args.backend, "checks": list(checks), "fixtures": []}
    files: dict[str, bytes] = {}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for fixture in result.fixtures:
            path = str(out / fixture_name(fixture))
            files[path] = fixture_bytes(fixture)
            payload["fixtures"].append(path)
        files[str(out / "summary.json")] = json_bytes(payload)
    code = EXIT_DECIDED if summary["disagreements"] == 0 else EXIT_INTERNAL
    return Outcome(payload, _text(payload), code, files)


def _text(payload: dict) -> str:
    lines = [
        f"{payload['examples']} examples ({payload['profile']} profile, seed {payload['seed']}, "
        f"{payload['workers']} worker(s), {payload['backend']}): {payload['disagreements']} disagreement(s), "
        f"{payload['examples_per_second']} examples/s",
        "verdicts: " + (json.dumps(payload["verdicts"]) if payload["verdicts"] else "none"),
    ]
    lines.extend(f"  DISAGREEMENT example {d['index']} ({d['family']}), {d['check']}: {d['what']}" for d in payload["found"])
    lines.extend(f"  fixture: {p}" for p in payload["fixtures"])
    return "\n".join(lines)
