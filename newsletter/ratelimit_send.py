"""A provider's messages-per-second limit, shared by every worker through Redis.

A virtual-clock scheduler (GCRA): Redis keeps the time at which the provider's capacity is next
free. Each batch atomically books `n` messages (moving that time forward by n / rate) and waits
until its booking starts. Bookings from all workers queue up on the one clock, so the long-run
rate is the configured one however many workers send, and a batch larger than one second's
allowance simply waits longer instead of being refused.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings

_BOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
local cost = tonumber(ARGV[1]) / tonumber(ARGV[2])
redis.call('SET', KEYS[1], tostring(free + cost), 'EX', 3600)
return tostring(free - now)
"""


@lru_cache(maxsize=4)
def redis_client(url: str) -> redis.Redis:
    """One client (and connection pool) per Redis URL for the process."""
    return redis.Redis.from_url(url)


def send_rate() -> float:
    return float(getattr(settings, "NEWSLETTER_SEND_RATE", 0) or 0)


def send_slot_wait(*, provider: str, messages: int) -> float:
    """Book `messages` sends on the provider's shared clock; seconds to wait before sending."""
    rate = send_rate()
    url = getattr(settings, "NEWSLETTER_RATELIMIT_REDIS_URL", "") or settings.REDIS_CACHE_URL
    if rate <= 0 or messages <= 0 or not url:
        return 0.0
    client = redis_client(url)
    wait = client.eval(_BOOK, 1, f"newsletter:sendrate:{provider}", messages, rate)
    return max(0.0, float(wait))
