"""The experiments of ``promptlimits reproduce``, in report order."""

from __future__ import annotations

from promptlimits.numerics import (
    exp_gap, exp_impossible, exp_invariance, exp_layers, exp_same_output, exp_separation, exp_universal,
)
from promptlimits.numerics.catalogue import Experiment

EXPERIMENTS: tuple[Experiment, ...] = tuple(
    Experiment(module.KEY, module.TITLE, module.run)
    for module in (exp_impossible, exp_same_output, exp_separation, exp_invariance, exp_gap, exp_layers, exp_universal)
)
