"""Digest lifecycle: create once per slot, start (fix the audience), pause/resume/cancel.

The database is the source of truth; Celery messages only wake workers up. Every service here
is safe to run twice: creation is guarded by the digest_once_per_slot constraint, the start by
the digest row lock and its state, state changes by conditional updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from newsletter.drafts import digest_draft
from newsletter.enqueue import DIGEST_DRAIN, DIGEST_FAN_OUT, task_enqueue_on_commit
from newsletter.models import (
    Batch,
    BatchState,
    Digest,
    DigestState,
    Frequency,
    MailingKind,
    Newsletter,
    Subscription,
)
from newsletter.schedule import newsletter_due_slots, newsletter_frequencies
from newsletter.selectors.mailings import mailing_audience_snapshot
from newsletter.services.digest_sending import digest_finish_check, digest_reconcile

# A mailing can be cancelled until it is final.
CANCELLABLE = (
    DigestState.SCHEDULED,
    DigestState.FANNING_OUT,
    DigestState.SENDING,
    DigestState.PAUSED,
)


@dataclass(frozen=True)
class DigestCreated:
    digest: Digest
    created: bool


def _enqueue_fan_out(digest_id: int) -> None:
    task_enqueue_on_commit(DIGEST_FAN_OUT, digest_id)


def mailing_fan_out_enqueue(digest_id: int) -> None:
    """Fan the mailing out once the current transaction commits (a campaign's confirmation)."""
    _enqueue_fan_out(digest_id)


def _enqueue_drains(digest_id: int, count: int | None = None) -> None:
    for _i in range(max(1, settings.NEWSLETTER_DRAIN_TASKS if count is None else count)):
        task_enqueue_on_commit(DIGEST_DRAIN, digest_id)


def digest_create(*, newsletter: Newsletter, frequency: str, slot: datetime) -> DigestCreated:
    """Create the digest of one slot once (DB constraint); without new articles it is recorded
    as skipped, otherwise its fan-out is enqueued after commit."""
    existing = Digest.objects.filter(
        newsletter=newsletter, kind=MailingKind.DIGEST, frequency=frequency, slot=slot
    ).first()
    if existing is not None:
        return DigestCreated(existing, False)
    digest = digest_draft(newsletter=newsletter, frequency=frequency, slot=slot)
    articles = digest.article_ids
    digest.state = DigestState.FANNING_OUT if articles else DigestState.SKIPPED
    digest.finished_at = timezone.now() if not articles else None
    try:
        with transaction.atomic():
            digest.save(force_insert=True)
            if articles:
                _enqueue_fan_out(digest.pk)
    except IntegrityError:
        # A second beat (or a repeated tick) got there first: the slot already has its digest.
        return DigestCreated(
            Digest.objects.get(
                newsletter=newsletter, kind=MailingKind.DIGEST, frequency=frequency, slot=slot
            ),
            False,
        )
    return DigestCreated(digest, True)


def digest_tick(*, now: datetime | None = None) -> list[DigestCreated]:
    """Create the due digest of every active newsletter's latest slot (once per slot)."""
    now = now or timezone.now()
    results = []
    for newsletter in Newsletter.objects.filter(is_active=True, starts_at__lte=now):
        for slot in newsletter_due_slots(newsletter, now):
            results.append(
                digest_create(newsletter=newsletter, frequency=slot.frequency, slot=slot.at)
            )
    return results


def digest_start_now(
    *, newsletter: Newsletter, frequency: str | None = None, now: datetime | None = None
) -> DigestCreated:
    """Start a digest for the current minute through the scheduler's own path (`--now`)."""
    offered = newsletter_frequencies(newsletter)
    frequency = frequency or (offered[0] if offered else Frequency.DAILY)
    if frequency not in offered:
        raise ValidationError(
            _("Dieser Newsletter bietet die Häufigkeit „%(frequency)s“ nicht an."),
            code="frequency_not_offered",
            params={"frequency": frequency},
        )
    slot = (now or timezone.now()).replace(second=0, microsecond=0)
    return digest_create(newsletter=newsletter, frequency=frequency, slot=slot)


def digest_fan_out(*, digest_id: int) -> int:
    """Start sending: fix the mailing's audience (selectors.mailings.mailing_audience_snapshot:
    the highest subscription id and the time now), count it for the progress page, move the
    mailing to sending and enqueue its drains; returns the number of recipients counted.

    Nothing is written per reader here: each claim writes the delivery rows of the readers it
    takes (digest_sending.claim). Repeatable: a second call finds the mailing sending."""
    with transaction.atomic():
        digest = (
            Digest.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("newsletter", "campaign")
            .filter(pk=digest_id, state=DigestState.FANNING_OUT)
            .first()
        )
        if digest is None:
            # Already started, cancelled, or another worker is starting it right now.
            return 0
        digest.fanned_out_at = timezone.now()
        digest.audience_last_id = Subscription.objects.aggregate(last=Max("id"))["last"] or 0
        digest.audience_cursor = 0
        count = mailing_audience_snapshot(digest).count()
        digest.recipients = count
        if count:
            digest.state = DigestState.SENDING
            _enqueue_drains(digest.pk)
        else:
            digest.state = DigestState.DONE
            digest.finished_at = timezone.now()
        digest.save(
            update_fields=[
                "recipients",
                "audience_last_id",
                "audience_cursor",
                "fanned_out_at",
                "state",
                "finished_at",
            ]
        )
    return count


def _transition(*, digest_id: int, from_states: tuple, to_state: str) -> bool:
    return Digest.objects.filter(pk=digest_id, state__in=from_states).update(state=to_state) == 1


def digest_pause(*, digest_id: int) -> bool:
    """Pause a sending digest: drains stop claiming; batches already sent stay sent."""
    return _transition(
        digest_id=digest_id, from_states=(DigestState.SENDING,), to_state=DigestState.PAUSED
    )


def digest_resume(*, digest_id: int) -> bool:
    """Resume a paused digest and wake its drains."""
    with transaction.atomic():
        resumed = _transition(
            digest_id=digest_id, from_states=(DigestState.PAUSED,), to_state=DigestState.SENDING
        )
        if resumed:
            _enqueue_drains(digest_id)
    return resumed


def digest_cancel(*, digest_id: int) -> bool:
    """Cancel a digest for good: nothing more is claimed; waiting retries end as failed."""
    with transaction.atomic():
        cancelled = _transition(
            digest_id=digest_id,
            from_states=CANCELLABLE,
            to_state=DigestState.CANCELLED,
        )
        if cancelled:
            Digest.objects.filter(pk=digest_id).update(finished_at=timezone.now())
            Batch.objects.filter(digest_id=digest_id, state=BatchState.RETRY).update(
                state=BatchState.FAILED, error="cancelled", next_attempt_at=None
            )
    return cancelled


def mailing_start_due(*, now: datetime | None = None) -> list[int]:
    """Start every scheduled mailing whose time has come (a conditional update per mailing:
    two reconcile ticks start each one once) and enqueue its fan-out."""
    now = now or timezone.now()
    started = []
    for digest_id in Digest.objects.filter(state=DigestState.SCHEDULED, slot__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            if _transition(
                digest_id=digest_id,
                from_states=(DigestState.SCHEDULED,),
                to_state=DigestState.FANNING_OUT,
            ):
                _enqueue_fan_out(digest_id)
                started.append(digest_id)
    return started


def digest_kick_stalled(*, now: datetime | None = None) -> list[int]:
    """Periodic safety net: re-enqueue lost fan-outs, reconcile, and wake drains of every
    digest with claimable work (lost messages, killed workers, a worker that just started):
    all of them when nobody holds a live lease, one more otherwise."""
    now = now or timezone.now()
    kicked = mailing_start_due(now=now)
    for digest_id in Digest.objects.filter(
        state=DigestState.FANNING_OUT, created_at__lte=now - timedelta(seconds=5)
    ).values_list("pk", flat=True):
        _enqueue_fan_out(digest_id)
        kicked.append(digest_id)
    for digest in Digest.objects.filter(state=DigestState.SENDING):
        digest_reconcile(digest_id=digest.pk, now=now)
        if digest_finish_check(digest_id=digest.pk):
            continue
        claimable = (
            digest.audience_open()
            or Batch.objects.filter(
                digest_id=digest.pk, state=BatchState.RETRY, next_attempt_at__lte=now
            ).exists()
        )
        if not claimable:
            continue
        live = Batch.objects.filter(
            digest_id=digest.pk, state=BatchState.SENDING, lease_until__gt=now
        ).exists()
        # Drains already running keep going by themselves; the one extra message is for a
        # worker that has none (started after the others took theirs, or whose drain was
        # lost with a killed worker until the broker's visibility timeout).
        _enqueue_drains(digest.pk, count=1 if live else None)
        kicked.append(digest.pk)
    return kicked
