"""Digest sending: claim a batch, re-check it, send it in one provider call, record the outcome.

The batch is the unit of claiming, sending, retrying and recording (see DESIGN "Digest
delivery"). On the happy path a batch costs one claim transaction, one read (re-check), one
provider call and one UPDATE of its own row; delivery rows are only written for exceptions.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import get_connection
from django.db import connection, transaction
from django.utils import timezone

from newsletter.addresses import address_hmac
from newsletter.emails.digest import Recipient, digest_message_batch, digest_message_single
from newsletter.models import (
    Batch,
    BatchState,
    Delivery,
    DeliveryState,
    Digest,
    DigestState,
    ProviderEvent,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.ratelimit_send import send_slot_wait
from newsletter.services.digests import delivery_mark_failed, digest_finish_check

logger = logging.getLogger(__name__)
_EMAIL = re.compile(r"[^\s<>,;:'\"()\[\]]+@[^\s<>,;:'\"()\[\]]+\.[A-Za-z0-9-]+")


class Transient(Exception):
    """The provider did not take the call (refused connection, 429, 5xx): retry the range."""


class Uncertain(Exception):
    """The request left and no answer came back: the provider may or may not have it."""


class Refused(Exception):
    """The provider refused the call naming recipients it will never accept."""


@dataclass(frozen=True)
class SendOutcome:
    state: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0


def batch_mode() -> bool:
    """Providers whose anymail backend sends a whole batch in one call with merge data."""
    return getattr(settings, "ANYMAIL_ESP", "") == "mailgun"


def provider_name() -> str:
    return getattr(settings, "ANYMAIL_ESP", "") or "smtp"


def _lease(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)


def batch_claim(*, digest_id: int, now: datetime | None = None) -> Batch | None:
    """Take the next id range after the digest's cursor (or a due retry) under the digest row
    lock, with a lease; two workers never get the same range, a repeat finds nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        digest = (
            Digest.objects.select_for_update()
            .filter(pk=digest_id)
            .only("pk", "state", "cursor", "last_delivery_id")
            .first()
        )
        if digest is None or digest.state != DigestState.SENDING:
            return None
        retry = (
            Batch.objects.filter(
                digest_id=digest_id, state=BatchState.RETRY, next_attempt_at__lte=now
            )
            .order_by("next_attempt_at", "pk")
            .first()
        )
        if retry is not None:
            retry.state = BatchState.SENDING
            retry.lease_until = _lease(now)
            retry.attempts += 1
            retry.save(update_fields=["state", "lease_until", "attempts"])
            return retry
        if digest.last_delivery_id is None or digest.cursor >= digest.last_delivery_id:
            return None
        rows = list(
            Delivery.objects.filter(digest_id=digest_id, pk__gt=digest.cursor)
            .order_by("pk")
            .values_list("pk", "language")[: settings.NEWSLETTER_BATCH_SIZE]
        )
        if not rows:
            digest.cursor = digest.last_delivery_id
            digest.save(update_fields=["cursor"])
            return None
        language = rows[0][1]
        # One body per provider call: a batch stops where the language changes.
        cut = next((i for i, (_pk, lang) in enumerate(rows) if lang != language), len(rows))
        ids = [pk for pk, _lang in rows[:cut]]
        batch = Batch.objects.create(
            digest_id=digest_id,
            first_delivery_id=ids[0],
            last_delivery_id=ids[-1],
            size=len(ids),
            language=language,
            state=BatchState.SENDING,
            lease_until=_lease(now),
            attempts=1,
        )
        digest.cursor = ids[-1]
        digest.save(update_fields=["cursor"])
        return batch


_RECHECK_SQL = """
SELECT d.id, s.id, s.email, s.address_hmac, s.confirmed_at, s.state,
       (sup.id IS NOT NULL) AS suppressed
FROM {delivery} d
LEFT JOIN {subscription} s ON s.id = d.subscription_id
LEFT JOIN {suppression} sup ON sup.address_hmac = s.address_hmac AND s.address_hmac <> ''
WHERE d.digest_id = %s AND d.id BETWEEN %s AND %s AND d.state IS NULL
ORDER BY d.id
"""


def batch_recheck(*, batch: Batch) -> list[Recipient]:
    """One read of the range joined to subscriptions: only confirmed, unsuppressed recipients
    stay; the others are written as skipped (the rare per-row write)."""
    sql = _RECHECK_SQL.format(
        delivery=Delivery._meta.db_table,
        subscription=Subscription._meta.db_table,
        suppression=Suppression._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch.digest_id, batch.first_delivery_id, batch.last_delivery_id])
        rows = cursor.fetchall()
    recipients: list[Recipient] = []
    skipped: dict[str, list[int]] = {}
    unhashed: list[Recipient] = []
    for delivery_id, sub_id, email, hmac_value, confirmed_at, state, suppressed in rows:
        if sub_id is None:
            skipped.setdefault("erased", []).append(delivery_id)
        elif state != SubscriptionState.CONFIRMED:
            skipped.setdefault(f"subscription {state}", []).append(delivery_id)
        elif suppressed:
            skipped.setdefault("suppressed", []).append(delivery_id)
        else:
            recipient = Recipient(
                delivery_id=delivery_id,
                subscription_id=sub_id,
                email=email,
                address_hmac=hmac_value or address_hmac(email),
                confirmed_at=confirmed_at,
            )
            recipients.append(recipient)
            if not hmac_value:
                unhashed.append(recipient)
    if unhashed:
        # Rows written without their keyed hash (bulk seeds) are checked by the computed one.
        hit = set(
            Suppression.objects.filter(
                address_hmac__in=[r.address_hmac for r in unhashed]
            ).values_list("address_hmac", flat=True)
        )
        if hit:
            skipped.setdefault("suppressed", []).extend(
                r.delivery_id for r in unhashed if r.address_hmac in hit
            )
            recipients = [r for r in recipients if r.address_hmac not in hit]
    for reason, ids in skipped.items():
        Delivery.objects.filter(pk__in=ids, state__isnull=True).update(
            state=DeliveryState.SKIPPED, reason=reason
        )
    return recipients


