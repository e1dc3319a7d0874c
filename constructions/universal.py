"""THEORY §9: one transformer g that a prompt turns into any L-Lipschitz map (universality by construction).

Inputs X ∈ [0,1]^{d×n} enter as tokens [x_i; 0] of width D = 2d + n + 2 + 4dn; positional
encodings put a one-hot position and a constant 1 on input positions. Coordinate blocks:

    X (d) | Q (d) | POS (n) | ONE (1) | G (dn) | KEY (dn) | S (1) | VAL (dn) | OUT (dn)

Three layers, bidirectional attention, score scale 1 (the score scales β sit in W_q):

1. quantise (token-wise: one head with V = 0, so attention adds exactly 0): ReLU ramps
   δ·clamp((x − jδ)/η, 0, 1), j = 1..K−1, write q = δ·⌊x/δ⌋ into Q exactly off the bands
   (jδ, jδ + η); the same block writes −x into X (ReLU(x) − ReLU(−x) = x), so X becomes 0;
2. gather: head j scores β_g·[key is input position j] (query ONE, key POS) and copies that
   key's Q into block j of G, so every position holds c ≈ the whole quantised sequence
   (prompt tokens have POS = Q = 0: they take weight ≤ (N+n−1)e^{−β_g} but add nothing);
   the feed-forward block is zero;
3. retrieve + clean up: one head with query β_r·(G, ONE) and key (KEY, S); prompt token
   c'' carries KEY = 2c'', S = B − ‖c''‖², VAL = f(c̄''), so it scores
   β_r(‖G‖² − ‖G − c''‖² + B): the right token wins by ≥ β_r·δ²/2 (when ‖G − c‖ ≤ δ/4) and
   input tokens (KEY = S = 0) by ≥ β_r(B − ‖G − c‖²); VAL is copied into OUT. The
   feed-forward block moves block i of OUT to X at position i (ReLU gates
   ±OUT − M·ONE + M·POS_i, exact when |OUT| ≤ M) and cancels every coordinate past X.

Error at position i (first d coordinates) ≤ L·δ·√(dn)/2 (distance to the cell centre)
+ (N + n − 1)·e^{−β_r δ²/2}·√d (retrieval leakage, grid values in [0,1]) on the grid
cells minus the bands, whose union has measure ≤ dn·(K−1)·η.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.spec import Head, Layer, Model

#: Limits on what ``choose_params`` builds: prompt length and d·n (the prompt grows as K^{dn}).
MAX_PROMPT = 4096
MAX_TOKENS_DN = 6


@dataclass(frozen=True)
class Layout:
    """Coordinate blocks of the width-D token for d-dimensional tokens and n positions."""

    d: int
    n: int

    @property
    def X(self) -> int:
        return 0

    @property
    def Q(self) -> int:
        return self.d

    @property
    def POS(self) -> int:
        return 2 * self.d

    @property
    def ONE(self) -> int:
        return 2 * self.d + self.n

    @property
    def G(self) -> int:
        return self.ONE + 1

    @property
    def KEY(self) -> int:
        return self.G + self.d * self.n

    @property
    def S(self) -> int:
        return self.KEY + self.d * self.n

    @property
    def VAL(self) -> int:
        return self.S + 1

    @property
    def OUT(self) -> int:
        return self.VAL + self.d * self.n

    @property
    def width(self) -> int:
        return self.OUT + self.d * self.n


@dataclass(frozen=True)
class UniversalParams:
    """Everything g depends on: grid K (δ = 1/K), band width η < δ, score scales, key offset B, gate M."""

    d: int
    n: int
    K: int
    eta: Fraction
    beta_gather: Fraction
    beta_retrieve: Fraction
    offset: Fraction = Fraction(1)
    gate: Fraction = Fraction(2)

    @property
    def delta(self) -> Fraction:
        return Fraction(1, self.K)

    @property
    def prompt_length(self) -> int:
        """N = K^{dn}: one prompt token per grid sequence."""
        return self.K ** (self.d * self.n)

    @property
    def layout(self) -> Layout:
        return Layout(self.d, self.n)

    def check(self) -> None:
        if self.d < 1 or self.n < 1:
            raise InputError("universal: d and n must be positive integers")
        if self.d * self.n > MAX_TOKENS_DN:
            raise InputError(f"universal: d·n = {self.d * self.n} exceeds the limit {MAX_TOKENS_DN} (prompt length K^(dn))")
        if self.K < 1:
            raise InputError("universal: the grid needs K >= 1 cells per coordinate")
        if self.prompt_length > MAX_PROMPT:
            raise InputError(f"universal: prompt length {self.K}^{self.d * self.n} exceeds the limit {MAX_PROMPT}")
        if not 0 < self.eta < self.delta:
            raise InputError("universal: the band width eta must satisfy 0 < eta < delta")
        if self.beta_gather <= 0 or self.beta_retrieve <= 0 or self.offset <= 0 or self.gate <= 1:
            raise InputError("universal: score scales and the key offset must be positive, the gate above 1")


@dataclass(frozen=True)
class Budget:
    """The a-priori error budget of THEORY §9 for (params, L) (floats: for display and choice only)."""

    quantisation: float
    retrieval: float
    gather: float
    bands_measure: float

    @property
    def total(self) -> float:
        return self.quantisation + self.retrieval

    def to_json(self) -> dict[str, float]:
        return {"quantisation": self.quantisation, "retrieval_leakage": self.retrieval,
                "gather_leakage": self.gather, "total": self.total, "bands_measure": self.bands_measure}


def budget(p: UniversalParams, lipschitz: Fraction) -> Budget:
    """Quantisation L·δ·√(dn)/2, retrieval leakage (N+n−1)e^{−β_r δ²/2}√d, gather leakage ‖G − c‖ ≤
    (N+n−1)e^{−β_g}√(dn) (it only narrows the retrieval margin, kept ≤ δ/4 so the margin is ≥ δ²/2),
    band measure dn(K−1)η."""
    dn, N = p.d * p.n, p.prompt_length
    delta = float(p.delta)
    return Budget(
        quantisation=float(lipschitz) * delta * math.sqrt(dn) / 2,
        retrieval=(N + p.n - 1) * math.exp(-float(p.beta_retrieve) * delta**2 / 2) * math.sqrt(p.d),
        gather=(N + p.n - 1) * math.exp(-float(p.beta_gather)) * math.sqrt(dn),
        bands_measure=float(dn * (p.K - 1) * p.eta),
    )


def choose_params(d: int, n: int, lipschitz: Fraction, epsilon: Fraction) -> UniversalParams:
    """Parameters with budget total ≤ ε and bands measure ≤ ε/2: K the least integer with
    K·ε ≥ L·√(dn) (quantisation ≤ ε/2), η = min(δ/2, ε/(2dnK)), β_g and β_r integers with gather
    leakage ≤ δ/4 and retrieval leakage ≤ ε/4."""
    if lipschitz <= 0 or epsilon <= 0:
        raise InputError("universal: --lipschitz and --epsilon must be positive")
    if d < 1 or n < 1:
        raise InputError("universal: --d and --n must be positive integers")
    dn = d * n
    if dn > MAX_TOKENS_DN:
        raise InputError(f"universal: d·n = {dn} exceeds the limit {MAX_TOKENS_DN} (prompt length K^(dn))")
    K = 1
    while (K * epsilon) ** 2 < lipschitz**2 * dn:
        K += 1
        if K ** dn > MAX_PROMPT:
            raise InputError(f"universal: epsilon {epsilon} needs K >= {K} cells per coordinate, "
                             f"prompt length {K}^{dn} > {MAX_PROMPT}")
    delta = Fraction(1, K)
    eta = min(delta / 2, epsilon / (2 * dn * K))
    N = K**dn
    beta_g = math.ceil(math.log(4 * math.sqrt(dn) * (N + n) * K)) + 1
    beta_r = math.ceil(2 * K * K * math.log(4 * (N + n) * math.sqrt(d) / float(epsilon))) + 1
    p = UniversalParams(d, n, K, eta, Fraction(beta_g), Fraction(beta_r))
    p.check()
    return p


def _zeros(rows: int, cols: int) -> list[list[Fraction]]:
    return [[Fraction(0)] * cols for _ in range(rows)]


def _freeze(m: list[list[Fraction]]) -> tuple[tuple[Fraction, ...], ...]:
    return tuple(tuple(row) for row in m)


def _null_head(D: int) -> Head:
    z = _freeze(_zeros(1, D))
    return Head(z, z, z, _freeze(_zeros(D, 1)))


def _quantise_layer(p: UniversalParams) -> Layer:
    lay, D, delta = p.layout, p.layout.width, p.delta
    W1, b1, cols = [], [], []  # cols: (coordinate written, coefficient) per hidden unit
    for k in range(p.d):
        for j in range(1, p.K):
            for shift in (0, 1):  # δ·(ReLU(t) − ReLU(t − 1)), t = (x − jδ)/η
                row = [Fraction(0)] * D
                row[lay.X + k] = 1 / p.eta
                W1.append(row)
                b1.append(-j * delta / p.eta - shift)
                cols.append((lay.Q + k, delta if shift == 0 else -delta))
        for sign in (1, -1):  # X ← X − (ReLU(x) − ReLU(−x)) = 0
            row = [Fraction(0)] * D
            row[lay.X + k] = Fraction(sign)
            W1.append(row)
            b1.append(Fraction(0))
            cols.append((lay.X + k, Fraction(-sign)))
    return _layer((_null_head(D),), W1, b1, cols, D)


def _layer(heads: tuple[Head, ...], W1: list, b1: list, cols: list, D: int) -> Layer:
    W2 = _zeros(D, len(W1))
    for u, (coord, coef) in enumerate(cols):
        W2[coord][u] = coef
    return Layer(heads, _freeze(W1), tuple(b1), _freeze(W2), tuple(Fraction(0) for _ in range(D)))


def _gather_layer(p: UniversalParams) -> Layer:
    lay, D = p.layout, p.layout.width
    heads = []
    for j in range(p.n):
        W_q, W_k = _zeros(p.n, D), _zeros(p.n, D)
        W_q[j][lay.ONE] = p.beta_gather
        for t in range(p.n):
            W_k[t][lay.POS + t] = Fraction(1)
        W_v, W_o = _zeros(p.d, D), _zeros(D, p.d)
        for k in range(p.d):
            W_v[k][lay.Q + k] = Fraction(1)
            W_o[lay.G + j * p.d + k][k] = Fraction(1)
        heads.append(Head(_freeze(W_q), _freeze(W_k), _freeze(W_v), _freeze(W_o)))
    zero_ff = _zeros(1, D)
    return Layer(tuple(heads), _freeze(zero_ff), (Fraction(0),), _freeze(_zeros(D, 1)),
                 tuple(Fraction(0) for _ in range(D)))


def _retrieve_layer(p: UniversalParams) -> Layer:
    lay, D, dn = p.layout, p.layout.width, p.d * p.n
    W_q, W_k = _zeros(dn + 1, D), _zeros(dn + 1, D)
    for a in range(dn):
        W_q[a][lay.G + a] = p.beta_retrieve
        W_k[a][lay.KEY + a] = Fraction(1)
    W_q[dn][lay.ONE] = p.beta_retrieve
    W_k[dn][lay.S] = Fraction(1)
    W_v, W_o = _zeros(dn, D), _zeros(D, dn)
    for a in range(dn):
        W_v[a][lay.VAL + a] = Fraction(1)
        W_o[lay.OUT + a][a] = Fraction(1)
    head = Head(_freeze(W_q), _freeze(W_k), _freeze(W_v), _freeze(W_o))
    W1, b1, cols = [], [], []
    for i in range(p.n):
        for k in range(p.d):
            for sign in (1, -1):  # ReLU(±OUT_ik − M·ONE + M·POS_i): ±OUT_ik at position i, 0 elsewhere
                row = [Fraction(0)] * D
                row[lay.OUT + i * p.d + k] = Fraction(sign)
                row[lay.ONE] = -p.gate
                row[lay.POS + i] = p.gate
                W1.append(row)
                b1.append(Fraction(0))
                cols.append((lay.X + k, Fraction(sign)))
    for z in range(p.d, D):
        for sign in (1, -1):
            row = [Fraction(0)] * D
            row[z] = Fraction(sign)
            W1.append(row)
            b1.append(Fraction(0))
            cols.append((z, Fraction(-sign)))
    return _layer((head,), W1, b1, cols, D)


def universal_model(p: UniversalParams) -> Model:
    """The transformer g of THEORY §9 for these parameters (exact rational weights, bidirectional)."""
    p.check()
    lay = p.layout
    positional = []
    for i in range(p.n):
        v = [Fraction(0)] * lay.width
        v[lay.POS + i] = Fraction(1)
        v[lay.ONE] = Fraction(1)
        positional.append(tuple(v))
    return Model(d=lay.width, layers=(_quantise_layer(p), _gather_layer(p), _retrieve_layer(p)),
                 attention="bidirectional", score_scale=Fraction(1), positional=tuple(positional))


def read_params(model: Model) -> UniversalParams:
    """Recover the parameters of a model built by ``universal_model`` (InputError otherwise).

    The parameters are read off the weights and the model is rebuilt from them and compared
    exactly, so a model that is not exactly THEORY §9's g is refused.
    """
    bad = InputError("model: not a universal model built by 'promptlimits construct universal'")
    if model.positional is None or len(model.layers) != 3:
        raise bad
    n = len(model.positional)
    d, rest = divmod(model.d - n - 2, 2 + 4 * n)
    if rest or d < 1 or d * n > MAX_TOKENS_DN:
        raise bad
    lay = Layout(d, n)
    try:
        r1 = model.layers[0].hidden
        K, rest = divmod(r1, 2 * d)
        eta = 1 / model.layers[0].W1[0][lay.X] if K > 1 else Fraction(1, 2)
        p = UniversalParams(d, n, K, eta, model.layers[1].heads[0].W_q[0][lay.ONE],
                            model.layers[2].heads[0].W_q[0][lay.G], gate=model.layers[2].W1[0][lay.POS])
        if rest or K < 1 or eta <= 0:
            raise bad
        p.check()
        # The key offset B is carried by the prompt (S = B − ‖c‖²), not by the weights.
        if universal_model(p) != model:
            raise bad
    except (IndexError, ZeroDivisionError, InputError):
        raise bad from None
    return p
