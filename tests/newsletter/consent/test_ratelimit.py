from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

from newsletter import ratelimit
from newsletter.ratelimit import Limit, ratelimit_hit


def test_redis_counts_concurrent_hits_exactly():
    limit = Limit(count=25, seconds=3600)
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(lambda _i: ratelimit_hit(scope="t", key="203.0.113.9", limit=limit), range(60))
        )
    assert answers.count(None) == 25
    assert all(isinstance(a, int) and a > 0 for a in answers if a is not None)


def test_cache_clear_resets_the_counters():
    limit = Limit(count=1, seconds=3600)
    assert ratelimit_hit(scope="t", key="x", limit=limit) is None
    assert ratelimit_hit(scope="t", key="x", limit=limit) is not None
    cache.clear()
    assert ratelimit_hit(scope="t", key="x", limit=limit) is None


@pytest.mark.parametrize("count", [1, 3])
def test_without_redis_the_cache_counts(settings, monkeypatch, count):
    settings.REDIS_CACHE_URL = ""
    monkeypatch.setattr(ratelimit, "cache", LocMemCache(f"rl-test-{count}", {}))
    limit = Limit(count=count, seconds=60)
    answers = [ratelimit_hit(scope="local", key="k", limit=limit) for _ in range(count + 2)]
    assert answers[:count] == [None] * count
    assert all(a is not None for a in answers[count:])
