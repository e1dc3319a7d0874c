"""THEORY §6 (and §5): what a dataset costs, for prompts and for LoRA on W2 (one layer).

Prompt length. With H heads, any prompt P of length m gives at constrained position i
a_i − q_i = Σ_h [λ_ih v_ih + (1 − λ_ih) u_ih], v_ih ∈ col(V_h P). So a prompt realizing the
targets needs, for some choice of preimages z_i ∈ f⁻¹(y_i),
  (1) every z_i − q_i ∈ C + span(U), C = Σ_h col(V_h), U = {u_ih} (else NO length works);
  (2) rank[Z − Q, U] ≤ dim Σ_h col(V_h P) + rank U ≤ H·m + rank U, hence
      m ≥ ⌈(rank[Z − Q, U] − rank U) / H⌉ (≥ THEORY's rank[Z − Q] − rank U over H), and m ≥ 1.
The u_ih are exp-polynomial quotients; ranks are exact over that field (``exp_linalg``).
Preimage sets come from ``preimage.preimages`` with Z3-free completeness arguments only, so
that ``check_bounds`` can repeat them; when a set is not proven complete the bound falls
back to the trivial m ≥ 1.

LoRA rank. ΔW2·H = E (H = [h_i] hidden features, E = [y_i − τ(X_i)_i]) has a solution iff
every row of E lies in the row space of H (always when the h_i are independent), and then
the least rank of a solution is rank E (ΔW2·H = E forces rank ΔW2 ≥ rank E; E·H⁺ attains it).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from typing import Optional

from promptlimits.constructions.decompose import decompose
from promptlimits.constructions.errors import InputError
from promptlimits.constructions.evaluate import tokens_with_positions, value_matrix
from promptlimits.constructions.lora import features
from promptlimits.constructions.spec import Dataset, Model, Vector, check_compatible, single_exact_layer
from promptlimits.proofs import exp_linalg, linalg
from promptlimits.proofs.exppoly import ExpFrac
from promptlimits.proofs.loss_floor import LossFloor, loss_floor
from promptlimits.proofs.preimage import preimages

#: Most preimage combinations tried for the prompt-length bound.
MAX_COMBINATIONS = 64


#: How the bounds are decided, as certificates and the CLI name it.
METHOD = "exact ranks over the exp-polynomial field (§6), Z3-free preimages, §5 branch-and-bound floor"

@dataclass(frozen=True)
class PromptBound:
    """m ≥ ``length`` for every prompt realizing the targets; ``length`` None: no prompt at all."""

    length: Optional[int]
    reason: str
    ranks: Optional[dict] = None  # per preimage choice: rank[Z−Q,U], rank U (for the certificate)


@dataclass(frozen=True)
class LoraRank:
    """Rank of a LoRA update of W2 that suffices (and is necessary); None: W2 alone cannot."""

    rank: Optional[int]
    condition: str
    rank_H: int
    columns: int


@dataclass(frozen=True)
class Bounds:
    """The three answers, and what they were computed from (for the certificate)."""

    prompt: PromptBound
    lora: LoraRank
    floor: LossFloor
    parameters: dict
    pairs: tuple[tuple[int, int], ...]
    preimage_sets: tuple[Optional[tuple[Vector, ...]], ...]

    @property
    def verdict(self) -> str:
        return "no-prompt" if self.prompt.length is None else "bounded"

    def evidence(self) -> dict:
        """JSON evidence for ``check_bounds`` (every number an exact string or an int)."""
        return {
            "positions": [list(p) for p in self.pairs],
            "preimages": [None if s is None else [[_s(x) for x in z] for z in s] for s in self.preimage_sets],
            "prompt": {"min_prompt_length": self.prompt.length, "ranks": self.prompt.ranks},
            "lora": {"rank": self.lora.rank, "rank_H": self.lora.rank_H, "columns": self.lora.columns},
            "loss_floor": {"value": _s(self.floor.value), "evidence": self.floor.evidence},
        }


def _s(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def positions(dataset: Dataset) -> list[tuple[int, int]]:
    return [(e, i) for e, ex in enumerate(dataset.examples) for i in ex.constrained()]


def queries(model: Model, dataset: Dataset, pairs) -> list[Vector]:
    return [tokens_with_positions(model, dataset.examples[e].input)[i] for e, i in pairs]


def u_vectors(model: Model, dataset: Dataset, pairs) -> list[tuple[ExpFrac, ...]]:
    """Every prompt-free head output u_ih (heads inner), exactly."""
    out = []
    for e, i in pairs:
        for h in range(len(model.layers[0].heads)):
            out.append(decompose(model, (), dataset.examples[e].input, position=i, head=h).u)
    return out


def value_span(model: Model) -> tuple[Vector, ...]:
    """A basis of C = Σ_h col(V_h)."""
    Vs = [value_matrix(h) for h in model.layers[0].heads]
    wide = [tuple(x for V in Vs for x in V[i]) for i in range(model.d)]
    return linalg.column_basis(wide)


def choice_ranks(zs, qs, us, span) -> tuple[bool, int, int]:
    """(all z_i − q_i ∈ C + span U, rank[Z − Q, U], rank U) for one choice of preimages."""
    moves = [tuple(ExpFrac(a - b) for a, b in zip(z, q)) for z, q in zip(zs, qs)]
    ambient = [tuple(ExpFrac(x) for x in c) for c in span] + list(us)
    base = exp_linalg.rank(ambient) if ambient else 0
    inside = (exp_linalg.rank(ambient + moves) if ambient else exp_linalg.rank(moves)) == base
    rank_u = exp_linalg.rank(us) if us else 0
    rank_zu = exp_linalg.rank(moves + list(us))
    return inside, rank_zu, rank_u


def _length(t: dict, heads: int) -> int:
    """max(1, ⌈(rank[Z − Q, U] − rank U) / H⌉) in integer arithmetic."""
    return max(1, -(-(t["rank_ZQ_U"] - t["rank_U"]) // heads))


def prompt_bound(model: Model, dataset: Dataset, pairs, preimage_sets) -> PromptBound:
    """§6's lower bound from given complete preimage sets (None entries: unknown)."""
    H = len(model.layers[0].heads)
    if any(s is None for s in preimage_sets):
        return PromptBound(1, "some f⁻¹(y_i) is not proven complete without Z3; only m ≥ 1 is certain")
    if any(len(s) == 0 for s in preimage_sets):
        i = next(k for k, s in enumerate(preimage_sets) if not s)
        return PromptBound(None, f"target {i} is not in the range of f: no prompt of any length", {"empty": i})
    combos = 1
    for s in preimage_sets:
        combos *= len(s)
    if combos > MAX_COMBINATIONS:
        return PromptBound(1, f"{combos} preimage combinations (more than {MAX_COMBINATIONS}); only m ≥ 1 is certain")
    qs = queries(model, dataset, pairs)
    us = u_vectors(model, dataset, pairs)
    span = value_span(model)
    table = []
    for zs in product(*preimage_sets):
        inside, rzu, ru = choice_ranks(zs, qs, us, span)
        table.append({"inside": inside, "rank_ZQ_U": rzu, "rank_U": ru})
    feasible = [_length(t, H) for t in table if t["inside"]]
    if not feasible:
        return PromptBound(None, "some z_i − q_i lies outside col(V) + span(u): no prompt of any length",
                           {"choices": table})
    m = min(feasible)
    t = next(t for t in table if t["inside"] and _length(t, H) == m)
    reason = (f"{H}·m ≥ rank[Z − Q, U] − rank U = {t['rank_ZQ_U']} − {t['rank_U']}"
              + (f" (least over {len(table)} preimage choices)" if len(table) > 1 else ""))
    return PromptBound(m, reason, {"choices": table})


