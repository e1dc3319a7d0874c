"""Prompt tuning within a ball: admissible prompts only, and it never beats THEORY §8's floor
on a held-out random certified model (an independent optimizer against the certificate)."""

from fractions import Fraction as F

import numpy as np
import torch

from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Model
from promptlimits.numerics.ball_prompts import project, tune_prompts_in_ball
from promptlimits.numerics.config import TrainConfig
from promptlimits.proofs.multilayer_injectivity import decide
from promptlimits.proofs.same_output_floor import same_output_floor


def test_projection_is_the_nearest_point_of_the_ball():
    U = torch.tensor([[[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]]], dtype=torch.float64)
    P = project(U, 1.0)
    assert torch.allclose(P[0, 0], torch.tensor([0.6, 0.8], dtype=torch.float64))
    assert torch.equal(P[0, 1:], U[0, 1:])


def _held_out_model(seed: int) -> Model:
    rng = np.random.default_rng(seed)

    def mat(r, c, scale):
        return tuple(tuple(F(int(v), 32) for v in row) for row in np.rint(rng.normal(size=(r, c)) * 32 * scale))

    layers = tuple(Layer((Head(mat(2, 3, .3), mat(2, 3, .3), mat(2, 3, .3), mat(3, 2, .3)),), mat(4, 3, .25),
                         mat(1, 4, .1)[0], mat(3, 4, .25), mat(1, 3, .1)[0]) for _ in range(3))
    return Model(3, layers, attention="causal")


def test_prompt_tuning_in_the_ball_stays_above_the_certified_floor():
    model = _held_out_model(5)  # three layers, certified at R = ρ = 1/2 (Π(1 − L_s) ≈ 0.042)
    R = rho = F(1, 2)
    dec = decide(model, R, rho)
    assert dec.verdict == "injective"
    y = ((F(1, 3), F(-1, 5), F(1, 7)), (F(0), F(1, 2), F(1, 9)))
    data = Dataset(3, (Example(((F(1, 4), F(0), F(1, 4)), (F(0), F(1, 3), F(0))), y),
                       Example(((F(-1, 4), F(1, 8), F(0)), (F(0), F(1, 3), F(1, 5))), y)))
    floor = same_output_floor(model, data, dec)
    assert floor.value > 0
    runs = tune_prompts_in_ball(model, [data], [1, 3], restarts=3,
                                config=TrainConfig(steps=150, polish=30, lr=0.1, progress=False), radius=float(rho))
    for run in runs:
        assert all(np.linalg.norm(tok) <= float(rho) + 1e-12 for tok in run.best_prompt)
        assert run.best_loss >= float(floor.value)
