"""THEORY §4 (Theorem 2): a two-example dataset that no prompt of any length memorizes,
built for ANY given one-layer model (one head or several).

Everything happens on the tokens AFTER positional encoding; the dataset's inputs are those
tokens minus the encodings. Write q for the query token (the last position of both
examples), M_h, V_h for the score and value matrices of head h, W = Σ_h V_h δ.

Choice. q is tried among e_1, …, e_d, the all-ones vector and 0; δ is a basis vector of
{δ : δᵀM_h q = 0 for every h} with W ≠ 0. (With one head this exists unless V = 0, or
rank V = 1 and row(V) = span(Mq); q = 0 then still works when V ≠ 0. With H heads the
common orthogonal complement has dimension ≥ d − H, hence the generic need for d ≥ H + 1.)
Examples: [q, q] and [q + δ, q], the last position constrained.

Why no prompt works (f injective). For any prompt P, every head scores both context tokens
equally (δ ⊥ M_h q), so B_h is the same in both examples, and A_h, v_h, λ_h ∈ (0, 1) depend
on P and q only. The prompt-free head outputs are u_1h = V_h q, u_2h = V_h q + ½V_h δ, so
the two attention outputs always differ by

    a_1 − a_2 = Σ_h (1 − λ_h)(u_1h − u_2h) = −½ Σ_h (1 − λ_h) V_h δ,

whose component along W satisfies ⟨W, a_1 − a_2⟩ ≥ −R, R = ½ Σ_h |⟨W, V_h δ⟩|. The targets
are y_k = f(z_k) with ⟨W, z_1 − z_2⟩ = −(‖W‖² + R) < −R. With f injective a prompt meeting
both targets needs a_k = z_k, which is impossible.

Why each example alone is reachable. The one-token prompt [q + cδ] scores like the two
context tokens in every head, so λ_h = 1/3 exactly and the attention outputs are rational:
a_1 = q + Σ_h V_h q + (c/3) W and a_2 = q + Σ_h V_h q + ((c + 1)/3) W. We put
z_1 = a_1 at c_1 = −3/2 and z_2 = a_2 at c_2 = 3κ − 5/2, κ = 1 + R/‖W‖², so that
z_1 − z_2 = −κ W and the two prompts are explicit witnesses.

One head: this is the paper's dataset. Then R = ½‖Vδ‖², κ = 3/2, and with
u_1 = Vq, u_2 = V(q + δ/2), w = u_1 − u_2 = −½Vδ:
z_1 = q + Vq − ½Vδ = q + u_1 + w and z_2 = q + Vq + Vδ = q + u_2 − w. Theorem 1's
equations v = (z_i − q) + B a (z_i − q − u_i) read v = u_1 + w + B a w and
v = u_2 − w − B a w; subtracting, 0 = (u_1 − u_2) + 2w + 2B a w = (3 + 2B a) w, and w ≠ 0
forces a = −3/(2B) < 0 (B = 2e^{qᵀMq} > 0): no a = 1/A > 0 exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import dot, layer_exact, matvec, score_matrix, value_matrix
from promptlimits.constructions.spec import Dataset, Example, Model, Vector, single_exact_layer
from promptlimits.proofs import linalg
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.constructions.feed_forward import forward


@dataclass(frozen=True)
class ImpossibleDataset:
    """The §4 dataset for one model, with every quantity of the argument (all rational but B, a)."""

    dataset: Dataset
    query: Vector  # q, the encoded last token of both examples
    delta: Vector
    direction: Vector  # W = Σ_h V_h δ
    radius: Fraction  # R = ½ Σ_h |⟨W, V_h δ⟩|
    separation: Fraction  # ⟨W, z_1 − z_2⟩ = −(‖W‖² + R)
    z: tuple[Vector, Vector]  # attention outputs the targets demand
    targets: tuple[Vector, Vector]
    witnesses: tuple[tuple[Vector, ...], tuple[Vector, ...]]  # one-token prompts, one per example
    forced_a: Optional[ExpFrac]  # one head: Theorem 1's a = −3/(2B); None with several heads


def _candidates(d: int) -> list[Vector]:
    zero, one = Fraction(0), Fraction(1)
    units = [tuple(one if j == i else zero for j in range(d)) for i in range(d)]
    return units + [tuple(one for _ in range(d)), tuple(zero for _ in range(d))]


def _delta_for(q: Vector, Ms: list, Vsum: list, d: int) -> Optional[Vector]:
    """A basis vector δ of {δ : δ ⊥ M_h q ∀h} with (Σ_h V_h) δ ≠ 0, or None when none exists.

    The basis spans that subspace, so if every basis vector lies in ker Σ_h V_h the whole
    subspace does: None is then a proof that this q admits no δ.
    """
    rows = [matvec(M, q) for M in Ms]
    rows = [g for g in rows if any(g)]
    basis = linalg.nullspace(rows) if rows else tuple(
        tuple(Fraction(int(i == j)) for j in range(d)) for i in range(d)
    )
    for b in basis:
        if any(matvec(Vsum, b)):
            return b
    return None


def check_model(model: Model) -> None:
    """InputError unless the model is one exact ReLU layer accepting two-token inputs."""
    single_exact_layer(model, "the §4 construction")
    limit = model.max_length()
    if limit is not None and limit < 2:
        raise InputError(f"model.positional: the construction needs two input positions, the encodings cover {limit}")


def impossible_dataset(model: Model) -> ImpossibleDataset:
    """Build THEORY §4's dataset for ``model``; InputError saying why when no (q, δ) exists."""
    check_model(model)
    layer = model.layers[0]
    d = model.d
    Ms = [score_matrix(h, model.score_scale) for h in layer.heads]
    Vs = [value_matrix(h) for h in layer.heads]
    Vsum = tuple(tuple(sum((V[i][j] for V in Vs), Fraction(0)) for j in range(d)) for i in range(d))
    if not any(any(row) for row in Vsum):
        raise InputError(
            "model: the value maps sum to zero (Σ_h V_h = 0), so two examples sharing the query "
            "never differ in their attention output; the §4 construction does not apply"
        )
    chosen = None
    for q in _candidates(d):
        delta = _delta_for(q, Ms, Vsum, d)
        if delta is not None:
            chosen = (q, delta)
            break
    if chosen is None:  # unreachable: q = 0 gives every δ, and Σ_h V_h ≠ 0
        raise InputError("model: no query q and direction δ with δ ⊥ M_h q and (Σ_h V_h) δ ≠ 0")
    q, delta = chosen
    W = matvec(Vsum, delta)
    R = sum((abs(dot(W, matvec(V, delta))) for V in Vs), Fraction(0)) / 2
    W2 = dot(W, W)
    kappa = 1 + R / W2
    cs = (Fraction(-3, 2), 3 * kappa - Fraction(5, 2))
    base = tuple(qk + sum((vq[k] for vq in (matvec(V, q) for V in Vs)), Fraction(0)) for k, qk in enumerate(q))
    firsts = (q, tuple(a + b for a, b in zip(q, delta)))
    zs = (
        tuple(b + cs[0] / 3 * w for b, w in zip(base, W)),
        tuple(b + (cs[1] + 1) / 3 * w for b, w in zip(base, W)),
    )
    ys = tuple(forward(layer, z) for z in zs)
    pos = model.positional

    def raw(token: Vector, i: int) -> Vector:
        return token if pos is None else tuple(a - b for a, b in zip(token, pos[i]))

    examples = tuple(
        Example(input=(raw(first, 0), raw(q, 1)), target=(None, y)) for first, y in zip(firsts, ys)
    )
    dataset = Dataset(d=d, examples=examples)
    witnesses = tuple((tuple(qk + c * dk for qk, dk in zip(q, delta)),) for c in cs)
    forced = forced_a(model, dataset, zs) if len(layer.heads) == 1 else None
    return ImpossibleDataset(
        dataset=dataset, query=q, delta=delta, direction=W, radius=R,
        separation=dot(W, tuple(a - b for a, b in zip(*zs))),
        z=zs, targets=ys, witnesses=witnesses, forced_a=forced,
    )


