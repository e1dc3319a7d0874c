"""THEORY §8 floor for same-output pairs: hand values, the max-token (not Frobenius) norm,
target prefixes under causal attention, and the cases that give no floor."""

from dataclasses import replace
from fractions import Fraction as F

from promptlimits.constructions.layered_models import mirrored_pair, sorting_model
from promptlimits.constructions.spec import Dataset, Example, Model
from promptlimits.proofs.multilayer_injectivity import decide
from promptlimits.proofs.same_output_floor import same_output_floor

R = RHO = F(1, 4)
Y = (F(1, 5), F(4, 3))


def test_mirrored_pair_floor_is_c_squared_over_eight():
    # x − x' = (1/2, 0): max-token distance² 1/4, floor = c²·(1/4)/2 = c²/8.
    model = sorting_model()
    dec = decide(model, R, RHO)
    floor = same_output_floor(model, mirrored_pair(F(1, 4), Y), dec)
    assert floor.value == dec.product ** 2 / 8
    assert [(p.i, p.j, p.k, p.distance2) for p in floor.pairs] == [(0, 1, 1, F(1, 4))]


def _two_token(targets_a, targets_b, xa=((F(1, 8), 0), (F(1, 8), 0)), xb=((-F(1, 8), 0), (-F(1, 8), 0))):
    conv = lambda rows: tuple(tuple(F(v) for v in r) for r in rows)  # noqa: E731
    return Dataset(2, (Example(conv(xa), targets_a), Example(conv(xb), targets_b)))


def test_distance_is_the_max_over_tokens_not_the_frobenius_sum():
    # Both tokens differ by (1/4, 0): Frobenius² would be 1/8 but the theorem's norm gives 1/16.
    model = sorting_model()
    dec = decide(model, R, RHO)
    floor = same_output_floor(model, _two_token((Y, Y), (Y, Y)), dec)
    assert floor.pairs[0].distance2 == F(1, 16) and floor.pairs[0].k == 2
    assert floor.value == dec.product ** 2 * F(1, 16) / 2


def test_causal_prefix_counts_and_unconstrained_positions_stop_it():
    model = sorting_model()
    dec = decide(model, R, RHO)
    # position 1 unconstrained in one example: only the prefix of length 1 counts (causal)
    prefix = same_output_floor(model, _two_token((Y, None), (Y, Y)), dec)
    assert prefix.pairs[0].k == 1 and prefix.value > 0
    # first targets differ: no agreeing prefix, no floor
    none = same_output_floor(model, _two_token((Y, Y), ((F(0), F(0)), Y)), dec)
    assert none.value == 0 and not none.pairs
    # bidirectional one-layer model: every position must agree
    one = Model(2, model.layers[:1], attention="bidirectional")
    dec1 = decide(one, R, RHO)
    assert same_output_floor(one, _two_token((Y, None), (Y, Y)), dec1).value == 0
    assert same_output_floor(one, _two_token((Y, Y), (Y, Y)), dec1).value > 0


def test_no_floor_outside_the_ball_or_without_the_theorem():
    model = sorting_model()
    far = mirrored_pair(F(1, 2), Y)  # ‖x‖ = 1/2 > R
    floor = same_output_floor(model, far, decide(model, R, RHO))
    assert floor.value == 0 and "outside the input ball" in floor.reason
    failing = decide(model, R, F(1))
    assert same_output_floor(model, mirrored_pair(F(1, 4), Y), failing).value == 0
    outside = replace(model, attention="bidirectional")
    assert same_output_floor(outside, mirrored_pair(F(1, 4), Y), decide(outside, R, RHO)).value == 0


def test_disjoint_pairs_add_up():
    # examples 0,1 and 2,3 form two mirrored pairs with different targets; 0 and 2 share nothing
    model = sorting_model()
    dec = decide(model, R, RHO)
    a = mirrored_pair(F(1, 4), Y).examples
    b = mirrored_pair(F(1, 8), (F(0), F(1))).examples
    floor = same_output_floor(model, Dataset(2, a + b), dec)
    assert len(floor.pairs) == 2
    assert floor.value == dec.product ** 2 * (F(1, 4) + F(1, 16)) / 2
