"""Sending one claimed batch: one provider call (batch providers) or one message per
recipient (SMTP and the like), each outcome recorded.

The worker holds the batch under the attempt number it claimed (its fencing token) and keeps
the lease renewed while it works; right before every call it checks, in one statement, that
the claim is still its own with enough lease for the whole call (fence.batch_call_start), and
gives the batch up otherwise. The call runs under a total deadline shorter than that margin.
"""

from __future__ import annotations

import functools
import logging
import smtplib
import time
from dataclasses import dataclass

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.mail import get_connection

from newsletter.deadline import CallDeadlineExceeded, call_deadline
from newsletter.emails.digest import Recipient, digest_message_single
from newsletter.mailgun_backend import CallGateClosed
from newsletter.models import Batch, BatchState, Digest
from newsletter.ratelimit_send import send_slot_wait
from newsletter.services.consent import subscription_suppress
from newsletter.services.digest_sending.fence import (
    batch_call_start,
    batch_progress,
    claim_lost,
)
from newsletter.services.digest_sending.finish import delivery_mark_failed
from newsletter.services.digest_sending.lease import lease_kept
from newsletter.services.digest_sending.provider import (
    Refused,
    Transient,
    Uncertain,
    batch_call_send,
    batch_message_build,
    batch_mode,
    provider_name,
    refused_addresses,
)
from newsletter.services.digest_sending.recheck import batch_recheck
from newsletter.services.digest_sending.record import (
    batch_record_failed,
    batch_record_retry,
    batch_record_sent,
    batch_record_uncertain,
    batch_release,
)

logger = logging.getLogger(__name__)

LOST = "lost"


@dataclass(frozen=True)
class SendOutcome:
    state: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0


def _suppress_invalid(recipients: list[Recipient], note: str) -> None:
    for recipient in recipients:
        subscription_suppress(
            subscription_id=recipient.subscription_id,
            reason="invalid_address",
            channel="webhook",
            note=note[:200],
        )


def _wait_for_rate(batch: Batch, messages: int) -> None:
    # The heartbeat keeps the lease ahead while the batch waits for its slot.
    wait = send_slot_wait(provider=provider_name(), messages=messages)
    if wait > 0:
        if wait > 1:
            logger.info(
                "batch %s of digest %s waits %.1fs for the send rate",
                batch.pk,
                batch.digest_id,
                wait,
                extra={"batch_id": batch.pk, "digest_id": batch.digest_id},
            )
        time.sleep(wait)


def _give_up(*, batch: Batch, token: int) -> SendOutcome:
    """The final check failed: free the batch at once if it is still ours (too little lease
    left, the call never started), otherwise say loudly that the claim was lost."""
    if batch_release(batch=batch, token=token):
        logger.warning(
            "batch %s of digest %s given up before its call: lease too short",
            batch.pk,
            batch.digest_id,
            extra={"batch_id": batch.pk, "digest_id": batch.digest_id},
        )
        return SendOutcome(state=BatchState.RETRY)
    claim_lost(batch=batch, token=token, action="provider call")
    return SendOutcome(state=LOST)


def batch_send(
    *, batch_id: int, token: int, claimed: Batch | None = None, digest: Digest | None = None
) -> SendOutcome:
    """Send one batch claimed under attempt `token` as one provider call and record it: sent,
    retry (transient), uncertain (no answer after the request left) or, per recipient,
    refused; nothing at all once the claim is no longer this attempt's.

    A drain passes the batch as its claim returned it and the digest it loaded once (two
    reads fewer per batch); whether the claim is still ours is decided by the final check
    before the call and the fenced writes, never by these copies."""
    batch = claimed if claimed is not None else Batch.objects.filter(pk=batch_id).first()
    if batch is None or batch.state != BatchState.SENDING or batch.attempts != token:
        return SendOutcome(state="not_claimed")
    if digest is None or digest.pk != batch.digest_id:
        digest = Digest.objects.select_related("newsletter").get(pk=batch.digest_id)
    with lease_kept(batch_id=batch.pk, token=token):
        if batch_mode():
            return _send_as_batch(digest=digest, batch=batch, token=token)
        return _send_one_by_one(digest=digest, batch=batch, token=token)


