"""Hypothesis profiles shared by the whole test suite.

- "ci" (default): derandomized, no deadline, 50 examples unless a test asks for more,
  the too_slow health check off, failing examples printed as reproduction blobs.
- "deep": many random examples for fuzzing campaigns (``HYPOTHESIS_PROFILE=deep pytest``).
"""

import os

from hypothesis import HealthCheck, settings

# Checkpoints are local files: never let Hugging Face libraries reach for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "deep",
    derandomize=False,
    deadline=None,
    max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