def complete_preimages(model: Model, dataset: Dataset, pairs) -> list[Optional[tuple[Vector, ...]]]:
    """f⁻¹(y_i) for every constrained position when proven complete without Z3, else None.

    Complete means: ``preimages`` proved it (norm or exhaustive argument), or the certified
    spectral bound ‖W1‖₂‖W2‖₂ < 1 makes f a bijection and one exact preimage was found.
    """
    from promptlimits.proofs.norms import lipschitz_product

    layer = model.layers[0]
    bijective = lipschitz_product(layer) < 1
    out = []
    for e, i in pairs:
        pre = preimages(layer, dataset.examples[e].target[i], limit=8, allow_smt=False)
        if pre.complete:
            out.append(pre.points)
        elif bijective and len(pre.points) == 1:
            out.append(pre.points)
        else:
            out.append(None)
    return out


def lora_rank(model: Model, dataset: Dataset) -> LoraRank:
    feats = features(model, dataset)
    H = [list(col) for col in zip(*feats.hidden)]
    E = [list(col) for col in zip(*feats.residuals)]
    K = len(feats.hidden)
    rank_h = exp_linalg.rank(H)
    rank_e = exp_linalg.rank(E)
    if rank_h == K:
        return LoraRank(rank_e, f"the {K} hidden feature vectors h_i are linearly independent (rank {K})", rank_h, K)
    if exp_linalg.rank(H + E) == rank_h:
        return LoraRank(rank_e, f"h_i are dependent (rank {rank_h} < {K}) but E follows their dependence", rank_h, K)
    return LoraRank(None, f"h_i are dependent (rank {rank_h} < {K}) and E does not follow: W2 alone cannot", rank_h, K)


def bounds(model: Model, dataset: Dataset) -> Bounds:
    """All three quantities of ``promptlimits bounds``."""
    single_exact_layer(model, "bounds")
    check_compatible(model, dataset)
    pairs = positions(dataset)
    if not pairs:
        raise InputError("dataset: no constrained position (every target is null)")
    sets = complete_preimages(model, dataset, pairs)
    pb = prompt_bound(model, dataset, pairs, sets)
    lr = lora_rank(model, dataset)
    floor = loss_floor(model, dataset)
    d, r = model.d, model.layers[0].hidden
    params = {
        "prompt": None if pb.length is None else pb.length * d,
        "lora": None if lr.rank is None else lr.rank * (d + r),
    }
    return Bounds(pb, lr, floor, params, tuple(pairs), tuple(sets))
