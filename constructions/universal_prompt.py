"""The prompt P_f of THEORY §9: one token per grid sequence c, keyed by (2c, B − ‖c‖²), valued f(c̄).

Grid sequences are the K^{dn} index tuples (j_{0,0}, …, j_{0,d−1}, j_{1,0}, …) (token-major:
token i's d coordinates, then token i+1's), in lexicographic order; cell j along a
coordinate is [jδ, (j+1)δ] with lower corner c = jδ and centre c̄ = (j + ½)δ.

Targets f: [0,1]^{d×n} → [0,1]^{d×n} are given by their values at the cell centres: from a
built-in library (``TARGETS``) or from a JSON file ``{"format": "promptlimits/grid-target@1",
"d": D, "n": N, "K": K, "lipschitz": "L", "values": [[[..d..] × n] × K^{dn}]}`` in the
order above. ``lipschitz`` is the user's assumption about f (Frobenius norms on both sides);
it is checked on the grid values (pairwise: by Kirszbraun's theorem such an f exists iff
every pair of grid values passes).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Sequence

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.numbers import parse_exact
from promptlimits.constructions.spec import Model, Vector
from promptlimits.constructions.universal import UniversalParams, read_params

TARGET_FORMAT = "promptlimits/grid-target@1"

Sequence2 = tuple[tuple[Fraction, ...], ...]  # n tokens of d coordinates
#: Pairwise Lipschitz checks beyond this many grid points are skipped (N² pairs).
PAIRWISE_LIMIT = 1024


def grid_indices(d: int, n: int, K: int) -> list[tuple[int, ...]]:
    """All K^{dn} index tuples, token-major, in lexicographic order."""
    return list(itertools.product(range(K), repeat=d * n))


def corner(idx: Sequence[int], K: int) -> tuple[Fraction, ...]:
    """The lower corner c = jδ of a cell (flattened token-major)."""
    return tuple(Fraction(j, K) for j in idx)


def centre(idx: Sequence[int], K: int) -> tuple[Fraction, ...]:
    """The centre c̄ = (j + ½)δ of a cell (flattened token-major)."""
    return tuple(Fraction(2 * j + 1, 2 * K) for j in idx)


def as_tokens(flat: Sequence[Fraction], d: int) -> Sequence2:
    return tuple(tuple(flat[i * d:(i + 1) * d]) for i in range(len(flat) // d))


@dataclass(frozen=True)
class GridTarget:
    """A target f through its values at the cell centres (``values[c]`` are n tokens of d numbers)
    and the Lipschitz constant assumed for f; ``name`` says where it came from."""

    name: str
    d: int
    n: int
    K: int
    lipschitz: Fraction
    values: tuple[Sequence2, ...]
    exact: Callable[[Sequence2], Sequence2] | None = None  # f itself, when known (built-ins)


def _smoothstep(t: Fraction) -> Fraction:
    return 3 * t * t - 2 * t * t * t


def _linear(X: Sequence2) -> Sequence2:
    """1 − (mean of the tokens), at every position: a linear map of norm 1 plus a constant."""
    n = len(X)
    mean = tuple(sum((x[k] for x in X), Fraction(0)) / n for k in range(len(X[0])))
    return tuple(tuple(1 - m for m in mean) for _ in X)


def _sort(X: Sequence2) -> Sequence2:
    """Scalar tokens sorted increasingly (1-Lipschitz in ℓ2)."""
    return tuple((v,) for v in sorted(x[0] for x in X))


def _smooth(X: Sequence2) -> Sequence2:
    """smoothstep((x_i + mean)/2) coordinatewise: non-linear, Lipschitz ≤ 3/2 (|s'| ≤ 3/2 and the
    averaging map has norm 1)."""
    n = len(X)
    mean = tuple(sum((x[k] for x in X), Fraction(0)) / n for k in range(len(X[0])))
    return tuple(tuple(_smoothstep((v + m) / 2) for v, m in zip(x, mean)) for x in X)


#: name -> (f, its Lipschitz constant, needs d = 1).
BUILTINS: dict[str, tuple[Callable[[Sequence2], Sequence2], Fraction, bool]] = {
    "linear": (_linear, Fraction(1), False),
    "sort": (_sort, Fraction(1), True),
    "smooth": (_smooth, Fraction(3, 2), False),
}
TARGETS = tuple(BUILTINS) + ("random",)


def builtin_target(name: str, p: UniversalParams, lipschitz: Fraction = Fraction(1), seed: int = 0) -> GridTarget:
    """A built-in target on p's grid. ``random``: independent grid values uniform in
    [½ − h/2, ½ + h/2] with h = L·δ/(dn), so every pair differs by ≤ √(dn)·h ≤ L·δ ≤ L·‖c̄ − c̄'‖."""
    idx = grid_indices(p.d, p.n, p.K)
    if name == "random":
        if lipschitz <= 0:
            raise InputError("target random: the Lipschitz constant must be positive")
        h = min(Fraction(1), lipschitz * p.delta / (p.d * p.n))
        rng = random.Random(seed)
        values = tuple(as_tokens([Fraction(1, 2) - h / 2 + h * Fraction(rng.randrange(1001), 1000)
                                  for _ in range(p.d * p.n)], p.d) for _ in idx)
        return GridTarget(f"random(seed={seed})", p.d, p.n, p.K, lipschitz, values)
    if name not in BUILTINS:
        raise InputError(f"target {name!r}: not a built-in ({', '.join(TARGETS)}) nor a JSON file")
    f, L, scalar = BUILTINS[name]
    if scalar and p.d != 1:
        raise InputError(f"target {name}: needs scalar tokens (d = 1), the model has d = {p.d}")
    values = tuple(f(as_tokens(centre(c, p.K), p.d)) for c in idx)
    return GridTarget(name, p.d, p.n, p.K, L, values, f)


