"""Claims that fence: every write for a batch is a compare-and-set on its attempt number.

A lease alone does not stop a worker that was paused (GC, frozen VM, suspended container) and
wakes after another worker re-claimed its batch: it still believes it owns the batch. Each
claim therefore takes the batch's attempt number as a fencing token, every later write is
``UPDATE … WHERE id = %s AND attempts = %s``, and a write that matches no row means the claim
was lost: it is logged as an error naming both tokens, and nothing more is sent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from newsletter.models import Batch, BatchState
from newsletter.services.digest_sending.lease import lease_end

logger = logging.getLogger(__name__)


def claim_lost(*, batch: Batch, token: int, action: str) -> None:
    """Log loudly that a write for `batch` under `token` matched nothing: another attempt (or the
    reconciler) owns the batch now."""
    current = Batch.objects.filter(pk=batch.pk).values_list("attempts", "state").first()
    now_token, now_state = current if current else (None, "gone")
    logger.error(
        "lost claim: batch %s of digest %s, our token %s, current token %s (%s); %s not done",
        batch.pk,
        batch.digest_id,
        token,
        now_token,
        now_state,
        action,
        extra={
            "batch_id": batch.pk,
            "digest_id": batch.digest_id,
            "token": token,
            "current_token": now_token,
        },
    )


def batch_fenced_update(
    *, batch: Batch, token: int, action: str, states: tuple[str, ...], **fields
) -> bool:
    """Write `fields` only while the batch is still at attempt `token` and in one of `states`;
    False (and the lost-claim error) when it is not."""
    updated = Batch.objects.filter(pk=batch.pk, attempts=token, state__in=states).update(**fields)
    if not updated:
        claim_lost(batch=batch, token=token, action=action)
    return bool(updated)


def batch_call_start(
    *, batch: Batch, token: int, sent_through: int | None = None, sent: int = 0
) -> bool:
    """The final check before a provider call, in one statement: the claim is still ours with
    more than the call deadline plus the margin left. It records the call's start (from then
    on the batch may have reached the provider) and renews the lease; on per-recipient paths
    it also records the previous message as sent. False means: do not call."""
    now = timezone.now()
    needed = now + timedelta(
        seconds=settings.NEWSLETTER_CALL_DEADLINE_SECONDS + settings.NEWSLETTER_LEASE_MARGIN_SECONDS
    )
    fields: dict = {"call_started_at": now, "lease_until": lease_end(now)}
    if sent_through is not None:
        fields.update(sent_through=sent_through, sent_count=sent)
    return bool(
        Batch.objects.filter(
            pk=batch.pk, attempts=token, state=BatchState.SENDING, lease_until__gt=needed
        ).update(**fields)
    )


def batch_progress(*, batch: Batch, token: int, sent_through: int, sent: int) -> bool:
    """Record a per-recipient send (SMTP) so that a later attempt resumes after it; with no
    message in flight any more, a lease that ends now frees the batch at once.

    Written whenever the token still matches, even once the reconciler has called the batch
    uncertain (the message did go); False (and the lost-claim error) once it was re-claimed."""
    rows = Batch.objects.filter(
        pk=batch.pk, attempts=token, state__in=[BatchState.SENDING, BatchState.UNCERTAIN]
    ).update(sent_through=sent_through, sent_count=sent, call_started_at=None)
    if not rows:
        claim_lost(batch=batch, token=token, action=f"progress through delivery {sent_through}")
    return bool(rows)
