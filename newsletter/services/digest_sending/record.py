"""Recording a batch's outcome on its own row: sent, retry (with backoff), failed, uncertain,
or split where a per-recipient send broke mid-batch."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, DeliveryState


def _record_sent(*, batch: Batch, sent: int, message_ids: list[str]) -> None:
    Batch.objects.filter(pk=batch.pk, state__in=[BatchState.SENDING, BatchState.UNCERTAIN]).update(
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


def _record_retry(*, batch: Batch, error: str, at_once: bool = False) -> None:
    if batch.attempts >= settings.NEWSLETTER_MAX_ATTEMPTS:
        _record_failed(batch=batch, error=f"gave up after {batch.attempts} attempts: {error}")
        return
    # A batch's first 5xx is due again at once (the next claim takes it): an isolated server
    # error of a flaky provider then costs one more call, not a batch parked for seconds at
    # the end of the digest (bench/digest.py --faults); repeated failures back off.
    delay = 0.0 if at_once and batch.attempts <= 1 else _backoff(batch.attempts)
    Batch.objects.filter(pk=batch.pk, state=BatchState.SENDING).update(
        state=BatchState.RETRY,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        lease_until=None,
        error=error[:1000],
    )


def _record_failed(*, batch: Batch, error: str) -> None:
    with transaction.atomic():
        updated = Batch.objects.filter(
            pk=batch.pk, state__in=[BatchState.SENDING, BatchState.UNCERTAIN]
        ).update(
            state=BatchState.FAILED, lease_until=None, next_attempt_at=None, error=error[:1000]
        )
        if updated:
            Delivery.objects.filter(
                digest_id=batch.digest_id,
                pk__gte=batch.first_delivery_id,
                pk__lte=batch.last_delivery_id,
                state__isnull=True,
            ).update(state=DeliveryState.FAILED, reason=error[:200])


def _record_uncertain(*, batch: Batch, error: str) -> None:
    Batch.objects.filter(pk=batch.pk, state=BatchState.SENDING).update(
        state=BatchState.UNCERTAIN,
        next_attempt_at=timezone.now()
        + timedelta(seconds=settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS),
        lease_until=None,
        error=error[:1000],
    )


def _split_at(*, batch: Batch, next_delivery_id: int, sent: int, error: str) -> None:
    """A per-recipient path broke mid-batch: what went out is recorded sent, the rest becomes a
    new retry batch, so nobody who already got the mail gets it again."""
    with transaction.atomic():
        old_last = batch.last_delivery_id
        rest = Delivery.objects.filter(
            digest_id=batch.digest_id, pk__gte=next_delivery_id, pk__lte=old_last
        ).count()
        Batch.objects.filter(pk=batch.pk, state=BatchState.SENDING).update(
            last_delivery_id=next_delivery_id - 1,
            size=batch.size - rest,
            state=BatchState.SENT,
            sent_count=sent,
            sent_at=timezone.now(),
            lease_until=None,
        )
        Batch.objects.create(
            digest_id=batch.digest_id,
            first_delivery_id=next_delivery_id,
            last_delivery_id=old_last,
            size=rest,
            language=batch.language,
            state=BatchState.RETRY,
            attempts=batch.attempts,
            next_attempt_at=timezone.now() + timedelta(seconds=_backoff(batch.attempts)),
            error=error[:1000],
        )
