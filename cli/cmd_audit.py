"""``promptlimits audit MODEL|CHECKPOINT [--layers 0,1] [--width W] [--hidden R] [--samples N] [--seed S] [--out DIR] [--cert FILE]``.

Audits the GELU feed-forward blocks of a model file (``model@1`` JSON) or of a BERT-family
.safetensors checkpoint (a directory with model.safetensors and config.json, or the file)
against the paper's hypotheses: certified lower bounds on the feed-forward norm products,
certified Jacobian-determinant sign flips of x ↦ x + W2 GELU(W1 x + b1) + b2 (each proves
that block not injective), the layer norm's exact non-injectivity, and a table of which
hypotheses hold. ``--width``/``--hidden`` audit a checkpoint slice (first coordinates /
hidden units). ``--out DIR`` writes report.md, audit.json and plots; ``--cert FILE`` writes
an ``audit`` certificate (re-verified by ``promptlimits recheck``); files are written
atomically. Exit 0 (an audit always reports), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model
from promptlimits.numerics.checkpoint_audit import audit_evidence, audit_model, hypotheses, report
from promptlimits.outcome import EXIT_DECIDED, Outcome, check_writable, json_bytes
from promptlimits.proofs.certificate import make_certificate

NAME = "audit"
HELP = "audit GELU blocks (model file or BERT checkpoint): norm products, certified det J sign flips, layer norm"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="MODEL|CHECKPOINT",
                   help="model JSON with GELU layers, a directory with model.safetensors (+ config.json), or the file")
    p.add_argument("--layers", metavar="L,L", help="layers to audit, 0-based (default: all)")
    p.add_argument("--width", type=int, metavar="W", help="checkpoints: audit the slice of the first W coordinates")
    p.add_argument("--hidden", type=int, metavar="R", help="... and the first R hidden units")
    p.add_argument("--samples", type=int, default=40, metavar="N", help="random points per layer (default 40)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random points (default 0)")
    p.add_argument("--out", metavar="DIR", help="write report.md, audit.json and plots into DIR")
    p.add_argument("--cert", metavar="FILE", help="write an 'audit' certificate to FILE")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def _layers(text):
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--layers: expected comma-separated integers, got {text!r}") from None


def _subject(args: argparse.Namespace, cert: Path | None):
    """(model, layers to audit, model path for the certificate, extra files to write)."""
    source = Path(args.source)
    if source.suffix == ".json":
        if args.width is not None or args.hidden is not None:
            raise InputError("--width/--hidden slice a checkpoint; a model file is audited as it is")
        return load_model(source), _layers(args.layers), str(source), {}
    from promptlimits.constructions.bert_import import import_bert
    from promptlimits.constructions.formats import model_files

    model = import_bert(source, args.width, args.hidden, _layers(args.layers))
    if cert is None:
        return model, None, None, {}
    json_name = cert.name.removesuffix(".json") + ".model.json"
    files = {str(cert.parent / name): data for name, data in model_files(model, json_name).items()}
    return model, None, str(cert.parent / json_name), files


def run(args: argparse.Namespace) -> Outcome:
    start = time.perf_counter()
    for name in ("width", "hidden", "samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name}: must be positive")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    cert_path = check_writable(args.cert, "certificate") if args.cert else None
    model, layers, model_path, files = _subject(args, cert_path)
    audits = audit_model(model, layers, args.samples, args.seed)
    activation = "gelu"
    bidirectional = model.attention != "causal"
    layer_norm = any(layer.norm == "layernorm" for layer in model.layers)
    rows = hypotheses(audits, activation, bidirectional, layer_norm)
    evidence = audit_evidence(model, audits)
    text, plots = report(audits, activation, str(args.source), bidirectional, layer_norm)
    payload = {
        "verdict": "audited", "status": "decided", "method": "certified-bounds+orientation", "reason": "",
        "activation": activation, "layers": [a.to_json() for a in audits],
        "hypotheses": [{"hypothesis": h, "holds": ok, "evidence": ev} for h, ok, ev in rows],
        "not_injective_layers": evidence["not_injective_layers"],
        "layer_norm_collision": evidence["layer_norm_collision"],
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        files[str(out / "report.md")] = text.encode("utf-8")
        files[str(out / "audit.json")] = (json.dumps(payload, indent=2) + "\n").encode("utf-8")
        files.update({str(out / name): data for name, data in plots.items()})
        payload["out"] = str(out)
    if cert_path is not None:
        cert = make_certificate(claim="audit", verdict="audited", method="certified-bounds+orientation",
                                evidence=evidence, model=model, seconds=time.perf_counter() - start,
                                model_path=model_path)
        files[str(cert_path)] = json_bytes(cert)
        payload["certificate"] = str(cert_path)
    summary = "\n".join(f"{ok:>11}  {h}: {ev}" for h, ok, ev in rows)
    return Outcome(payload, summary, EXIT_DECIDED, files)
