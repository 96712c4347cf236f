"""The end of a mailing's pipeline: per-recipient refusals and the check that calls it done.

The lowest module of the delivery package: drain and send record through it, and the
lifecycle services (newsletter.services.digests) read it, so imports run one way only."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, DeliveryState, Digest, DigestState

ACTIVE_BATCH_STATES = (BatchState.SENDING, BatchState.RETRY, BatchState.UNCERTAIN)


def digest_finish_check(*, digest_id: int) -> bool:
    """Mark the digest done once every reader of its audience is in a batch and no batch is
    in flight; its recipients become the readers actually claimed (readers who left before
    their turn were never written down).

    The digest row is locked first, as every claim does: the batch check below then runs in a
    new statement that sees any batch a concurrent claim created (a single UPDATE … NOT EXISTS
    would re-check only the digest row after waiting, and could finish a digest whose last
    batch is still being sent)."""
    with transaction.atomic():
        digest = (
            Digest.objects.select_for_update()
            .filter(pk=digest_id, state=DigestState.SENDING)
            .only("pk", "audience_cursor", "audience_last_id")
            .first()
        )
        if digest is None or digest.audience_open():
            return False
        if Batch.objects.filter(digest_id=digest_id, state__in=ACTIVE_BATCH_STATES).exists():
            return False
        claimed = Batch.objects.filter(digest_id=digest_id).aggregate(n=Sum("size"))["n"]
        Digest.objects.filter(pk=digest_id).update(
            state=DigestState.DONE, finished_at=timezone.now(), recipients=claimed or 0
        )
    return True


def delivery_mark_failed(*, delivery_ids: list[int], reason: str) -> int:
    """Record provider refusals (the rare per-recipient write)."""
    if not delivery_ids:
        return 0
    return Delivery.objects.filter(pk__in=delivery_ids, state__isnull=True).update(
        state=DeliveryState.FAILED, reason=reason[:200]
    )
