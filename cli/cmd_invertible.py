"""``promptlimits invertible MODEL [--layer L] [--method auto|lipschitz|exact] [--timeout S]``.

Decides whether layer L's feed-forward block f(x) = x + W2 ReLU(W1 x + b1) + b2 is
injective (THEORY §7): injective | not-injective | unknown. A not-injective verdict
carries an exact collision; ``--out`` writes a certificate (claim "invertible") that
``promptlimits recheck`` verifies without Z3. Exit 0 decided, 3 unknown, 2 bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model
from promptlimits.constructions.numbers import format_exact
from promptlimits.outcome import EXIT_DECIDED, EXIT_UNKNOWN, Outcome, check_writable, json_bytes
from promptlimits.proofs.certificate import make_certificate
from promptlimits.proofs.invertibility import METHODS, REGION_LIMIT, decide

NAME = "invertible"
HELP = "is a layer's feed-forward block x + W2 ReLU(W1 x + b1) + b2 injective?"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (promptlimits/model@1 JSON)")
    p.add_argument("--layer", type=int, default=0, metavar="L", help="layer index, 0-based (default 0)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="lipschitz: norm certificate only; exact: monotone certificate, then activation regions; auto: norms first, then exact (past the region limit: a Z3 collision search)")
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (verdict unknown)")
    p.add_argument("--region-limit", type=int, default=REGION_LIMIT, metavar="N",
                   help=f"largest number of activation regions the exact route lists (default {REGION_LIMIT})")
    p.add_argument("--out", metavar="CERT", help="write a certificate for a decided verdict")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def run(args: argparse.Namespace) -> Outcome:
    if args.timeout is not None and not args.timeout > 0:
        raise InputError("promptlimits invertible: --timeout must be positive")
    if args.region_limit < 1:
        raise InputError("promptlimits invertible: --region-limit must be positive")
    if args.out:
        check_writable(args.out, "certificate")
    model = load_model(args.model)
    if not 0 <= args.layer < len(model.layers):
        raise InputError(f"{args.model}: --layer {args.layer} out of range (the model has {len(model.layers)} layers, 0-based)")
    dec = decide(model.layers[args.layer], args.method, args.timeout, args.region_limit)
    payload: dict[str, Any] = {
        "verdict": dec.verdict,
        "status": dec.status,
        "method": dec.method,
        "reason": dec.reason,
        "seconds": round(dec.seconds, 6),
        "layer": args.layer,
        "norm_product": None if dec.norm_product is None else format_exact(dec.norm_product),
        "norm_product_float": None if dec.norm_product is None else float(dec.norm_product),
        "regions": dec.region_count,
        "determinant_signs": dec.det_signs,
        "from_floats": model.from_floats,
    }
    if dec.collision is not None:
        payload["witness"] = {"collision": [[format_exact(v) for v in x] for x in dec.collision]}
    files = {}
    if args.out and dec.status == "decided" and dec.evidence is not None:
        evidence = dict(dec.evidence, layer=args.layer)
        cert = make_certificate("invertible", dec.verdict, dec.method, evidence, model, seconds=dec.seconds,
                                model_path=args.model)
        files[args.out] = json_bytes(cert)
        payload["certificate"] = args.out
    return Outcome(payload, _text(payload), EXIT_DECIDED if dec.status == "decided" else EXIT_UNKNOWN, files)


def _text(payload: dict) -> str:
    lines = [f"layer {payload['layer']}: {payload['verdict']} ({payload['method']}): {payload['reason']}"]
    if payload["norm_product"] is not None:
        lines.append(f"norm product bound ‖W2‖‖W1‖ ≤ {payload['norm_product_float']:.6g}")
    if payload["regions"] is not None:
        lines.append(f"regions: {payload['regions']}; determinant signs: {payload['determinant_signs']}")
    if "witness" in payload:
        x, x2 = payload["witness"]["collision"]
        lines.append(f"collision: f({', '.join(x)}) = f({', '.join(x2)})")
    if payload["from_floats"]:
        lines.append("weights read from floats, taken as the exact rationals they denote")
    if "certificate" in payload:
        lines.append(f"certificate written to {payload['certificate']}")
    return "\n".join(lines)
