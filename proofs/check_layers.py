"""Re-check a claim "layers" certificate (THEORY §8) without any SMT solver (Fractions + flint).

Recomputed from the embedded model, independently of the producer's arithmetic:
- the hypotheses: ReLU, no layer norm, causal attention when L ≥ 2;
- every spectral bound (‖V_h‖, ‖M_h‖ of the exact products V = W_o W_v, M = κ W_kᵀ W_q,
  ‖W1‖, ‖W2‖) by its LDLᵀ pivots or congruence check; ‖b1‖, ‖b2‖ and max ‖e_i‖ as c ≥ 0
  with c² ≥ the exact squared norm;
- the radii from R and ρ layer by layer, each L_s, all L_s < 1, and Π(1 − L_s), compared
  exactly with the claimed strings;
- verdict "not-memorizable" (a dataset embedded): every input token within R, and for each
  listed pair, disjointness, the agreeing target prefix, the squared distance and the
  floor c²·d²/2, and their sum.
"""

from __future__ import annotations

from fractions import Fraction

from promptlimits.constructions.evaluate import score_matrix, value_matrix
from promptlimits.proofs.certificate import CheckFailed, Subjects, exact_number
from promptlimits.proofs.norms import recheck_norm_json

CLAIM = "layers"


def _sq(v) -> Fraction:
    return sum((Fraction(x) ** 2 for x in v), Fraction(0))


def _norm(w, entry: dict, what: str) -> Fraction:
    try:
        return recheck_norm_json(w, entry)
    except ValueError as err:
        raise CheckFailed(f"{what}: {err}") from None


def _root_bound(claimed: object, square: Fraction, what: str) -> Fraction:
    c = exact_number(claimed)
    if c < 0 or c * c < square:
        raise CheckFailed(f"{what}: {c} is not an upper bound of the norm")
    return c


def _same(claimed: object, value: Fraction, what: str) -> None:
    if exact_number(claimed) != value:
        raise CheckFailed(f"{what}: claimed {claimed}, recomputed {value}")


def recheck(cert: dict, subj: Subjects) -> list[str]:
    model = subj.model
    ev = cert["evidence"]
    L = len(model.layers)
    if L >= 2 and model.attention != "causal":
        raise CheckFailed("bidirectional attention with several layers is outside the theorem")
    for i, layer in enumerate(model.layers):
        if layer.activation != "relu" or layer.norm is not None:
            raise CheckFailed(f"layer {i} is outside the theorem (GELU or layer norm)")
    if not model.is_exact:
        raise CheckFailed("attention biases or an irrational score scale are outside the theorem")
    R0, rho = exact_number(ev["input_radius"]), exact_number(ev["prompt_radius"])
    if R0 < 0 or rho < 0:
        raise CheckFailed("negative radius")
    if model.positional is None:
        if ev["positional_bound"] is not None:
            raise CheckFailed("positional bound given for a model without encodings")
        r = R0
    else:
        e = _root_bound(ev["positional_bound"], max(_sq(v) for v in model.positional), "positional bound")
        r = R0 + e
    p = rho
    entries = ev["layers"]
    if not isinstance(entries, list) or len(entries) != L:
        raise CheckFailed(f"expected bounds for {L} layers")
    product = Fraction(1)
    for i, (layer, lb) in enumerate(zip(model.layers, entries)):
        heads = lb["heads"]
        if not isinstance(heads, list) or len(heads) != len(layer.heads):
            raise CheckFailed(f"layer {i}: expected {len(layer.heads)} head bounds")
        vs = [_norm(value_matrix(h), hb["V"], f"layer {i} head {k} ‖V‖") for k, (h, hb) in enumerate(zip(layer.heads, heads))]
        ms = [_norm(score_matrix(h, model.score_scale), hb["M"], f"layer {i} head {k} ‖M‖")
              for k, (h, hb) in enumerate(zip(layer.heads, heads))]
        w1 = _norm(layer.W1, lb["W1"], f"layer {i} ‖W1‖")
        w2 = _norm(layer.W2, lb["W2"], f"layer {i} ‖W2‖")
        b1 = _root_bound(lb["b1"], _sq(layer.b1), f"layer {i} ‖b1‖")
        b2 = _root_bound(lb["b2"], _sq(layer.b2), f"layer {i} ‖b2‖")
        _same(lb["input_in"], r, f"layer {i} input radius")
        _same(lb["prompt_in"], p, f"layer {i} prompt radius")
        R = r if r > p else p
        _same(lb["R"], R, f"layer {i} R")
        att = Fraction(0)
        for v, m in zip(vs, ms):
            att += v * (1 + 4 * m * R * R)
        _same(lb["attention"], att, f"layer {i} attention Lipschitz bound")
        total_v = sum(vs, Fraction(0))
        r_mid = r + total_v * R
        p_mid = p + total_v * p if model.attention == "causal" else p + total_v * R
        _same(lb["input_mid"], r_mid, f"layer {i} input radius after attention")
        _same(lb["prompt_mid"], p_mid, f"layer {i} prompt radius after attention")
        _same(lb["feed_forward"], w1 * w2, f"layer {i} feed-forward Lipschitz bound")
        r = r_mid + w2 * (w1 * r_mid + b1) + b2
        p = p_mid + w2 * (w1 * p_mid + b1) + b2
        _same(lb["input_out"], r, f"layer {i} input radius out")
        _same(lb["prompt_out"], p, f"layer {i} prompt radius out")
        for name, value in (("attention", att), ("feed-forward", w1 * w2)):
            if not value < 1:
                raise CheckFailed(f"layer {i} {name}: Lipschitz bound {value} is not < 1")
            product *= 1 - value
    _same(ev["product"], product, "product Π(1 − L_s)")
    checked = [f"{L} layer(s): {2 * L} sublayer Lipschitz bounds re-certified (spectral norms by exact pivots), all < 1",
               f"radii propagated exactly from R = {R0}, ρ = {rho}; Π(1 − L_s) = {float(product):.6g} > 0"]
    verdict = cert.get("verdict")
    if verdict == "injective":
        if subj.dataset is not None:
            raise CheckFailed("an injectivity certificate speaks about no dataset")
        return checked
    if verdict != "not-memorizable" or subj.dataset is None:
        raise CheckFailed(f"verdict {verdict!r} is not what a layers certificate proves")
    return checked + _recheck_floor(model, subj.dataset, ev["floor"], R0, product)


