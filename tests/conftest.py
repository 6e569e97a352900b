"""Shared fixtures, and the Hypothesis profiles.

``ci`` (the default) derandomizes the property tests: every run tries the same examples,
so a red build means a change broke something, not that this run drew a new case.
``explore`` draws new examples on every run and tries more of them; use it to hunt:
``HYPOTHESIS_PROFILE=explore .venv/bin/pytest tests/unit/rules tests/faults``.
A case it finds is replayed from ``.hypothesis/``; add it with ``@example``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from databus.identity import Pseudonymizer

TEST_KEY = b"test-only-pseudonym-key-at-least-32-bytes"

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=2_000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(TEST_KEY)
