"""Fixed-window rate limits counted atomically in the cache (Redis in every real run).

`cache.add` creates the window's counter only if absent and `cache.incr` is atomic in Redis,
so concurrent requests from many workers count exactly; keys hold hashes, never addresses.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

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
    cache_key = f"newsletter:rl:{scope}:{digest}:{window}"
    cache.add(cache_key, 0, timeout=limit.seconds + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # The counter expired between add and incr: this hit opens a new window.
        cache.add(cache_key, 1, timeout=limit.seconds + 5)
        count = 1
    if count <= limit.count:
        return None
    return max(1, int((window + 1) * limit.seconds - now))
