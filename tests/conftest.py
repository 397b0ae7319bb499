from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI machines are shared and noisy: property tests must not fail on timing.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("ci" if os.environ.get("CI") else "default")
