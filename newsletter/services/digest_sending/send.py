"""Sending one claimed batch: one provider call (batch providers) or one message per
recipient (SMTP and the like), each outcome recorded."""

from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta

from anymail.exceptions import AnymailError
from django.core.mail import get_connection
from django.utils import timezone

from newsletter.emails.digest import Recipient, digest_message_single
from newsletter.models import Batch, BatchState, Digest
from newsletter.ratelimit_send import send_slot_wait
from newsletter.services.digest_sending.claim import _lease
from newsletter.services.digest_sending.provider import (
    Refused,
    Transient,
    Uncertain,
    _send_batch_call,
    batch_mode,
    provider_name,
    refused_addresses,
)
from newsletter.services.digest_sending.recheck import batch_recheck
from newsletter.services.digest_sending.record import (
    _record_failed,
    _record_retry,
    _record_sent,
    _record_uncertain,
    _split_at,
)
from newsletter.services.digests import delivery_mark_failed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendOutcome:
    state: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0


def _suppress_invalid(recipients: list[Recipient], note: str) -> None:
    from newsletter.services.consent import subscription_suppress

    for recipient in recipients:
        subscription_suppress(
            subscription_id=recipient.subscription_id,
            reason="invalid_address",
            channel="webhook",
            note=note[:200],
        )


def _wait_for_rate(batch: Batch, messages: int) -> None:
    wait = send_slot_wait(provider=provider_name(), messages=messages)
    if wait > 0:
        if wait > 1:
            # Keep the lease ahead of the wait so the reconciler does not call a queued
            # batch uncertain.
            Batch.objects.filter(pk=batch.pk, state=BatchState.SENDING).update(
                lease_until=_lease(timezone.now() + timedelta(seconds=wait))
            )
        time.sleep(wait)


def batch_send(*, batch_id: int) -> SendOutcome:
    """Send one claimed batch as one provider call and record it: sent, retry (transient),
    uncertain (no answer after the request left) or, per recipient, refused."""
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None or batch.state != BatchState.SENDING:
        return SendOutcome(state="not_claimed")
    digest = Digest.objects.select_related("newsletter").get(pk=batch.digest_id)
    if batch_mode():
        return _send_as_batch(digest=digest, batch=batch)
    return _send_one_by_one(digest=digest, batch=batch)


def _send_as_batch(*, digest: Digest, batch: Batch) -> SendOutcome:
    failed = 0
    for _round in range(3):
        recipients = batch_recheck(batch=batch)
        if not recipients:
            _record_sent(batch=batch, sent=0, message_ids=[])
            return SendOutcome(state=BatchState.SENT, failed=failed)
        try:
            _wait_for_rate(batch, len(recipients))
            message_ids = _send_batch_call(digest=digest, batch=batch, recipients=recipients)
        except Transient as exc:
            status = getattr(exc.__cause__, "status_code", None) or 0
            _record_retry(batch=batch, error=str(exc), at_once=status >= 500)
            return SendOutcome(state=BatchState.RETRY)
        except Uncertain as exc:
            _record_uncertain(batch=batch, error=str(exc))
            return SendOutcome(state=BatchState.UNCERTAIN)
        except Refused as exc:
            refused = refused_addresses(str(exc), recipients)
            if not refused:
                _record_failed(batch=batch, error=f"refused: {exc}")
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
            _record_retry(batch=batch, error=f"{type(exc).__name__}: {exc}")
            return SendOutcome(state=BatchState.RETRY)
        _record_sent(batch=batch, sent=len(recipients), message_ids=message_ids)
        return SendOutcome(state=BatchState.SENT, sent=len(recipients), failed=failed)
    _record_retry(batch=batch, error="refusals kept coming")
    return SendOutcome(state=BatchState.RETRY, failed=failed)


def _smtp_permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _msg in exc.recipients.values())
    return False


def _send_one_by_one(*, digest: Digest, batch: Batch) -> SendOutcome:
    recipients = batch_recheck(batch=batch)
    if not recipients:
        _record_sent(batch=batch, sent=0, message_ids=[])
        return SendOutcome(state=BatchState.SENT)
    _wait_for_rate(batch, len(recipients))
    conn = get_connection(fail_silently=False)
    sent = failed = 0
    try:
        conn.open()
    except OSError as exc:
        _record_retry(batch=batch, error=f"connect: {exc}")
        return SendOutcome(state=BatchState.RETRY)
    try:
        for index, recipient in enumerate(recipients):
            message = digest_message_single(
                digest=digest, batch_id=batch.pk, language=batch.language, recipient=recipient
            )
            try:
                conn.send_messages([message])
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                if _smtp_permanent(exc):
                    delivery_mark_failed(
                        delivery_ids=[recipient.delivery_id], reason=f"refused: {exc}"
                    )
                    _suppress_invalid([recipient], note=str(exc))
                    failed += 1
                    continue
                if index == 0:
                    _record_retry(batch=batch, error=f"{type(exc).__name__}: {exc}")
                    return SendOutcome(state=BatchState.RETRY, failed=failed)
                _split_at(
                    batch=batch,
                    next_delivery_id=recipient.delivery_id,
                    sent=sent,
                    error=f"{type(exc).__name__}: {exc}",
                )
                return SendOutcome(state=BatchState.RETRY, sent=sent, failed=failed)
            sent += 1
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - the mail is out; a failing QUIT changes nothing
            logger.warning("closing the mail connection failed", exc_info=True)
    _record_sent(batch=batch, sent=sent, message_ids=[])
    return SendOutcome(state=BatchState.SENT, sent=sent, failed=failed)
