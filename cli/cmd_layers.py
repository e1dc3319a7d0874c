"""``promptlimits layers MODEL [--input-radius R] [--prompt-radius RHO] [--json] [--out CERT]``.

THEORY §8 (Theorem 5): checks with certified rational bounds that every sublayer of a
causal ReLU stack is a contraction perturbation on its ball, hence that X ↦ τ_P(X) is
injective for every prompt with tokens ‖p‖ ≤ RHO on inputs with tokens ‖x‖ ≤ R, with the
lower bound Π(1 − L_s). Verdict "injective" (exit 0, certificate claim "layers") or
"unknown" (exit 3) with the failing sublayers and by how much, or "outside the theorem"
(bidirectional with L ≥ 2, GELU, layer norm). ``dataset_outcome`` serves ``memorizable``
for multi-layer models (same-output pairs inside the radii are not memorizable within RHO)
and ``bounds_outcome`` serves ``bounds`` (their certified loss floor).
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from typing import Any, Optional

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model
from promptlimits.constructions.numbers import format_decimal, format_exact, parse_exact
from promptlimits.constructions.spec import Dataset, Model
from promptlimits.outcome import EXIT_DECIDED, EXIT_UNKNOWN, Outcome, check_writable, json_bytes
from promptlimits.proofs.multilayer_injectivity import (
    METHOD, LayersDecision, decide, layers_certificate, norm_squared, sqrt_up,
)
from promptlimits.proofs.same_output_floor import same_output_floor

NAME = "layers"
HELP = "certify that a causal multi-layer model is injective in X for every prompt within a radius (THEORY §8)"

DEFAULT_RADIUS = "1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (promptlimits/model@1 JSON)")
    add_radius_arguments(p)
    p.add_argument("--out", metavar="CERT", help="write the certificate of an 'injective' verdict here")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def add_radius_arguments(p: argparse.ArgumentParser, input_default: Optional[str] = DEFAULT_RADIUS,
                         prompt_default: Optional[str] = DEFAULT_RADIUS) -> None:
    """--input-radius and --prompt-radius; a None default means "not given" (the commands that
    hand several-layer models to this one use the single-layer procedures without it)."""
    p.add_argument("--input-radius", metavar="R", default=input_default,
                   help="every input token has ‖x‖ ≤ R (exact decimal or p/q)"
                        + (f"; default {input_default}" if input_default else "; default: the dataset's largest token norm"))
    p.add_argument("--prompt-radius", metavar="RHO", default=prompt_default,
                   help="every prompt token has ‖p‖ ≤ RHO (exact decimal or p/q; default "
                        + (f"{prompt_default})" if prompt_default else
                           f"{DEFAULT_RADIUS} for several layers; when given, THEORY §8 applies, see `promptlimits layers`)"))


def radius(text: str, option: str) -> Fraction:
    value = parse_exact(text, option)
    if value < 0:
        raise InputError(f"{option}: must be non-negative, got {text}")
    return value


def run(args: argparse.Namespace) -> Outcome:
    R = radius(args.input_radius, "--input-radius")
    rho = radius(args.prompt_radius, "--prompt-radius")
    if args.out:
        check_writable(args.out, "certificate")
    model = load_model(args.model)
    dec = decide(model, R, rho)
    payload = decision_payload(model, dec)
    files = {}
    if args.out and dec.verdict == "injective":
        files[args.out] = json_bytes(layers_certificate(model, dec, model_path=str(args.model)))
        payload["certificate"] = str(args.out)
    elif args.out:
        payload["certificate"] = None
    return Outcome(payload, _text(payload), EXIT_DECIDED if dec.status == "decided" else EXIT_UNKNOWN, files)


def decision_payload(model: Model, dec: LayersDecision) -> dict[str, Any]:
    """The stable JSON keys plus per-sublayer constants and radii (exact strings and floats)."""
    return {
        "verdict": dec.verdict,
        "status": dec.status,
        "method": METHOD,
        "reason": dec.reason,
        "seconds": round(dec.seconds, 6),
        "outside_theorem": bool(dec.outside),
        "outside_reasons": list(dec.outside),
        "failures": list(dec.failures),
        "input_radius": format_exact(dec.input_radius),
        "prompt_radius": format_exact(dec.prompt_radius),
        "positional_bound": None if dec.positional is None else format_exact(dec.positional),
        "product": None if dec.product is None else format_exact(dec.product),
        "product_decimal": None if dec.product is None else format_decimal(dec.product, 12),
        "sublayers": [
            {"layer": i, "kind": kind, "lipschitz": format_exact(L), "lipschitz_float": float(L),
             "radius_in": format_exact(r_in), "radius_in_float": float(r_in)}
            for i, lb in enumerate(dec.layers)
            for kind, L, r_in in (("attention", lb.attention, lb.R), ("feed-forward", lb.feed_forward, max(lb.input_mid, lb.prompt_mid)))
        ],
        "radii": [{"layer": i, "input_in": float(lb.input_in), "prompt_in": float(lb.prompt_in),
                   "input_out": float(lb.input_out), "prompt_out": float(lb.prompt_out)}
                  for i, lb in enumerate(dec.layers)],
        "from_floats": model.from_floats,
    }


def _floor(model: Model, dataset: Dataset, input_radius: Optional[str], prompt_radius: str, out: Optional[str],
           model_path: str, dataset_path: str) -> tuple[dict[str, Any], bool, dict[str, bytes]]:
    """Theorem 5 plus the same-output floor: (payload, decided, files). Without R the input
    radius is the dataset's largest token norm (rounded up, exact when it is rational)."""
    if input_radius is None:
        R = sqrt_up(max(norm_squared(x) for ex in dataset.examples for x in ex.input))
    else:
        R = radius(input_radius, "--input-radius")
    rho = radius(prompt_radius, "--prompt-radius")
    if out:
        check_writable(out, "certificate")
    dec = decide(model, R, rho)
    floor = same_output_floor(model, dataset, dec)
    decided = floor.value > 0
    payload = decision_payload(model, dec)
    payload.update({
        "verdict": "not-memorizable" if decided else "unknown",
        "status": "decided" if decided else "unknown",
        "reason": floor.reason if decided or dec.verdict == "injective" else dec.reason,
        "scope": f"prompts of any length with tokens ‖p‖ ≤ {format_exact(rho)} (THEORY §8)",
        "loss_floor": format_exact(floor.value),
        "loss_floor_decimal": format_decimal(floor.value, 20),
        "pairs": [p.to_json() for p in floor.pairs],
    })
    files = {}
    if out and decided:
        cert = layers_certificate(model, dec, dataset, floor, model_path=model_path, dataset_path=dataset_path)
        files[out] = json_bytes(cert)
        payload["certificate"] = out
    elif out:
        payload["certificate"] = None
    return payload, decided, files