def target_from_json(obj: Any, p: UniversalParams, where: str) -> GridTarget:
    """A ``grid-target@1`` object for p's grid (InputError on any mismatch)."""
    if not isinstance(obj, dict) or obj.get("format") != TARGET_FORMAT:
        raise InputError(f"{where}.format: expected {TARGET_FORMAT!r}")
    for key, want in (("d", p.d), ("n", p.n), ("K", p.K)):
        if key not in obj or parse_exact(obj[key], f"{where}.{key}") != want:
            raise InputError(f"{where}.{key}: the model needs {want}, got {obj.get(key)!r}")
    L = parse_exact(obj.get("lipschitz"), f"{where}.lipschitz")
    if L <= 0:
        raise InputError(f"{where}.lipschitz: must be positive")
    raw = obj.get("values")
    N = p.prompt_length
    if not isinstance(raw, list) or len(raw) != N:
        raise InputError(f"{where}.values: expected a list of {N} grid values")
    values = []
    for c, entry in enumerate(raw):
        w = f"{where}.values[{c}]"
        if not isinstance(entry, list) or len(entry) != p.n:
            raise InputError(f"{w}: expected {p.n} tokens")
        toks = []
        for i, tok in enumerate(entry):
            if not isinstance(tok, list) or len(tok) != p.d:
                raise InputError(f"{w}[{i}]: expected {p.d} numbers")
            toks.append(tuple(parse_exact(v, f"{w}[{i}]") for v in tok))
        values.append(tuple(toks))
    return GridTarget(where, p.d, p.n, p.K, L, tuple(values))


def check_target(t: GridTarget) -> int:
    """Values in [0,1] and pairwise L-Lipschitz (Frobenius) on the centres: returns the number of
    pairs checked (0 beyond ``PAIRWISE_LIMIT`` grid points); InputError on a violation."""
    for c, val in enumerate(t.values):
        for tok in val:
            for v in tok:
                if not 0 <= v <= 1:
                    raise InputError(f"target {t.name}: grid value {c} has {v} outside [0, 1]")
    idx = grid_indices(t.d, t.n, t.K)
    if len(idx) > PAIRWISE_LIMIT:
        return 0
    flat = [tuple(v for tok in val for v in tok) for val in t.values]
    L2 = t.lipschitz**2
    pairs = 0
    for a in range(len(idx)):
        for b in range(a + 1, len(idx)):
            df = sum(((x - y) ** 2 for x, y in zip(flat[a], flat[b])), Fraction(0))
            dc = sum((x - y) ** 2 for x, y in zip(idx[a], idx[b]))  # ‖c̄ − c̄'‖² = dc/K²
            if df * t.K**2 > L2 * dc:
                raise InputError(f"target {t.name}: grid values {a} and {b} violate the Lipschitz constant {t.lipschitz}")
            pairs += 1
    return pairs


def construct_prompt(p: UniversalParams | Model, target: GridTarget) -> tuple[Vector, ...]:
    """P_f: for grid sequence c (lower corners), KEY = 2c, S = B − ‖c‖², VAL = f(c̄), zeros elsewhere.

    ``p`` is the parameters or the universal model itself (read back with ``read_params``)."""
    if isinstance(p, Model):
        p = read_params(p)
    if (target.d, target.n, target.K) != (p.d, p.n, p.K):
        raise InputError("target: its grid does not match the model's")
    lay = p.layout
    prompt = []
    for idx, val in zip(grid_indices(p.d, p.n, p.K), target.values):
        c = corner(idx, p.K)
        tok = [Fraction(0)] * lay.width
        for a, ca in enumerate(c):
            tok[lay.KEY + a] = 2 * ca
        tok[lay.S] = p.offset - sum((x * x for x in c), Fraction(0))
        for a, v in enumerate(v for t in val for v in t):
            tok[lay.VAL + a] = v
        prompt.append(tuple(tok))
    return tuple(prompt)