def _recheck_floor(model, dataset, floor: dict, R0: Fraction, product: Fraction) -> list[str]:
    for e, ex in enumerate(dataset.examples):
        for t, x in enumerate(ex.input):
            if _sq(x) > R0 * R0:
                raise CheckFailed(f"example {e} token {t} lies outside the input ball")
    pairs = floor["pairs"]
    if not isinstance(pairs, list) or not pairs:
        raise CheckFailed("no same-output pair listed")
    used: set[int] = set()
    total = Fraction(0)
    n = len(dataset.examples)
    for entry in pairs:
        i, j = entry["examples"]
        k = entry["positions"]
        for v in (i, j, k):
            if not isinstance(v, int) or isinstance(v, bool):
                raise CheckFailed("pair indices must be integers")
        if not (0 <= i < n and 0 <= j < n) or i == j or i in used or j in used:
            raise CheckFailed(f"pair ({i}, {j}) is out of range or not disjoint from the others")
        used.update((i, j))
        a, b = dataset.examples[i], dataset.examples[j]
        if len(a.input) != len(b.input) or not 1 <= k <= len(a.input):
            raise CheckFailed(f"pair ({i}, {j}): bad prefix length {k}")
        if model.attention != "causal" and k != len(a.input):
            raise CheckFailed(f"pair ({i}, {j}): bidirectional attention needs every position")
        for t in range(k):
            if a.target[t] is None or b.target[t] is None or tuple(a.target[t]) != tuple(b.target[t]):
                raise CheckFailed(f"pair ({i}, {j}): targets differ or are missing at position {t}")
        d2 = max(_sq([x - y for x, y in zip(a.input[t], b.input[t])]) for t in range(k))
        _same(entry["distance2"], d2, f"pair ({i}, {j}) squared distance")
        if d2 == 0:
            raise CheckFailed(f"pair ({i}, {j}): equal inputs")
        value = product * product * d2 / 2
        _same(entry["floor"], value, f"pair ({i}, {j}) floor")
        total += value
    _same(floor["loss_floor"], total, "loss floor")
    return [f"{len(pairs)} disjoint same-output pair(s) inside the input ball; floor c²·max‖Δx‖²/2 summed "
            f"= {float(total):.6g} > 0: not memorizable by prompts within the radius"]
