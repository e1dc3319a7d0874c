"""Re-check a claim "invertible" certificate without any SMT solver (Fractions + flint).

- route "lipschitz" (injective): both norm bounds re-certified (LDLᵀ pivots recomputed and
  compared, or the congruence check redone), their product recomputed and < 1.
- route "collision" (not-injective): x ≠ x' and f(x) = f(x') evaluated exactly.
- route "monotone" (injective): P symmetric with LDLᵀ pivots recomputed (all > 0), λ ≥ 0 and
  P·W2[:, j] = λ_j W1[j]ᵀ for every unit with a non-zero row W1[j] (see ``monotone``).
- route "exact" (injective): the hyperplanes are rebuilt from the model; every listed
  point lies strictly inside a region (no hyperplane through it), the regions are
  pairwise distinct, and their number equals Zaslavsky's count recomputed from the
  intersection poset (exact ranks only) — so the list is complete; every piece's
  determinant is recomputed and all share one non-zero sign; f(preimage) = y; for every
  region the solution of M_R z = y − c_R is recomputed and is either the preimage (strictly
  inside R, exactly one region) or strictly violates the listed inequality. By the
  covering argument in ``invertibility`` this proves f injective.
"""

from __future__ import annotations


from promptlimits.proofs.certificate import CheckFailed, Subjects, exact_number, exact_vector
from promptlimits.proofs import monotone
from promptlimits.proofs.norms import recheck_norm_json
from promptlimits.proofs.regions import Block, Budget, Pieces, arrangement, region_count, violates, column_vector

CLAIM = "invertible"




def recheck(cert: dict, subj: Subjects) -> list[str]:
    ev = cert["evidence"]
    index = ev["layer"]
    layers = subj.model.layers
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(layers):
        raise CheckFailed(f"layer index {index!r} out of range")
    layer = layers[index]
    if not layer.is_exact_relu:
        raise CheckFailed("layer is outside the hypotheses (GELU or layer norm)")
    block = Block.of(layer)
    route = ev["route"]
    verdict = cert.get("verdict")
    if route == "lipschitz":
        if verdict != "injective":
            raise CheckFailed("the norm route only proves injectivity")
        try:
            c1 = recheck_norm_json(layer.W1, ev["W1"])
            c2 = recheck_norm_json(layer.W2, ev["W2"])
        except ValueError as err:
            raise CheckFailed(f"norm bound: {err}") from None
        if exact_number(ev["product"]) != c1 * c2:
            raise CheckFailed("claimed norm product differs from c1·c2")
        if not c1 * c2 < 1:
            raise CheckFailed(f"norm product {c1 * c2} is not < 1")
        return [f"layer {index}: ‖W1‖₂ ≤ {c1} and ‖W2‖₂ ≤ {c2} re-certified exactly",
                f"product {float(c1 * c2):.6g} < 1: g is a contraction, f injective"]
    if route == "collision":
        if verdict != "not-injective":
            raise CheckFailed("a collision proves not-injective")
        pair = ev["collision"]
        if not isinstance(pair, list) or len(pair) != 2:
            raise CheckFailed("collision must be a pair of points")
        x, x2 = (exact_vector(p, block.d, "collision point") for p in pair)
        if x == x2:
            raise CheckFailed("collision points are equal")
        if block(x) != block(x2):
            raise CheckFailed("f(x) ≠ f(x'): not a collision")
        return [f"layer {index}: x ≠ x' and f(x) = f(x') evaluated exactly"]
    if route == "monotone":
        if verdict != "injective":
            raise CheckFailed("the monotone route only proves injectivity")
        d = block.d
        rows = ev["P"]
        if not isinstance(rows, list) or len(rows) != d:
            raise CheckFailed("P must be a d×d matrix")
        p = tuple(exact_vector(row, d, "P row") for row in rows)
        lam = exact_vector(ev["lambda"], block.r, "lambda")
        pivots = monotone.check(block, p, lam)
        if pivots is None:
            raise CheckFailed("(P, λ) is not a strong-monotonicity certificate (P ≻ 0, λ ≥ 0, P·W2[:, j] = λ_j W1[j]ᵀ)")
        if exact_vector(ev["pivots"], d, "pivots") != pivots:
            raise CheckFailed("claimed LDLᵀ pivots of P differ from the recomputed ones")
        return [f"layer {index}: P ≻ 0 (LDLᵀ pivots all > 0), λ ≥ 0 and P·W2[:, j] = λ_j W1[j]ᵀ for every unit",
                "⟨P(f(x) − f(y)), x − y⟩ ≥ ‖x − y‖²_P: f strongly monotone, hence injective"]
    if route == "exact":
        if verdict != "injective":
            raise CheckFailed("the exact region route here proves injectivity")
        return _recheck_exact(ev, block, index)
    raise CheckFailed(f"unknown route {route!r}")


def _recheck_exact(ev: dict, block: Block, index: int) -> list[str]:
    arr = arrangement(block)
    d = block.d
    if isinstance(ev["hyperplanes"], bool) or ev["hyperplanes"] != arr.size:
        raise CheckFailed(f"{ev['hyperplanes']} hyperplanes claimed, the model has {arr.size}")
    points = [exact_vector(p, d, "region point") for p in ev["regions"]]
    masks = []
    for p in points:
        m = arr.mask(p)
        if m is None:
            raise CheckFailed("a region point lies on a hyperplane")
        masks.append(m)
    if len(set(masks)) != len(masks):
        raise CheckFailed("two region points lie in the same region")
    claimed = ev["region_count"]
    if isinstance(claimed, bool) or claimed != len(masks):
        raise CheckFailed("region_count differs from the number of listed regions")
    try:
        count, general = region_count(arr, d, len(masks))
    except Budget as err:
        raise CheckFailed(f"the arrangement has more regions than listed ({err})") from None
    if count != len(masks):
        raise CheckFailed(f"Zaslavsky counts {count} regions, {len(masks)} listed")
    if ev["general_position"] is not general:
        raise CheckFailed("general_position flag differs")
    pieces = Pieces(block, arr)
    dets = [pieces.det(m) for m in masks]
    if any(x == 0 for x in dets) or len({x > 0 for x in dets}) != 1:
        raise CheckFailed("pieces are not coherently oriented")
    y = exact_vector(ev["y"], d, "y")
    pre = exact_vector(ev["preimage"], d, "preimage")
    if block(pre) != y:
        raise CheckFailed("f(preimage) ≠ y")
    outside = ev["outside"]
    if not isinstance(outside, list) or len(outside) != len(masks):
        raise CheckFailed("outside: one entry per region expected")
    inside = 0
    for m, o in zip(masks, outside):
        z, vals = pieces.solution_values(m, y)
        if o == -1:
            z = column_vector(z)
            if z != pre or arr.mask(z) != m:
                raise CheckFailed("the preimage is not the interior solution of its region")
            inside += 1
        else:
            if not isinstance(o, int) or isinstance(o, bool) or not 0 <= o < arr.size:
                raise CheckFailed(f"outside index {o!r} out of range")
            if not violates(m, o, vals[o]):
                raise CheckFailed(f"region's solution does not strictly violate hyperplane {o}")
    if inside != 1:
        raise CheckFailed(f"{inside} preimages marked, exactly one expected")
    sign = "positive" if dets[0] > 0 else "negative"
    return [
        f"layer {index}: {len(masks)} distinct regions with interior points = Zaslavsky count (list complete)",
        f"all {len(masks)} piece determinants {sign} (coherent orientation)",
        "y has exactly one preimage and none on a hyperplane: degree 1, f injective",
    ]

