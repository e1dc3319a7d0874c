"""Re-check a claim "audit" certificate without any SMT solver (exact integers/Fractions + arb balls).

Evidence layout (every number an exact string unless said otherwise)::

    {"layers": [{"layer": i (int), "verdict": "not-injective" | "unknown",
                 "W1": {"v": [ints], "v_norm2": "‖v‖²", "Wv_norm2": "‖W1 v‖²", "lower": "q1"},
                 "W2": {... the same for W2 ...},
                 "norm_product_lower": "q1·q2", "norm_condition_fails": q1·q2 ≥ 1 (bool),
                 "sign_flip": null | {"positive": [x], "negative": [x'], "bits": b (int),
                                      "det_positive": {"exponent": k, "mantissa": "m"}, "det_negative": {...}}}],
     "not_injective_layers": [i, ...],
     "layer_norm_collision": null | {"layers": [i, ...], "x": [...], "y": [...]},
     "attention_shift": null | {"input": [[x]], "prompt": [[p]], "bits": b (int), "first_layer_exact": true,
                                "layers": [{"layer": ℓ, "lower": "lo", "upper": "hi"}], "moved_layers": [ℓ, ...]}}

Recomputed from the certificate's model, for each audited layer (strictly increasing indices,
each a GELU layer with binary64 weights):
- ‖v‖² and ‖Wv‖² exactly for the integer witness v, and q = ⌊10⁶√(‖Wv‖²/‖v‖²)⌋/10⁶ by integer
  square roots, so ‖W‖₂ ≥ ‖Wv‖/‖v‖ ≥ q; the product q1·q2 and whether it is ≥ 1 (then the
  sufficient condition ‖W2‖‖W1‖ < 1 of THEORY §7 fails);
- for a sign flip: det J at both binary64 points in arb at ``bits`` (a power of two, 64 to
  MAX_BITS), each enclosure inside its record's interval (``proofs.det_record``), positive at
  x and negative at x'. By invariance of domain the block x ↦ x + W2 GELU(W1 x + b1) + b2 is
  then NOT injective (``proofs.gelu_orientation``). Verdict "not-injective" iff a flip is given;
- the list of not-injective layers; and when the model has layer norms, the listed layers
  are exactly those, x ≠ y and x − mean(x) = y − mean(y), so every layer norm (any gains,
  biases, ε) maps x and y to the same output: no layer norm is injective;
- for an attention shift: S_1(P) = 0 decided exactly again (exp-polynomial identity,
  ``first_layer_invariant``); the enclosures lo ≤ S_ℓ(P) ≤ hi of every layer, recomputed in arb
  at ``bits`` from the stored input X and prompt P and rounded outward to 9 decimals
  (``proofs.relative_attention``), and the layers with lo > 0, where P provably moves the
  relative attention among the input tokens (THEORY §1 rules that out at layer 1 only).
Every stored number must equal its recomputed value.
"""

from __future__ import annotations

from fractions import Fraction

from promptlimits.constructions.numbers import is_binary64
from promptlimits.proofs.certificate import CheckFailed, Subjects, exact_number, exact_vector
from promptlimits.proofs.det_record import record_holds, sign_of
from promptlimits.proofs.gelu_orientation import GeluBlock, jacobian_det
from promptlimits.proofs.interval import precision
from promptlimits.proofs.norm_lower_bound import certified_lower, squared_norms
from promptlimits.proofs.relative_attention import first_layer_invariant, rounded, shift_enclosures

CLAIM = "audit"
MAX_BITS = 4096
#: Most input and prompt tokens an attention-shift record may hold (keeps recheck bounded).
MAX_SHIFT_TOKENS = 64


def _same(claimed: object, value: Fraction, what: str) -> None:
    if exact_number(claimed) != value:
        raise CheckFailed(f"{what}: claimed {claimed}, recomputed {value}")


def _int_list(items: object, what: str) -> list[int]:
    if not isinstance(items, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in items):
        raise CheckFailed(f"{what}: expected a list of integers")
    return items


def _norm(W, entry: dict, width: int, what: str) -> Fraction:
    """Re-verify one norm witness; returns its certified lower bound q ≤ ‖W‖₂."""
    v = exact_vector(entry["v"], width, f"{what} witness")
    if any(x.denominator != 1 for x in v) or not any(v):
        raise CheckFailed(f"{what}: the witness must be a nonzero integer vector")
    v2, wv2 = squared_norms(W, [int(x) for x in v])
    _same(entry["v_norm2"], Fraction(v2), f"{what} ‖v‖²")
    _same(entry["Wv_norm2"], wv2, f"{what} ‖Wv‖²")
    q = certified_lower(v2, wv2)
    _same(entry["lower"], q, f"{what} certified lower bound")
    return q


def _bits(bits: object, what: str) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 64 <= bits <= MAX_BITS or bits & (bits - 1):
        raise CheckFailed(f"{what}: bits must be a power of two from 64 to {MAX_BITS}, got {bits!r}")
    return bits


def _flip(block: GeluBlock, flip: dict, what: str) -> None:
    """Re-verify det J(positive) > 0 > det J(negative) in arb at the stated precision."""
    bits = _bits(flip["bits"], what)
    for key, want in (("positive", 1), ("negative", -1)):
        x = exact_vector(flip[key], block.d, f"{what} {key} point")
        if not all(is_binary64(c) for c in x):
            raise CheckFailed(f"{what}: the {key} point is not a binary64 vector")
        ball = jacobian_det(block, [float(c) for c in x], bits)
        record = flip[f"det_{key}"]
        with precision(bits):
            holds = record_holds(ball, record)
        if not holds or sign_of(record) != want:
            raise CheckFailed(f"{what}: det J at the {key} point is {ball.str(radius=True)}, "
                              f"not inside the claimed {key} record {record!r}"[:300])


