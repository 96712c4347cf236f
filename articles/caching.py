"""The public pages' cache: fragments keyed by a content generation that every change bumps.

Instead of hunting down every cached page an article appears on (list pages, topic pages,
related boxes, feeds), each write bumps one number; keys that carry the old number are
simply never read again and expire on their own.
"""

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

GENERATION_KEY = "articles:generation"


def content_generation_get() -> int:
    """The current generation; starts from the clock so an evicted counter never goes back."""
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, time.time_ns() // 1000, timeout=None)
        generation = cache.get(GENERATION_KEY)
    return int(generation)


def content_generation_bump() -> None:
    """Make every cached fragment stale at once."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        cache.add(GENERATION_KEY, time.time_ns() // 1000, timeout=None)


def cached_fragment(
    name: str,
    *parts: object,
    build: Callable[[], tuple[Any, datetime | None]],
) -> Any:
    """The cached value for (name, parts) in this generation, built on a miss.

    `build` returns the value and the next moment it turns stale by itself (the next scheduled
    article going live), so a scheduled article appears at its minute even before the beat
    task has flipped its status.
    """
    if settings.CACHE_PAGE_SECONDS <= 0:  # caching switched off: always the fresh value
        return build()[0]
    key = ":".join(["articles", name, str(content_generation_get()), *map(str, parts)])
    value = cache.get(key)
    if value is not None:
        return value
    value, stale_at = build()
    timeout = settings.CACHE_PAGE_SECONDS
    if stale_at is not None:
        seconds = int((stale_at - timezone.now()).total_seconds()) + 1
        timeout = max(1, min(timeout, seconds))
    cache.set(key, value, timeout)
    return value
