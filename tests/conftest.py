"""Shared fixtures."""

from __future__ import annotations

import pytest

from databus.identity import Pseudonymizer

TEST_KEY = b"test-only-pseudonym-key"


@pytest.fixture
def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(TEST_KEY)
