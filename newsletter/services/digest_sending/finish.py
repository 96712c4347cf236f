"""The end of a mailing's pipeline: per-recipient refusals and the check that calls it done.

The lowest module of the delivery package: drain and send record through it, and the
lifecycle services (newsletter.services.digests) read it, so imports run one way only."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, DeliveryState, Digest, DigestState

ACTIVE_BATCH_STATES = (BatchState.SENDING, BatchState.RETRY, BatchState.UNCERTAIN)


def digest_finish_check(*, digest_id: int) -> bool:
    """Mark the digest done once its cursor passed the last delivery and no batch is in flight.

    The digest row is locked first, as every claim does: the batch check below then runs in a
    new statement that sees any batch a concurrent claim created (a single UPDATE … NOT EXISTS
    would re-check only the digest row after waiting, and could finish a digest whose last
    batch is still being sent)."""
    with transaction.atomic():
        digest = (
            Digest.objects.select_for_update()
            .filter(pk=digest_id, state=DigestState.SENDING)
            .only("pk", "cursor", "last_delivery_id")
            .first()
        )
        if digest is None or digest.cursor < (digest.last_delivery_id or 0):
            return False
        if Batch.objects.filter(digest_id=digest_id, state__in=ACTIVE_BATCH_STATES).exists():
            return False
        Digest.objects.filter(pk=digest_id).update(
            state=DigestState.DONE, finished_at=timezone.now()
        )
    return True


def delivery_mark_failed(*, delivery_ids: list[int], reason: str) -> int:
    """Record provider refusals (the rare per-recipient write)."""
    if not delivery_ids:
        return 0
    return Delivery.objects.filter(pk__in=delivery_ids, state__isnull=True).update(
        state=DeliveryState.FAILED, reason=reason[:200]
    )
