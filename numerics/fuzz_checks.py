"""The cross-checks of a fuzz campaign, registered in campaign order.

Each is a property that a bug in some layer breaks (see ``fuzz_case`` for the frame):
``fuzz_layer_checks`` (evaluator, torch, Lemma 1, metamorphic relations, constructions)
run first, then ``fuzz_decision_checks`` (verdicts, witnesses, certificates, SMT, floor).
"""

from promptlimits.numerics import fuzz_layer_checks  # noqa: F401  (registers first)
from promptlimits.numerics import fuzz_decision_checks  # noqa: F401  (registers second)
from promptlimits.numerics.fuzz_case import CHECKS, AlreadyReported, Case, Disagreement

__all__ = ["CHECKS", "AlreadyReported", "Case", "Disagreement"]
