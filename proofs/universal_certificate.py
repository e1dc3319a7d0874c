"""The ``universal`` certificate (THEORY §9): on every grid cell minus its bands,
‖g([P_f, X])_i − f(X)_i‖ ≤ ε for every L-Lipschitz f with the stated grid values.

Claim, precisely: let the grid be δ = 1/K on [0,1]^{d×n} with bands (jδ, jδ + η) along every
coordinate (union of measure ≤ dn(K−1)η), inputs the tokens [x_i; 0] at n positions, outputs
the first d coordinates of g([P, X])_i. For every f: [0,1]^{d×n} → R^{d×n} with
‖f(X) − f(Y)‖_F ≤ L‖X − Y‖_F and f(c̄) = the stored value at every cell centre c̄, and every X
outside the bands, max_i ‖g([P, X])_i − f(X)_i‖ ≤ bound ≤ ε. The stored values pass the
pairwise L-Lipschitz test on the centres (so, by Kirszbraun's theorem, such f exist), which
is checked when there are at most ``PAIRWISE_LIMIT`` of them. ``bound`` comes from
:func:`promptlimits.proofs.universal_bound.bound_cells` (exact token-wise prefix, balls after).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.spec import Model, Vector
from promptlimits.constructions.universal_prompt import GridTarget, check_target
from promptlimits.proofs.certificate import make_certificate
from promptlimits.proofs.universal_bound import BoundFailed, CellBounds, Grid, bound_cells

CLAIM = "universal"
METHOD = "exact token-wise prefix on cell boxes, then arb balls at the input positions; Lipschitz target"


@dataclass(frozen=True)
class UniversalVerdict:
    """``holds`` (bound ≤ ε, with a certificate) or ``unknown`` (with the reason)."""

    verdict: str
    bounds: Optional[CellBounds]
    reason: str
    pairs_checked: int
    certificate: Optional[dict]
    seconds: float


def evidence(grid: Grid, target: GridTarget, prompt: Sequence[Vector], epsilon: Fraction,
             cb: CellBounds, pairs: int) -> dict:
    """The JSON evidence (exact strings) that ``check_universal`` recomputes."""
    return {
        "d": grid.d, "n": grid.n, "K": grid.K, "eta": format_exact(grid.eta),
        "lipschitz": format_exact(target.lipschitz), "epsilon": format_exact(epsilon),
        "target": target.name,
        "values": [[[format_exact(v) for v in tok] for tok in val] for val in target.values],
        "prompt": [[format_exact(v) for v in tok] for tok in prompt],
        "bits": cb.bits, "prefix_layers": cb.prefix_layers,
        "cell_bounds": [format_exact(b) for b in cb.cells],
        "quantisation": format_exact(cb.quantisation),
        "bound": format_exact(cb.total),
        "bands_measure": format_exact(grid.bands_measure()),
        "lipschitz_pairs_checked": pairs,
    }


def certify_universal(model: Model, prompt: Sequence[Vector], grid: Grid, target: GridTarget,
                      epsilon: Fraction, bits: int = 128) -> UniversalVerdict:
    """Decide the claim of the module docstring; a certificate only when the bound is ≤ ε."""
    start = time.perf_counter()
    pairs = check_target(target)
    try:
        cb = bound_cells(model, prompt, grid, target.values, target.lipschitz, bits)
    except BoundFailed as err:
        return UniversalVerdict("unknown", None, str(err), pairs, None, time.perf_counter() - start)
    if cb.total > epsilon:
        return UniversalVerdict("unknown", cb, f"the proven bound {float(cb.total):.6g} exceeds epsilon {epsilon}",
                                pairs, None, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    cert = make_certificate(CLAIM, "holds", METHOD, evidence(grid, target, prompt, epsilon, cb, pairs),
                            model, seconds=seconds)
    return UniversalVerdict("holds", cb, "", pairs, cert, seconds)
