"""``promptlimits memorizable MODEL DATASET [--prompt-length M] [--timeout S] [--out CERT]``.

Decides whether some prompt (of M tokens, or of any length) makes the one-layer model meet
every constrained target exactly (THEORY §2–§3). "memorizable" comes with a witness prompt
(exact strings where the entries are rational, decimals with 40 significant digits
otherwise, and the exact symbolic tokens); "not-memorizable" with evidence that
``promptlimits recheck`` verifies without Z3. Exit 0 decided, 3 unknown, 2 bad input.
"""

from __future__ import annotations

import argparse
import time

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model_and_dataset
from promptlimits.cmd_layers import add_radius_arguments, dataset_outcome
from promptlimits.outcome import EXIT_DECIDED, EXIT_UNKNOWN, Outcome, check_writable, json_bytes
from promptlimits.proofs.certificate import make_certificate
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.proofs.memorization import Decision, decide
from promptlimits.proofs.prompt_witness import as_rational
from promptlimits.proofs.reachable import MAX_WITNESS_TOKENS

NAME = "memorizable"
HELP = "decide exactly whether some prompt realises every constrained target (one layer)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (promptlimits/model@1 JSON)")
    p.add_argument("dataset", metavar="DATASET", help="dataset file (promptlimits/dataset@1 JSON)")
    p.add_argument("--prompt-length", type=int, metavar="M", help="decide for prompts of exactly M tokens (default: any length)")
    p.add_argument("--timeout", type=float, metavar="S", help="give up with 'unknown' after S seconds")
    p.add_argument("--out", metavar="CERT", help="write the certificate of a decided verdict here")
    add_radius_arguments(p, input_default=None, prompt_default=None)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def run(args: argparse.Namespace) -> Outcome:
    if args.prompt_length is not None and not 1 <= args.prompt_length <= MAX_WITNESS_TOKENS:
        raise InputError(f"promptlimits memorizable: --prompt-length must be between 1 and {MAX_WITNESS_TOKENS}")
    if args.timeout is not None and not args.timeout > 0:
        raise InputError("promptlimits memorizable: --timeout must be positive")
    if args.out:
        check_writable(args.out, "certificate")
    model, dataset = load_model_and_dataset(args.model, args.dataset)
    if len(model.layers) >= 2 or args.prompt_radius is not None:
        return dataset_outcome(model, dataset, args.input_radius, args.prompt_radius or "1", args.out,
                               str(args.model), str(args.dataset))
    start = time.perf_counter()
    dec = decide(model, dataset, length=args.prompt_length, timeout=args.timeout)
    seconds = time.perf_counter() - start
    decided = dec.verdict != "unknown"
    payload = {
        "verdict": dec.verdict,
        "status": "decided" if decided else "unknown",
        "method": dec.method,
        "reason": dec.reason,
        "seconds": round(seconds, 6),
        "prompt_length": dec.witness.length if dec.witness is not None else args.prompt_length,
        "from_floats": model.from_floats,
    }
    if dec.witness is not None:
        payload["witness"] = _witness(dec)
    if dec.smtlib is not None:
        payload["smt"] = {"result": dec.smt_result, "smtlib": dec.smtlib}
    if decided:
        payload["evidence"] = _summary(dec)
    files = {}
    if args.out and decided:
        cert = make_certificate("memorizable", dec.verdict, dec.method, dec.evidence, model, dataset, seconds,
                                model_path=str(args.model), dataset_path=str(args.dataset))
        files[args.out] = json_bytes(cert)
        payload["certificate"] = str(args.out)
    elif args.out:
        payload["certificate"] = None
    return Outcome(payload, _text(payload), EXIT_DECIDED if decided else EXIT_UNKNOWN, files)


def _witness(dec: Decision) -> dict:
    """Entries as exact strings when rational, else decimals (40 significant digits)."""
    exact = dec.witness.exact()
    decimals = dec.witness.decimals(dec.query)
    prompt = []
    for ex_row, dec_row, tok in zip(exact, decimals, _tokens(dec)):
        row = []
        for k, (e, x) in enumerate(zip(ex_row, dec_row)):
            q = _rational_entry(tok, k)
            row.append(e if q is not None else x)
        prompt.append(row)
    return {"prompt": prompt, "prompt_exact": exact,
            "kind": "entropy" if dec.witness.entropy is not None else "tokens",
            "note": "entries that are not rational are decimals with 40 significant digits; "
                    "prompt_exact gives every entry exactly ('alpha' is the root of H(alpha) = log R "
                    "for an entropy prompt, see the certificate)"}


def _tokens(dec: Decision) -> list:
    return list(dec.witness.tokens) if dec.witness.entropy is None else [None] * dec.witness.length


def _rational_entry(tok, k: int):
    if tok is None or (tok.log_arg is not None and tok.direction[k] != 0):
        return None
    return as_rational(ExpFrac(tok.base.nums[k], tok.base.den))


def _summary(dec: Decision) -> dict:
    ev = dec.evidence
    out = {"route": ev.get("route"), "completeness": ev.get("completeness")}
    if "combinations" in ev:
        out["combinations"] = len(ev["combinations"])
        out["refutations"] = [c["text"] for c in ev["combinations"]][:8]
    return out


def _text(p: dict) -> str:
    lines = [f"verdict: {p['verdict']} ({p['status']}; {p['method']})", f"reason: {p['reason']}"]
    if "witness" in p:
        lines.append(f"witness prompt, {p['prompt_length']} token(s):")
        lines.extend(f"  p{j} = [{', '.join(row)}]" for j, row in enumerate(p["witness"]["prompt"]))
    if p.get("certificate"):
        lines.append(f"certificate written to {p['certificate']}")
    elif "certificate" in p:
        lines.append("no certificate: the verdict is unknown")
    lines.append(f"{p['seconds']:.3f} s")
    return "\n".join(lines)
