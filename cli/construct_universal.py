"""``promptlimits construct universal|prompt``: THEORY §9's transformer g and its prompts P_f.

- ``construct universal --d D --n N --lipschitz L --epsilon E --out MODEL``: g with δ, η, β
  chosen from (D, N, L, E); prints the parameters and the error budget.
- ``construct prompt MODEL TARGET --out PROMPT [--epsilon E [--certificate CERT]] [--samples K]``:
  P_f for a built-in target (linear, sort, smooth, random) or a grid-target@1 JSON file;
  with --epsilon the bound on every cell minus its bands is proven (exit 3 when it is not
  ≤ E) and --certificate writes the ``universal`` certificate; --samples measures the error
  of the float64 torch twin on random inputs.

Proving the bound costs about N² softmax terms in ball arithmetic (N = K^{dn} prompt tokens):
about 2 s at N = 225 on one core.
"""

from __future__ import annotations

import argparse
from typing import Any

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model, model_to_json, prompt_to_json, read_json
from promptlimits.constructions.numbers import format_exact, parse_exact
from promptlimits.constructions.universal import budget, choose_params, read_params, universal_model
from promptlimits.constructions.universal_prompt import (
    TARGETS, builtin_target, check_target, construct_prompt, target_from_json,
)
from promptlimits.outcome import EXIT_UNKNOWN, Outcome, check_writable, json_bytes
from promptlimits.proofs.universal_bound import Grid
from promptlimits.proofs.universal_certificate import certify_universal


def add_parsers(sub: Any) -> None:
    uni = sub.add_parser("universal", help="THEORY §9: one transformer g that prompts turn into any L-Lipschitz map")
    uni.add_argument("--d", type=int, required=True, metavar="D", help="token dimension")
    uni.add_argument("--n", type=int, required=True, metavar="N", help="number of input positions")
    uni.add_argument("--lipschitz", required=True, metavar="L", help="Lipschitz constant of the targets (exact)")
    uni.add_argument("--epsilon", required=True, metavar="E", help="error bound off the bands (exact)")
    uni.add_argument("--out", metavar="MODEL", required=True, help="write the model here")
    uni.add_argument("--json", action="store_true", help="print exactly one JSON object")
    pr = sub.add_parser("prompt", help="THEORY §9: the prompt P_f of a target for a universal model")
    pr.add_argument("model", metavar="MODEL", help="a model written by 'construct universal'")
    pr.add_argument("target", metavar="TARGET", help=f"built-in ({', '.join(TARGETS)}) or a grid-target@1 JSON file")
    pr.add_argument("--out", metavar="PROMPT", required=True, help="write the prompt here")
    pr.add_argument("--lipschitz", metavar="L", default="1", help="Lipschitz constant of the random target (default 1)")
    pr.add_argument("--seed", type=int, default=0, help="seed of the random target and of the samples")
    pr.add_argument("--epsilon", metavar="E", help="prove the error bound E on every cell minus its bands")
    pr.add_argument("--certificate", metavar="CERT", help="write the universal certificate here (needs --epsilon)")
    pr.add_argument("--samples", type=int, default=0, metavar="K", help="measure the error on K random inputs (torch)")
    pr.add_argument("--json", action="store_true", help="print exactly one JSON object")


def _positive(text: str, what: str) -> Any:
    value = parse_exact(text, what)
    if value <= 0:
        raise InputError(f"{what}: must be positive")
    return value


