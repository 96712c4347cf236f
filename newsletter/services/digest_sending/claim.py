"""Claiming: the next id range after a digest's cursor, or a due retry, under a lease.

Each claim takes the batch's next attempt number, the fencing token every later write for
the batch is checked against (fence.py)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, Digest, DigestState
from newsletter.services.digest_sending.lease import lease_end
from newsletter.services.digest_sending.provider import provider_name

logger = logging.getLogger(__name__)


def _claimed(batch: Batch) -> Batch:
    # Real-worker tests and the bench read this line (a newly started worker gets work).
    logger.info(
        "claimed batch %s of digest %s (%s-%s), token %s",
        batch.pk,
        batch.digest_id,
        batch.first_delivery_id,
        batch.last_delivery_id,
        batch.attempts,
        extra={"batch_id": batch.pk, "digest_id": batch.digest_id, "token": batch.attempts},
    )
    return batch


def batch_claim(*, digest_id: int, now: datetime | None = None) -> Batch | None:
    """Take the next id range after the digest's cursor (or a due retry) under the digest row
    lock, with a lease; two workers never get the same range, a repeat finds nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        digest = (
            Digest.objects.select_for_update()
            .filter(pk=digest_id)
            .only("pk", "state", "cursor", "last_delivery_id")
            .first()
        )
        if digest is None or digest.state != DigestState.SENDING:
            return None
        retry = (
            Batch.objects.filter(
                digest_id=digest_id, state=BatchState.RETRY, next_attempt_at__lte=now
            )
            .order_by("next_attempt_at", "pk")
            .first()
        )
        if retry is not None:
            taken = Batch.objects.filter(
                pk=retry.pk, state=BatchState.RETRY, attempts=retry.attempts
            ).update(
                state=BatchState.SENDING,
                lease_until=lease_end(now),
                attempts=retry.attempts + 1,
                call_started_at=None,
                esp=provider_name(),
            )
            if taken:
                retry.state, retry.attempts = BatchState.SENDING, retry.attempts + 1
                retry.lease_until, retry.call_started_at = lease_end(now), None
                retry.esp = provider_name()
                return _claimed(retry)
        if digest.last_delivery_id is None or digest.cursor >= digest.last_delivery_id:
            return None
        rows = list(
            Delivery.objects.filter(digest_id=digest_id, pk__gt=digest.cursor)
            .order_by("pk")
            .values_list("pk", "language")[: settings.NEWSLETTER_BATCH_SIZE]
        )
        if not rows:
            digest.cursor = digest.last_delivery_id
            digest.save(update_fields=["cursor"])
            return None
        language = rows[0][1]
        # One body per provider call: a batch stops where the language changes.
        cut = next((i for i, (_pk, lang) in enumerate(rows) if lang != language), len(rows))
        ids = [pk for pk, _lang in rows[:cut]]
        batch = Batch.objects.create(
            digest_id=digest_id,
            first_delivery_id=ids[0],
            last_delivery_id=ids[-1],
            size=len(ids),
            language=language,
            state=BatchState.SENDING,
            esp=provider_name(),
            lease_until=lease_end(now),
            attempts=1,
        )
        digest.cursor = ids[-1]
        digest.save(update_fields=["cursor"])
        return _claimed(batch)
