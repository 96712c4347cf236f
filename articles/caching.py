"""The public pages' cache: fragments keyed by a content generation that every change bumps.

Instead of hunting down every cached page an article appears on (list pages, topic pages,
related boxes, feeds), each write bumps one number; keys that carry the old number are
simply never read again and expire on their own.
"""

import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .models import Article, ArticleStatus

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


# The generation a fragment is being built in, so the fragments inside it (the article in
# its page, the navigation in the layout) come from the same one, without reading it again.
_building_in: ContextVar[int | None] = ContextVar("building_in", default=None)


def cached_fragment(name: str, *parts: object, build: Callable[[], Any]) -> Any:
    """The cached value for (name, parts) in this generation, built on a miss.

    Every value turns stale by itself when the next scheduled article goes live, so that
    article appears at its minute even before the beat task has flipped its status. A build
    that raises (Http404 for an unknown slug or page) stores nothing: what readers make up
    must never take room in the cache.
    """
    if settings.CACHE_PAGE_SECONDS <= 0:  # caching switched off: always the fresh value
        return build()
    generation = _building_in.get()
    outermost = generation is None
    if outermost:
        generation = content_generation_get()
    key = ":".join(["articles", name, str(generation), *map(str, parts)])
    value = cache.get(key)
    if value is not None:
        return value
    token = _building_in.set(generation) if outermost else None
    try:
        value = build()
    finally:
        if token is not None:
            _building_in.reset(token)
    cache.set(key, value, _timeout(generation))
    return value


# (generation, the moment its fragments turn stale): the same in every process, so each
# process asks the cache once per generation instead of once per fragment it stores.
_stale_at_memo: tuple[int, float] = (0, 0.0)


def article_next_go_live(*, now: datetime | None = None) -> datetime | None:
    """When the next scheduled article goes live: the moment cached pages turn stale."""
    return (
        Article.objects.filter(
            status=ArticleStatus.SCHEDULED, published_at__gt=now or timezone.now()
        )
        .order_by("published_at")
        .values_list("published_at", flat=True)
        .first()
    )


def _timeout(generation: int) -> int:
    """CACHE_PAGE_SECONDS, cut short at the next scheduled go-live. That moment is looked up
    once per generation (publishing bumps the generation), not once per fragment."""
    global _stale_at_memo
    timeout = settings.CACHE_PAGE_SECONDS
    memo_generation, stale_at = _stale_at_memo
    if memo_generation != generation or 0 < stale_at <= time.time():
        stale_key = f"articles:next-live:{generation}"
        stale_at = cache.get(stale_key)  # a timestamp, or 0 for "nothing scheduled"
        if stale_at is None or 0 < stale_at <= time.time():
            next_live = article_next_go_live()
            stale_at = next_live.timestamp() if next_live else 0
            cache.set(stale_key, stale_at, timeout)
        _stale_at_memo = (generation, stale_at)
    if stale_at:
        timeout = max(1, min(timeout, int(stale_at - time.time()) + 1))
    return timeout
