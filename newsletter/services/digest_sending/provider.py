"""The provider call: one reused connection per worker process, and how its errors are read
(transient, uncertain, refused)."""

from __future__ import annotations

import contextlib
import os
import re

import requests
from anymail.exceptions import AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import get_connection

from newsletter.deadline import CallDeadlineExceeded
from newsletter.emails.digest import Recipient, digest_message_batch
from newsletter.mailgun_backend import CallGateClosed
from newsletter.models import Batch, Digest

_EMAIL = re.compile(r"[^\s<>,;:'\"()\[\]]+@[^\s<>,;:'\"()\[\]]+\.[A-Za-z0-9-]+")


class Transient(Exception):
    """The provider did not take the call (refused connection, 429, 5xx): retry the range."""


class Uncertain(Exception):
    """The request left and no answer came back: the provider may or may not have it."""


class Refused(Exception):
    """The provider refused the call naming recipients it will never accept."""


# Providers whose anymail backend sends a whole batch in one call with merge data; every
# other one (SMTP included) sends one message per recipient.
BATCH_ESPS = frozenset({"mailgun"})


def batch_mode() -> bool:
    """Whether the configured provider sends a whole batch in one call."""
    return provider_name() in BATCH_ESPS


def provider_name() -> str:
    return getattr(settings, "ANYMAIL_ESP", "") or "smtp"


_connections: dict[int, object] = {}
# Batch providers whose batches go through a lightened subclass of anymail's backend
# (multipart instead of per-byte percent-escaping; see newsletter/mailgun_backend.py).
BATCH_BACKENDS = {"mailgun": "newsletter.mailgun_backend.EmailBackend"}


def _provider_connection_drop() -> None:
    """Forget a connection a call was cut off in (its socket is mid-request)."""
    for conn in _connections.values():
        with contextlib.suppress(Exception):
            conn.close()
    _connections.clear()


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


def batch_message_build(*, digest: Digest, batch: Batch, recipients: list[Recipient]):
    """The batch's one provider message, built before the final check so that nothing but
    the call itself runs between the check and the first byte on the wire."""
    return digest_message_batch(
        digest=digest, batch_id=batch.pk, language=batch.language, recipients=recipients
    )


def batch_call_send(*, message) -> list[str]:
    """One provider call for a built batch message: its message ids, or the outcome class
    (Transient, Uncertain, Refused) that the caller records."""
    try:
        _provider_connection().send_messages([message])
    except CallGateClosed:
        raise
    except CallDeadlineExceeded as exc:
        _provider_connection_drop()
        raise Uncertain(str(exc)) from exc
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
