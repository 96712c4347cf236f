"""Reads about digests: progress counts from grouped queries, the public archive."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from articles.selectors import article_list_by_ids
from newsletter.models import (
    Batch,
    BatchState,
    Delivery,
    DeliveryState,
    Digest,
    DigestState,
    MailingKind,
)

PROGRESS_KEYS = ("queued", "sending", "sent", "failed", "uncertain", "skipped")


def digest_progress(*, digest: Digest) -> dict[str, int | str]:
    """Counts per outcome from two grouped queries (batches by state, exception rows by state)."""
    by_batch = {
        row["state"]: row
        for row in Batch.objects.filter(digest=digest)
        .values("state")
        .annotate(size=Sum("size"), sent=Sum("sent_count"))
    }
    exceptions = dict(
        Delivery.objects.filter(digest=digest, state__isnull=False)
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    claimed = sum(row["size"] or 0 for row in by_batch.values())

    def size(state: str) -> int:
        return (by_batch.get(state) or {}).get("size") or 0

    return {
        "state": digest.state,
        "state_label": str(digest.get_state_display()),
        "recipients": digest.recipients,
        "queued": max(0, digest.recipients - claimed) + size(BatchState.RETRY),
        "sending": size(BatchState.SENDING),
        "sent": (by_batch.get(BatchState.SENT) or {}).get("sent") or 0,
        "failed": exceptions.get(DeliveryState.FAILED, 0),
        "uncertain": size(BatchState.UNCERTAIN),
        "skipped": exceptions.get(DeliveryState.SKIPPED, 0),
    }


def _batch_sum(field: str, state: str) -> Coalesce:
    sub = (
        Batch.objects.filter(digest=OuterRef("pk"), state=state)
        .values("digest")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Coalesce(Subquery(sub, output_field=IntegerField()), Value(0))


def _delivery_count(state: str) -> Coalesce:
    sub = (
        Delivery.objects.filter(digest=OuterRef("pk"), state=state)
        .values("digest")
        .annotate(total=Count("id"))
        .values("total")
    )
    return Coalesce(Subquery(sub, output_field=IntegerField()), Value(0))


def digest_list_with_progress(queryset: QuerySet[Digest]) -> QuerySet[Digest]:
    """The same counts as `digest_progress`, as annotations (one query for a whole page)."""
    return queryset.annotate(
        n_sent=_batch_sum("sent_count", BatchState.SENT),
        n_sending=_batch_sum("size", BatchState.SENDING),
        n_uncertain=_batch_sum("size", BatchState.UNCERTAIN),
        n_failed=_delivery_count(DeliveryState.FAILED),
        n_skipped=_delivery_count(DeliveryState.SKIPPED),
    )


def digest_list_archive() -> QuerySet[Digest]:
    """Digests that went out, newest first (the archive shows no personal parts). Campaigns
    are left out: the archive lists articles, and a campaign's own text is an offer or an
    announcement of its day, not an issue of the newsletter."""
    return (
        Digest.objects.filter(
            kind=MailingKind.DIGEST, state=DigestState.DONE, newsletter__is_active=True
        )
        .exclude(article_ids=[])
        .select_related("newsletter")
        .order_by("-slot", "-id")
    )


def digest_articles(*, digest: Digest, live_only: bool = True) -> list:
    """The digest's article snapshot in the digest's order: what is still live (the web
    archive), or everything that still exists (the mail, rendered as it was sent)."""
    by_id = {a.pk: a for a in article_list_by_ids(digest.article_ids, live_only=live_only)}
    return [by_id[pk] for pk in digest.article_ids if pk in by_id]
