"""Reconciling a digest's batches: expired leases, uncertain batches proven by provider events,
and the resend/drop policy after the grace period."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, ProviderEvent
from newsletter.services.digest_sending.provider import BATCH_ESPS
from newsletter.services.digest_sending.record import batch_record_failed

logger = logging.getLogger(__name__)


def digest_reconcile(*, digest_id: int, now: datetime | None = None) -> dict[str, int]:
    """Expired leases: a batch whose call never started is due again at once, one whose call
    may have reached the provider becomes uncertain; an uncertain batch is proven by a provider
    event for one of its deliveries (only an event about one of our deliveries, to its address,
    from the batch's provider is linked to a delivery: digest_events): sent when the batch was
    one call, resumed after the proven message when it went one message per recipient; without
    a proof after the grace period it is retried (resend policy) or failed (drop policy)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS)
    expired_here = Batch.objects.filter(
        digest_id=digest_id, state=BatchState.SENDING, lease_until__lt=now
    )
    freed = expired_here.filter(call_started_at__isnull=True).update(
        state=BatchState.RETRY,
        next_attempt_at=now,
        lease_until=None,
        error="lease expired before the call (worker lost)",
    )
    expired = expired_here.filter(call_started_at__isnull=False).update(
        state=BatchState.UNCERTAIN,
        next_attempt_at=now + grace,
        lease_until=None,
        error="lease expired during the call (worker lost)",
    )
    if freed or expired:
        logger.warning(
            "digest %s: %s lost lease(s) free again, %s uncertain",
            digest_id,
            freed,
            expired,
            extra={"digest_id": digest_id},
        )
    # Each batch is judged by the provider it was handed to (Batch.esp, set at every claim).
    proven = _batches_proven_sent(digest_id=digest_id, now=now) + sum(
        _in_flight_proven(batch=batch, now=now)
        for batch in Batch.objects.filter(digest_id=digest_id, state=BatchState.UNCERTAIN).exclude(
            esp__in=BATCH_ESPS
        )
    )
    overdue = list(
        Batch.objects.filter(
            digest_id=digest_id, state=BatchState.UNCERTAIN, next_attempt_at__lte=now
        )
    )
    resent = dropped = 0
    for batch in overdue:
        if settings.NEWSLETTER_UNCERTAIN_POLICY == "drop":
            batch_record_failed(
                batch=batch,
                token=batch.attempts,
                error="uncertain, dropped (at-most-once policy)",
            )
            dropped += 1
        else:
            resent += Batch.objects.filter(pk=batch.pk, state=BatchState.UNCERTAIN).update(
                state=BatchState.RETRY, next_attempt_at=now, error="uncertain, resent after grace"
            )
    return {
        "freed": freed,
        "expired": expired,
        "proven": proven,
        "resent": resent,
        "dropped": dropped,
    }


def _batches_proven_sent(*, digest_id: int, now: datetime) -> int:
    """One call per batch (Mailgun): an event for any of its deliveries proves the call, so
    the whole batch is sent."""
    batch_table = Batch._meta.db_table
    event_table = ProviderEvent._meta.db_table
    delivery_table = Delivery._meta.db_table
    batch_esps = sorted(BATCH_ESPS)
    # IN with one placeholder each, not = ANY(array): the local run's SQLite has no arrays.
    esp_placeholders = ", ".join(["%s"] * len(batch_esps))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {batch_table} AS b SET state = %s, sent_at = %s, next_attempt_at = NULL,
                   sent_count = b.size - (
                     SELECT count(*) FROM {delivery_table} x
                     WHERE x.digest_id = b.digest_id
                       AND x.id BETWEEN b.first_delivery_id AND b.last_delivery_id
                       AND x.state IS NOT NULL)
            WHERE b.digest_id = %s AND b.state = %s AND b.esp IN ({esp_placeholders}) AND EXISTS (
                SELECT 1 FROM {event_table} e JOIN {delivery_table} d ON d.id = e.delivery_id
                WHERE d.digest_id = b.digest_id
                  AND e.delivery_id BETWEEN b.first_delivery_id AND b.last_delivery_id)
            """,
            [BatchState.SENT, now, digest_id, BatchState.UNCERTAIN, *batch_esps],
        )
        return cursor.rowcount


def _in_flight_proven(*, batch: Batch, now: datetime) -> int:
    """One message per recipient (SMTP and every ESP but Mailgun's batch API): only deliveries
    after `sent_through` were not known to be handed over, and messages go in delivery order,
    so an event for one of them proves it and every message before it; events for earlier
    deliveries prove nothing new. The proof moves `sent_through` to the proven delivery; the
    batch is sent only when no delivery is left after it, and otherwise due again at once,
    resuming after it. A compare-and-set on the attempt token and the progress read, so a
    late `batch_progress` of the same attempt or a new claim wins over it."""
    after = max(batch.first_delivery_id - 1, batch.sent_through or 0)
    deliveries = Delivery.objects.filter(
        digest_id=batch.digest_id, pk__gt=after, pk__lte=batch.last_delivery_id
    )
    proven_through = (
        ProviderEvent.objects.filter(delivery__in=deliveries)
        .order_by("-delivery_id")
        .values_list("delivery_id", flat=True)
        .first()
    )
    if proven_through is None:
        return 0
    handed_over = deliveries.filter(pk__lte=proven_through, state__isnull=True).count()
    sent = (batch.sent_count if batch.sent_through else 0) + handed_over
    left = deliveries.filter(pk__gt=proven_through, state__isnull=True).exists()
    fields: dict = {
        "sent_through": proven_through,
        "sent_count": sent,
        "call_started_at": None,
        "lease_until": None,
    }
    if left:
        fields.update(
            state=BatchState.RETRY,
            next_attempt_at=now,
            error=f"uncertain, proven through delivery {proven_through}; the rest resent",
        )
    else:
        fields.update(state=BatchState.SENT, sent_at=now, next_attempt_at=None, error="")
    return Batch.objects.filter(
        pk=batch.pk,
        attempts=batch.attempts,
        state=BatchState.UNCERTAIN,
        sent_through=batch.sent_through,
    ).update(**fields)
