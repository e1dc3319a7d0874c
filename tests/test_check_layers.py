"""claim "layers" certificates: honest ones re-verify without Z3, every mutation is rejected."""

import copy
import subprocess
import sys
from fractions import Fraction as F

import pytest

from promptlimits.constructions.formats import model_to_json, sha256_of
from promptlimits.constructions.layered_models import mirrored_pair, sorting_model
from promptlimits.proofs.certificate import CheckFailed
from promptlimits.proofs.multilayer_injectivity import decide, layers_certificate
from promptlimits.proofs.recheck import recheck
from promptlimits.proofs.same_output_floor import same_output_floor

R = RHO = F(1, 4)


@pytest.fixture(scope="module")
def certs():
    model = sorting_model()
    dec = decide(model, R, RHO)
    data = mirrored_pair(F(1, 4), (F(1, 5), F(4, 3)))
    floor = same_output_floor(model, data, dec)
    return layers_certificate(model, dec), layers_certificate(model, dec, data, floor)


def test_honest_certificates_recheck(certs):
    plain, mem = certs
    assert plain["verdict"] == "injective" and plain["claim"] == "layers"
    assert any("re-certified" in line for line in recheck(plain))
    assert mem["verdict"] == "not-memorizable"
    assert any("not memorizable" in line for line in recheck(mem))


def _bump(text):
    return str(F(text) + F(1, 10**6))


MUTATIONS = {
    "product": lambda ev: ev.__setitem__("product", _bump(ev["product"])),
    "input radius": lambda ev: ev.__setitem__("input_radius", "1/2"),
    "prompt radius": lambda ev: ev.__setitem__("prompt_radius", "1/8"),
    "attention constant": lambda ev: ev["layers"][1].__setitem__("attention", _bump(ev["layers"][1]["attention"])),
    "radius out": lambda ev: ev["layers"][0].__setitem__("input_out", _bump(ev["layers"][0]["input_out"])),
    "norm below truth": lambda ev: ev["layers"][0]["heads"][0]["V"].update(c="49/100", pivots=None),
    "bias bound below truth": lambda ev: ev["layers"][1].__setitem__("b1", "1/11"),
    "layer dropped": lambda ev: ev["layers"].pop(),
    "positional invented": lambda ev: ev.__setitem__("positional_bound", "0"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutated_evidence_is_rejected(certs, name):
    cert = copy.deepcopy(certs[0])
    MUTATIONS[name](cert["evidence"])
    with pytest.raises(CheckFailed):
        recheck(cert)


FLOOR_MUTATIONS = {
    "floor": lambda fl: fl.__setitem__("loss_floor", _bump(fl["loss_floor"])),
    "pair floor": lambda fl: fl["pairs"][0].__setitem__("floor", _bump(fl["pairs"][0]["floor"])),
    "distance": lambda fl: fl["pairs"][0].__setitem__("distance2", "1/2"),
    "same example twice": lambda fl: fl["pairs"][0].__setitem__("examples", [0, 0]),
    "no pairs": lambda fl: fl.__setitem__("pairs", []),
    "prefix too long": lambda fl: fl["pairs"][0].__setitem__("positions", 2),
}


@pytest.mark.parametrize("name", sorted(FLOOR_MUTATIONS))
def test_mutated_floor_is_rejected(certs, name):
    cert = copy.deepcopy(certs[1])
    FLOOR_MUTATIONS[name](cert["evidence"]["floor"])
    with pytest.raises(CheckFailed):
        recheck(cert)


def test_verdict_swaps_and_outside_models_are_rejected(certs):
    swapped = copy.deepcopy(certs[0])
    swapped["verdict"] = "not-memorizable"
    with pytest.raises(CheckFailed):
        recheck(swapped)
    bidir = copy.deepcopy(certs[0])
    obj = model_to_json(sorting_model())
    obj["attention"] = "bidirectional"
    bidir["model"] = {"sha256": sha256_of(obj), "embedded": obj}
    with pytest.raises(CheckFailed, match="outside the theorem"):
        recheck(bidir)


def test_checker_imports_no_z3():
    code = ("import sys; import promptlimits.proofs.check_layers, promptlimits.proofs.multilayer_injectivity, "
            "promptlimits.proofs.same_output_floor; assert 'z3' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