_connections: dict[int, object] = {}
# Batch providers whose batches go through a lightened subclass of anymail's backend
# (multipart instead of per-byte percent-escaping; see newsletter/mailgun_backend.py).
BATCH_BACKENDS = {"mailgun": "newsletter.mailgun_backend.EmailBackend"}


def _provider_connection():
    """One backend (one requests session) per worker process, reused for every batch."""
    pid = os.getpid()
    conn = _connections.get(pid)
    if conn is None:
        _connections.clear()
        conn = get_connection(BATCH_BACKENDS.get(provider_name()), fail_silently=False)
        conn.open()
        _connections[pid] = conn
    return conn


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        item = stack.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        stack.extend([item.__cause__, item.__context__])
        stack.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
        stack.append(
            getattr(item, "reason", None)
            if isinstance(getattr(item, "reason", None), BaseException)
            else None
        )
    return seen


def _request_never_left(exc: BaseException) -> bool:
    """Connection refused / connect timeout: the provider cannot have the message."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    for item in _exception_chain(exc):
        if isinstance(
            item,
            ConnectionRefusedError
            | NewConnectionError
            | ConnectTimeoutError
            | requests.ConnectTimeout,
        ):
            return True
    return False


def refused_addresses(text: str, recipients: list[Recipient]) -> list[Recipient]:
    named = {m.lower() for m in _EMAIL.findall(text or "")}
    return [r for r in recipients if r.email.lower() in named]


def _send_batch_call(*, digest: Digest, batch: Batch, recipients: list[Recipient]) -> list[str]:
    message = digest_message_batch(
        digest=digest, batch_id=batch.pk, language=batch.language, recipients=recipients
    )
    try:
        _provider_connection().send_messages([message])
    except AnymailRequestsAPIError as exc:
        status = getattr(exc, "status_code", None)
        if status is None:
            if _request_never_left(exc):
                raise Transient(str(exc)[:500]) from exc
            raise Uncertain(str(exc)[:500]) from exc
        if status == 429 or status >= 500:
            raise Transient(f"HTTP {status}") from exc
        if status == 400:
            raise Refused(exc.response.text if exc.response is not None else str(exc)) from exc
        raise Transient(f"HTTP {status}: {str(exc)[:300]}") from exc
    status = getattr(message, "anymail_status", None)
    return (
        sorted(status.message_id)
        if status and isinstance(status.message_id, set)
        else ([status.message_id] if status and status.message_id else [])
    )


def _suppress_invalid(recipients: list[Recipient], note: str) -> None:
    from newsletter.services.consent import subscription_suppress

    for recipient in recipients:
        subscription_suppress(
            subscription_id=recipient.subscription_id,
            reason="invalid_address",
            channel="webhook",
            note=note[:200],
        )


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


def digest_reconcile(*, digest_id: int, now: datetime | None = None) -> dict[str, int]:
    """Expired leases become uncertain; an uncertain batch with any provider event for one of
    its deliveries is sent; without one after the grace period it is retried (resend policy)
    or failed (drop policy)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS)
    expired = Batch.objects.filter(
        digest_id=digest_id, state=BatchState.SENDING, lease_until__lt=now
    ).update(
        state=BatchState.UNCERTAIN,
        next_attempt_at=now + grace,
        lease_until=None,
        error="lease expired (worker lost)",
    )
    batch_table = Batch._meta.db_table
    event_table = ProviderEvent._meta.db_table
    delivery_table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {batch_table} AS b SET state = %s, sent_at = %s, next_attempt_at = NULL,
                   sent_count = b.size - (
                     SELECT count(*) FROM {delivery_table} x
                     WHERE x.digest_id = b.digest_id
                       AND x.id BETWEEN b.first_delivery_id AND b.last_delivery_id
                       AND x.state IS NOT NULL)
            WHERE b.digest_id = %s AND b.state = %s AND EXISTS (
                SELECT 1 FROM {event_table} e JOIN {delivery_table} d ON d.id = e.delivery_id
                WHERE d.digest_id = b.digest_id
                  AND e.delivery_id BETWEEN b.first_delivery_id AND b.last_delivery_id)
            """,
            [BatchState.SENT, now, digest_id, BatchState.UNCERTAIN],
        )
        proven = cursor.rowcount
    overdue = list(
        Batch.objects.filter(
            digest_id=digest_id, state=BatchState.UNCERTAIN, next_attempt_at__lte=now
        )
    )
    resent = dropped = 0
    for batch in overdue:
        if settings.NEWSLETTER_UNCERTAIN_POLICY == "drop":
            _record_failed(batch=batch, error="uncertain, dropped (at-most-once policy)")
            dropped += 1
        else:
            resent += Batch.objects.filter(pk=batch.pk, state=BatchState.UNCERTAIN).update(
                state=BatchState.RETRY, next_attempt_at=now, error="uncertain, resent after grace"
            )
    return {"expired": expired, "proven": proven, "resent": resent, "dropped": dropped}


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