def _layer_norms(model, entry: object) -> list[str]:
    normed = [i for i, layer in enumerate(model.layers) if layer.norm == "layernorm"]
    if not normed:
        if entry is not None:
            raise CheckFailed("a layer norm collision for a model without layer norms")
        return []
    if not isinstance(entry, dict) or _int_list(entry["layers"], "layer norm layers") != normed:
        raise CheckFailed(f"the layer norm collision must list the layers {normed}")
    x, y = exact_vector(entry["x"], model.d, "collision x"), exact_vector(entry["y"], model.d, "collision y")
    mx, my = sum(x) / model.d, sum(y) / model.d
    if x == y or any(a - mx != b - my for a, b in zip(x, y)):
        raise CheckFailed("the layer norm collision points are equal or differ after centring")
    return [f"layer norm not injective on layers {normed}: x ≠ y with x − mean(x) = y − mean(y) exactly"]


def _tokens(items: object, d: int, what: str) -> tuple[tuple[Fraction, ...], ...]:
    if not isinstance(items, list) or not 0 < len(items) <= MAX_SHIFT_TOKENS:
        raise CheckFailed(f"{what}: expected 1 to {MAX_SHIFT_TOKENS} tokens")
    return tuple(exact_vector(t, d, f"{what}[{j}]") for j, t in enumerate(items))


def _attention_shift(model, entry: object) -> list[str]:
    """Re-verify the per-layer enclosures of the prompt's relative-attention shift."""
    if entry is None:
        return []
    if not isinstance(entry, dict):
        raise CheckFailed("attention_shift: expected an object or null")
    X, P = _tokens(entry["input"], model.d, "attention_shift input"), _tokens(entry["prompt"], model.d,
                                                                               "attention_shift prompt")
    bits = _bits(entry["bits"], "attention_shift")
    if entry["first_layer_exact"] is not True or not first_layer_invariant(model, X, P):
        raise CheckFailed("attention_shift: the first layer's relative attention must be shown unchanged exactly")
    layers = entry["layers"]
    if not isinstance(layers, list) or len(layers) != len(model.layers):
        raise CheckFailed(f"attention_shift: expected one entry per layer ({len(model.layers)})")
    moved = []
    for l, ((lo, hi), claimed) in enumerate(zip(shift_enclosures(model, X, P, bits), layers)):
        if claimed["layer"] != l:
            raise CheckFailed(f"attention_shift: entry {l} names layer {claimed['layer']!r}")
        lo, hi = rounded(lo, hi)
        _same(claimed["lower"], lo, f"attention_shift layer {l} lower end")
        _same(claimed["upper"], hi, f"attention_shift layer {l} upper end")
        if lo > 0:
            moved.append(l)
    if _int_list(entry["moved_layers"], "moved_layers") != moved:
        raise CheckFailed(f"attention_shift: moved_layers must be {moved}")
    return ["first layer: relative attention among the input tokens is exactly the same with and without "
            "the stored prompt (exp-polynomial identity)",
            f"attention shift of the stored prompt re-enclosed at {bits} bits on every layer; "
            f"relative attention provably moved at layers {moved}"]


def recheck(cert: dict, subj: Subjects) -> list[str]:
    if cert.get("verdict") != "audited":
        raise CheckFailed(f"an audit certificate states 'audited', not {cert.get('verdict')!r}")
    model, ev = subj.model, cert["evidence"]
    entries = ev["layers"]
    if not isinstance(entries, list) or not entries:
        raise CheckFailed("no audited layers")
    indices = _int_list([e["layer"] for e in entries], "layer indices")
    if indices != sorted(set(indices)) or not 0 <= indices[0] <= indices[-1] < len(model.layers):
        raise CheckFailed(f"layer indices {indices} are not increasing within the model's {len(model.layers)}")
    checked, flips = [], []
    for i, entry in zip(indices, entries):
        layer, what = model.layers[i], f"layer {i}"
        try:
            block = GeluBlock.of_layer(layer)
        except (ValueError, OverflowError) as err:
            raise CheckFailed(f"{what}: {err}") from None
        q1 = _norm(layer.W1, entry["W1"], model.d, f"{what} ‖W1‖")
        q2 = _norm(layer.W2, entry["W2"], layer.hidden, f"{what} ‖W2‖")
        _same(entry["norm_product_lower"], q1 * q2, f"{what} norm product lower bound")
        if entry["norm_condition_fails"] is not (q1 * q2 >= 1):
            raise CheckFailed(f"{what}: norm_condition_fails must say whether {q1 * q2} ≥ 1")
        checked.append(f"{what}: ‖W1‖ ≥ {q1}, ‖W2‖ ≥ {q2} (exact witnesses), product ≥ {float(q1 * q2):.6g}"
                       + (" ≥ 1: ‖W2‖‖W1‖ < 1 fails" if q1 * q2 >= 1 else ""))
        flip, verdict = entry["sign_flip"], entry["verdict"]
        if verdict not in ("not-injective", "unknown") or (verdict == "not-injective") != (flip is not None):
            raise CheckFailed(f"{what}: verdict {verdict!r} needs a sign flip exactly when 'not-injective'")
        if flip is not None:
            _flip(block, flip, what)
            flips.append(i)
            checked.append(f"{what}: det J > 0 and det J < 0 certified at two points ({flip['bits']} bits): "
                           "feed-forward block not injective")
    if _int_list(ev["not_injective_layers"], "not_injective_layers") != flips:
        raise CheckFailed(f"not_injective_layers must be {flips}")
    return checked + _layer_norms(model, ev["layer_norm_collision"]) + _attention_shift(model, ev.get("attention_shift"))
