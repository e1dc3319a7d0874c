"""Re-verify a ``universal`` certificate without Z3 (Fractions and arb balls only).

Recomputed from the embedded model and the stored grid, target values and prompt: the
grid is well formed (0 < η < δ), the band measure dn(K−1)η, the target values lie in
[0,1] and pass the pairwise L-Lipschitz test, every cell's bound (exact token-wise prefix,
balls after, at the stored precision), the quantisation term, and bound = max + quantisation
≤ ε. Every stored number must equal its recomputed value.
"""

from __future__ import annotations

from fractions import Fraction

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.spec import check_prompt
from promptlimits.constructions.universal_prompt import GridTarget, check_target
from promptlimits.proofs.certificate import CheckFailed, Subjects, exact_number
from promptlimits.proofs.universal_bound import BoundFailed, Grid, bound_cells

MAX_BITS = 4096




def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CheckFailed(f"{what}: expected a positive integer, got {value!r}")
    return value


def recheck(cert: dict, subj: Subjects) -> list[str]:
    if cert.get("verdict") != "holds":
        raise CheckFailed(f"a universal certificate must state 'holds', not {cert.get('verdict')!r}")
    model, ev = subj.model, cert["evidence"]
    d, n, K = _int(ev["d"], "d"), _int(ev["n"], "n"), _int(ev["K"], "K")
    bits = _int(ev["bits"], "bits")
    if bits > MAX_BITS:
        raise CheckFailed(f"bits: {bits} exceeds {MAX_BITS}")
    eta, L, eps = exact_number(ev["eta"]), exact_number(ev["lipschitz"]), exact_number(ev["epsilon"])
    if not 0 < eta < Fraction(1, K):
        raise CheckFailed("the band width must satisfy 0 < eta < 1/K")
    if L <= 0 or eps <= 0:
        raise CheckFailed("lipschitz and epsilon must be positive")
    grid = Grid(d, n, K, eta)
    checked = [f"grid K = {K} on [0,1]^({d}x{n}), bands of width {eta}"]
    if exact_number(ev["bands_measure"]) != grid.bands_measure():
        raise CheckFailed("the band measure is not dn(K-1)eta")
    checked.append(f"bands measure <= {grid.bands_measure()}")
    values = tuple(tuple(tuple(exact_number(v) for v in tok) for tok in val) for val in ev["values"])
    if len(values) != K ** (d * n) or any(len(val) != n or any(len(t) != d for t in val) for val in values):
        raise CheckFailed("the target values do not cover the grid with n tokens of d numbers")
    try:
        pairs = check_target(GridTarget(str(ev["target"]), d, n, K, L, values))
    except InputError as err:
        raise CheckFailed(str(err)) from None
    if pairs != ev["lipschitz_pairs_checked"]:
        raise CheckFailed("the number of Lipschitz pairs checked differs")
    checked.append(f"target values in [0,1], {pairs} pairs L-Lipschitz (L = {L})")
    prompt = tuple(tuple(exact_number(v) for v in tok) for tok in ev["prompt"])
    check_prompt(model, prompt)
    try:
        cb = bound_cells(model, prompt, grid, values, L, bits)
    except BoundFailed as err:
        raise CheckFailed(f"the bound does not recompute: {err}") from None
    if [exact_number(b) for b in ev["cell_bounds"]] != list(cb.cells):
        raise CheckFailed("a stored cell bound differs from its recomputed value")
    if exact_number(ev["quantisation"]) != cb.quantisation or ev["prefix_layers"] != cb.prefix_layers:
        raise CheckFailed("the quantisation term or the exact prefix differs")
    if exact_number(ev["bound"]) != cb.total:
        raise CheckFailed("the stored bound is not max(cell bounds) + quantisation")
    if not cb.total <= eps:
        raise CheckFailed(f"the bound {cb.total} exceeds epsilon {eps}")
    checked.append(f"{len(cb.cells)} cells: exact token-wise prefix ({cb.prefix_layers} layer(s)), "
                   f"balls at {bits} bits, max error vs f(centre) {float(max(cb.cells)):.3g}")
    checked.append(f"bound {float(cb.total):.6g} <= epsilon {eps} (quantisation L*delta*sqrt(dn)/2 <= {float(cb.quantisation):.6g})")
    return checked
