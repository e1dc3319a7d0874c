"""Re-verify a ``bounds`` certificate without Z3 (Fractions, exact exp-polynomial signs,
fixed-point intervals).

Checked, each against an independent recomputation from the embedded model and dataset:
- the constrained positions;
- every stored preimage z of y_i satisfies f(z) = y_i exactly, and the Z3-free completeness
  argument (norm certificate or all 2^r activation patterns) is repeated and gives the same set;
- the prompt-length table: for every preimage choice, membership of z_i − q_i in
  col(V) + span(U), rank[Z − Q, U] and rank U (exact ranks over the exp-polynomial field),
  and the least bound ⌈(rank[Z − Q, U] − rank U)/H⌉;
- the LoRA rank (rank E, rank H, the number of columns);
- the loss floor: both spectral-norm certificates (LDLᵀ pivots), L = c1·c2 < 1, the shared
  query, f(z_i) = y_i, the rational enclosures of every B_i and u_i (exact signs, and no
  wider than 2^-WIDTH_BITS relative: a loose enclosure is sound but is not what the
  producer computes), B_ref, that the
  breakpoints partition [0, 1], every leaf lower bound recomputed to the same exact value,
  and floor = round_down((1 − L)² · min leaf bound).
Every stored number must equal its recomputed value, so any tampering is rejected.
"""

from __future__ import annotations

from fractions import Fraction

from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.spec import single_exact_layer
from promptlimits.proofs.bounds import (
    complete_preimages, lora_rank, positions, prompt_bound,
)
from promptlimits.proofs.certificate import CheckFailed, Subjects, exact_number, exact_vector
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.proofs.loss_floor import (
    DIGITS, check_enclosure, leaf_lower_bound, problem, reference, round_down, shared_query,
)
from promptlimits.proofs.norms import recheck_norm_json
from promptlimits.constructions.feed_forward import forward

#: Widest accepted enclosure, relative to max(1, |lower end|).
WIDTH_BITS = 40






def recheck(cert: dict, subj: Subjects) -> list[str]:
    model, dataset = subj.model, subj.dataset
    if dataset is None:
        raise CheckFailed("a bounds certificate needs its dataset")
    single_exact_layer(model, "bounds")
    ev = cert["evidence"]
    layer = model.layers[0]
    checked = []
    pairs = positions(dataset)
    if [list(p) for p in pairs] != ev["positions"]:
        raise CheckFailed("constrained positions differ from the dataset's")
    checked.append(f"{len(pairs)} constrained positions")

    stored = [None if s is None else [exact_vector(z) for z in s] for s in ev["preimages"]]
    if len(stored) != len(pairs):
        raise CheckFailed("one preimage set per constrained position expected")
    for (e, i), s in zip(pairs, stored):
        for z in s or ():
            if forward(layer, z) != dataset.examples[e].target[i]:
                raise CheckFailed(f"stored preimage {z} of example {e} position {i} does not map to the target")
    again = complete_preimages(model, dataset, pairs)
    for s, t in zip(stored, again):
        if (s is None) != (t is None) or (s is not None and set(s) != set(t)):
            raise CheckFailed("preimage sets differ from the Z3-free recomputation")
    checked.append("preimages: f(z) = y exactly, completeness argument repeated")

    pb = prompt_bound(model, dataset, pairs, [None if s is None else tuple(s) for s in stored])
    if pb.length != ev["prompt"]["min_prompt_length"] or pb.ranks != ev["prompt"]["ranks"]:
        raise CheckFailed("prompt-length bound or its exact ranks differ from the recomputation")
    checked.append(f"prompt length bound {pb.length} ({pb.reason})")

    lr = lora_rank(model, dataset)
    if [lr.rank, lr.rank_H, lr.columns] != [ev["lora"]["rank"], ev["lora"]["rank_H"], ev["lora"]["columns"]]:
        raise CheckFailed("LoRA rank, rank H or column count differ from the recomputation")
    checked.append(f"LoRA rank {lr.rank} ({lr.condition})")

    checked.extend(_recheck_floor(model, dataset, ev["loss_floor"]))
    return checked


