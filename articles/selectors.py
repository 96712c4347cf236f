"""Reads that carry the publishing rule: what counts as live at a given time."""

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import Article, ArticleStatus


def live_article_filter(*, now: datetime | None = None) -> Q:
    """Published, or scheduled with its minute reached: live without waiting for a job."""
    return Q(
        status__in=[ArticleStatus.PUBLISHED, ArticleStatus.SCHEDULED],
        published_at__lte=now or timezone.now(),
    )


def article_list_live(*, now: datetime | None = None) -> QuerySet[Article]:
    return Article.objects.filter(live_article_filter(now=now)).order_by("-published_at", "-id")


def article_list_published_between(*, start: datetime, end: datetime) -> list[Article]:
    """Articles that went live in [start, end), oldest first, with what a digest shows."""
    return list(
        article_list_live(now=end)
        .filter(published_at__gte=start, published_at__lt=end)
        .select_related("disclaimer_version")
        .order_by("published_at", "id")
    )
