"""Draining a digest: claim and send until nothing is claimable, then say when to wake again."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from newsletter.models import Batch, BatchState, Digest, DigestState
from newsletter.services.digest_sending.claim import batch_claim
from newsletter.services.digest_sending.finish import digest_finish_check
from newsletter.services.digest_sending.reconcile import digest_reconcile
from newsletter.services.digest_sending.send import batch_send


@dataclass(frozen=True)
class DrainResult:
    batches: int
    done: bool
    wake_in: float | None


def digest_drain(*, digest_id: int) -> DrainResult:
    """Claim and send batches until nothing is claimable, then reconcile and check for done;
    says when a waiting retry becomes due (the task re-wakes itself then)."""
    batches = 0
    digest = None
    while True:
        batch = batch_claim(digest_id=digest_id)
        if batch is None:
            digest_reconcile(digest_id=digest_id)
            batch = batch_claim(digest_id=digest_id)
            if batch is None:
                break
        if digest is None:
            # Read once per drain: what a batch's mail needs of it (sender, names) is fixed.
            digest = Digest.objects.select_related("newsletter").get(pk=digest_id)
        batch_send(batch_id=batch.pk, token=batch.attempts, claimed=batch, digest=digest)
        batches += 1
    done = digest_finish_check(digest_id=digest_id)
    wake_in = None
    if not done and Digest.objects.filter(pk=digest_id, state=DigestState.SENDING).exists():
        # Wake again when a waiting batch is due or another worker's lease would end: if that
        # worker died, its batch is free then, and nobody else may be awake to take it.
        waiting = (
            Batch.objects.filter(
                digest_id=digest_id, state__in=[BatchState.RETRY, BatchState.UNCERTAIN]
            )
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        leased = (
            Batch.objects.filter(digest_id=digest_id, state=BatchState.SENDING)
            .order_by("lease_until")
            .values_list("lease_until", flat=True)
            .first()
        )
        due = [at for at in (waiting, leased) if at is not None]
        if due:
            wake_in = max(0.5, (min(due) - timezone.now()).total_seconds())
    return DrainResult(batches=batches, done=done, wake_in=wake_in)
