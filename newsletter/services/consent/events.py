"""Shared by the consent services: evidence cleaning, the row lock and the event write."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from django.conf import settings

from newsletter.models import (
    ConsentEvent,
    Subscription,
    SubscriptionState,
)
from newsletter.services.ledger import chain_append

LAPSED_STATES = (SubscriptionState.UNSUBSCRIBED, SubscriptionState.SUPPRESSED)


def clean_line(value: str | None, max_length: int) -> str:
    """Evidence fields hold one line: control characters would forge or break a proof print."""
    value = "".join(
        " " if ch in "\r\n\t" else ch for ch in (value or "") if ch.isprintable() or ch in "\r\n\t"
    )
    return value.strip()[:max_length]


def clean_ip(value: str | None) -> str | None:
    """A normalised IP address, or None for anything that is not one."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def language_or_default(value: str | None, *, fallback: str) -> str:
    """A configured language code: the value, else the fallback, else German."""
    codes = {code for code, _name in settings.LANGUAGES}
    return value if value in codes else (fallback if fallback in codes else "de")


def event_record(
    *, subscription: Subscription, kind: str, at: datetime, **fields: Any
) -> ConsentEvent:
    """Append one ledger event for a subscription, with its newsletter and address hash, as
    the next link of the hash chain (call it last in the transaction: it takes the chain lock)."""
    return chain_append(
        event=ConsentEvent(
            subscription=subscription,
            newsletter_id=subscription.newsletter_id,
            address_hmac=subscription.address_hmac,
            kind=kind,
            at=at,
            **fields,
        )
    )


def subscription_locked(subscription_id: int) -> Subscription | None:
    """The subscription with its newsletter, row-locked until the transaction ends.

    Only the subscription row: a lock on the newsletter row would serialise every transition
    of a newsletter and deadlock with a chain append, whose commit checks the newsletter key."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("newsletter")
        .filter(id=subscription_id)
        .first()
    )
