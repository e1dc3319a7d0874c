"""THEORY §6: the families where LoRA beats prompt tuning, for a given model or a standard one.

Notation: K = ∩_h ker V_h, C = Σ_h col(V_h) (one head: ker V and col V). Every query q_i
lies in K, so the prompt-free head outputs are u_i = 0 and τ(X_i)_i = f(q_i); with any
prompt the attention output is a_i = q_i + Σ_h λ_ih v_ih with v_ih ∈ col(V_h P), hence
a_i − q_i ∈ C. Inputs are single tokens [q_i] (minus the positional encoding).

Family X (the separation). Targets y_i = f(q_i) + c_i·e along one direction e ∉ C. If some
preimage set f⁻¹(y_i) is known completely and no z in it has z − q_i ∈ C, no prompt of
ANY length realizes y_i (the certificate is the non-zero component of z − q_i outside C).
A rank-1 update ΔW2 = e·αᵀ with αᵀh_i = c_i realizes all targets when the hidden features
h_i = ReLU(W1 q_i + b1) are independent: d + r parameters.

Family L (the lower bound bites). Targets y_i = f(q_i + s_i) with s_1 … s_N ∈ C linearly
independent. When f is injective z_i = q_i + s_i, so [z_i − q_i] has rank N while
[u_i] = 0: any prompt needs H·m ≥ N. In the standard model (V the projector onto
S = span(e_1..e_N), M = I, q_i = e_{N+i}) the prompt p_j = s_j + K·e_{N+j} scores
K·δ_ij, so its loss tends to 0 as K → ∞ with m = N: ε-memorizable, not exactly.

Standard models (``standard_x``, ``standard_l``): one head with W_q = W_k = I, so M = I.
- X (d ≥ 2): V = e_1e_1ᵀ, q_i = i·e_2, e = e_d, c_i = 1; r = N hidden units reading
  e_2 with thresholds j − ½ (h_ij = ReLU(i − j + ½): triangular, so independent);
  W2 = e_d·βᵀ, β = 1/(2N) everywhere, so ‖W2‖₂‖W1‖₂ = 1/2 (f injective) and every
  f(z) − f(q_i) with z − q_i ∈ span(e_d) stays along e_d. z_i = q_i + e_d.
- L (d ≥ 2N): V = projector onto span(e_1..e_N), q_i = e_{N+i}, s_i = e_i; W1 = ½I,
  b1 = 0, W2 = ¼I, b2 = 0 (Lipschitz 1/8), so h_i = ½e_{N+i} are independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from typing import Optional

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import matvec, value_matrix
from promptlimits.constructions.lora import LoraUpdate, lora_update
from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Model, Vector, single_exact_layer
from promptlimits.proofs import linalg
from promptlimits.constructions.feed_forward import forward
from promptlimits.proofs.preimage import preimages

FAMILIES = ("X", "L")


@dataclass(frozen=True)
class Family:
    """One built family: the model, its dataset, and every quantity of the argument."""

    family: str
    model: Model
    dataset: Dataset
    queries: tuple[Vector, ...]  # encoded q_i (in K)
    z: tuple[Optional[Vector], ...]  # the unique preimage of y_i when proven, else None
    value_span: tuple[Vector, ...]  # a basis of C
    direction: Optional[Vector]  # e (family X)
    offsets: tuple[Vector, ...]  # s_i (family L)
    lora: Optional[LoraUpdate]  # exact update of W2, None when the h_i do not allow one
    lora_reason: str
    outside: Optional[tuple[int, Vector]]  # X: (i, component of z_i − q_i orthogonal to C)
    prompt_lower_bound: Optional[int]  # L: ⌈rank[z_i − q_i]/H⌉; X: None (no length works)
    prompt_reason: str  # what the prompt-side claim rests on, or why it is not proven


def _unit(d: int, i: int, scale: Fraction = Fraction(1)) -> Vector:
    return tuple(scale if j == i else Fraction(0) for j in range(d))


def _matrix(rows: list[list[Fraction]]) -> tuple[Vector, ...]:
    return tuple(tuple(Fraction(x) for x in row) for row in rows)


# ----------------------------------------------------------------------------- standard models


def standard_x(d: int, n: int) -> Model:
    """The standard Family X model (see the module docstring); d ≥ 2, n ≥ 1."""
    if d < 2:
        raise InputError("--d: family X needs d >= 2 (a direction outside col(V))")
    if n < 1:
        raise InputError("--n: needs at least one example")
    eye = _matrix([[int(i == j) for j in range(d)] for i in range(d)])
    head = Head(W_q=eye, W_k=eye, W_v=(_unit(d, 0),), W_o=tuple((x,) for x in _unit(d, 0)))
    W1 = tuple(_unit(d, 1) for _ in range(n))
    b1 = tuple(-Fraction(2 * j + 1, 2) + 1 for j in range(n))  # −(j − ½) for j = 1..n
    W2 = tuple(tuple(Fraction(1, 2 * n) if i == d - 1 else Fraction(0) for _ in range(n)) for i in range(d))
    layer = Layer((head,), W1, b1, W2, tuple(Fraction(0) for _ in range(d)))
    return Model(d=d, layers=(layer,))


def standard_l(d: int, n: int) -> Model:
    """The standard Family L model (see the module docstring); d ≥ 2n, n ≥ 1."""
    if n < 1:
        raise InputError("--n: needs at least one example")
    if d < 2 * n:
        raise InputError(f"--d: family L with n = {n} needs d >= {2 * n} (S and the query directions)")
    eye = _matrix([[int(i == j) for j in range(d)] for i in range(d)])
    W_v = tuple(_unit(d, i) for i in range(n))
    head = Head(W_q=eye, W_k=eye, W_v=W_v, W_o=tuple(tuple(row[i] for row in W_v) for i in range(d)))
    layer = Layer(
        (head,),
        tuple(tuple(x / 2 for x in row) for row in eye), tuple(Fraction(0) for _ in range(d)),
        tuple(tuple(x / 4 for x in row) for row in eye), tuple(Fraction(0) for _ in range(d)),
    )
    return Model(d=d, layers=(layer,))


# ----------------------------------------------------------------------------- the value geometry


def _value_geometry(model: Model) -> tuple[tuple[Vector, ...], tuple[Vector, ...]]:
    """(basis of K = ∩ ker V_h, basis of C = Σ col V_h)."""
    Vs = [value_matrix(h) for h in model.layers[0].heads]
    stacked = [row for V in Vs for row in V]
    kernel = linalg.nullspace(stacked)
    wide = [tuple(x for V in Vs for x in V[i]) for i in range(model.d)]
    return kernel, linalg.column_basis(wide)


def _hidden(layer: Layer, x: Vector) -> Vector:
    return tuple(max(v + b, Fraction(0)) for v, b in zip(matvec(layer.W1, x), layer.b1))


def _queries(layer: Layer, kernel: tuple[Vector, ...], n: int, independent: bool) -> list[Vector]:
    """n points of span(kernel) (non-zero, distinct), with linearly independent hidden
    features when ``independent``; greedy over small rational combinations."""
    chosen: list[Vector] = []
    features: list[Vector] = []
    dims = len(kernel)
    scales = [Fraction(1), Fraction(2), Fraction(1, 2), Fraction(-1), Fraction(3), Fraction(-2),
              Fraction(1, 3), Fraction(-1, 2), Fraction(5), Fraction(-3)]
    combos = [(i,) for i in range(dims)] + [(i, j) for i in range(dims) for j in range(i + 1, dims)]
    for t in scales:
        for combo in combos:
            for sign in (1, -1) if len(combo) == 2 else (1,):
                x = tuple(
                    t * (kernel[combo[0]][k] + (sign * kernel[combo[1]][k] if len(combo) == 2 else 0))
                    for k in range(len(kernel[0]))
                )
                if not any(x) or x in chosen:
                    continue
                h = _hidden(layer, x)
                if independent and linalg.rank(features + [h]) <= len(features):
                    continue
                chosen.append(x)
                features.append(h)
                if len(chosen) == n:
                    return chosen
    return chosen


def _raw(model: Model, q: Vector) -> Vector:
    pos = model.positional
    return q if pos is None else tuple(a - b for a, b in zip(q, pos[0]))


def _complement_component(basis: tuple[Vector, ...], d: int, x: Vector) -> Vector:
    """x minus its orthogonal projection onto span(basis) (exact)."""
    P = linalg.projector(basis, d) if basis else tuple(tuple(Fraction(0) for _ in range(d)) for _ in range(d))
    px = matvec(P, x)
    return tuple(a - b for a, b in zip(x, px))


def _unique_preimage(layer: Layer, y: Vector) -> Optional[tuple[Vector, ...]]:
    """All preimages of y when the list is proven complete (Z3-free arguments), else None."""
    pre = preimages(layer, y, limit=16, allow_smt=False)
    return pre.points if pre.complete else None


# ----------------------------------------------------------------------------- the builders


def family_x(model: Model, n: int) -> Family:
    """Family X for ``model`` with n examples; InputError saying why when it cannot be built."""
    layer = single_exact_layer(model, "the §6 families")
    d = model.d
    kernel, span = _value_geometry(model)
    if not kernel:
        raise InputError("model: ker V = {0}, so no query makes the prompt-free head output vanish")
    if len(span) == d:
        raise InputError("model: col(V) = R^d, so every direction is reachable by a prompt; family X needs e outside col(V)")
    queries = _queries(layer, kernel, n, independent=True)
    if len(queries) < n:
        raise InputError(
            f"model: found only {len(queries)} queries in ker V with linearly independent hidden "
            f"features (n = {n} requested, r = {layer.hidden})"
        )
    # e: the part orthogonal to C of the first unit vector that has one (exists: C ≠ R^d)
    e = next(c for c in (_complement_component(span, d, _unit(d, i)) for i in range(d)) if any(c))
    targets = [tuple(fq + ek for fq, ek in zip(forward(layer, q), e)) for q in queries]
    return _finish_x(model, queries, targets, e, span)


def _finish_x(model: Model, queries, targets, e, span) -> Family:
    layer = model.layers[0]
    d = model.d
    examples = tuple(Example(((_raw(model, q)),), (y,)) for q, y in zip(queries, targets))
    dataset = Dataset(d=d, examples=examples)
    zs: list[Optional[Vector]] = []
    outside = None
    reason = "no preimage set f⁻¹(y_i) is known completely (Z3-free), so the prompt impossibility is not proven"
    for i, (q, y) in enumerate(zip(queries, targets)):
        pts = _unique_preimage(layer, y)
        zs.append(pts[0] if pts is not None and len(pts) == 1 else None)
        if outside is None and pts is not None:
            comps = [_complement_component(span, d, tuple(a - b for a, b in zip(z, q))) for z in pts]
            if all(any(c) for c in comps):
                outside = (i, comps[0])
                reason = (f"every preimage z of y_{i} has z − q_{i} ∉ col(V) (component outside: exact, "
                          f"non-zero), and a prompt only adds points of col(V): no prompt of any length")
    update, why = _try_lora(model, dataset)
    return Family("X", model, dataset, tuple(queries), tuple(zs), span, e, (), update, why,
                  outside, None, reason)


def _try_lora(model: Model, dataset: Dataset) -> tuple[Optional[LoraUpdate], str]:
    try:
        return lora_update(model, dataset), ""
    except InputError as err:
        return None, str(err)


def family_l(model: Model, n: int) -> Family:
    """Family L for ``model`` with n examples; InputError saying why when it cannot be built."""
    layer = single_exact_layer(model, "the §6 families")
    kernel, span = _value_geometry(model)
    if not kernel:
        raise InputError("model: ker V = {0}, so no query makes the prompt-free head output vanish")
    if len(span) < n:
        raise InputError(f"model: col(V) has dimension {len(span)} < n = {n}: no n independent offsets s_i")
    queries = _queries(layer, kernel, n, independent=True)
    if len(queries) < n:
        queries = _queries(layer, kernel, n, independent=False)
    if len(queries) < n:
        raise InputError(f"model: found only {len(queries)} distinct queries in ker V (n = {n} requested)")
    offsets = list(span[:n])
    return _finish_l(model, queries, offsets)


def _finish_l(model: Model, queries, offsets) -> Family:
    layer = model.layers[0]
    d = model.d
    zs_wanted = [tuple(a + b for a, b in zip(q, s)) for q, s in zip(queries, offsets)]
    targets = [forward(layer, z) for z in zs_wanted]
    examples = tuple(Example(((_raw(model, q)),), (y,)) for q, y in zip(queries, targets))
    dataset = Dataset(d=d, examples=examples)
    H = len(layer.heads)
    zs: list[Optional[Vector]] = []
    for y in targets:
        pts = _unique_preimage(layer, y)
        zs.append(pts[0] if pts is not None and len(pts) == 1 else None)
    _, span = _value_geometry(model)
    if all(z is not None for z in zs):
        rank = linalg.rank([tuple(a - b for a, b in zip(z, q)) for z, q in zip(zs, queries)])
        bound = max(1, ceil(rank / H))
        reason = (f"f⁻¹(y_i) is one point for every i; rank[z_i − q_i] = {rank}, rank[u_i] = 0 "
                  f"(queries in ker V), so {H}·m ≥ {rank}")
    else:
        bound = None
        reason = "some f⁻¹(y_i) is not proven to be a single point, so the rank bound is not certified"
    update, why = _try_lora(model, dataset)
    return Family("L", model, dataset, tuple(queries), tuple(zs), span, None, tuple(offsets), update, why,
                  None, bound, reason)


def standard_family(family: str, d: int, n: int) -> Family:
    """Build the standard model of ``family`` and its family with n examples."""
    if family == "X":
        model = standard_x(d, n)
        queries = [_unit(d, 1, Fraction(i)) for i in range(1, n + 1)]
        e = _unit(d, d - 1)
        targets = [forward(model.layers[0], tuple(a + b for a, b in zip(q, e))) for q in queries]
        return _finish_x(model, queries, targets, e, _value_geometry(model)[1])
    if family == "L":
        model = standard_l(d, n)
        return _finish_l(model, [_unit(d, n + i) for i in range(n)], [_unit(d, i) for i in range(n)])
    raise InputError(f"--family: expected one of {FAMILIES}, got {family!r}")


def build_family(family: str, model: Model, n: int) -> Family:
    """Family X or L for a given model."""
    if family == "X":
        return family_x(model, n)
    if family == "L":
        return family_l(model, n)
    raise InputError(f"--family: expected one of {FAMILIES}, got {family!r}")


def epsilon_prompt(fam: Family, K: Fraction) -> tuple[Vector, ...]:
    """Family L, standard model: the m = N prompt p_j = s_j + K·e_{N+j}, whose scores are
    K·δ_ij; its loss → 0 as K → ∞ (never exactly 0)."""
    if fam.family != "L":
        raise ValueError("epsilon_prompt applies to family L")
    d, n = fam.model.d, len(fam.offsets)
    return tuple(tuple(s[k] + (K if k == n + j else 0) for k in range(d)) for j, s in enumerate(fam.offsets))

