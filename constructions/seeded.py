"""Deterministic draws from Hypothesis strategies: example i of a campaign from seed (S, i).

Hypothesis's engine runs one test at a time in one process and adapts what it generates to
what it saw before, so a campaign split over processes or machines could not reproduce its
examples. A campaign therefore draws each example on its own: the strategy is run against
a fresh choice sequence whose random source is seeded by ``derive(S, i)``. The same
strategies serve the pytest properties (with shrinking and ``target``) and the campaigns,
and the same (S, i) gives the same example in every process, on every backend.

Two details make the draw a pure function of the seed:
- Hypothesis sometimes replaces a random choice by a "constant" harvested from the source
  of every module loaded so far, which differs between processes; the provider used here
  never does that.
- A draw that a strategy rejects (``assume``, filters, or an overrun) is retried with the
  next derived seed, a fixed number of times.

This uses Hypothesis's conjecture layer (``ConjectureData``, ``BuildContext``), which is
not a public API; ``tests/test_seeded.py`` pins the behaviour this module relies on.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, TypeVar

from hypothesis.control import BuildContext
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.internal.conjecture.data import ConjectureData, StopTest
from hypothesis.internal.conjecture.providers import HypothesisProvider
from hypothesis.strategies import SearchStrategy

T = TypeVar("T")

#: Draws a strategy may reject before ``draw_seeded`` gives up on a seed.
MAX_ATTEMPTS = 64


def derive(seed: int, *labels: Any) -> int:
    """A 64-bit seed that is a fixed function of ``seed`` and ``labels`` (sha256 of their repr)."""
    text = repr((int(seed),) + tuple(labels)).encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


class _SeededProvider(HypothesisProvider):
    """Hypothesis's random provider without the process-dependent pool of source constants."""

    def _maybe_draw_constant(self, choice_type, constraints, *, p: float = 0.05):  # type: ignore[override]
        return None


def draw_seeded(strategy: SearchStrategy[T], seed: int) -> T:
    """The example of ``strategy`` determined by ``seed`` (identical in every process).

    Raises RuntimeError when the strategy rejects ``MAX_ATTEMPTS`` consecutive draws.
    """
    for attempt in range(MAX_ATTEMPTS):
        data = ConjectureData(random=random.Random(derive(seed, "attempt", attempt)), provider=_SeededProvider)
        try:
            with BuildContext(data, is_final=False, wrapped_test=None):
                return data.draw(strategy)
        except (UnsatisfiedAssumption, StopTest):
            continue
    raise RuntimeError(f"strategy rejected {MAX_ATTEMPTS} draws for seed {seed}")
