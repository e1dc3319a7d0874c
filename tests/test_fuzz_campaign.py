"""Fuzz campaigns: clean on the project as it is, loud on a planted bug, identical on every backend.

- 200 ci examples with a fixed seed: no check disagrees (the acceptance run of the issue).
- A flipped sign test in ExpPoly.sign, or Lemma 2's integer case dropped from reachable.py,
  is reported within 200 examples.
(That the records are the same on every backend is tested in test_fuzz_backends.py.)
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from promptlimits.numerics import fuzz_campaign as fc
from promptlimits.numerics.fuzz_checks import CHECKS


def test_ci_campaign_of_200_examples_has_no_disagreement():
    """Every registered check (exact, torch, metamorphic, decisions, certificates, SMT, floor, LoRA)."""
    result = fc.run_campaign(200, seed=2026, profile="ci")
    summary = result.summary()
    assert summary["examples"] == 200
    assert summary["found"] == []
    assert summary["disagreements"] == 0
    assert set(summary["families"]) == set(fc.FAMILY_ORDER)
    assert summary["verdicts"]["prompt-meets-targets: yes"] >= 200 // len(fc.FAMILY_ORDER)
    assert summary["verdicts"]["memorizable: memorizable"] > 0 and summary["verdicts"]["invertible: not-injective"] > 0


def test_a_flipped_sign_test_is_found(monkeypatch):
    """ExpPoly.sign answering the opposite sign for mixed-sign sums (the ReLU decisions of the
    exact evaluator) is caught by the torch cross-check within 200 examples."""
    from promptlimits.proofs.exppoly import ExpPoly

    honest = ExpPoly.sign

    def flipped(self):
        s = honest(self)
        mixed = {c > 0 for _, c in self.terms} == {True, False}
        return -s if mixed else s

    monkeypatch.setattr(ExpPoly, "sign", flipped)
    result = fc.run_campaign(200, seed=2026, profile="ci", checks=("twin_matches_exact",))
    assert result.disagreements
    assert {d["check"] for d in result.disagreements} == {"twin_matches_exact"}


def test_dropping_lemma2_integer_case_is_found(monkeypatch):
    """With g = 0 every score is 0, so the prompt mass A must be the integer m. A reachable.py
    that forgets this (any A > 0 reachable with one token) is caught within 200 examples."""
    from promptlimits.proofs import reachable
    from promptlimits.proofs.prompt_witness import PromptWitness, SymToken

    def any_mass(A, p0, length):
        zero = tuple(Fraction(0) for _ in p0.nums)
        return reachable.Reachability("reachable", "c", "integer case dropped",
                                      PromptWitness(tokens=(SymToken(p0, zero),) * (length or 1)))

    monkeypatch.setattr(reachable, "_case_c", any_mass)
    indices = [i for i in range(200) if fc.FAMILY_ORDER[i % len(fc.FAMILY_ORDER)] in ("zero_query", "generated")]
    found = []
    with fc._one_torch_thread():
        for i in indices:
            record = fc.run_example(2026, i, "ci", ("memorization_verdict",))
            found.extend(record["disagreements"])
            if found:
                break
    assert found, "the dropped integer case went unnoticed"


def test_examples_depend_on_seed_and_index_only():
    a = fc.make_instance(11, 7, "ci")
    assert a == fc.make_instance(11, 7, "ci")
    assert a != fc.make_instance(12, 7, "ci")
    assert fc.make_instance(11, 7, "deep").family == a.family == fc.FAMILY_ORDER[7 % len(fc.FAMILY_ORDER)]


def test_a_crashing_check_is_a_disagreement_and_a_hang_is_cut(monkeypatch):
    def crash(case):
        raise ZeroDivisionError("planted")

    def hang(case):
        while True:
            pass

    monkeypatch.setitem(CHECKS, "crash", crash)
    monkeypatch.setitem(CHECKS, "hang", hang)
    monkeypatch.setitem(fc.CHECK_SECONDS, "ci", 0.2)
    record = fc.run_example(1, 0, "ci", ("crash", "hang"))
    whats = [d["what"] for d in record["disagreements"]]
    assert whats[0].startswith("raised ZeroDivisionError: planted")
    assert whats[1].startswith("raised CheckTimeout")
    assert len(record["fixtures"]) == 2


@pytest.mark.slow
def test_deep_campaign_has_no_disagreement_in_the_layer_checks():
    """Larger sizes and 10^±12 factors (the deep profile), every check except the LoRA construction, which takes over 120 s on some deep instances with irrational features
    (an open performance finding: seed 2026, e.g. example 55)."""
    checks = tuple(c for c in CHECKS if c != "lora_exact")
    summary = fc.run_campaign(110, seed=2026, profile="deep", checks=checks).summary()
    assert summary["found"] == []
