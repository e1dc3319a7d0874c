"""A PNG of training loss curves (log scale), with the certified loss floor when one is known."""

from __future__ import annotations

import io
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from promptlimits.numerics.results import RunResult  # noqa: E402

#: Losses are drawn clipped below at this value so that exact zeros stay on a log axis.
LOG_FLOOR = 1e-32


def _label(r: RunResult) -> str:
    if r.prompt_length is not None:
        return f"prompt length {r.prompt_length}"
    if r.rank is not None:
        return f"LoRA rank {r.rank}"
    return r.method


def loss_curves_png(results: Sequence[RunResult], floor: Optional[float], title: str) -> bytes:
    """One curve per result (its best restart), log-scale loss against step; the floor dashed."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        for r in results:
            ax.plot(range(len(r.curve)), [max(v, LOG_FLOOR) for v in r.curve], label=_label(r), linewidth=1.2)
        if floor is not None and floor > 0:
            ax.axhline(floor, color="black", linestyle="--", linewidth=1.0, label=f"certified floor {floor:.3g}")
        ax.set_yscale("log")
        ax.set_xlabel("step (Adam, then L-BFGS)")
        ax.set_ylabel("dataset loss Σ ‖τ(X)ᵢ − yᵢ‖²")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)
