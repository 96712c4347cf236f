"""Fixtures for the operations tests."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def empty_cache():
    """Throttle counters live in the cache (this suite's own Redis db); start each test clean."""
    cache.clear()
    yield
    cache.clear()