def dataset_outcome(model: Model, dataset: Dataset, input_radius: Optional[str], prompt_radius: str,
                    out: Optional[str], model_path: str, dataset_path: str) -> Outcome:
    """``memorizable`` for several layers: "not-memorizable" (within RHO, exit 0) when Theorem 5
    is certified and a same-output pair lies inside the radii, else "unknown" (exit 3)."""
    payload, decided, files = _floor(model, dataset, input_radius, prompt_radius, out, model_path, dataset_path)
    return Outcome(payload, _text(payload), EXIT_DECIDED if decided else EXIT_UNKNOWN, files)


def bounds_outcome(model: Model, dataset: Dataset, input_radius: Optional[str], prompt_radius: str,
                   out: Optional[str], model_path: str, dataset_path: str) -> Outcome:
    """``bounds`` for several layers: the §8 loss floor within RHO (0 when nothing is proven,
    and then no certificate); no prompt-length or LoRA bound is claimed (null). Exit 0."""
    payload, decided, files = _floor(model, dataset, input_radius, prompt_radius, out, model_path, dataset_path)
    payload.update({"verdict": payload["verdict"] if decided else "bounded", "status": "decided", "min_prompt_length": None, "lora_rank": None,
                    "loss_floor_method": METHOD, "loss_floor_reason": payload["reason"]})
    return Outcome(payload, _text(payload), EXIT_DECIDED, files)


def _text(p: dict) -> str:
    lines = [f"verdict: {p['verdict']} ({p['status']}; {p['method']})", f"reason: {p['reason']}",
             f"radii: inputs ‖x‖ ≤ {p['input_radius']}, prompt tokens ‖p‖ ≤ {p['prompt_radius']}"]
    for s in p["sublayers"]:
        lines.append(f"  layer {s['layer']} {s['kind']:<12} L ≤ {s['lipschitz_float']:.6g}  "
                     f"(radius {s['radius_in_float']:.6g})")
    if p["product"] is not None:
        lines.append(f"Π(1 − L_s) ≥ {p['product_decimal']}")
    if "loss_floor" in p:
        lines.append(f"certified loss floor: {p['loss_floor_decimal']} ({len(p['pairs'])} pair(s))")
    if p.get("certificate"):
        lines.append(f"certificate written to {p['certificate']}")
    if p["from_floats"]:
        lines.append("weights read from floats, taken as the exact rationals they denote")
    return "\n".join(lines)
