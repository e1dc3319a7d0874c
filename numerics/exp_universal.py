"""E7 — THEORY §9: universality by construction, and whether prompt tuning finds such prompts.

For small (d, n, ε): the size of g (depth 3, width 2d + n + 2 + 4dn, prompt length
N = K^{dn} with K = ⌈L√(dn)/ε⌉), the certified bound on every cell minus its bands, and the
error of the float64 twin on random inputs off the bands, against ε. The paper's
construction (THEORY §9) has depth growing like (1/ε)^d; ours has constant depth and pays
with prompt length K^{dn} ~ (L√(dn)/ε)^{dn}. Then gradient-based prompt tuning of the same
g from random prompts of the same length N on samples of the same target: how close does
its loss get to the constructed prompt's?
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import matplotlib.pyplot as plt
import torch

from promptlimits.constructions.spec import Dataset, Example
from promptlimits.constructions.universal import choose_params, universal_model
from promptlimits.constructions.universal_prompt import builtin_target, construct_prompt
from promptlimits.numerics.catalogue import ClaimRow, ExperimentResult, Settings, png
from promptlimits.numerics.config import TrainConfig
from promptlimits.numerics.prompt_tuning import tune_prompts
from promptlimits.numerics.twin import Twin, tensor
from promptlimits.numerics.universal_samples import sample_errors
from promptlimits.proofs.universal_bound import Grid
from promptlimits.proofs.universal_certificate import certify_universal

KEY = "E7"
TITLE = "universality by construction (THEORY §9): constant depth, prompt length K^(dn), certified error ≤ ε"


def _configs(quick: bool) -> list[tuple[int, int, Fraction, str]]:
    eps = [Fraction(1, 5), Fraction(1, 10)] if quick else [Fraction(1, 5), Fraction(1, 10), Fraction(1, 20)]
    out = [(1, 1, e, "linear") for e in eps]
    out += [(1, 2, e, "sort") for e in ([Fraction(1, 2), Fraction(1, 4)] if quick else [Fraction(1, 2), Fraction(1, 4), Fraction(1, 6)])]
    return out


def _dataset(p, target, model_width: int, count: int, seed: int) -> Dataset:
    """Random inputs of [0,1]^{d×n} with targets [f(X)_i; 0] at every position."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        X = tuple(tuple(Fraction(rng.randrange(1, 1000), 1000) for _ in range(p.d)) for _ in range(p.n))
        Y = target.exact(X)
        pad = (Fraction(0),) * (model_width - p.d)
        examples.append(Example(tuple(x + pad for x in X), tuple(tuple(y) + pad for y in Y)))
    return Dataset(model_width, tuple(examples))


def _loss(model, prompt, dataset: Dataset, d: int) -> tuple[float, float]:
    """Dataset loss of a prompt, and the largest token error in the first d coordinates."""
    twin = Twin(model)
    X = torch.stack([tensor(ex.input) for ex in dataset.examples])
    Y = torch.stack([tensor(ex.target) for ex in dataset.examples])
    P = tensor(prompt)
    with torch.no_grad():
        out = twin(X, P[None].expand(X.shape[0], *P.shape))
    return float(((out - Y) ** 2).sum()), float((out - Y)[..., :d].norm(dim=-1).max())


