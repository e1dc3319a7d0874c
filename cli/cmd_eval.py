"""``promptlimits eval MODEL DATASET [--prompt FILE]``: outputs of the prompted model.

One ReLU layer without layer norm is evaluated exactly (exp-polynomial quotients, THEORY
§3), and a constrained target is reported equal or not exactly. Any other model is
evaluated in rigorous ball arithmetic; a target outside the enclosure is a proven mismatch,
one inside it is reported as "unknown" (equality is not decidable there).
"""

from __future__ import annotations

import argparse
from typing import Any, Optional

from promptlimits.constructions.evaluate import layer_exact, stack_balls
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model_and_dataset, load_prompt
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.spec import check_prompt
from promptlimits.outcome import Outcome
from promptlimits.proofs import interval

NAME = "eval"
HELP = "outputs of the (prompted) model on a dataset, exact and float"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (promptlimits/model@1 JSON)")
    p.add_argument("dataset", metavar="DATASET", help="dataset file (promptlimits/dataset@1 JSON)")
    p.add_argument("--prompt", metavar="FILE", help="prompt file (list of tokens or promptlimits/prompt@1)")
    p.add_argument("--bits", type=int, default=128, help="working precision of the interval evaluation (default 128)")
    p.add_argument("--digits", type=int, default=17, help="significant digits of the printed floats (default 17)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def run(args: argparse.Namespace) -> Outcome:
    if not 16 <= args.bits <= 1 << 16:
        raise_usage(f"--bits must be between 16 and {1 << 16}")
    if not 1 <= args.digits <= 100:
        raise_usage("--digits must be between 1 and 100")
    model, dataset = load_model_and_dataset(args.model, args.dataset)
    prompt = load_prompt(args.prompt) if args.prompt else ()
    check_prompt(model, prompt, where=str(args.prompt))
    exact = model.is_exact and len(model.layers) == 1
    examples = []
    loss = 0.0
    all_match: Optional[bool] = True if any(ex.constrained() for ex in dataset.examples) else None
    for ex in dataset.examples:
        positions = []
        if exact:
            outs = layer_exact(model, prompt, ex.input)
            balls = [o.balls(args.bits) for o in outs]
        else:
            outs = None
            balls = stack_balls(model, prompt, ex.input, bits=args.bits)
        for i, ball in enumerate(balls):
            entry: dict[str, Any] = {
                "position": i,
                "float": [float(interval.decimal(b, args.digits)) for b in ball],
                "interval": [b.str(args.digits, radius=True) for b in ball],
                "exact": [str(e) for e in outs[i].entries()] if outs is not None else None,
            }
            target = ex.target[i]
            if target is not None:
                entry["target"] = [format_exact(t) for t in target]
                if outs is not None:
                    match: Optional[bool] = outs[i].equals(target)
                elif any(not interval.contains_rational(b, t) for b, t in zip(ball, target)):
                    match = False
                else:
                    match = None
                entry["matches"] = match
                loss += sum((f - float(t)) ** 2 for f, t in zip(entry["float"], target))
                if match is False:
                    all_match = False
                elif match is None and all_match:
                    all_match = None
            positions.append(entry)
        examples.append({"positions": positions})
    payload = {
        "exact": exact,
        "method": "exact exp-polynomials" if exact else f"rigorous intervals at {args.bits} bits",
        "from_floats": model.from_floats,
        "prompt_length": len(prompt),
        "examples": examples,
        "loss": loss,
        "targets_met": all_match,
    }
    return Outcome(payload, _text(payload))


def raise_usage(message: str) -> None:
    raise InputError(f"promptlimits eval: {message}")


def _text(payload: dict) -> str:
    lines = [
        f"method: {payload['method']}; prompt length {payload['prompt_length']}"
        + ("; weights read from floats, taken as the exact rationals they denote" if payload["from_floats"] else "")
    ]
    for k, ex in enumerate(payload["examples"]):
        for pos in ex["positions"]:
            shown = ", ".join(f"{x:.10g}" for x in pos["float"])
            line = f"example {k} position {pos['position']}: [{shown}]"
            if "target" in pos:
                verdict = {True: "= target", False: "!= target", None: "target inside enclosure"}[pos["matches"]]
                line += f"  ({verdict})"
            lines.append(line)
            if pos["exact"] is not None and len(pos["exact"]) <= 8:
                lines.extend(f"    exact[{j}] = {e}" for j, e in enumerate(pos["exact"]))
    met = {True: "all targets met exactly", False: "some target is not met (proven)",
           None: "no target constrained" if not any("target" in p for ex in payload["examples"] for p in ex["positions"])
           else "undecided"}
    lines.append(f"squared error {payload['loss']:.6g}; {met[payload['targets_met']]}")
    return "\n".join(lines)
