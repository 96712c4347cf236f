"""Ending consent: revocation, suppression after bounces or complaints."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from newsletter.addresses import address_hmac
from newsletter.models import (
    ConsentEventKind,
    RevocationChannel,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.services.consent.events import (
    LAPSED_STATES,
    clean_ip,
    clean_line,
    event_record,
    subscription_locked,
)


def subscription_revoke(
    *,
    subscription_id: int,
    channel: str,
    note: str = "",
    ip: str | None = None,
    user_agent: str = "",
    actor: AbstractBaseUser | None = None,
) -> Subscription | None:
    """Withdraw consent with effect from commit; nothing is mailed to it afterwards; `actor`
    is the staff user who did it for the reader. Revoking again (or an erased subscription)
    writes nothing."""
    if channel not in RevocationChannel.values:
        raise ValueError(f"unknown revocation channel {channel!r}")
    now = timezone.now()
    with transaction.atomic():
        subscription = subscription_locked(subscription_id)
        if subscription is None or subscription.state in LAPSED_STATES:
            return subscription
        subscription.state = SubscriptionState.UNSUBSCRIBED
        subscription.unsubscribed_at = now
        subscription.save(update_fields=["state", "unsubscribed_at"])
        event_record(
            subscription=subscription,
            kind=ConsentEventKind.REVOKED,
            at=now,
            channel=channel,
            note=note.strip()[:2000],
            ip=clean_ip(ip),
            user_agent=clean_line(user_agent, 500),
            actor=actor,
        )
    return subscription


def subscription_suppress(
    *, subscription_id: int, reason: str, channel: str, note: str = ""
) -> Subscription | None:
    """Stop mail to an address after a bounce or complaint: every live subscription of the
    address becomes suppressed and the address's hash goes on the suppression list."""
    if channel not in RevocationChannel.values:
        raise ValueError(f"unknown channel {channel!r}")
    now = timezone.now()
    with transaction.atomic():
        subscription = subscription_locked(subscription_id)
        if subscription is None:
            return None
        key = subscription.address_hmac or address_hmac(subscription.email)
        Suppression.objects.get_or_create(address_hmac=key, defaults={"reason": reason[:40]})
        siblings = list(
            Subscription.objects.select_for_update()
            .filter(address_hmac=key)
            .exclude(state__in=LAPSED_STATES)
            .order_by("id")
        )
        if subscription.state not in LAPSED_STATES and subscription not in siblings:
            siblings.append(subscription)
        for sibling in siblings:
            sibling.state = SubscriptionState.SUPPRESSED
            sibling.unsubscribed_at = now
            sibling.save(update_fields=["state", "unsubscribed_at"])
            event_record(
                subscription=sibling,
                kind=ConsentEventKind.SUPPRESSED,
                at=now,
                channel=channel,
                note=f"{reason}: {note}".strip(": ")[:2000],
            )
        subscription.refresh_from_db()
    return subscription
