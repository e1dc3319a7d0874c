"""``promptlimits recheck CERT|DIR [--model M] [--dataset D] [--junit FILE]``.

Re-verifies certificates without Z3. A folder is rechecked file by file (every
``promptlimits/certificate@1`` file among the ``*.json`` under it, sorted; other JSON files
such as models and datasets are skipped) and may be reported as JUnit XML for proof-check CI. Exit code 0 when
every certificate is valid, 1 when any fails.
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_dataset, load_model
from promptlimits.outcome import EXIT_DECIDED, EXIT_INTERNAL, Outcome, check_writable
from promptlimits.proofs.certificate import CERT_FORMAT, CheckFailed
from promptlimits.proofs.recheck import read_certificate, recheck

NAME = "recheck"
HELP = "re-verify a certificate (or a folder of them) without Z3"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cert", metavar="CERT", help="certificate file, or a folder of certificates")
    p.add_argument("--model", metavar="M", help="model file, for certificates that do not embed it")
    p.add_argument("--dataset", metavar="D", help="dataset file, for certificates that do not embed it")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (one test case per certificate)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def run(args: argparse.Namespace) -> Outcome:
    root = Path(args.cert)
    if not root.exists():
        raise InputError(f"{root}: no such file or folder")
    if args.junit:
        check_writable(args.junit, "JUnit")
    if root.is_dir():
        entries = [(p, c) for p in sorted(root.rglob("*.json")) if p.is_file() and (c := _folder_entry(p))]
        if not entries:
            raise InputError(f"{root}: no promptlimits/certificate@1 files in this folder")
    else:
        entries = [(root, read_certificate(root))]
    model = load_model(args.model) if args.model else None
    dataset = load_dataset(args.dataset) if args.dataset else None
    results = []
    for path, cert in entries:
        start = time.perf_counter()
        entry = {"path": str(path), "claim": None, "verdict": None, "valid": False, "checked": []}
        if isinstance(cert, InputError):
            entry["reason"] = f"unreadable certificate: {cert}"
        else:
            entry.update(claim=cert.get("claim"), verdict=cert.get("verdict"))
            try:
                entry.update(valid=True, checked=recheck(cert, model, dataset))
            except CheckFailed as err:
                entry["reason"] = str(err)
        entry["seconds"] = time.perf_counter() - start
        results.append(entry)
    valid = all(r["valid"] for r in results)
    payload = {
        "valid": valid,
        "checked": results[0]["checked"] if len(results) == 1 else [c for r in results for c in r["checked"]],
        "certificates": results,
    }
    files = {args.junit: _junit(results)} if args.junit else {}
    lines = []
    for r in results:
        status = "valid" if r["valid"] else f"INVALID: {r['reason']}"
        lines.append(f"{r['path']}: {r['claim']} = {r['verdict']}: {status}")
        lines.extend(f"    checked: {c}" for c in r["checked"])
    lines.append(f"{sum(r['valid'] for r in results)} of {len(results)} certificates valid")
    return Outcome(payload, "\n".join(lines), EXIT_DECIDED if valid else EXIT_INTERNAL, files)


def _folder_entry(path: Path) -> dict | InputError | None:
    """A folder's file as a certificate; None when it is well-formed JSON of another format (a
    model, a dataset: folders of certificates usually hold their subjects too); otherwise the
    InputError, reported as an invalid entry (a truncated file may have been a certificate)."""
    try:
        return read_certificate(path)
    except InputError as err:
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return err
        tag = obj.get("format") if isinstance(obj, dict) else None
        return err if tag == CERT_FORMAT or not isinstance(tag, str) else None


def _junit(results: list[dict]) -> bytes:
    failures = sum(not r["valid"] for r in results)
    suite = ET.Element("testsuite", name="promptlimits-recheck", tests=str(len(results)),
                       failures=str(failures), errors="0",
                       time=f"{sum(r['seconds'] for r in results):.6f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"recheck.{r['claim']}", name=r["path"],
                             time=f"{r['seconds']:.6f}")
        if r["valid"]:
            ET.SubElement(case, "system-out").text = "\n".join(r["checked"])
        else:
            ET.SubElement(case, "failure", message=r["reason"]).text = r["reason"]
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)
