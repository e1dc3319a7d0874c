"""Batched prompt tuning against the naive way (one optimizer per run, in a Python loop).

Both do the same runs (prompt lengths × restarts on one random d = 16 layer and dataset)
from the same starts for the same Adam steps and L-BFGS iterations; ``tests/test_training``
shows they follow the same iterates. Each mode runs in its own subprocess so that its peak
resident memory (ru_maxrss) is its own, after a tiny warm-up run (one-time torch set-up). Prints runs/second of both, the ratio, and peak
memory; with CUDA present, also the batched runs/second on the GPU.

    python benchmarks/bench_training.py [--runs 256] [--d 16] [--steps 50] [--polish 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from fractions import Fraction


def _instance(d: int, seed: int = 0):
    from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Model

    rng = random.Random(seed)

    def mat(rows: int, cols: int, scale: float):
        return tuple(tuple(Fraction(rng.randint(-8, 8), 8) * Fraction(scale).limit_denominator(64)
                           for _ in range(cols)) for _ in range(rows))

    s, r = d // 2, 2 * d
    w = 1 / d ** 0.5
    model = Model(d=d, layers=(Layer(
        heads=tuple(Head(mat(s, d, w), mat(s, d, w), mat(s, d, w), mat(d, s, w)) for _ in range(2)),
        W1=mat(r, d, w), b1=mat(1, r, 0.5)[0], W2=mat(d, r, w), b2=mat(1, d, 0.5)[0]),))
    examples = tuple(Example(mat(4, d, 1), (None, None, None, mat(1, d, 1)[0])) for _ in range(4))
    return model, Dataset(d, examples)


def _measure(args: argparse.Namespace) -> dict:
    import torch

    from promptlimits.numerics.config import TrainConfig
    from promptlimits.numerics.prompt_tuning import tune_prompts, tune_prompts_one_by_one

    torch.set_num_threads(args.threads)
    model, dataset = _instance(args.d)
    lengths = [1, 2, 4, 8]
    restarts = args.runs // len(lengths)
    config = TrainConfig(steps=args.steps, polish=args.polish, seed=0, progress=False,
                         device=torch.device(args.device))
    train = tune_prompts if args.mode == "batched" else tune_prompts_one_by_one
    train(model, [dataset], [1], 2, TrainConfig(steps=3, polish=2, progress=False, device=config.device))  # warm-up
    start = time.perf_counter()
    results = train(model, [dataset], lengths, restarts, config)
    seconds = time.perf_counter() - start
    return {
        "mode": args.mode, "device": args.device, "runs": restarts * len(lengths), "seconds": seconds,
        "best": {r.prompt_length: r.best_loss for r in results},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(args: argparse.Namespace, mode: str, device: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--device", device, "--runs", str(args.runs),
           "--d", str(args.d), "--steps", str(args.steps), "--polish", str(args.polish), "--threads", str(args.threads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=256)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--polish", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="batched", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_measure(args)))
        return
    import torch

    rows = [_child(args, "batched", "cpu"), _child(args, "naive", "cpu")]
    if torch.cuda.is_available():
        rows.append(_child(args, "batched", "cuda"))
    print(f"prompt tuning, d = {args.d}, {rows[0]['runs']} runs (lengths 1,2,4,8), "
          f"{args.steps} Adam steps + {args.polish} L-BFGS iterations, {args.threads} CPU thread(s)")
    print(f"{'way':<32}{'seconds':>10}{'runs/s':>10}{'peak RSS MiB':>14}")
    for r in rows:
        name = f"{r['mode']} ({r['device']})" + (" [baseline]" if r["mode"] == "naive" else "")
        print(f"{name:<32}{r['seconds']:>10.2f}{r['runs'] / r['seconds']:>10.1f}{r['peak_rss_mib']:>14.0f}")
    print(f"speed-up batched / naive on CPU: {rows[1]['seconds'] / rows[0]['seconds']:.1f}x (target >= 10x)")
    worst = max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(rows[0]["best"].values(), rows[1]["best"].values()))
    print(f"largest relative difference of the best losses (batched vs naive): {worst:.2e}")


if __name__ == "__main__":
    main()
