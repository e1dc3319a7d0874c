"""E5 — the optimisation gap: how close gradient-based prompt tuning gets to the floor.

The paper leaves open whether prompt tuning fails for lack of expressiveness or because
optimisation does not find the right prompt. On E1's instances the certified floor
(Theorem 3) bounds what ANY prompt achieves; the ratio best-loss / floor ≥ 1 measures how
much of the remaining loss could at most be blamed on optimisation (a ratio of 1 would
mean the optimiser is provably optimal; the floor's (1 − L)² factor makes it conservative).
"""

from __future__ import annotations

import statistics

import matplotlib.pyplot as plt

from promptlimits.numerics.catalogue import ClaimRow, ExperimentResult, Settings, png
from promptlimits.numerics.exp_impossible import ROUNDING, instances, sizes

KEY = "E5"
TITLE = "the optimisation gap: best prompt-tuning loss over the certified floor"


def run(settings: Settings) -> ExperimentResult:
    insts = [i for i in instances(settings)[0] if i.floor > 0]
    _, lengths = sizes(settings)
    ratios = {m: [i.prompt_runs[j].best_loss / float(i.floor) for i in insts] for j, m in enumerate(lengths)}
    best = [i.best_prompt_loss / float(i.floor) for i in insts]
    ok = all(r >= 1 - ROUNDING for rs in ratios.values() for r in rs)
    row = ClaimRow(
        KEY, "gradient-based prompt tuning stays above the certified floor; the gap is measured",
        f"floors proven on {len(insts)} instances (Theorem 3, rigorous 1-D minimisation)",
        f"best/floor: median {statistics.median(best):.3g}, range {min(best):.3g} … {max(best):.3g}",
        ok and bool(insts),
        {"ratio_by_length": {str(m): rs for m, rs in ratios.items()}, "best_ratio": best},
    )
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.boxplot([ratios[m] for m in lengths], tick_labels=[str(m) for m in lengths])
    ax.axhline(1.0, color="red", lw=0.8, ls="--", label="floor (ratio 1)")
    ax.set_yscale("log")
    ax.set_xlabel("prompt length m")
    ax.set_ylabel("best loss / certified floor")
    ax.legend(fontsize=8)
    return ExperimentResult(KEY, TITLE, (row,), {"e5_gap.png": png(fig)})
