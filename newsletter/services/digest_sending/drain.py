"""Draining a digest: claim and send until nothing is claimable, then say when to wake again."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from newsletter.models import Batch, BatchState, Digest, DigestState
from newsletter.services.digest_sending.claim import batch_claim
from newsletter.services.digest_sending.reconcile import digest_reconcile
from newsletter.services.digest_sending.send import batch_send
from newsletter.services.digests import digest_finish_check


@dataclass(frozen=True)
class DrainResult:
    batches: int
    done: bool
    wake_in: float | None


def digest_drain(*, digest_id: int) -> DrainResult:
    """Claim and send batches until nothing is claimable, then reconcile and check for done;
    says when a waiting retry becomes due (the task re-wakes itself then)."""
    batches = 0
    while True:
        batch = batch_claim(digest_id=digest_id)
        if batch is None:
            digest_reconcile(digest_id=digest_id)
            batch = batch_claim(digest_id=digest_id)
            if batch is None:
                break
        batch_send(batch_id=batch.pk)
        batches += 1
    done = digest_finish_check(digest_id=digest_id)
    wake_in = None
    if not done and Digest.objects.filter(pk=digest_id, state=DigestState.SENDING).exists():
        pending = (
            Batch.objects.filter(
                digest_id=digest_id, state__in=[BatchState.RETRY, BatchState.UNCERTAIN]
            )
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if pending is not None:
            wake_in = max(0.5, (pending - timezone.now()).total_seconds())
    return DrainResult(batches=batches, done=done, wake_in=wake_in)