def run(settings: Settings) -> ExperimentResult:
    L = Fraction(1)
    sizes, certs = [], {}
    for d, n, eps, name in _configs(settings.quick):
        p = choose_params(d, n, L, eps)
        model = universal_model(p)
        target = builtin_target(name, p, L)
        P = construct_prompt(p, target)
        v = certify_universal(model, P, Grid(d, n, p.K, p.eta), target, eps)
        s = sample_errors(model, P, p, target, 300 if settings.quick else 2000, settings.seed)
        if settings.certificates and v.certificate is not None:
            certs[f"e7_universal_d{d}_n{n}_eps{eps.numerator}_{eps.denominator}_{name}.json"] = v.certificate
        sizes.append({"d": d, "n": n, "epsilon": str(eps), "target": name, "K": p.K, "depth": len(model.layers),
                      "width": model.d, "hidden": sum(layer.hidden for layer in model.layers),
                      "prompt_length": len(P), "paper_depth_order": math.ceil(float(1 / eps) ** d),
                      "certified": None if v.bounds is None else float(v.bounds.total), "verdict": v.verdict,
                      "bands_measure": float(Grid(d, n, p.K, p.eta).bands_measure()),
                      "measured": s.max_outside, "certify_seconds": v.seconds})
    agree_sizes = all(r["verdict"] == "holds" and r["measured"] <= float(Fraction(r["epsilon"])) for r in sizes)
    row_sizes = ClaimRow(
        KEY, "one constant-depth g plus a prompt P_f approximates every L-Lipschitz f within ε off bands of measure ≤ ε",
        "; ".join(f"(d,n,ε)=({r['d']},{r['n']},{r['epsilon']}): bound {r['certified']:.3g}" if r["certified"] is not None
                  else f"({r['d']},{r['n']},{r['epsilon']}): {r['verdict']}" for r in sizes),
        "; ".join(f"depth {r['depth']} vs paper ~(1/ε)^d = {r['paper_depth_order']}, width {r['width']}, "
                  f"prompt {r['prompt_length']} = K^(dn), measured {r['measured']:.3g}" for r in sizes),
        agree_sizes, {"configs": sizes},
    )
    # prompt tuning of g from random prompts of the constructed length, same target (d = 1, n = 1)
    eps = Fraction(1, 5)
    p = choose_params(1, 1, L, eps)
    model = universal_model(p)
    target = builtin_target("linear", p, L)
    P = construct_prompt(p, target)
    data = _dataset(p, target, model.d, 24, settings.seed)
    constructed, constructed_max = _loss(model, P, data, p.d)
    config = TrainConfig(steps=150 if settings.quick else 600, polish=20 if settings.quick else 100, lr=0.05,
                         seed=settings.seed, device=torch.device(settings.device), progress=settings.progress)
    runs = tune_prompts(model, [data], [len(P)], restarts=2 if settings.quick else 4, config=config)
    tuned = runs[0].best_loss
    _, tuned_max = _loss(model, runs[0].best_prompt, data, p.d)
    Y = torch.stack([tensor(ex.target) for ex in data.examples])
    constant = float(((Y - Y.mean(0)) ** 2).sum())  # the best input-independent output
    row_tune = ClaimRow(
        KEY, f"prompt tuning of the same g (length N = {len(P)}, random starts) vs the constructed P_f (d = n = 1, ε = {eps})",
        f"constructed prompt: loss {constructed:.3g}, max token error {constructed_max:.3g} on {len(data.examples)} "
        f"samples (certified ≤ ε per token off bands)",
        f"best tuned loss {tuned:.3g}, max token error {tuned_max:.3g} ({runs[0].steps} steps, {runs[0].restarts} "
        f"restarts); ratio tuned/constructed loss {tuned / constructed if constructed else float('inf'):.3g}; "
        f"best constant map {constant:.3g} (β_r = {p.beta_retrieve} saturates the retrieval softmax)",
        constructed <= len(data.examples) * float(eps) ** 2,
        {"constructed_loss": constructed, "constructed_max_error": constructed_max, "tuned_loss": tuned,
         "tuned_max_error": tuned_max, "best_constant_loss": constant, "steps": runs[0].steps, "prompt_length": len(P)},
    )
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for (d, n) in sorted({(r["d"], r["n"]) for r in sizes}):
        rs = [r for r in sizes if (r["d"], r["n"]) == (d, n)]
        e = [float(Fraction(r["epsilon"])) for r in rs]
        ax.plot(e, [r["certified"] or float("nan") for r in rs], "o-", label=f"certified, d={d}, n={n}")
        ax.plot(e, [r["measured"] for r in rs], "s--", label=f"measured, d={d}, n={n}")
    lim = [min(float(Fraction(r["epsilon"])) for r in sizes), max(float(Fraction(r["epsilon"])) for r in sizes)]
    ax.plot(lim, lim, "k:", lw=0.8, label="ε")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ε")
    ax.set_ylabel("max error off the bands")
    ax.legend(fontsize=7)
    return ExperimentResult(KEY, TITLE, (row_sizes, row_tune), {"e7_universal.png": png(fig)}, certs)
