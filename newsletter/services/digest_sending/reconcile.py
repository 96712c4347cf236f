"""Reconciling a digest's batches: expired leases, uncertain batches proven by provider events,
and the resend/drop policy after the grace period."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, ProviderEvent
from newsletter.services.digest_sending.record import _record_failed

logger = logging.getLogger(__name__)


def digest_reconcile(*, digest_id: int, now: datetime | None = None) -> dict[str, int]:
    """Expired leases: a batch whose call never started is due again at once, one whose call
    may have reached the provider becomes uncertain; an uncertain batch with any provider
    event for one of its deliveries is sent (only an event about one of our deliveries, to its
    address, from the batch's provider is linked to a delivery: digest_events); without one
    after the grace period it is retried (resend policy) or failed (drop policy)."""
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
    batch_table = Batch._meta.db_table
    event_table = ProviderEvent._meta.db_table
    delivery_table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {batch_table} AS b SET state = %s, sent_at = %s, next_attempt_at = NULL,
                   sent_count = b.size - (
                     SELECT count(*) FROM {delivery_table} x
                     WHERE x.digest_id = b.digest_id
                       AND x.id BETWEEN b.first_delivery_id AND b.last_delivery_id
                       AND x.state IS NOT NULL)
            WHERE b.digest_id = %s AND b.state = %s AND EXISTS (
                SELECT 1 FROM {event_table} e JOIN {delivery_table} d ON d.id = e.delivery_id
                WHERE d.digest_id = b.digest_id
                  AND e.delivery_id BETWEEN b.first_delivery_id AND b.last_delivery_id)
            """,
            [BatchState.SENT, now, digest_id, BatchState.UNCERTAIN],
        )
        proven = cursor.rowcount
    overdue = list(
        Batch.objects.filter(
            digest_id=digest_id, state=BatchState.UNCERTAIN, next_attempt_at__lte=now
        )
    )
    resent = dropped = 0
    for batch in overdue:
        if settings.NEWSLETTER_UNCERTAIN_POLICY == "drop":
            _record_failed(
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
