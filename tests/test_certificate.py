"""The certificate envelope binds the exact model and dataset it speaks about.

Recovering the subjects must refuse an embedded object whose sha256 does not match, a given
file that is not the hashed one, and a non-canonical embedding (JSON numbers would be read
as binary floats inside a certificate but as exact decimals from a file).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from promptlimits.constructions.formats import load_dataset, load_model, sha256_of
from promptlimits.proofs.certificate import CheckFailed, make_certificate, subjects

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _cert():
    model, dataset = load_model(EXAMPLES / "one_layer.json"), load_dataset(EXAMPLES / "two_examples.json")
    cert = json.loads(json.dumps(make_certificate("demo", "yes", "test", {}, model, dataset)))
    return model, dataset, cert


def test_honest_certificate_recovers_its_subjects():
    model, dataset, cert = _cert()
    subj = subjects(cert)
    assert subj.model == model and subj.dataset == dataset
    assert subjects(cert, model, dataset).model == model


def test_tampered_embedding_is_refused():
    _, _, cert = _cert()
    cert["model"]["embedded"]["layers"][0]["b1"][0] = "1"
    with pytest.raises(CheckFailed, match="sha256"):
        subjects(cert)


def test_non_canonical_embedding_is_refused_even_with_a_matching_hash():
    _, _, cert = _cert()
    embedded = cert["model"]["embedded"]
    embedded["layers"][0]["W2"][1][1] = 0.1  # a JSON number: here a binary float, in a file 1/10
    cert["model"]["sha256"] = sha256_of(embedded)
    with pytest.raises(CheckFailed, match="canonical"):
        subjects(cert)


def test_given_files_must_be_the_hashed_ones():
    model, dataset, cert = _cert()
    other = load_model(EXAMPLES / "one_layer.json")
    object.__setattr__(other, "score_scale", Fraction(2))
    with pytest.raises(CheckFailed, match="sha256 differs"):
        subjects(cert, other, dataset)
    del cert["model"]["embedded"]
    with pytest.raises(CheckFailed, match="--model"):
        subjects(cert)
    assert subjects(cert, model, dataset).model == model