def _send_as_batch(*, digest: Digest, batch: Batch, token: int) -> SendOutcome:
    failed = 0
    for _round in range(3):
        recipients = batch_recheck(batch=batch)
        if not recipients:
            batch_record_sent(batch=batch, token=token, sent=0, message_ids=[])
            return SendOutcome(state=BatchState.SENT, failed=failed)
        message = batch_message_build(digest=digest, batch=batch, recipients=recipients)
        _wait_for_rate(batch, len(recipients))
        # The final check runs inside the backend once the payload is built, immediately
        # before the request; the request has the total deadline.
        message.call_gate = functools.partial(batch_call_start, batch=batch, token=token)
        message.call_deadline = settings.NEWSLETTER_CALL_DEADLINE_SECONDS
        try:
            message_ids = batch_call_send(message=message)
        except CallGateClosed:
            return _give_up(batch=batch, token=token)
        except Transient as exc:
            status = getattr(exc.__cause__, "status_code", None) or 0
            batch_record_retry(batch=batch, token=token, error=str(exc), at_once=status >= 500)
            return SendOutcome(state=BatchState.RETRY)
        except Uncertain as exc:
            batch_record_uncertain(batch=batch, token=token, error=str(exc))
            return SendOutcome(state=BatchState.UNCERTAIN)
        except Refused as exc:
            refused = refused_addresses(str(exc), recipients)
            if not refused:
                batch_record_failed(batch=batch, token=token, error=f"refused: {exc}")
                return SendOutcome(state=BatchState.FAILED)
            # The provider named the addresses it will never take: record them and send the
            # rest of the same range again at once.
            delivery_mark_failed(
                delivery_ids=[r.delivery_id for r in refused], reason="refused: invalid address"
            )
            _suppress_invalid(refused, note=str(exc))
            failed += len(refused)
            continue
        except (AnymailError, OSError, ValueError) as exc:
            logger.exception("digest batch %s: unexpected send error", batch.pk)
            batch_record_retry(batch=batch, token=token, error=f"{type(exc).__name__}: {exc}")
            return SendOutcome(state=BatchState.RETRY)
        batch_record_sent(batch=batch, token=token, sent=len(recipients), message_ids=message_ids)
        return SendOutcome(state=BatchState.SENT, sent=len(recipients), failed=failed)
    batch_record_retry(batch=batch, token=token, error="refusals kept coming")
    return SendOutcome(state=BatchState.RETRY, failed=failed)


def _smtp_permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _msg in exc.recipients.values())
    return False


def _send_one_by_one(*, digest: Digest, batch: Batch, token: int) -> SendOutcome:
    """One message per recipient over one connection. Each message is preceded by the final
    check, which also records the one before it (batch.sent_through), so an attempt that
    loses its claim mid-batch is resumed after what it sent, never from the start."""
    # What an earlier attempt of this batch already handed over (recheck starts after it).
    sent = batch.sent_count if batch.sent_through else 0
    recipients = batch_recheck(batch=batch)
    if not recipients:
        batch_record_sent(batch=batch, token=token, sent=sent, message_ids=[])
        return SendOutcome(state=BatchState.SENT, sent=sent)
    _wait_for_rate(batch, len(recipients))
    conn = get_connection(fail_silently=False)
    failed = 0
    try:
        conn.open()
    except OSError as exc:
        batch_record_retry(batch=batch, token=token, error=f"connect: {exc}")
        return SendOutcome(state=BatchState.RETRY)
    done_through: int | None = batch.sent_through
    try:
        for recipient in recipients:
            message = digest_message_single(
                digest=digest, batch_id=batch.pk, language=batch.language, recipient=recipient
            )
            if not batch_call_start(batch=batch, token=token, sent_through=done_through, sent=sent):
                if done_through is not None and not batch_progress(
                    batch=batch, token=token, sent_through=done_through, sent=sent
                ):
                    return SendOutcome(state=LOST, sent=sent, failed=failed)
                outcome = _give_up(batch=batch, token=token)
                return SendOutcome(state=outcome.state, sent=sent, failed=failed)
            try:
                with call_deadline(settings.NEWSLETTER_CALL_DEADLINE_SECONDS):
                    conn.send_messages([message])
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                if _smtp_permanent(exc):
                    delivery_mark_failed(
                        delivery_ids=[recipient.delivery_id], reason=f"refused: {exc}"
                    )
                    _suppress_invalid([recipient], note=str(exc))
                    failed += 1
                    done_through = recipient.delivery_id
                    continue
                error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, CallDeadlineExceeded):
                    # This message may have gone: the rest waits as uncertain, like a batch.
                    if done_through is not None:
                        batch_progress(
                            batch=batch, token=token, sent_through=done_through, sent=sent
                        )
                        batch.sent_through = done_through
                    batch_record_uncertain(batch=batch, token=token, error=error)
                    return SendOutcome(state=BatchState.UNCERTAIN, sent=sent, failed=failed)
                # The server refused this message: what went before is recorded, the rest of
                # the range is retried after it.
                if done_through is not None and not batch_progress(
                    batch=batch, token=token, sent_through=done_through, sent=sent
                ):
                    return SendOutcome(state=LOST, sent=sent, failed=failed)
                batch_record_retry(batch=batch, token=token, error=error)
                return SendOutcome(state=BatchState.RETRY, sent=sent, failed=failed)
            sent += 1
            done_through = recipient.delivery_id
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - the mail is out; a failing QUIT changes nothing
            logger.warning("closing the mail connection failed", exc_info=True)
    batch_record_sent(batch=batch, token=token, sent=sent, message_ids=[])
    return SendOutcome(state=BatchState.SENT, sent=sent, failed=failed)
