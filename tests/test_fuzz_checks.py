"""The cross-checks as properties: they hold on every adversarial instance, and each one fails
when the layer it watches is broken in the way it is meant to catch.

The planted bugs: a decomposition that forgets the prompt, a causal context that loses a
prompt token, a value map transposed in torch, positions counted from the prompt's start, a score-shift construction that shifts one
key only, a hidden unit scaled without compensation, a recheck that verifies nothing, an
exact invertibility decision that answers "injective" for everything.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings

from promptlimits.constructions import adversarial as adv
from promptlimits.numerics import fuzz_decision_checks as dc
from promptlimits.numerics import fuzz_layer_checks as lc
from promptlimits.numerics.fuzz_campaign import FAMILY_ORDER, example_seed, make_instance
from promptlimits.numerics.fuzz_checks import CHECKS, Case

CI = adv.SIZES["ci"]
EXACT_LAYER = ("twin_matches_exact", "lemma1_decomposition", "prompt_order", "hidden_scaling", "score_shift",
               "relative_attention", "conjugation_function", "known_answers", "invertibility_verdict", "smt_agrees")


@settings(max_examples=30)
@given(adv.instances(CI))
def test_layer_checks_hold_on_adversarial_instances(inst):
    case = Case(inst, seed=1)
    for name in EXACT_LAYER:
        assert CHECKS[name](case) is None, name


def _case(family: str, seed: int = 7) -> Case:
    """The first example of ``family`` in the campaign with ``seed``."""
    index = FAMILY_ORDER.index(family)
    return Case(make_instance(seed, index, "ci"), example_seed(seed, index))


def _first_failure(check, families=("generated", "plain", "rank_deficient", "zero_query"), seeds=range(6)):
    for seed in seeds:
        for family in families:
            found = check(_case(family, seed))
            if found is not None:
                return found
    return None


def test_lemma1_check_catches_a_decomposition_that_ignores_the_prompt(monkeypatch):
    honest = lc.decompose

    def no_prompt(model, prompt, X, position, head=0, layer=0):
        return honest(model, (), X, position, head, layer)

    monkeypatch.setattr(lc, "decompose", no_prompt)
    assert _first_failure(lc.lemma1_decomposition) is not None


def test_prompt_order_check_catches_a_context_that_drops_the_first_token(monkeypatch):
    from promptlimits.constructions import evaluate

    def short(model, m, i, n):
        return range(1, m + n) if model.attention == "bidirectional" else range(1, m + i + 1)

    monkeypatch.setattr(evaluate, "context", short)
    assert _first_failure(lc.prompt_order) is not None


def test_twin_check_catches_a_transposed_value_map(monkeypatch):
    from promptlimits.numerics import twin as twin_module

    honest = twin_module.TwinHead.__init__

    def transposed(self, head, dtype, device):
        if len(head.W_v) == len(head.W_v[0]):
            head = replace(head, W_v=tuple(zip(*head.W_v)))
        honest(self, head, dtype, device)

    monkeypatch.setattr(twin_module.TwinHead, "__init__", transposed)
    assert _first_failure(lc.twin_matches_exact, families=("plain", "generated", "rank_deficient")) is not None


def test_score_shift_check_catches_a_shift_of_one_key_only(monkeypatch):
    honest = lc.with_score_shift

    def one_key(model, shifts):
        shifted = honest(model, shifts)
        layer = shifted.layers[0]
        head = layer.heads[0]
        W_k = head.W_k[:-1] + (tuple(Fraction(1) for _ in head.W_k[-1]),)  # the shift now depends on the key
        return replace(shifted, layers=(replace(layer, heads=(replace(head, W_k=W_k),) + layer.heads[1:]),))

    monkeypatch.setattr(lc, "with_score_shift", one_key)
    assert _first_failure(lc.score_shift) is not None


def test_relative_attention_check_catches_positions_counted_from_the_prompt(monkeypatch):
    """The pitfall of prepending a prompt before BERT's embeddings: positions 0, 1, … go to
    [P, X] instead of X, so the input tokens' first-layer states (and attention) move."""
    import torch

    from promptlimits.numerics import twin as twin_module

    honest = twin_module.Twin.scores

    def shifted(self, X, prompt=None):
        if self.positional is None or prompt is None:
            return honest(self, X, prompt)
        seq = torch.cat([prompt, X], dim=1)
        total = min(seq.shape[1], self.positional.shape[0])
        seq = torch.cat([seq[:, :total] + self.positional[:total], seq[:, total:]], dim=1)
        positional, self.positional = self.positional, None  # encodings already added, from the prompt on
        try:
            return honest(self, seq[:, prompt.shape[1]:], seq[:, :prompt.shape[1]])
        finally:
            self.positional = positional

    monkeypatch.setattr(twin_module.Twin, "scores", shifted)
    assert _first_failure(lc.relative_attention, families=tuple(FAMILY_ORDER), seeds=range(12)) is not None


def test_hidden_scaling_check_catches_an_uncompensated_scaling(monkeypatch):
    def broken(layer, j, c):
        W1 = tuple(tuple(w * c for w in row) if i == j else row for i, row in enumerate(layer.W1))
        b1 = tuple(b * c if i == j else b for i, b in enumerate(layer.b1))
        return replace(layer, W1=W1, b1=b1)

    monkeypatch.setattr(lc, "scale_hidden", broken)
    assert _first_failure(lc.hidden_scaling) is not None


def test_recheck_check_catches_a_checker_that_verifies_nothing(monkeypatch):
    from promptlimits.proofs import check_memorizable

    monkeypatch.setattr(check_memorizable, "recheck", lambda cert, subj: ["nothing, really"])
    assert _first_failure(dc.recheck_certificate, families=("near_intersecting", "same_output", "boundary")) is not None


def test_invertibility_checks_catch_a_decision_that_always_says_injective(monkeypatch):
    honest = dc.decide_injective

    def optimist(layer, *args, **kwargs):
        dec = honest(layer, *args, **kwargs)
        return replace(dec, verdict="injective", collision=None)

    monkeypatch.setattr(dc, "decide_injective", optimist)
    assert _first_failure(dc.invertibility_verdict, families=("flip", "fold")) is not None
    assert _first_failure(dc.smt_agrees, families=("flip", "fold")) is not None


@pytest.mark.parametrize("family", ["generated", "near_degenerate"])
def test_generated_families_are_memorizable_with_a_witness_that_runs_in_torch(family):
    """A dataset produced by a prompt: every decided verdict is memorizable, and the witness
    reproduces the targets in float64."""
    for seed in range(3):
        case = _case(family, seed)
        assert dc.memorization_verdict(case) is None
        assert dc.witness_reproduces(case) is None
        assert case.verdicts["memorizable"] in ("memorizable", "unknown")