def _recheck_floor(model, dataset, entry: dict) -> list[str]:
    value = exact_number(entry["value"])
    ev = entry["evidence"]
    if ev is None:
        if value != 0:
            raise CheckFailed("a non-zero loss floor needs its evidence")
        return ["loss floor 0 (trivially sound)"]
    layer = model.layers[0]
    try:
        c1 = recheck_norm_json(layer.W1, ev["norm_W1"])
        c2 = recheck_norm_json(layer.W2, ev["norm_W2"])
    except ValueError as err:
        raise CheckFailed(f"spectral-norm certificate: {err}") from None
    L = c1 * c2
    if L != exact_number(ev["lipschitz"]) or not L < 1:
        raise CheckFailed("Lipschitz bound differs from c1·c2 or is not below 1")
    q, pairs = shared_query(model, dataset)
    if q is None or exact_vector(ev["query"]) != q or [list(p) for p in pairs] != ev["positions"]:
        raise CheckFailed("the constrained positions do not share the stated query")
    zs = [exact_vector(z) for z in ev["z"]]
    for (e, i), z in zip(pairs, zs):
        if forward(layer, z) != dataset.examples[e].target[i]:
            raise CheckFailed("a stored z_i does not satisfy f(z_i) = y_i")
    if len(zs) != len(pairs):
        raise CheckFailed("one z per constrained position expected")
    bits = ev["bits"]
    if not isinstance(bits, int) or not 16 <= bits <= 4096:
        raise CheckFailed("bits must be an integer in [16, 4096]")
    B_enc = [(exact_number(lo), exact_number(hi)) for lo, hi in ev["B_enclosures"]]
    u_enc = [tuple((exact_number(lo), exact_number(hi)) for lo, hi in u) for u in ev["u_enclosures"]]
    if len(B_enc) != len(pairs) or len(u_enc) != len(pairs):
        raise CheckFailed("one enclosure per constrained position expected")
    for lo, hi in B_enc + [x for u in u_enc for x in u]:
        if not hi - lo <= max(Fraction(1), abs(lo)) / 2**WIDTH_BITS:
            raise CheckFailed(f"an enclosure is wider than 2^-{WIDTH_BITS} (relative)")
    for (e, i), (blo, bhi), u in zip(pairs, B_enc, u_enc):
        part = decompose(model, (), dataset.examples[e].input, position=i)
        if not blo > 0 or not check_enclosure(ExpFrac(part.B), blo, bhi):
            raise CheckFailed(f"B enclosure of example {e} is wrong")
        if len(u) != model.d or not all(check_enclosure(x, lo, hi) for x, (lo, hi) in zip(part.u, u)):
            raise CheckFailed(f"u enclosure of example {e} is wrong")
    B_ref = exact_number(ev["B_reference"])
    if B_ref != reference(B_enc):
        raise CheckFailed("B_reference is not the rounded lower enclosure of B_1")
    prob = problem(model, zs, q, bits, B_enc, u_enc, B_ref)
    breaks = [exact_number(t) for t in ev["breakpoints"]]
    lows = [exact_number(x) for x in ev["leaf_lower_bounds"]]
    if breaks[0] != 0 or breaks[-1] != 1 or any(b <= a for a, b in zip(breaks, breaks[1:])):
        raise CheckFailed("breakpoints do not partition [0, 1]")
    if len(lows) != len(breaks) - 1:
        raise CheckFailed("one lower bound per leaf expected")
    for t0, t1, low in zip(breaks, breaks[1:], lows):
        if leaf_lower_bound(prob, t0, t1) != low:
            raise CheckFailed(f"leaf [{t0}, {t1}]: lower bound differs from the recomputation")
    inner = min(lows)
    if exact_number(ev["inner_minimum"]) != inner:
        raise CheckFailed("inner minimum is not the least leaf bound")
    expected = round_down((1 - L) ** 2 * inner, DIGITS)
    if exact_number(ev["floor"]) != expected or value != expected:
        raise CheckFailed("floor differs from round_down((1 − L)² · inner minimum)")
    return [
        f"spectral norms: L = {float(L):.6g} < 1",
        f"enclosures of {len(pairs)} (B_i, u_i) checked exactly",
        f"{len(lows)} branch-and-bound leaves recomputed; loss floor {float(value):.6g}",
    ]
