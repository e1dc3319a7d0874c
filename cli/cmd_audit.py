"""``promptlimits audit MODEL|CHECKPOINT [--layers 0,1] [--width W] [--hidden R] [--samples N] [--prompts K]
[--seed S] [--out DIR] [--cert FILE]``.

Audits the GELU feed-forward blocks of a model file (``model@1`` JSON) or of a BERT-family
.safetensors checkpoint (a directory with model.safetensors and config.json, or the file)
against the paper's hypotheses: certified lower bounds on the feed-forward norm products,
certified Jacobian-determinant sign flips of x ↦ x + W2 GELU(W1 x + b1) + b2 (each proves
that block not injective), the layer norm's exact non-injectivity, and a table of which
hypotheses hold; and, over the whole model, how far ``--prompts K`` seeded prompts move the
relative attention among the input tokens per layer (0 at layer 1, decided exactly as
THEORY §1 says; certified > 0 where a prompt moves it; ``--prompts 0`` skips it).
``--width``/``--hidden`` audit a checkpoint slice (first coordinates / hidden units);
layer indices in the output and the certificate are those of the imported model,
``checkpoint_layers`` maps them to the checkpoint's. ``--out DIR`` writes report.md,
audit.json and plots; ``--cert FILE`` writes an ``audit`` certificate (re-verified by
``promptlimits recheck``; for a checkpoint the imported model is written beside it as
``<cert>.model.json`` + ``.safetensors``, to pass as ``--model``); files are written
atomically. Exit 0 (an audit always reports), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from promptlimits.constructions.bert_import import import_bert, parse_layers
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model, model_files
from promptlimits.constructions.spec import Model
from promptlimits.numerics.attention_shift import measure
from promptlimits.numerics.checkpoint_audit import audit_block, audit_evidence, gelu_blocks, hypotheses, report
from promptlimits.outcome import EXIT_DECIDED, Outcome, check_writable, json_bytes
from promptlimits.proofs.certificate import make_certificate

NAME = "audit"
HELP = ("audit a model file or BERT checkpoint: norm products, certified det J sign flips, layer norm, "
        "attention shift per layer, hypotheses table")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="MODEL|CHECKPOINT",
                   help="model JSON with GELU layers, a directory with model.safetensors (+ config.json), or the file")
    p.add_argument("--layers", metavar="L,L", help="layers to audit, 0-based (default: all)")
    p.add_argument("--width", type=int, metavar="W", help="checkpoints: audit the slice of the first W coordinates")
    p.add_argument("--hidden", type=int, metavar="R", help="... and the first R hidden units")
    p.add_argument("--samples", type=int, default=40, metavar="N", help="random points per layer (default 40)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random points (default 0)")
    p.add_argument("--prompts", type=int, default=8, metavar="K",
                   help="seeded 2-token prompts for the attention shift per layer (default 8; 0 skips it)")
    p.add_argument("--out", metavar="DIR", help="write report.md, audit.json and plots into DIR")
    p.add_argument("--cert", metavar="FILE", help="write an 'audit' certificate to FILE")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


@dataclass(frozen=True)
class _Subject:
    model: Model
    layers: Optional[list[int]]  # the model's layers to audit (None: all)
    model_path: Optional[str]  # where recheck finds the model (certificates that do not embed it)
    files: dict[str, bytes]  # the imported model's files, written beside the certificate
    checkpoint_layers: Optional[list[int]]  # an imported checkpoint's layer of each model layer


def _subject(args: argparse.Namespace, cert: Optional[Path]) -> _Subject:
    source = Path(args.source)
    chosen = parse_layers(args.layers)
    if source.suffix == ".json":
        if args.width is not None or args.hidden is not None:
            raise InputError("--width/--hidden slice a checkpoint; a model file is audited as it is")
        return _Subject(load_model(source), chosen, str(source), {}, None)
    model = import_bert(source, args.width, args.hidden, chosen)
    origin = chosen if chosen is not None else list(range(len(model.layers)))
    if cert is None:
        return _Subject(model, None, None, {}, origin)
    json_name = cert.name.removesuffix(".json") + ".model.json"
    files = {str(cert.parent / name): data for name, data in model_files(model, json_name).items()}
    return _Subject(model, None, str(cert.parent / json_name), files, origin)


def _progress(message: str) -> None:
    """One line per stage on stderr (stdout stays the report or the one JSON object)."""
    print(f"[audit] {message} ...", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> Outcome:
    start = time.perf_counter()
    for name in ("width", "hidden", "samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name}: must be positive")
    if args.prompts < 0:
        raise InputError("--prompts: must be 0 or more")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    cert_path = check_writable(args.cert, "certificate") if args.cert else None
    subject = _subject(args, cert_path)
    model, files = subject.model, dict(subject.files)
    audits = []
    for i, block in gelu_blocks(model, subject.layers):  # validated before any progress line
        _progress(f"layer {i}: norm witnesses, det J signs at {args.samples} points, certified flip")
        audits.append(audit_block(i, block, model.layers[i].W1, model.layers[i].W2, args.samples, args.seed))
    shifts = None
    if args.prompts:
        _progress(f"attention shift: {args.prompts} prompts in float64, the worst one enclosed in arb")
        shifts = measure(model, samples=args.prompts, seed=args.seed)
    activation = "gelu"
    bidirectional = model.attention != "causal"
    layer_norm = any(layer.norm == "layernorm" for layer in model.layers)
    rows = hypotheses(audits, activation, bidirectional, layer_norm, shifts)
    evidence = audit_evidence(model, audits, shifts)
    text, plots = report(audits, activation, str(args.source), bidirectional, layer_norm, shifts)
    payload = {
        "verdict": "audited", "status": "decided", "method": "certified-bounds+orientation", "reason": "",
        "activation": activation, "layers": [a.to_json() for a in audits],
        "hypotheses": [{"hypothesis": h, "holds": ok, "evidence": ev} for h, ok, ev in rows],
        "not_injective_layers": evidence["not_injective_layers"],
        "layer_norm_collision": evidence["layer_norm_collision"],
        "attention_shift": None if shifts is None else [s.to_json() for s in shifts.layers],
    }
    if subject.checkpoint_layers is not None:
        payload["checkpoint_layers"] = subject.checkpoint_layers
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        files[str(out / "report.md")] = text.encode("utf-8")
        files[str(out / "audit.json")] = (json.dumps(payload, indent=2) + "\n").encode("utf-8")
        files.update({str(out / name): data for name, data in plots.items()})
        payload["out"] = str(out)
    if cert_path is not None:
        _progress("certificate (hashing the model's canonical form)")
        cert = make_certificate(claim="audit", verdict="audited", method="certified-bounds+orientation",
                                evidence=evidence, model=model, seconds=time.perf_counter() - start,
                                model_path=subject.model_path)
        files[str(cert_path)] = json_bytes(cert)
        payload["certificate"] = str(cert_path)
    summary = "\n".join(f"{ok:>11}  {h}: {ev}" for h, ok, ev in rows)
    return Outcome(payload, summary, EXIT_DECIDED, files)
