"""THEORY §6: the exact LoRA update of W2 that realizes every target of a dataset.

Updating W2 alone leaves the attention sublayer and W1, b1 unchanged, so at every
constrained position k the prompt-free attention output a_k and the hidden features
h_k = ReLU(W1 a_k + b1) stay fixed and the output moves by ΔW2·h_k. The update must solve
ΔW2·H = E, H = [h_1 … h_K] (r×K), E = [y_k − τ(X)_k] (d×K).

- When the h_k are linearly independent (K ≤ r), ΔW2 = E·H⁺ with H⁺ = (HᵀH)⁻¹Hᵀ (the
  Moore–Penrose left inverse; the update of least Frobenius norm) realizes ANY targets,
  and rank ΔW2 = rank E ≤ min(K, d).
- Otherwise ΔW2·H = E is solvable iff every row of E lies in the row space of H; then the
  basic solution of Hᵀ·ΔW2ᵀ = Eᵀ (supported on pivot hidden units) is used, and when it is
  not solvable no update of W2 alone realizes the targets (InputError says so).

The a_k are exp-polynomial quotients (softmax), so everything is computed exactly over
that field (``proofs.exp_linalg``: exact elimination over Q(e^{1/L})). ΔW2 is factored as
B·A with B = k linearly independent columns of ΔW2 (k = rank ΔW2) and A the exact
coordinates of every column in that basis. The update is verified by re-evaluating every
constrained output exactly; a rational update is also re-evaluated through the plain
evaluator on the updated model.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import ExpVector, attention_exact, hidden_exact, layer_exact, tokens_with_positions
from promptlimits.constructions.spec import Dataset, Layer, Model, check_compatible, single_exact_layer
from promptlimits.proofs import exp_linalg
from promptlimits.proofs.exppoly import ExpFrac

ExpMatrix = tuple[tuple[ExpFrac, ...], ...]


@dataclass(frozen=True)
class Features:
    """Prompt-free quantities at every constrained position, in dataset order."""

    attention: tuple[ExpVector, ...]  # a_k
    hidden: tuple[tuple[ExpFrac, ...], ...]  # h_k (length r each)
    outputs: tuple[tuple[ExpFrac, ...], ...]  # τ(X)_k = f(a_k)
    targets: tuple[tuple[Fraction, ...], ...]  # y_k

    @property
    def residuals(self) -> tuple[tuple[ExpFrac, ...], ...]:
        """e_k = y_k − τ(X)_k."""
        return tuple(tuple(ExpFrac(y) - o for y, o in zip(ys, out)) for ys, out in zip(self.targets, self.outputs))


@dataclass(frozen=True)
class LoraUpdate:
    """ΔW2 = B·A (d×k times k×r) realizing every target exactly."""

    delta_W2: ExpMatrix
    B: ExpMatrix
    A: ExpMatrix
    method: str  # "moore-penrose" or "basic-solution"
    features: Features

    @property
    def rank(self) -> int:
        return len(self.A)

    @property
    def rational(self) -> bool:
        return all(x.rational_value() is not None for row in self.delta_W2 for x in row)

    def parameters(self) -> int:
        """k(d + r): what a rank-k LoRA of W2 trains."""
        return self.rank * (len(self.B) + len(self.A[0]) if self.A else 0)


def hidden_features(layer: Layer, a: ExpVector) -> tuple[ExpFrac, ...]:
    """h = ReLU(W1 a + b1), signs decided exactly (the denominator of a is > 0)."""
    return tuple(ExpFrac(h, a.den) for h in hidden_exact(layer, a))


def _block_output(layer: Layer, a: ExpVector, h: Sequence[ExpFrac], W2: Sequence[Sequence[object]]) -> tuple[ExpFrac, ...]:
    """a + W2·h + b2 with the given W2 (entries rational or ExpFrac)."""
    out = []
    for k, (row, bias) in enumerate(zip(W2, layer.b2)):
        acc = ExpFrac(a.nums[k], a.den) + bias
        for w, hj in zip(row, h):
            if not hj.is_zero() and w != 0:
                acc = acc + hj * w
        out.append(acc)
    return tuple(out)


def features(model: Model, dataset: Dataset) -> Features:
    """a_k, h_k, τ(X)_k and y_k at every constrained position (exact)."""
    layer = single_exact_layer(model, "the exact LoRA construction")
    check_compatible(model, dataset)
    atts, hids, outs, ys = [], [], [], []
    for ex in dataset.examples:
        seq = tokens_with_positions(model, ex.input)
        for i in ex.constrained():
            a = attention_exact(model, layer, seq, 0, i)
            h = hidden_features(layer, a)
            atts.append(a)
            hids.append(h)
            outs.append(_block_output(layer, a, h, layer.W2))
            ys.append(ex.target[i])
    if not atts:
        raise InputError("dataset: no constrained position (every target is null)")
    return Features(tuple(atts), tuple(hids), tuple(outs), tuple(ys))


def _transpose(m: Sequence[Sequence[object]]) -> list[list[object]]:
    return [list(col) for col in zip(*m)]


def factor(delta: ExpMatrix) -> tuple[ExpMatrix, ExpMatrix]:
    """(B, A) with delta = B·A, B the pivot columns of delta (k = rank delta of them)."""
    pivots = exp_linalg.column_pivots(delta)
    if not pivots:
        return (), ()
    B = tuple(tuple(row[j] for j in pivots) for row in delta)
    A = exp_linalg.solve(B, delta)
    if A is None:
        raise ArithmeticError("columns of ΔW2 outside the span of its pivot columns: elimination bug")
    return B, A


def lora_update(model: Model, dataset: Dataset) -> LoraUpdate:
    """The exact update ΔW2 (THEORY §6) and its rank factorisation; InputError when none exists."""
    feats = features(model, dataset)
    H = _transpose(feats.hidden)  # r×K
    E = _transpose(feats.residuals)  # d×K
    K = len(feats.hidden)
    if exp_linalg.rank(H) == K:
        Ht = _transpose(H)
        gram = exp_linalg.matmul(Ht, H)
        pinv = exp_linalg.solve(gram, Ht)  # (HᵀH)⁻¹Hᵀ
        if pinv is None:
            raise ArithmeticError("HᵀH singular although H has full column rank: elimination bug")
        delta = exp_linalg.matmul(E, pinv)
        method = "moore-penrose"
    else:
        sol = exp_linalg.solve(_transpose(H), _transpose(E))
        if sol is None:
            raise InputError(
                "dataset: no update of W2 alone realizes these targets: the hidden features h_k are "
                "linearly dependent and the residuals y_k − τ(X)_k do not follow the same dependence"
            )
        delta = tuple(tuple(col) for col in zip(*sol))
        method = "basic-solution"
    B, A = factor(delta)
    update = LoraUpdate(delta, B, A, method, feats)
    if not verify(model, update):
        raise ArithmeticError("the LoRA update does not reproduce the targets: construction bug")
    return update


def verify(model: Model, update: LoraUpdate) -> bool:
    """Exact check that W2 + B·A meets every target.

    The updated output at position k is a_k + (W2 + BA)·h_k + b2 = τ(X)_k + B·(A·h_k), with
    τ(X)_k evaluated exactly beforehand; so the check is B·(A·H) = E entry by entry, computed
    over Q(e^{1/L}) (one exact product chain, no growth of unreduced quotients).
    """
    feats = update.features
    H = _transpose(feats.hidden)
    if not update.B:
        moved = [[ExpFrac(0)] * len(feats.hidden) for _ in range(model.d)]
    else:
        moved = exp_linalg.matmul(update.B, exp_linalg.matmul(update.A, H))
    for k, e in enumerate(feats.residuals):
        if any(moved[i][k] != e[i] for i in range(model.d)):
            return False
    return True


def updated_model(model: Model, update: LoraUpdate, digits: int = 40) -> tuple[Model, bool]:
    """The model with W2 + ΔW2, and whether it is exact (True) or rounded to ``digits``
    significant digits (False: ΔW2 has non-rational entries)."""
    from promptlimits.proofs import interval

    layer = model.layers[0]
    exact = update.rational
    rows = []
    for row, drow in zip(layer.W2, update.delta_W2):
        new = []
        for w, x in zip(row, drow):
            q = x.rational_value()
            if q is None:
                q = Fraction(interval.decimal(x.ball(4 * digits + 64), digits))
            new.append(w + q)
        rows.append(tuple(new))
    new_layer = Layer(layer.heads, layer.W1, layer.b1, tuple(rows), layer.b2, layer.activation, layer.norm)
    return Model(model.d, (new_layer,), model.attention, model.score_scale, model.positional), exact


def verify_rational_model(model: Model, dataset: Dataset) -> bool:
    """Independent check through the plain evaluator: every target met exactly, no prompt."""
    for ex in dataset.examples:
        outs = layer_exact(model, (), ex.input)
        for i in ex.constrained():
            if not outs[i].equals(ex.target[i]):
                return False
    return True
