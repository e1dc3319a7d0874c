"""``promptlimits reproduce [--quick] [--out DIR]``: the catalogue of the paper's claims.

Runs every experiment of the catalogue (exact verdict beside numerics), then writes
``report.md`` (table "claim | exact verdict | numerics | agree" and plots), ``results.json``
and the PNG plots into DIR; with ``--certificates CDIR`` also one certificate per theorem
instance checked (a catalogue that ``promptlimits recheck CDIR --junit FILE`` re-verifies). Nothing is written unless every experiment finished. Exit code
0 when every row agrees, 1 otherwise (a disagreement is a bug in one of the layers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from promptlimits.constructions.errors import InputError
from promptlimits.outcome import EXIT_DECIDED, EXIT_INTERNAL, Outcome, json_bytes

NAME = "reproduce"
HELP = "check the paper's claims on built-in models: exact verdicts beside numerics, with report and plots"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small instances, under 3 minutes on 2 CPU cores")
    p.add_argument("--out", metavar="DIR", default="reproduce-out", help="output folder (default reproduce-out)")
    p.add_argument("--certificates", metavar="DIR",
                   help="also write one certificate per theorem instance checked into DIR (a proof-check catalogue)")
    p.add_argument("--only", metavar="KEYS", help="comma-separated experiment keys to run (e.g. E1,E4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the built-in instances (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="torch device (default auto)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def run(args: argparse.Namespace) -> Outcome:
    from promptlimits.numerics.catalogue import Settings, markdown_report
    from promptlimits.numerics.experiments import EXPERIMENTS
    from promptlimits.numerics.config import resolve_device

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if not out.parent.is_dir() and str(out.parent):
        raise InputError(f"{out}: parent folder {str(out.parent)!r} does not exist")
    chosen = EXPERIMENTS
    if args.only:
        keys = [k.strip().upper() for k in args.only.split(",") if k.strip()]
        known = {e.key for e in EXPERIMENTS}
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise InputError(f"--only: unknown experiment {unknown[0]!r} (known: {', '.join(sorted(known))})")
        chosen = tuple(e for e in EXPERIMENTS if e.key in keys)
    certs_dir = Path(args.certificates) if args.certificates else None
    if certs_dir is not None and certs_dir.exists() and not certs_dir.is_dir():
        raise InputError(f"{certs_dir}: exists and is not a folder")
    settings = Settings(quick=args.quick, seed=args.seed, device=str(resolve_device(args.device)),
                        progress=sys.stderr.isatty(), certificates=certs_dir is not None)
    start = time.perf_counter()
    results = []
    for experiment in chosen:
        print(f"[{experiment.key}] {experiment.title} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results.append(experiment.run(settings))
        print(f"[{experiment.key}] done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    rows = [asdict(r) for res in results for r in res.rows]
    agree = all(r["agree"] for r in rows)
    payload = {
        "quick": settings.quick,
        "seed": settings.seed,
        "device": settings.device,
        "agree": agree,
        "rows": rows,
        "out": str(out),
        "seconds": round(seconds, 3),
    }
    files = {str(out / "report.md"): markdown_report(results, settings, seconds).encode("utf-8"),
             str(out / "results.json"): (json.dumps(payload, indent=2, default=str) + "\n").encode("utf-8")}
    for res in results:
        for name, data in res.plots.items():
            files[str(out / name)] = data
    if certs_dir is not None:
        certificates = {name: c for res in results for name, c in res.certificates.items()}
        files.update({str(certs_dir / name): json_bytes(c) for name, c in certificates.items()})
        payload["certificates"] = sorted(certificates)
        certs_dir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    text = [f"{'claim':<70} agree"]
    text += [f"{r['experiment']} {r['claim'][:66]:<67} {'yes' if r['agree'] else 'NO'}" for r in rows]
    text.append(f"{sum(r['agree'] for r in rows)} of {len(rows)} rows agree; report in {out / 'report.md'}")
    return Outcome(payload, "\n".join(text), EXIT_DECIDED if agree else EXIT_INTERNAL, files)
