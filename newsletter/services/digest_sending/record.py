"""Recording a batch's outcome on its own row: sent, retry (with backoff), failed or uncertain.

Every write is fenced by the attempt number the worker claimed (see fence.py): a worker that
lost its claim changes nothing and says so in the log.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, DeliveryState
from newsletter.services.digest_sending.fence import batch_fenced_update

_HELD = (BatchState.SENDING,)
# A call that returned after the reconciler had called its batch uncertain (same attempt,
# nobody re-claimed it) did reach the provider: its answer still counts.
_HELD_OR_UNCERTAIN = (BatchState.SENDING, BatchState.UNCERTAIN)


def batch_record_sent(*, batch: Batch, token: int, sent: int, message_ids: list[str]) -> bool:
    """The provider took the batch (or nobody was left to send to): sent, lease freed."""
    return batch_fenced_update(
        batch=batch,
        token=token,
        action="record sent",
        states=_HELD_OR_UNCERTAIN,
        state=BatchState.SENT,
        sent_count=sent,
        sent_at=timezone.now(),
        lease_until=None,
        next_attempt_at=None,
        provider_message_ids=message_ids[:20],
        error="",
    )


def _backoff(attempts: int) -> float:
    base = settings.NEWSLETTER_RETRY_BASE_SECONDS
    return min(base * (2 ** max(0, attempts - 1)), settings.NEWSLETTER_RETRY_MAX_SECONDS)


def batch_record_retry(*, batch: Batch, token: int, error: str, at_once: bool = False) -> bool:
    """A transient failure: due again after a backoff, or failed once attempts run out."""
    if token >= settings.NEWSLETTER_MAX_ATTEMPTS:
        return batch_record_failed(
            batch=batch, token=token, error=f"gave up after {token} attempts: {error}"
        )
    # A batch's first 5xx is due again at once (the next claim takes it): an isolated server
    # error of a flaky provider then costs one more call, not a batch parked for seconds at
    # the end of the digest (bench/digest.py --faults); repeated failures back off.
    delay = 0.0 if at_once and token <= 1 else _backoff(token)
    return batch_fenced_update(
        batch=batch,
        token=token,
        action="record retry",
        states=_HELD,
        state=BatchState.RETRY,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        lease_until=None,
        error=error[:1000],
    )


def batch_record_failed(*, batch: Batch, token: int, error: str) -> bool:
    """Given up for good: the batch and its unsent deliveries are failed, in one transaction."""
    with transaction.atomic():
        updated = batch_fenced_update(
            batch=batch,
            token=token,
            action="record failed",
            states=_HELD_OR_UNCERTAIN,
            state=BatchState.FAILED,
            lease_until=None,
            next_attempt_at=None,
            error=error[:1000],
        )
        if updated:
            Delivery.objects.filter(
                digest_id=batch.digest_id,
                pk__gt=max(batch.first_delivery_id - 1, batch.sent_through or 0),
                pk__lte=batch.last_delivery_id,
                state__isnull=True,
            ).update(state=DeliveryState.FAILED, reason=error[:200])
    return updated


def batch_record_uncertain(*, batch: Batch, token: int, error: str) -> bool:
    """The request may have reached the provider: reconcile decides after a grace period."""
    return batch_fenced_update(
        batch=batch,
        token=token,
        action="record uncertain",
        states=_HELD,
        state=BatchState.UNCERTAIN,
        next_attempt_at=timezone.now()
        + timedelta(seconds=settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS),
        lease_until=None,
        error=error[:1000],
    )


def batch_release(*, batch: Batch, token: int) -> bool:
    """Give a batch up before its call started (the final check found too little lease left):
    it is due again at once, for whoever claims it next."""
    return (
        Batch.objects.filter(
            pk=batch.pk, attempts=token, state=BatchState.SENDING, call_started_at__isnull=True
        ).update(
            state=BatchState.RETRY,
            next_attempt_at=timezone.now(),
            lease_until=None,
            error="given up before the call: lease too short",
        )
        == 1
    )
