"""The catalogue of the paper's claims that ``promptlimits reproduce`` checks.

Each experiment pairs an exact verdict (from ``proofs``) with a numerical experiment (the
torch twin) on built-in instances and says whether the two agree. An experiment returns
rows of the report's table "claim | exact verdict | numerics | agree", machine-readable
details, and PNG plots (as bytes, so that nothing is written until every experiment ran).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass(frozen=True)
class Settings:
    """What a reproduce run may spend: ``quick`` keeps it under 3 minutes on 2 CPU cores.
    ``certificates``: also emit one certificate per theorem instance checked."""

    quick: bool = True
    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    certificates: bool = False


@dataclass(frozen=True)
class ClaimRow:
    """One line of the report: a claim, the exact verdict, what the numerics saw, agreement."""

    experiment: str
    claim: str
    exact: str
    numerics: str
    agree: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentResult:
    """Rows, plots and (when asked for) certificates of one experiment, by file name."""

    key: str
    title: str
    rows: tuple[ClaimRow, ...]
    plots: dict[str, bytes] = field(default_factory=dict)
    certificates: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A named experiment of the catalogue."""

    key: str
    title: str
    run: Callable[[Settings], ExperimentResult]


def png(fig: "plt.Figure") -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def markdown_report(results: list[ExperimentResult], settings: Settings, seconds: float) -> str:
    """The Markdown report: one table of every claim, then each experiment's plots."""
    rows = [r for res in results for r in res.rows]
    agreed = sum(r.agree for r in rows)
    lines = [
        "# promptlimits: the paper's claims, checked",
        "",
        f"Mode: {'quick' if settings.quick else 'full'}; seed {settings.seed}; device {settings.device}; "
        f"{seconds:.1f} s. {agreed} of {len(rows)} rows agree.",
        "",
        "| experiment | claim | exact verdict | numerics | agree |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.experiment} | {_cell(r.claim)} | {_cell(r.exact)} | {_cell(r.numerics)} | "
                     f"{'yes' if r.agree else '**NO**'} |")
    for res in results:
        lines += ["", f"## {res.key}: {res.title}", ""]
        lines += [f"![{name}]({name})" for name in sorted(res.plots)]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
