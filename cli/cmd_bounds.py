"""``promptlimits bounds MODEL DATASET [--json] [--out CERT]``: what a dataset costs (one layer).

Reports THEORY §6's lower bound on the prompt length (null when no prompt of any length
can work), the LoRA rank of W2 that suffices (and is necessary), and THEORY §5's certified
floor on the prompt-tuning loss (0 when nothing better is proven), with parameter counts
side by side. ``--out`` writes a certificate that ``promptlimits recheck`` re-verifies
without Z3. Exit 0 (the bounds are always decided; weak ones say why), 2 on bad input.
"""

from __future__ import annotations

import argparse
import time

from promptlimits.constructions.formats import load_model_and_dataset
from promptlimits.constructions.numbers import format_decimal, format_exact
from promptlimits.cmd_layers import add_radius_arguments, bounds_outcome
from promptlimits.outcome import EXIT_DECIDED, Outcome, check_writable, json_bytes
from promptlimits.proofs.bounds import METHOD, bounds
from promptlimits.proofs.certificate import make_certificate

NAME = "bounds"
HELP = "prompt-length lower bound, LoRA rank that suffices, certified loss floor (one layer)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (promptlimits/model@1 JSON)")
    p.add_argument("dataset", metavar="DATASET", help="dataset file (promptlimits/dataset@1 JSON)")
    p.add_argument("--out", metavar="CERT", help="write a certificate of the bounds here")
    add_radius_arguments(p, input_default=None, prompt_default=None)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def run(args: argparse.Namespace) -> Outcome:
    if args.out:
        check_writable(args.out, "certificate")
    model, dataset = load_model_and_dataset(args.model, args.dataset)
    if len(model.layers) >= 2 or args.prompt_radius is not None:
        return bounds_outcome(model, dataset, args.input_radius, args.prompt_radius or "1", args.out,
                              str(args.model), str(args.dataset))
    start = time.perf_counter()
    b = bounds(model, dataset)
    seconds = time.perf_counter() - start
    payload = {
        "verdict": b.verdict,
        "status": "decided",
        "method": METHOD,
        "reason": "",
        "seconds": round(seconds, 6),
        "min_prompt_length": b.prompt.length,
        "prompt_impossible": b.prompt.length is None,
        "prompt_reason": b.prompt.reason,
        "lora_rank": b.lora.rank,
        "lora_condition": b.lora.condition,
        "loss_floor": format_exact(b.floor.value),
        "loss_floor_decimal": format_decimal(b.floor.value, 20),
        "loss_floor_method": b.floor.method,
        "loss_floor_reason": b.floor.reason,
        "parameters": b.parameters,
        "from_floats": model.from_floats,
    }
    files = {}
    if args.out:
        cert = make_certificate("bounds", b.verdict, METHOD, b.evidence(), model, dataset, seconds,
                                model_path=str(args.model), dataset_path=str(args.dataset))
        files[args.out] = json_bytes(cert)
        payload["certificate"] = str(args.out)
    return Outcome(payload, _text(payload), EXIT_DECIDED, files)


def _text(p: dict) -> str:
    m = p["min_prompt_length"]
    lines = [
        "prompt length: " + ("no prompt of any length realizes the targets" if m is None else f"m >= {m}")
        + f" ({p['prompt_reason']})",
        "LoRA on W2: " + ("cannot realize the targets" if p["lora_rank"] is None else f"rank {p['lora_rank']} suffices")
        + f" ({p['lora_condition']})",
        f"loss floor: {p['loss_floor_decimal']}" + (f" ({p['loss_floor_reason']})" if p["loss_floor_reason"] else ""),
        f"parameters: prompt {p['parameters']['prompt']}, LoRA {p['parameters']['lora']}",
    ]
    if p.get("certificate"):
        lines.append(f"certificate written to {p['certificate']}")
    return "\n".join(lines)
