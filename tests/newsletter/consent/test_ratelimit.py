import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from limits import RateLimitItemPerSecond

from newsletter.ratelimit import ratelimit_hit


def test_redis_counts_concurrent_hits_exactly():
    limit = RateLimitItemPerSecond(25, 3600)
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(lambda _i: ratelimit_hit(scope="t", key="203.0.113.9", limit=limit), range(60))
        )
    assert answers.count(None) == 25
    assert all(isinstance(a, int) and a > 0 for a in answers if a is not None)


def test_cache_clear_resets_the_counters():
    limit = RateLimitItemPerSecond(1, 3600)
    assert ratelimit_hit(scope="t", key="x", limit=limit) is None
    assert ratelimit_hit(scope="t", key="x", limit=limit) is not None
    cache.clear()
    assert ratelimit_hit(scope="t", key="x", limit=limit) is None


@pytest.mark.parametrize("count", [1, 3])
def test_without_redis_the_process_counts(settings, count):
    settings.REDIS_CACHE_URL = ""
    limit = RateLimitItemPerSecond(count, 60)
    key = f"k-{uuid.uuid4()}"  # the process's counters outlive a test
    answers = [ratelimit_hit(scope="local", key=key, limit=limit) for _ in range(count + 2)]
    assert answers[:count] == [None] * count
    assert all(a is not None for a in answers[count:])
