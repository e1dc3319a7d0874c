"""``promptlimits import bert CHECKPOINT --out MODEL.json [--layers 0,1] [--width W] [--hidden R] [--json]``.

Converts a BERT-family encoder (a Hugging Face directory with model.safetensors and
config.json, or the file) into the model format: MODEL.json (a small header) and
MODEL.safetensors beside it (every weight as float64, i.e. the exact binary values of the
checkpoint). GELU, post-layer-norm, attention biases and the score scale κ = 1/√s (exact:
``sqrt(1/s)``) are kept; see ``constructions.bert_import`` for the precise map and what
the slice options mean. The imported model is outside the exact procedures (GELU, layer
norm, biases, irrational κ); ``eval``, ``train``, ``layers`` and ``audit`` accept it.
Exit 0, or 2 on bad input (nothing written).
"""

from __future__ import annotations

import argparse

from promptlimits.constructions.bert_import import import_bert, parse_layers
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import model_files
from promptlimits.outcome import EXIT_DECIDED, Outcome, check_writable

NAME = "import"
HELP = "convert a BERT-family .safetensors checkpoint into the model format (exact weights, κ = 1/√s)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", choices=("bert",), help="checkpoint family (bert: BertModel and its task heads' encoder)")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="directory with model.safetensors and config.json, or the file")
    p.add_argument("--out", required=True, metavar="MODEL", help="the model header to write (MODEL.safetensors goes beside it)")
    p.add_argument("--layers", metavar="L,L", help="encoder layers to keep, 0-based, in order (default: all)")
    p.add_argument("--width", type=int, metavar="W", help="keep the first W coordinates of every token (a slice)")
    p.add_argument("--hidden", type=int, metavar="R", help="keep the first R feed-forward units (a slice)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def run(args: argparse.Namespace) -> Outcome:
    for name in ("width", "hidden"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name}: must be positive")
    out = check_writable(args.out, "model")
    if out.suffix != ".json":
        raise InputError(f"{out}: the model header must end in .json (the weights go to {out.stem}.safetensors)")
    model = import_bert(args.checkpoint, args.width, args.hidden, parse_layers(args.layers))
    files = model_files(model, str(out))
    layer = model.layers[0]
    params = sum(len(m) * len(m[0]) for lay in model.layers for h in lay.heads for m in (h.W_q, h.W_k, h.W_v, h.W_o))
    params += sum(len(lay.W1) * len(lay.W1[0]) * 2 for lay in model.layers)
    payload = {
        "model": str(out), "weights": str(out.with_suffix(".safetensors")), "d": model.d,
        "layers": len(model.layers), "heads": len(layer.heads), "head_size": layer.heads[0].head_size,
        "hidden": layer.hidden, "score_scale": str(model.score_scale), "activation": layer.activation,
        "norm": layer.norm, "weight_matrix_entries": params, "exact_procedures_apply": model.is_exact,
    }
    text = (f"wrote {out} and {out.with_suffix('.safetensors').name}: {len(model.layers)} layer(s), d = {model.d}, "
            f"{len(layer.heads)} heads of size {layer.heads[0].head_size}, hidden {layer.hidden}, "
            f"κ = {model.score_scale}, {params} matrix entries (the file's binary values, exactly)\n"
            "outside the exact procedures (GELU, layer norm, attention biases, irrational κ): "
            "use eval, train, layers or audit")
    return Outcome(payload, text, EXIT_DECIDED, files)