def universal(args: argparse.Namespace) -> Outcome:
    check_writable(args.out, "model")
    L = _positive(args.lipschitz, "--lipschitz")
    eps = _positive(args.epsilon, "--epsilon")
    p = choose_params(args.d, args.n, L, eps)
    model = universal_model(p)
    b = budget(p, L)
    payload = {
        "construction": "universal", "model": str(args.out), "d": p.d, "n": p.n,
        "lipschitz": format_exact(L), "epsilon": format_exact(eps),
        "K": p.K, "delta": format_exact(p.delta), "eta": format_exact(p.eta),
        "beta_gather": format_exact(p.beta_gather), "beta_retrieve": format_exact(p.beta_retrieve),
        "prompt_length": p.prompt_length, "depth": len(model.layers), "width": model.d,
        "hidden": [layer.hidden for layer in model.layers], "heads": [len(layer.heads) for layer in model.layers],
        "attention": model.attention, "budget": b.to_json(),
    }
    text = "\n".join([
        f"wrote {args.out}: {len(model.layers)} layers (quantise, gather, retrieve + clean-up), width {model.d}, "
        f"hidden {payload['hidden']}, bidirectional",
        f"grid K = {p.K} (delta = {p.delta}), bands eta = {p.eta}, beta_gather = {p.beta_gather}, "
        f"beta_retrieve = {p.beta_retrieve}, prompt length N = {p.K}^{p.d * p.n} = {p.prompt_length}",
        f"error budget: quantisation L*delta*sqrt(dn)/2 = {b.quantisation:.4g} + retrieval leakage "
        f"(N+n-1)e^(-beta_r delta^2/2)sqrt(d) = {b.retrieval:.4g} = {b.total:.4g} <= {float(eps):.4g} "
        f"(gather leakage |G - c| <= {b.gather:.3g} <= delta/4)",
        f"bands measure <= dn(K-1)eta = {b.bands_measure:.4g}",
    ])
    return Outcome(payload, text, files={args.out: json_bytes(model_to_json(model))})


def prompt(args: argparse.Namespace) -> Outcome:
    check_writable(args.out, "prompt")
    if args.certificate is not None:
        if args.epsilon is None:
            raise InputError("--certificate needs --epsilon")
        check_writable(args.certificate, "certificate")
    if args.samples < 0:
        raise InputError("--samples must be non-negative")
    model = load_model(args.model)
    p = read_params(model)
    if args.target in TARGETS:
        target = builtin_target(args.target, p, _positive(args.lipschitz, "--lipschitz"), args.seed)
    else:
        target = target_from_json(read_json(args.target, "target"), p, str(args.target))
    pairs = check_target(target)
    P = construct_prompt(p, target)
    files = {args.out: json_bytes(prompt_to_json(P, model.d))}
    payload: dict[str, Any] = {
        "construction": "prompt", "prompt": str(args.out), "target": target.name, "prompt_length": len(P),
        "lipschitz": format_exact(target.lipschitz), "lipschitz_pairs_checked": pairs,
    }
    text = [f"wrote {args.out}: {len(P)} prompt tokens (one per grid sequence) for target {target.name} "
            f"(L = {target.lipschitz}, {pairs} grid pairs checked)"]
    code = 0
    if args.epsilon is not None:
        eps = _positive(args.epsilon, "--epsilon")
        v = certify_universal(model, P, Grid(p.d, p.n, p.K, p.eta), target, eps)
        payload.update(verdict=v.verdict, status="decided" if v.verdict == "holds" else "unknown",
                       method="universal cell bound", reason=v.reason or None, seconds=round(v.seconds, 6),
                       bound=None if v.bounds is None else format_exact(v.bounds.total),
                       bands_measure=format_exact(Grid(p.d, p.n, p.K, p.eta).bands_measure()))
        if v.verdict == "holds":
            text.append(f"proven: max_i |g([P,X])_i - f(X)_i| <= {float(v.bounds.total):.6g} <= {eps} on every cell "
                        f"minus its bands (measure <= {float(Grid(p.d, p.n, p.K, p.eta).bands_measure()):.4g}), "
                        f"for every {target.lipschitz}-Lipschitz f with these grid values")
            if args.certificate is not None:
                files[args.certificate] = json_bytes(v.certificate)
                payload["certificate"] = str(args.certificate)
        else:
            text.append(f"unknown: {v.reason}")
            code = EXIT_UNKNOWN
    if args.samples:
        from promptlimits.numerics.universal_samples import sample_errors

        s = sample_errors(model, P, p, target, args.samples, args.seed)
        payload["samples"] = {"count": s.samples, "outside_bands": s.outside, "max_error": s.max_outside,
                              "mean_error": s.mean_outside, "max_error_in_bands": s.max_inside,
                              "reference": s.reference}
        text.append(f"measured on {s.samples} random inputs ({s.outside} off the bands): max error "
                    f"{s.max_outside:.4g} vs {s.reference} (mean {s.mean_outside:.3g}; in bands {s.max_inside:.3g})")
    return Outcome(payload, "\n".join(text), code=code, files=files)
