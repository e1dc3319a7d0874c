"""Hand-built two-layer causal models for THEORY §8 (Theorem 5), with hand-derived constants.

Both live in R² with one head per layer and inputs x = (±r, 0) (one input token).

``sorting_model(mu)`` — a prompt that is large enough makes attention collapse two inputs.
Layer 0's head: W_q = [[1, 0]], W_k = [[0, −μ]] so M = W_kᵀW_q = [[0, 0], [−μ, 0]] and the
score of key c at query q is −μ c₂ q₁ (‖M‖ = μ); W_v = [[1, 0]], W_o = [[1/2], [0]] so
V = diag(1/2, 0) (‖V‖ = 1/2). With prompt tokens p_A = (−2r, −K), p_B = (2r, K), the query
(r, 0) scores p_A at μKr, p_B at −μKr and itself at 0, so its attention output tends to
(r, 0) + V p_A = 0 as K grows, and (−r, 0) likewise picks p_B: both collapse to 0 (the
needed ‖p‖ ≈ K is large). Its attention bound is ½(1 + 4μR²) < 1 iff μR² < 1/4: certified
for small radii. Layer 0's feed-forward W1 = W2 = ½I, b = 0: ‖W2‖‖W1‖ = 1/4. Layer 1: head
M = [[0, 0], [1/4, 0]] (W_q = [[1/2, 0]], W_k = [[0, 1/2]]), V = diag(0, 1/4); feed-forward
W1 = [[1/2, 1/2]], b1 = (1/10), W2 = [[1/4], [0]]: ‖W1‖ = √2/2, ‖W2‖ = 1/4.

``folding_model(lam)`` — the last feed-forward block folds x₁ ↦ −|x₁| when λ = 1.
Everything commutes with the reflection S: x₁ ↦ −x₁ for prompts with p₁ = 0: heads score
on the second coordinate only (M = diag(0, 1/2)) and have diagonal V = diag(1/4, 1/4);
layer 0's feed-forward acts on x₂ only (W1 = [[0, 1/2]], b1 = (1/4), W2 = [[0], [1/2]],
product 1/4); layer 1's is h ↦ h − 2λ ReLU(h₁) e₁ (W1 = [[1, 0]], W2 = [[−2λ], [0]], product
2λ). With λ = 1 it maps h and S h to the same point, so (r, 0) and (−r, 0) have one output
under every S-symmetric prompt (Lip 2 ≥ 1: the theorem says nothing); λ ≤ 1/4 is certified.
"""

from __future__ import annotations

from fractions import Fraction

from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Model, Vector

F = Fraction


def _head(W_q, W_k, W_v, W_o) -> Head:
    conv = lambda m: tuple(tuple(F(x) for x in row) for row in m)  # noqa: E731
    return Head(conv(W_q), conv(W_k), conv(W_v), conv(W_o))


def _layer(head: Head, W1, b1, W2, b2=(0, 0)) -> Layer:
    conv = lambda m: tuple(tuple(F(x) for x in row) for row in m)  # noqa: E731
    return Layer((head,), conv(W1), tuple(F(x) for x in b1), conv(W2), tuple(F(x) for x in b2))


def sorting_model(mu: Fraction = F(1)) -> Model:
    """The two-layer model whose first head can sort (r, 0) and (−r, 0) onto one state."""
    h0 = _head([[1, 0]], [[0, -mu]], [[1, 0]], [[F(1, 2)], [0]])
    l0 = _layer(h0, [[F(1, 2), 0], [0, F(1, 2)]], [0, 0], [[F(1, 2), 0], [0, F(1, 2)]])
    h1 = _head([[F(1, 2), 0]], [[0, F(1, 2)]], [[0, 1]], [[0], [F(1, 4)]])
    l1 = _layer(h1, [[F(1, 2), F(1, 2)]], [F(1, 10)], [[F(1, 4)], [0]])
    return Model(2, (l0, l1), attention="causal")


def folding_model(lam: Fraction = F(1)) -> Model:
    """The two-layer model whose last feed-forward block is h ↦ h − 2λ ReLU(h₁) e₁."""
    head = _head([[0, 1]], [[0, F(1, 2)]], [[1, 0], [0, 1]], [[F(1, 4), 0], [0, F(1, 4)]])
    l0 = _layer(head, [[0, F(1, 2)]], [F(1, 4)], [[0], [F(1, 2)]])
    l1 = _layer(head, [[1, 0]], [0], [[-2 * lam], [0]])
    return Model(2, (l0, l1), attention="causal")


def mirrored_pair(r: Fraction, target: Vector) -> Dataset:
    """Inputs (r, 0) and (−r, 0), one token each, both with the target ``target``."""
    y = tuple(F(x) for x in target)
    return Dataset(2, (Example(((F(r), F(0)),), (y,)), Example(((-F(r), F(0)),), (y,))))
