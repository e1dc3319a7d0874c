"""``bounds``: §6 prompt-length bound and LoRA rank, §5 loss floor, certificate and recheck."""

import copy
import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlimits.constructions.evaluate import dot, layer_exact
from promptlimits.constructions.formats import dataset_to_json, load_model
from promptlimits.constructions.impossible import impossible_dataset
from promptlimits.constructions.separation import standard_family
from promptlimits.constructions.spec import Dataset, Example
from promptlimits.constructions.strategies import models, vectors
from promptlimits.main import main
from promptlimits.proofs import interval
from promptlimits.proofs.bounds import bounds
from promptlimits.proofs.certificate import CheckFailed, make_certificate
from promptlimits.proofs.loss_floor import TOLERANCE, loss_floor
from promptlimits.proofs.norms import lipschitz_product
from promptlimits.proofs.tamper import mutated, number_paths
from promptlimits.proofs.recheck import recheck

small = dict(max_numerator=3, max_denominator=2)
contracting = models(d=st.integers(1, 3), heads=1, positional=False, lipschitz=Fraction(1, 2),
                     hidden=st.integers(1, 3), **small)


@pytest.mark.parametrize("n,extra", [(1, 0), (2, 0), (2, 1), (3, 0)])
def test_family_l_hand_bounds(n, extra):
    """Family L: z_i − q_i = s_i (rank n), u_i = 0, one head ⇒ m ≥ n; LoRA needs rank n."""
    fam = standard_family("L", 2 * n + extra, n)
    b = bounds(fam.model, fam.dataset)
    assert b.prompt.length == n
    assert b.lora.rank == n
    assert b.parameters == {"prompt": n * fam.model.d, "lora": n * (fam.model.d + fam.model.layers[0].hidden)}


def test_family_x_no_prompt_any_length():
    fam = standard_family("X", 3, 2)
    b = bounds(fam.model, fam.dataset)
    assert b.prompt.length is None and b.verdict == "no-prompt"
    assert b.lora.rank == 1


@given(contracting)
@settings(max_examples=20)
def test_floor_on_theorem2_datasets_is_exact_2w2(model):
    """On a §4 dataset the relaxed minimum is exactly 2‖w‖² = ½‖Vδ‖² (attained at t = 1, and
    ½‖(a₁ − z₁) − (a₂ − z₂)‖² = ½‖(1 − λ − 3) w‖² ≥ 2‖w‖² everywhere), so the floor must lie
    in (1 − L)²·2‖w‖²·[1 − tolerance, 1] and be strictly positive."""
    try:
        built = impossible_dataset(model)
    except Exception:
        return
    L = lipschitz_product(model.layers[0])
    fl = loss_floor(model, built.dataset)
    two_w2 = dot(built.direction, built.direction) / 2
    assert fl.value > 0
    inner = Fraction(fl.evidence["inner_minimum"])
    assert inner <= two_w2
    assert inner >= two_w2 * (1 - 2 * TOLERANCE) - Fraction(1, 2**60)
    assert fl.value <= (1 - L) ** 2 * inner


@st.composite
def shared_query_instances(draw):
    model = draw(contracting)
    d = model.d
    q = draw(vectors(d, **small))
    n = draw(st.integers(1, 3))
    examples = []
    for _ in range(n):
        ctx = tuple(draw(vectors(d, **small)) for _ in range(draw(st.integers(0, 2))))
        examples.append(Example(ctx + (q,), tuple(None for _ in ctx) + (draw(vectors(d, **small)),)))
    prompts = draw(st.lists(st.lists(vectors(d, **small), min_size=1, max_size=3), min_size=1, max_size=3))
    return model, Dataset(d, tuple(examples)), prompts


@given(shared_query_instances())
@settings(max_examples=20)
def test_floor_never_exceeds_an_achievable_loss(inst):
    model, dataset, prompts = inst
    fl = loss_floor(model, dataset)
    for prompt in prompts:
        loss_hi = Fraction(0)
        for ex in dataset.examples:
            out = layer_exact(model, tuple(prompt), ex.input)[-1]
            for ball, t in zip(out.balls(128), ex.target[-1]):
                loss_hi += interval.upper((ball - interval.rational(t)) ** 2)
        assert fl.value <= loss_hi


def _certificate(model, dataset):
    b = bounds(model, dataset)
    return make_certificate("bounds", b.verdict, "test", b.evidence(), model, dataset)


def test_certificate_rechecks_and_every_mutation_fails():
    model = load_model("examples/one_layer.json")
    built = impossible_dataset(model)
    cert = _certificate(model, built.dataset)
    assert recheck(cert)
    paths = list(number_paths(cert["evidence"], sample_lists_over=8))
    assert len(paths) > 30
    for path in paths:
        with pytest.raises(CheckFailed):
            recheck(mutated(cert, path))
    raised = copy.deepcopy(cert)  # a floor raised by the smallest step is still rejected
    raised["evidence"]["loss_floor"]["value"] = str(Fraction(raised["evidence"]["loss_floor"]["value"]) + Fraction(1, 10**30))
    with pytest.raises(CheckFailed):
        recheck(raised)


def test_certificate_of_family_l_rechecks_and_rank_mutations_fail():
    fam = standard_family("L", 4, 2)
    cert = _certificate(fam.model, fam.dataset)
    assert recheck(cert)
    for path in number_paths(cert["evidence"], sample_lists_over=8):
        with pytest.raises(CheckFailed):
            recheck(mutated(cert, path))


def test_cli_bounds_json_and_recheck(tmp_path, capsys):
    model_path = "examples/one_layer.json"
    built = impossible_dataset(load_model(model_path))
    data = tmp_path / "data.json"
    data.write_text(json.dumps(dataset_to_json(built.dataset)))
    cert = tmp_path / "cert.json"
    assert main(["bounds", model_path, str(data), "--json", "--out", str(cert)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["min_prompt_length"] == 1 and out["lora_rank"] is None
    assert Fraction(out["loss_floor"]) > Fraction(24, 100)  # (1 − 1/2)²·2‖w‖² = 1/4, up to the tolerance
    assert main(["recheck", str(cert), "--json"]) == 0
    capsys.readouterr()
    assert main(["bounds", model_path, "/nonexistent.json"]) == 2


def test_checker_never_imports_z3():
    import subprocess
    import sys

    code = "import sys, promptlimits.proofs.check_bounds; sys.exit('z3' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_certificate_with_non_dyadic_enclosures_rechecks():
    """u_i with denominators 3 and 7 (not dyadic): enclosures must stay tight and recheck."""
    from promptlimits.constructions.spec import Head, Layer, Model

    third, seventh = Fraction(1, 3), Fraction(1, 7)
    eye = ((Fraction(1), Fraction(0)), (Fraction(0), Fraction(1)))
    head = Head(eye, ((third, 0), (0, seventh)), ((third, seventh), (seventh, 1)), eye)
    layer = Layer((head,), eye, (Fraction(0), -third), ((Fraction(1, 5), 0), (0, seventh)), (0, 0))
    model = Model(d=2, layers=(layer,))
    built = impossible_dataset(model)
    cert = _certificate(model, built.dataset)
    assert Fraction(cert["evidence"]["loss_floor"]["value"]) > 0
    assert recheck(cert)
