"""``promptlimits audit CHECKPOINT [--layers 0,1] [--width W] [--hidden R] [--samples N] [--seed S] [--out DIR]``.

Audits a BERT-family .safetensors checkpoint (a directory with model.safetensors and
config.json, or the file) against the paper's hypotheses: certified lower bounds on the
feed-forward norm products, certified Jacobian-determinant sign flips of
x ↦ x + W2 GELU(W1 x + b1) + b2 (each proves that block not injective), the layer norm's
exact non-injectivity, and a table of which hypotheses hold. ``--width``/``--hidden`` audit
a slice (first coordinates / hidden units). ``--out DIR`` writes report.md, audit.json and
plots atomically. Exit 0 (an audit always reports), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from promptlimits.constructions.bert_checkpoint import load_layers, locate
from promptlimits.constructions.errors import InputError
from promptlimits.numerics.checkpoint_audit import audit_layer, hypotheses, layer_norm_collision, report
from promptlimits.outcome import EXIT_DECIDED, Outcome

NAME = "audit"
HELP = "audit a BERT-family checkpoint: norm products, certified det J sign flips, layer norm, hypotheses table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="directory with model.safetensors (+ config.json), or the file")
    p.add_argument("--layers", metavar="L,L", help="encoder layers to audit, 0-based (default: all)")
    p.add_argument("--width", type=int, metavar="W", help="audit the slice of the first W coordinates")
    p.add_argument("--hidden", type=int, metavar="R", help="... and the first R hidden units")
    p.add_argument("--samples", type=int, default=40, metavar="N", help="random points per layer (default 40)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random points (default 0)")
    p.add_argument("--out", metavar="DIR", help="write report.md, audit.json and plots into DIR")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def _layers(text):
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--layers: expected comma-separated integers, got {text!r}") from None


def run(args: argparse.Namespace) -> Outcome:
    for name in ("width", "hidden", "samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name}: must be positive")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    _, cfg = locate(args.checkpoint)
    weights = load_layers(args.checkpoint, args.width, args.hidden, _layers(args.layers))
    activation = weights[0].activation
    audits = [audit_layer(w, args.samples, args.seed) for w in weights]
    text, plots = report(audits, activation, str(args.checkpoint))
    payload = {
        "verdict": "audited", "status": "decided", "method": "certified-bounds+orientation", "reason": "",
        "activation": activation, "layers": [a.to_json() for a in audits],
        "hypotheses": [{"hypothesis": h, "holds": ok, "evidence": ev} for h, ok, ev in hypotheses(audits, activation)],
        "not_injective_layers": [a.index for a in audits if a.flip is not None],
        "layer_norm_collision": [[str(v) for v in x] for x in layer_norm_collision(audits[0].width)],
    }
    files: dict[str, bytes] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        files[str(out / "report.md")] = text.encode("utf-8")
        files[str(out / "audit.json")] = (json.dumps(payload, indent=2) + "\n").encode("utf-8")
        files.update({str(out / name): data for name, data in plots.items()})
        payload["out"] = str(out)
    summary = "\n".join(f"{ok:>11}  {h}: {ev}" for h, ok, ev in hypotheses(audits, activation))
    return Outcome(payload, summary, EXIT_DECIDED, files)
