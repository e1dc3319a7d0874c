"""One certificate per decided verdict, for callers that hold a model and a dataset.

Each function runs the decision and wraps its evidence in the ``certificate@1`` envelope,
or returns None when the verdict is unknown (nothing to certify). ``promptlimits
reproduce --certificates DIR`` builds its proof-check catalogue with these.
"""

from __future__ import annotations

import time
from typing import Optional

from promptlimits.constructions.spec import Dataset, Model
from promptlimits.proofs import bounds as bounds_mod
from promptlimits.proofs import invertibility, memorization
from promptlimits.proofs.certificate import make_certificate


def memorizable_certificate(model: Model, dataset: Dataset, length: Optional[int] = None) -> Optional[dict]:
    """Theorem 1's decision (THEORY §3) as a certificate, or None when it is unknown."""
    start = time.perf_counter()
    dec = memorization.decide(model, dataset, length=length)
    if dec.verdict == "unknown":
        return None
    return make_certificate("memorizable", dec.verdict, dec.method, dec.evidence, model, dataset,
                            time.perf_counter() - start)


def invertible_certificate(model: Model, layer: int = 0) -> Optional[dict]:
    """Injectivity of one feed-forward block (THEORY §7) as a certificate, or None."""
    dec = invertibility.decide(model.layers[layer])
    if dec.status != "decided" or dec.evidence is None:
        return None
    return make_certificate("invertible", dec.verdict, dec.method, dict(dec.evidence, layer=layer), model,
                            seconds=dec.seconds)


def bounds_certificate(model: Model, dataset: Dataset) -> dict:
    """Prompt-length bound, LoRA rank and loss floor (THEORY §5–§6) as a certificate."""
    start = time.perf_counter()
    b = bounds_mod.bounds(model, dataset)
    return make_certificate("bounds", b.verdict, bounds_mod.METHOD,
                            b.evidence(), model, dataset, time.perf_counter() - start)
