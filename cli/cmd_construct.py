"""``promptlimits construct impossible|separation|lora``: build the objects the theorems talk about.

- ``construct impossible MODEL --out DATASET``: THEORY §4's two-example dataset that no
  prompt of any length memorizes (f injective), built for the given one-layer model
  (several heads included); the payload carries the one-token witness prompts that meet
  each example alone, and, for one head, the a = −3/(2B) < 0 that Theorem 1 forces.
- ``construct separation (MODEL | --d D) --family X|L --n N --out DIR``: THEORY §6's family
  for the given model, or for a standard model built for (d, N); writes model.json,
  dataset.json and, when a LoRA update exists, lora.json and model_lora.json.
- ``construct lora MODEL DATASET --out FILE [--model-out FILE]``: the exact update
  ΔW2 = E·H⁺ = B·A of THEORY §6, verified exactly on every example.

Files are written atomically, only after the construction succeeded; a construction that is
impossible for the given model is reported as bad input (exit 2) with the reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import dataset_to_json, load_model, load_model_and_dataset, model_to_json
from promptlimits.constructions.impossible import impossible_dataset, witness_reproduces
from promptlimits.constructions.lora import LoraUpdate, lora_update, updated_model, verify_rational_model
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.separation import FAMILIES, Family, build_family, standard_family
from promptlimits.construct_universal import add_parsers as add_universal_parsers, prompt, universal
from promptlimits.outcome import Outcome, check_writable, json_bytes
from promptlimits.proofs import interval
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.proofs.norms import lipschitz_product

NAME = "construct"
HELP = "build THEORY §4's impossible dataset, §6's separation families, the exact LoRA update, or §9's universal model and prompts"
UPDATE_FORMAT = "promptlimits/lora-update@1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="construction", metavar="KIND", parser_class=type(p))
    imp = sub.add_parser("impossible", help="THEORY §4: a dataset no prompt memorizes")
    imp.add_argument("model", metavar="MODEL", help="one-layer model file")
    imp.add_argument("--out", metavar="DATASET", required=True, help="write the dataset here")
    imp.add_argument("--json", action="store_true", help="print exactly one JSON object")
    sep = sub.add_parser("separation", help="THEORY §6: family X (LoRA rank 1 vs no prompt) or L (m >= N)")
    sep.add_argument("model", metavar="MODEL", nargs="?", help="one-layer model file (or --d for a standard model)")
    sep.add_argument("--d", type=int, metavar="D", help="build the standard model of this width instead")
    sep.add_argument("--family", choices=FAMILIES, required=True, help="X (separation) or L (length bound)")
    sep.add_argument("--n", type=int, metavar="N", required=True, help="number of examples")
    sep.add_argument("--out", metavar="DIR", required=True, help="folder for model.json, dataset.json, lora.json")
    sep.add_argument("--json", action="store_true", help="print exactly one JSON object")
    lo = sub.add_parser("lora", help="THEORY §6: the exact LoRA update of W2 for a dataset")
    lo.add_argument("model", metavar="MODEL", help="one-layer model file")
    lo.add_argument("dataset", metavar="DATASET", help="dataset file")
    lo.add_argument("--out", metavar="FILE", required=True, help="write the update (promptlimits/lora-update@1) here")
    lo.add_argument("--model-out", metavar="FILE", help="also write the updated model here")
    lo.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_universal_parsers(sub)


def run(args: argparse.Namespace) -> Outcome:
    kind = getattr(args, "construction", None)
    if kind == "impossible":
        return _impossible(args)
    if kind == "separation":
        return _separation(args)
    if kind == "lora":
        return _lora(args)
    if kind == "universal":
        return universal(args)
    if kind == "prompt":
        return prompt(args)
    raise InputError("promptlimits construct: choose one of impossible, separation, lora, universal, prompt")


def _vec(v) -> list[str]:
    return [format_exact(x) for x in v]


def _exp_entry(x: ExpFrac) -> str:
    return interval.decimal(x.ball(256), 30)


# ----------------------------------------------------------------------------- impossible


def _impossible(args: argparse.Namespace) -> Outcome:
    check_writable(args.out, "dataset")
    model = load_model(args.model)
    built = impossible_dataset(model)
    layer = model.layers[0]
    L = lipschitz_product(layer)
    for k in range(2):
        if not witness_reproduces(model, built, k):
            raise ArithmeticError("a witness prompt does not reproduce its target: construction bug")
    payload: dict[str, Any] = {
        "construction": "impossible",
        "dataset": str(args.out),
        "heads": len(layer.heads),
        "query": _vec(built.query),
        "delta": _vec(built.delta),
        "direction": _vec(built.direction),
        "radius": format_exact(built.radius),
        "separation": format_exact(built.separation),
        "z": [_vec(z) for z in built.z],
        "targets": [_vec(y) for y in built.targets],
        "witness_prompts": [[_vec(t) for t in w] for w in built.witnesses],
        "forced_a": None if built.forced_a is None else str(built.forced_a),
        "forced_a_decimal": None if built.forced_a is None else _exp_entry(built.forced_a),
        "lipschitz_bound": format_exact(L),
        "f_injective_certified": L < 1,
        "claim": (
            "no prompt of any length meets both targets: the attention outputs differ by "
            "-1/2 sum_h (1 - lambda_h) V_h delta, whose component along W is >= -radius, while "
            "z_1 - z_2 has component 'separation' < -radius"
            + ("" if L < 1 else " (this needs f injective, which the norm bound does not certify here)")
        ),
    }
    text = [
        f"wrote {args.out}: two examples sharing the query q = [{', '.join(payload['query'])}]",
        f"delta = [{', '.join(payload['delta'])}], <W, z1 - z2> = {payload['separation']} < -R = -{payload['radius']}",
    ]
    if built.forced_a is not None:
        text.append(f"Theorem 1 forces a = {built.forced_a} ~ {payload['forced_a_decimal']} < 0")
    text.append("each example alone is met by its one-token witness prompt (verified exactly)")
    if L >= 1:
        text.append(f"warning: ||W1||·||W2|| <= {float(L):.6g} does not certify f injective; the impossibility needs it")
    return Outcome(payload, "\n".join(text), files={args.out: json_bytes(dataset_to_json(built.dataset))})


# ----------------------------------------------------------------------------- separation


def _separation(args: argparse.Namespace) -> Outcome:
    if (args.model is None) == (args.d is None):
        raise InputError("promptlimits construct separation: give either MODEL or --d D")
    if not 1 <= args.n <= 256:
        raise InputError("promptlimits construct separation: --n must be between 1 and 256")
    if args.d is not None and not 1 <= args.d <= 512:
        raise InputError("promptlimits construct separation: --d must be between 1 and 512")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir():
        check_writable(out / "model.json", "model")
    else:
        check_writable(out, "folder")
    if args.model is not None:
        fam = build_family(args.family, load_model(args.model), args.n)
    else:
        fam = standard_family(args.family, args.d, args.n)
    files = {
        str(out / "model.json"): json_bytes(model_to_json(fam.model)),
        str(out / "dataset.json"): json_bytes(dataset_to_json(fam.dataset)),
    }
    if fam.lora is not None:
        files[str(out / "lora.json")] = json_bytes(_update_json(fam.model, fam.lora))
        new, _ = updated_model(fam.model, fam.lora)
        files[str(out / "model_lora.json")] = json_bytes(model_to_json(new))
    payload = _family_payload(fam, out)
    out.mkdir(exist_ok=True)
    return Outcome(payload, _family_text(payload), files=files)


def _family_payload(fam: Family, out: Path) -> dict:
    d, r = fam.model.d, fam.model.layers[0].hidden
    return {
        "construction": "separation",
        "family": fam.family,
        "folder": str(out),
        "examples": len(fam.dataset.examples),
        "queries": [_vec(q) for q in fam.queries],
        "z": [None if z is None else _vec(z) for z in fam.z],
        "direction": None if fam.direction is None else _vec(fam.direction),
        "offsets": [_vec(s) for s in fam.offsets],
        "outside": None if fam.outside is None else {"example": fam.outside[0], "component": _vec(fam.outside[1])},
        "min_prompt_length": fam.prompt_lower_bound,
        "prompt_impossible": fam.family == "X" and fam.outside is not None,
        "prompt_reason": fam.prompt_reason,
        "lora_rank": None if fam.lora is None else fam.lora.rank,
        "lora_reason": fam.lora_reason,
        "parameters": {
            "prompt": None if fam.prompt_lower_bound is None else fam.prompt_lower_bound * d,
            "lora": None if fam.lora is None else fam.lora.rank * (d + r),
        },
    }


def _family_text(p: dict) -> str:
    lines = [f"family {p['family']} with {p['examples']} examples written to {p['folder']}"]
    if p["family"] == "X":
        lines.append("prompts: " + ("no prompt of any length realizes the targets" if p["prompt_impossible"]
                                    else "impossibility not proven") + f" ({p['prompt_reason']})")
    else:
        lines.append(f"prompts: m >= {p['min_prompt_length']} ({p['prompt_reason']})")
    lines.append("LoRA on W2: " + (f"rank {p['lora_rank']} realizes every target exactly" if p["lora_rank"] is not None
                                   else f"none ({p['lora_reason']})"))
    lines.append(f"parameters: prompt {p['parameters']['prompt']}, LoRA {p['parameters']['lora']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- lora


def _update_json(model, update: LoraUpdate) -> dict:
    """The update file: exact factors (expressions over e^r when not rational), 30-digit
    decimals, and the updated model (exact, or rounded to 40 digits and marked so)."""
    new, exact = updated_model(model, update)

    def exact_rows(m):
        return [[str(x) for x in row] for row in m]

    def decimal_rows(m):
        return [[_exp_entry(x) for x in row] for row in m]

    return {
        "format": UPDATE_FORMAT,
        "method": update.method,
        "rank": update.rank,
        "parameters": update.parameters(),
        "rational": update.rational,
        "B": exact_rows(update.B),
        "A": exact_rows(update.A),
        "delta_W2": exact_rows(update.delta_W2),
        "B_decimal": decimal_rows(update.B),
        "A_decimal": decimal_rows(update.A),
        "delta_W2_decimal": decimal_rows(update.delta_W2),
        "model": model_to_json(new),
        "model_rounded": not exact,
        "note": "entries are exact: rationals 'p/q', or quotients of sums c*e^(r); the model is "
                + ("exact" if exact else "W2 + delta_W2 rounded to 40 significant digits"),
    }


def _lora(args: argparse.Namespace) -> Outcome:
    check_writable(args.out, "update")
    if args.model_out:
        check_writable(args.model_out, "model")
    model, dataset = load_model_and_dataset(args.model, args.dataset)
    update = lora_update(model, dataset)
    doc = _update_json(model, update)
    if update.rational and not verify_rational_model(updated_model(model, update)[0], dataset):
        raise ArithmeticError("the updated model misses a target: construction bug")
    files = {args.out: json_bytes(doc)}
    if args.model_out:
        files[args.model_out] = json_bytes(doc["model"])
    payload = {
        "construction": "lora",
        "update": str(args.out),
        "method": update.method,
        "rank": update.rank,
        "parameters": update.parameters(),
        "rational": update.rational,
        "verified": True,
        "model_rounded": doc["model_rounded"],
        "delta_W2_decimal": doc["delta_W2_decimal"],
    }
    text = (f"wrote {args.out}: rank-{update.rank} update of W2 ({update.parameters()} parameters, "
            f"{'rational' if update.rational else 'exp-polynomial entries'}), every target met exactly"
            + (f"; updated model in {args.model_out}" + (" (rounded)" if doc["model_rounded"] else "")
               if args.model_out else ""))
    return Outcome(payload, text, files=files)
