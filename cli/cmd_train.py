"""``promptlimits train MODEL DATASET --method prompt|lora|full``: numerical training runs.

Prompt tuning trains every prompt length × restart in one batched computation; LoRA
(through PEFT) trains one adapter per rank and restart; full fine-tuning trains every
weight. Each run is Adam with a warm-up + cosine schedule, then L-BFGS in float64. The
loss is the dataset total Σ_examples Σ_constrained ‖τ(X)_i − y_i‖² (THEORY §5's quantity).
Floats here never decide a verdict: these are measurements beside the exact procedures.
The certified floor of THEORY §5 (``proofs.loss_floor``, exact) is reported beside the
runs; a prompt-tuning loss below it would be a bug in one of the layers and exits 1.
With ``--out DIR``: ``results.json`` and ``loss_curves.png``, written only after every
run finished.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.formats import load_model_and_dataset
from promptlimits.constructions.spec import LIMITS
from promptlimits.outcome import EXIT_DECIDED, EXIT_INTERNAL, Outcome, json_bytes

NAME = "train"
HELP = "prompt tuning, LoRA or full fine-tuning in PyTorch (batched), with loss curves"

METHODS = ("prompt", "lora", "full")
MAX_STEPS = 1_000_000
MAX_RESTARTS = 100_000
#: Relative slack for float losses against the exact floor (rounding in float64 evaluation).
FLOOR_SLACK = 1e-9


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (promptlimits/model@1 JSON)")
    p.add_argument("dataset", metavar="DATASET", help="dataset file (promptlimits/dataset@1 JSON)")
    p.add_argument("--method", required=True, choices=METHODS, help="what to train")
    p.add_argument("--prompt-lengths", metavar="M,...", help="prompt lengths (prompt; default 1,2,4)")
    p.add_argument("--ranks", metavar="K,...", help="LoRA ranks (lora; default 1,2)")
    p.add_argument("--lora-targets", metavar="NAMES", help="LoRA target matrices, e.g. W2 or W_o,W_v (lora; default W2)")
    p.add_argument("--steps", type=int, default=500, help="Adam steps (default 500)")
    p.add_argument("--polish", type=int, default=100, help="L-BFGS iterations in float64 afterwards (default 100)")
    p.add_argument("--lr", type=float, default=0.05, help="peak Adam learning rate (default 0.05)")
    p.add_argument("--restarts", type=int, default=4, help="random starts per prompt length or rank (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--dtype", default="float64", help="float64 (default), float32 or bfloat16 for the Adam phase")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1: best for small batches and busy machines)")
    p.add_argument("--out", metavar="DIR", help="write results.json and loss_curves.png into DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-floor", action="store_true", help="skip the certified loss floor (THEORY §5)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def _int_list(text: Optional[str], default: str, option: str, upper: int) -> list[int]:
    raw = default if text is None else text
    try:
        values = [int(v) for v in raw.split(",")]
    except ValueError:
        raise InputError(f"{option}: expected comma-separated positive integers, got {raw!r}") from None
    if not values or any(not 1 <= v <= upper for v in values):
        raise InputError(f"{option}: every value must be between 1 and {upper}, got {raw!r}")
    return list(dict.fromkeys(values))


def _check_options(args: argparse.Namespace) -> None:
    for option, value, method in (("--prompt-lengths", args.prompt_lengths, "prompt"),
                                  ("--ranks", args.ranks, "lora"), ("--lora-targets", args.lora_targets, "lora")):
        if value is not None and args.method != method:
            raise InputError(f"{option} applies to --method {method} only")
    if not 0 <= args.steps <= MAX_STEPS or not 0 <= args.polish <= MAX_STEPS:
        raise InputError(f"--steps and --polish must be between 0 and {MAX_STEPS}")
    if args.steps + args.polish == 0:
        raise InputError("--steps and --polish are both 0: nothing to train")
    if not 1 <= args.restarts <= MAX_RESTARTS:
        raise InputError(f"--restarts must be between 1 and {MAX_RESTARTS}")
    if not 1 <= args.threads <= 1024:
        raise InputError("--threads must be between 1 and 1024")
    if not args.lr > 0 or args.lr != args.lr or args.lr == float("inf"):
        raise InputError("--lr must be a positive finite number")


def _out_dir(text: Optional[str]) -> Optional[Path]:
    if text is None:
        return None
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    parent = out.parent if str(out.parent) else Path(".")
    if not out.exists() and not parent.is_dir():
        raise InputError(f"{out}: parent folder {str(parent)!r} does not exist")
    return out


def run(args: argparse.Namespace) -> Outcome:
    _check_options(args)
    out = _out_dir(args.out)
    lengths = _int_list(args.prompt_lengths, "1,2,4", "--prompt-lengths", LIMITS["sequence"])
    ranks = _int_list(args.ranks, "1,2", "--ranks", LIMITS["hidden"])
    model, dataset = load_model_and_dataset(args.model, args.dataset)

    import torch  # noqa: F401  (heavy imports only after the arguments are known to be good)

    from promptlimits.numerics.config import TrainConfig, resolve_device, resolve_dtype
    from promptlimits.numerics.finetune import fine_tune
    from promptlimits.numerics.lora import check_targets, train_lora
    from promptlimits.numerics.loss_plot import loss_curves_png
    from promptlimits.numerics.prompt_tuning import tune_prompts

    targets = check_targets([t.strip() for t in (args.lora_targets or "W2").split(",")])
    config = TrainConfig(
        steps=args.steps, polish=args.polish, lr=args.lr, seed=args.seed,
        device=resolve_device(args.device), dtype=resolve_dtype(args.dtype),
        progress=False if args.no_progress else None, threads=args.threads,
    )
    if args.method == "prompt":
        results = tune_prompts(model, [dataset], lengths, args.restarts, config)
    elif args.method == "lora":
        results = train_lora(model, dataset, ranks, targets, args.restarts, config)
    else:
        results = [fine_tune(model, dataset, args.restarts, config)]
    floor, floor_exact, reason = _floor(model, dataset, args.no_floor)
    below = [r for r in results if args.method == "prompt" and floor and r.best_loss < floor * (1 - FLOOR_SLACK)]
    payload = {
        "method": args.method,
        "runs": [r.to_json() for r in results],
        "loss_floor": floor,
        "loss_floor_exact": floor_exact,
        "loss_floor_reason": reason,
        "floor_respected": not below,
        "device": str(config.device),
        "dtype": args.dtype,
        "seed": args.seed,
        "lora_targets": list(targets) if args.method == "lora" else None,
    }
    files = {}
    if out is not None:
        payload["out"] = str(out)
        record = dict(payload, curves=[{**r.to_json(), "curve": list(r.curve)} for r in results])
        title = f"{args.method}: {Path(args.model).name} on {Path(args.dataset).name}"
        files = {str(out / "results.json"): json_bytes(record),
                 str(out / "loss_curves.png"): loss_curves_png(results, floor, title)}
        out.mkdir(parents=True, exist_ok=True)
    return Outcome(payload, _text(payload), EXIT_INTERNAL if below else EXIT_DECIDED, files)


def _floor(model, dataset, skip: bool) -> tuple[Optional[float], Optional[str], str]:
    """THEORY §5's certified prompt-tuning floor: (float, exact string, reason); 0 when nothing is proven."""
    if skip:
        return None, None, "not computed (--no-floor)"
    from promptlimits.constructions.numbers import format_exact
    from promptlimits.proofs.loss_floor import loss_floor

    f = loss_floor(model, dataset)
    return float(f.value), format_exact(f.value), f.reason


def _text(payload: dict) -> str:
    lines = [f"method {payload['method']} on {payload['device']} ({payload['dtype']} Adam, float64 L-BFGS)"]
    for r in payload["runs"]:
        size = (f"prompt length {r['prompt_length']}" if "prompt_length" in r
                else f"rank {r['rank']}" if "rank" in r else "all weights")
        lines.append(f"  {size:<18} best loss {r['best_loss']:.6g}  ({r['steps']} steps, "
                     f"{r['restarts']} restarts, {r['seconds']:.2f} s)")
    floor, reason = payload["loss_floor"], payload["loss_floor_reason"]
    lines.append("certified prompt-tuning loss floor: "
                 + ("not computed" if floor is None else f"{floor:.6g}") + (f" ({reason})" if reason else ""))
    if not payload["floor_respected"]:
        lines.append("BUG: a prompt-tuning loss is below the certified floor")
    if "out" in payload:
        lines.append(f"wrote {payload['out']}/results.json and loss_curves.png")
    return "\n".join(lines)
