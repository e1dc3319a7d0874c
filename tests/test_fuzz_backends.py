"""The same seed gives the same examples, verdicts and disagreements on every backend:
in-process, a local pool of spawned worker processes, and Ray (optional extra)."""

from __future__ import annotations

import pytest

from promptlimits.numerics import fuzz_campaign as fc

CHECKS_USED = ("twin_matches_exact", "prompt_order", "score_shift", "known_answers", "lora_exact")


def _strip(records):
    """Records without timings (the only part that may differ between runs)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_local_pool_gives_the_same_records_as_in_process():
    one = fc.run_campaign(8, seed=5, profile="ci", checks=CHECKS_USED)
    two = fc.run_campaign(8, seed=5, profile="ci", checks=CHECKS_USED, workers=2)
    assert _strip(one.records) == _strip(two.records)
    assert [r["index"] for r in two.records] == list(range(8))


@pytest.mark.ray
def test_ray_gives_the_same_records_as_in_process():
    pytest.importorskip("ray")
    one = fc.run_campaign(4, seed=6, profile="ci", checks=CHECKS_USED)
    ray = fc.run_campaign(4, seed=6, profile="ci", checks=CHECKS_USED, workers=2, backend="ray")
    assert _strip(one.records) == _strip(ray.records)

