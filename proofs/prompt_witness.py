"""Witness prompts whose tokens may contain logarithms, and their exact evaluation (THEORY §2).

A prompt token that realises a prescribed attention mass A generally needs a score log(A),
so witness tokens are written p = base + log(L)·n with an exact base (a vector of
exp-polynomial quotients), a rational direction n and an exact L > 0. Against a query
g = M q such a token scores base·g + (n·g)·log L, so when base·g is rational and n·g is an
integer k its softmax weight e^{base·g}·L^k stays in the exp-polynomial field; when
V n = 0 its value V p = V base does too. Then one layer's output is computed exactly and
compared with the target exactly.

Lemma 2(b) with 1 < A/e^{η·v} < m needs a prompt with positive entropy H(α) = log(A/e^{η·v}),
whose weights α solve a transcendental equation: :class:`EntropyPrompt` describes it by
its exact parts and a rigorously bracketed root α, and is verified by the identity
Σ_j α_j x_j = log R − H(α) = 0 (so the mean value is exactly V p₀) plus the interval proof
that the root exists (1 < R < m).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence, Union

import flint

from promptlimits.constructions.evaluate import ExpVector, context, dot, feed_forward_exact, matvec, tokens_with_positions
from promptlimits.constructions.numbers import format_exact
from promptlimits.constructions.spec import Matrix, Model, Vector
from promptlimits.proofs.exppoly import ExpFrac, ExpPoly
from promptlimits.proofs.interval import precision, rational

#: Working precision (bits) for decimals of witness tokens and root brackets.
BITS = 256
DIGITS = 40


class NotVerified(ArithmeticError):
    """A witness could not be evaluated exactly or rigorously (its claim is not proven)."""


# ----------------------------------------------------------------------------- exact helpers


def as_rational(x: Union[ExpFrac, ExpPoly]) -> Optional[Fraction]:
    """The value of x when it is rational (decided exactly), else None.

    N/D is rational q iff N − q·D = 0; a candidate q is the ratio of leading coefficients
    (equal canonical forms up to a factor), and the exact zero test confirms it.
    """
    x = ExpFrac.of(x)
    if x.num.is_zero():
        return Fraction(0)
    (rn, cn), (rd, cd) = x.num.terms[-1], x.den.terms[-1]
    if rn != rd:
        return None
    q = cn / cd
    return q if (x.num - x.den * q).is_zero() else None


def exppoly_to_json(p: ExpPoly) -> list:
    """[[r, c], …] with exact strings: Σ c·e^r."""
    return [[format_exact(r), format_exact(c)] for r, c in p.terms]


def exppoly_from_json(obj: list) -> ExpPoly:
    return ExpPoly((Fraction(r), Fraction(c)) for r, c in obj)


def expfrac_to_json(x: ExpFrac) -> dict:
    return {"num": exppoly_to_json(x.num), "den": exppoly_to_json(x.den)}


def expfrac_from_json(obj: dict) -> ExpFrac:
    return ExpFrac(exppoly_from_json(obj["num"]), exppoly_from_json(obj["den"]))


def expvector_to_json(v: ExpVector) -> dict:
    return {"nums": [exppoly_to_json(n) for n in v.nums], "den": exppoly_to_json(v.den)}


def expvector_from_json(obj: dict) -> ExpVector:
    return ExpVector(tuple(exppoly_from_json(n) for n in obj["nums"]), exppoly_from_json(obj["den"]))


def exact_str(x: ExpFrac) -> str:
    """Exact text of x: 'p/q' when rational, else its exp-polynomial quotient."""
    q = as_rational(x)
    return format_exact(q) if q is not None else str(x)


def _ball_str(b: flint.arb) -> str:
    if b.rad() == 0 and b.mid() == 0:
        return "0"
    return b.mid().str(DIGITS, radius=False)


def _dot_exp(v: ExpVector, g: Sequence[Fraction]) -> ExpFrac:
    total = ExpPoly()
    for n, gk in zip(v.nums, g):
        if gk:
            total = total + n * gk
    return ExpFrac(total, v.den)


# ----------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class SymToken:
    """The prompt token p = base + log(L)·direction (p = base when ``log_arg`` is None)."""

    base: ExpVector
    direction: Vector
    log_arg: Optional[ExpFrac] = None

    def weight(self, g: Sequence[Fraction]) -> ExpFrac:
        """e^{p·g} exactly; NotVerified when it leaves the exp-polynomial field."""
        s = as_rational(_dot_exp(self.base, g))
        if s is None:
            raise NotVerified("a witness token's base scores an irrational number against the query")
        w = ExpFrac(ExpPoly.exp(s))
        if self.log_arg is None:
            if any(self.direction):
                raise NotVerified("a witness token without a logarithm must have a zero direction")
            return w
        k = dot(self.direction, g)
        if k.denominator != 1:
            raise NotVerified("a witness token's log direction scores a non-integer against the query")
        if self.log_arg.sign() <= 0:
            raise NotVerified("a witness token takes the logarithm of a non-positive number")
        power = ExpFrac(1)
        for _ in range(abs(int(k))):
            power = power * self.log_arg
        return w * power if k >= 0 else w / power

    def value(self, V: Matrix) -> tuple[ExpFrac, ...]:
        """V p exactly; NotVerified unless the log direction lies in ker V."""
        if self.log_arg is not None and any(matvec(V, self.direction)):
            raise NotVerified("a witness token's log direction is not in ker V")
        return tuple(_dot_exp(self.base, row) for row in V)

    def exact_strings(self) -> list[str]:
        out = []
        for k, n in enumerate(self.base.nums):
            text = exact_str(ExpFrac(n, self.base.den))
            if self.log_arg is not None and self.direction[k] != 0:
                text = f"{text} + ({format_exact(self.direction[k])})*log({exact_str(self.log_arg)})"
            out.append(text)
        return out

    def balls(self) -> list[flint.arb]:
        with precision(BITS):
            logs = self.log_arg.ball(BITS).log() if self.log_arg is not None else flint.arb(0)
            return [ExpFrac(n, self.base.den).ball(BITS) + logs * rational(c, BITS)
                    for n, c in zip(self.base.nums, self.direction)]

    def to_json(self) -> dict:
        return {"base": expvector_to_json(self.base),
                "direction": [format_exact(x) for x in self.direction],
                "log_arg": None if self.log_arg is None else expfrac_to_json(self.log_arg)}

    @classmethod
    def from_json(cls, obj: dict) -> "SymToken":
        return cls(expvector_from_json(obj["base"]), tuple(Fraction(x) for x in obj["direction"]),
                   None if obj["log_arg"] is None else expfrac_from_json(obj["log_arg"]))


def entropy(alpha: flint.arb, m: int) -> flint.arb:
    """H of the weights (α, (1−α)/(m−1), …, (1−α)/(m−1)) (m ≥ 2, 0 < α < 1)."""
    rest = (1 - alpha) / (m - 1)
    return -alpha * alpha.log() - (1 - alpha) * rest.log()


@dataclass(frozen=True)
class EntropyPrompt:
    """m ≥ 2 tokens p_j = p₀ + x_j ρ̂ with ρ̂ = g/(g·g) (so ρ̂·g = 1): x_1 = log(Rα), x_j = log(R(1−α)/(m−1)) (j ≥ 2),
    where R = A·e^{−p₀·g} and α ∈ (1/m, 1) is the root of H(α) = log R (H as in :func:`entropy`).

    The weights are e^{p₀·g}·e^{x_j} = A·α_j (so the mass is A), and the mean value is
    V p₀ + (Σ α_j x_j)·V ρ̂ = V p₀ + (log R − H(α))·V ρ̂ = V p₀ exactly. H is continuous and
    strictly decreasing on [1/m, 1) from log m to 0, so the root exists iff 1 < R < m
    (R = m is the uniform prompt, handled by exact tokens).
    """

    p0: ExpVector
    rho: Vector
    A: ExpFrac
    m: int

    def ratio_ball(self, g: Sequence[Fraction], bits: int = BITS) -> flint.arb:
        """A rigorous enclosure of R = A·e^{−p₀·g}."""
        with precision(bits):
            return self.A.ball(bits) * (-_dot_exp(self.p0, g).ball(bits)).exp()

    def check(self, g: Sequence[Fraction]) -> None:
        """Verify ρ̂·g = 1 exactly and 1 < R < m rigorously; NotVerified otherwise."""
        if self.m < 2:
            raise NotVerified("an entropy prompt needs m ≥ 2 tokens")
        gg = dot(g, g)
        if gg == 0 or tuple(self.rho) != tuple(x / gg for x in g):
            raise NotVerified("the entropy prompt's direction is not g/(g·g)")
        if self.A.sign() <= 0:
            raise NotVerified("the entropy prompt's mass is not positive")
        bits = 64
        while bits <= 1 << 14:
            R = self.ratio_ball(g, bits)
            if R > 1 and R < self.m:
                return
            if R <= 1 or R >= self.m:
                break
            bits *= 2
        raise NotVerified(f"cannot prove 1 < R < m = {self.m} for the entropy prompt")

    def aggregate(self, g: Sequence[Fraction], V: Matrix) -> tuple[ExpFrac, tuple[ExpFrac, ...]]:
        """(A, A·V p₀) after :meth:`check` (the identity in the class docstring does the rest)."""
        self.check(g)
        return self.A, tuple(self.A * _dot_exp(self.p0, row) for row in V)

    def alpha_bracket(self, g: Sequence[Fraction]) -> tuple[Fraction, Fraction]:
        """Rationals lo < hi with H(lo) > log R > H(hi) proven: the root α lies between."""
        with precision(BITS):
            logR = self.ratio_ball(g).log()
            lo, hi = Fraction(1, self.m), Fraction(1)
            for _ in range(BITS - 40):
                mid = (lo + hi) / 2
                s = entropy(rational(mid, BITS), self.m) - logR
                if s > 0:
                    lo = mid
                elif s < 0:
                    hi = mid
                else:
                    break
            return lo, hi

    def token_balls(self, g: Sequence[Fraction]) -> list[list[flint.arb]]:
        lo, hi = self.alpha_bracket(g)
        with precision(BITS):
            R = self.ratio_ball(g)
            alpha = rational(lo, BITS).union(rational(hi, BITS))
            xs = [(R * alpha).log()] + [(R * (1 - alpha) / (self.m - 1)).log()] * (self.m - 1)
            base = [ExpFrac(n, self.p0.den).ball(BITS) for n in self.p0.nums]
            return [[b + x * rational(c, BITS) for b, c in zip(base, self.rho)] for x in xs]

    def exact_strings(self) -> list[list[str]]:
        out = []
        for j in range(self.m):
            x = "log(R*alpha)" if j == 0 else f"log(R*(1-alpha)/{self.m - 1})"
            out.append([f"{exact_str(ExpFrac(n, self.p0.den))} + ({format_exact(c)})*{x}" if c
                        else exact_str(ExpFrac(n, self.p0.den))
                        for n, c in zip(self.p0.nums, self.rho)])
        return out

    def to_json(self) -> dict:
        return {"p0": expvector_to_json(self.p0), "rho": [format_exact(x) for x in self.rho],
                "A": expfrac_to_json(self.A), "m": self.m}

    @classmethod
    def from_json(cls, obj: dict) -> "EntropyPrompt":
        return cls(expvector_from_json(obj["p0"]), tuple(Fraction(x) for x in obj["rho"]),
                   expfrac_from_json(obj["A"]), int(obj["m"]))


@dataclass(frozen=True)
class PromptWitness:
    """A witness prompt: exact tokens, or one entropy family (THEORY §2(b), 1 < R < m)."""

    tokens: tuple[SymToken, ...] = ()
    entropy: Optional[EntropyPrompt] = None

    @property
    def length(self) -> int:
        return self.entropy.m if self.entropy is not None else len(self.tokens)

    def aggregate(self, g: Sequence[Fraction], V: Matrix) -> tuple[ExpFrac, tuple[ExpFrac, ...]]:
        """(Σ_j e^{p_j·g}, Σ_j e^{p_j·g} V p_j) exactly, i.e. (A, A·v) of Lemma 1."""
        if self.entropy is not None:
            return self.entropy.aggregate(g, V)
        A = ExpFrac(0)
        Av = [ExpFrac(0)] * len(V)
        for t in self.tokens:
            w = t.weight(g)
            A = A + w
            Av = [acc + w * x for acc, x in zip(Av, t.value(V))]
        return A, tuple(Av)

    def decimals(self, g: Sequence[Fraction]) -> list[list[str]]:
        """Every entry as a decimal with DIGITS significant digits (display; never decides)."""
        if self.entropy is not None:
            return [[_ball_str(b) for b in row] for row in self.entropy.token_balls(g)]
        done: dict[int, list[str]] = {}  # identical tokens (one object repeated) are printed once
        for t in self.tokens:
            if id(t) not in done:
                done[id(t)] = [_ball_str(b) for b in t.balls()]
        return [done[id(t)] for t in self.tokens]

    def exact(self) -> list[list[str]]:
        if self.entropy is not None:
            return self.entropy.exact_strings()
        return [t.exact_strings() for t in self.tokens]

    def to_json(self) -> dict:
        if self.entropy is not None:
            return {"kind": "entropy", "entropy": self.entropy.to_json()}
        return {"kind": "tokens", "tokens": [t.to_json() for t in self.tokens]}

    @classmethod
    def from_json(cls, obj: dict) -> "PromptWitness":
        if obj["kind"] == "entropy":
            return cls(entropy=EntropyPrompt.from_json(obj["entropy"]))
        if obj["kind"] != "tokens":
            raise ValueError(f"unknown witness kind {obj['kind']!r}")
        return cls(tokens=tuple(SymToken.from_json(t) for t in obj["tokens"]))


# ----------------------------------------------------------------------------- the model's output


def common_vector(entries: Sequence[ExpFrac]) -> ExpVector:
    """Put exact quotients over one positive common denominator."""
    dens: list[ExpPoly] = []
    for e in entries:
        if not e.num.is_zero() and all(e.den != d for d in dens):
            dens.append(e.den)
    common = ExpPoly.const(1)
    for d in dens:
        common = common * d
    nums = []
    for e in entries:
        if e.num.is_zero():
            nums.append(ExpPoly())
            continue
        k = next(i for i, d in enumerate(dens) if d == e.den)
        acc = e.num
        for i, d in enumerate(dens):
            if i != k:
                acc = acc * d
        nums.append(acc)
    if common.sign() < 0:
        return ExpVector(tuple(-n for n in nums), -common)
    return ExpVector(tuple(nums), common)


def output_with_aggregate(model: Model, X: Sequence[Vector], position: int,
                          A: ExpFrac, Av: Sequence[ExpFrac], M: Matrix, V: Matrix) -> ExpVector:
    """The one-head, one-layer output at ``position`` when the prompt contributes (A, A·v):
    f(q + (A·v + B·u)/(A + B)) with B, B·u from the input context, exactly."""
    xs = tokens_with_positions(model, X)
    n = len(xs)
    q = xs[position]
    g = matvec(M, q)
    B = ExpPoly()
    Bu = [ExpPoly() for _ in range(model.d)]
    for c in context(model, 0, position, n):
        w = ExpPoly.exp(dot(xs[c], g))
        B = B + w
        for k, vk in enumerate(matvec(V, xs[c])):
            if vk:
                Bu[k] = Bu[k] + w * vk
    mass = A + B
    a = [q[k] + (Av[k] + Bu[k]) / mass for k in range(model.d)]
    return feed_forward_exact(model.layers[0], common_vector(a))
