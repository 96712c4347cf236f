"""Fixed-window rate limits counted atomically in Redis; keys hold hashes, never addresses.

With Redis (every real run) a hit is one round trip: INCR and EXPIRE NX in one MULTI/EXEC, so
concurrent requests from many workers count exactly. The keys carry the cache's prefix, so
clearing the cache clears them too. Without Redis (the local run) the Django cache counts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, value: str) -> Limit:
        count, _sep, seconds = value.partition("/")
        return cls(count=int(count), seconds=int(seconds or 3600))


def ratelimit_limit(name: str) -> Limit:
    """The configured limit: "ip" or "address" (settings NEWSLETTER_RATE_LIMIT_*)."""
    return Limit.parse(getattr(settings, f"NEWSLETTER_RATE_LIMIT_{name.upper()}"))


def ratelimit_hit(*, scope: str, key: str, limit: Limit) -> int | None:
    """Count one hit; None while within the limit, else the seconds until the window ends."""
    now = time.time()
    window = int(now // limit.seconds)
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
    count = _count(f"newsletter:rl:{scope}:{digest}:{window}", timeout=limit.seconds + 5)
    if count <= limit.count:
        return None
    return max(1, int((window + 1) * limit.seconds - now))


@lru_cache(maxsize=4)
def redis_client(url: str) -> redis.Redis:
    """One client (and connection pool) per Redis URL for the process; shared by both limits."""
    return redis.Redis.from_url(url)


def _count(key: str, *, timeout: int) -> int:
    if settings.REDIS_CACHE_URL:
        pipe = redis_client(settings.REDIS_CACHE_URL).pipeline()  # MULTI/EXEC: both or neither
        full_key = cache.make_key(key)
        pipe.incr(full_key)
        pipe.expire(full_key, timeout, nx=True)
        return int(pipe.execute()[0])
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:
        # The counter expired between add and incr: this hit opens a new window.
        cache.add(key, 1, timeout=timeout)
        return 1