def forced_a(model: Model, dataset: Dataset, zs: tuple[Vector, Vector]) -> ExpFrac:
    """The a that Theorem 1's two equations force (one head), solved exactly.

    Subtracting v = (z_i − q) + B_i a (z_i − q − u_i) for i = 1, 2 gives the vector equation
    (z_1 − z_2) + a (B_1 (z_1 − q − u_1) − B_2 (z_2 − q − u_2)) = 0 in the one unknown a;
    it is solved on a coordinate where the coefficient is non-zero and checked on all.
    """
    parts = [decompose(model, (), ex.input, position=len(ex.input) - 1) for ex in dataset.examples]
    q = dataset.examples[0].input[-1] if model.positional is None else tuple(
        a + b for a, b in zip(dataset.examples[0].input[-1], model.positional[1])
    )
    coeff = []
    for part, z in zip(parts, zs):
        coeff.append([ExpFrac(part.B) * (z[k] - q[k]) - part.Bu[k] for k in range(model.d)])
    diff = [zs[0][k] - zs[1][k] for k in range(model.d)]
    lin = [coeff[0][k] - coeff[1][k] for k in range(model.d)]
    k = next(k for k in range(model.d) if not lin[k].is_zero())
    a = -ExpFrac(diff[k]) / lin[k]
    if any(not (lin[j] * a + diff[j]).is_zero() for j in range(model.d)):
        raise ArithmeticError("Theorem 1's equations are inconsistent in a: construction bug")
    return a


def witness_reproduces(model: Model, built: ImpossibleDataset, k: int) -> bool:
    """Exact check that the one-token prompt ``witnesses[k]`` meets example k's target."""
    ex = built.dataset.examples[k]
    out = layer_exact(model, built.witnesses[k], ex.input, positions=(len(ex.input) - 1,))[0]
    return out.equals(built.targets[k])
