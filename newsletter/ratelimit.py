"""Signup and link-request limits: fixed windows counted by `limits`; keys hold hashes only.

With Redis (every real run) the counters live in the cache's Redis database and a hit is one
atomic increment-with-expiry script, so concurrent requests from many workers count exactly.
The keys carry the cache's key prefix, so clearing the cache clears them too. Without Redis
(the local run) each process counts in memory.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter


def ratelimit_limit(name: str) -> RateLimitItem:
    """The configured limit: "ip" or "address" (settings NEWSLETTER_RATE_LIMIT_*, count/seconds)."""
    value = getattr(settings, f"NEWSLETTER_RATE_LIMIT_{name.upper()}")
    count, _sep, seconds = value.partition("/")
    return RateLimitItemPerSecond(int(count), int(seconds or 3600))


@lru_cache(maxsize=4)
def _limiter(url: str, key_prefix: str) -> FixedWindowRateLimiter:
    # One storage (and Redis connection pool) per URL for the process.
    return FixedWindowRateLimiter(storage_from_string(url or "memory://", key_prefix=key_prefix))


def ratelimit_hit(*, scope: str, key: str, limit: RateLimitItem) -> int | None:
    """Count one hit; None while within the limit, else the seconds until the window ends."""
    limiter = _limiter(settings.REDIS_CACHE_URL, cache.make_key("newsletter:rl"))
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
    if limiter.hit(limit, scope, digest):
        return None
    reset_at = limiter.get_window_stats(limit, scope, digest).reset_time
    return max(1, int(reset_at - time.time()))
