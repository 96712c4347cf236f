"""The stored evidence read out: the proof of one subscription and the export of an address."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from newsletter.models import (
    ConsentEvent,
    ConsentEventKind,
    RevocationChannel,
    Subscription,
    Suppression,
)
from newsletter.services.consent.events import (
    event_record,
)


def _event_as_dict(event: ConsentEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "newsletter": event.newsletter.slug,
        "kind": event.kind,
        "at": event.at.isoformat(),
        "ip": event.ip,
        "user_agent": event.user_agent,
        "url": event.url,
        "form": event.form,
        "channel": event.channel,
        "consent_text": (
            {
                "version": event.consent_text.version,
                "language": event.consent_text.language,
                "text": event.consent_text.text,
            }
            if event.consent_text
            else None
        ),
        "text_sha256": event.text_sha256,
        "message_id": event.message_id,
        "note": event.note,
        "data": event.data,
    }


def subscription_proof(*, subscription: Subscription) -> dict[str, Any]:
    """The evidence of one subscription as stored (nothing recomputed), for print and JSON."""
    events = (
        ConsentEvent.objects.filter(subscription=subscription)
        .select_related("newsletter", "consent_text")
        .order_by("at", "id")
    )
    return {
        "email": subscription.email,
        "address_hmac": subscription.address_hmac,
        "newsletter": {"slug": subscription.newsletter.slug, "name": subscription.newsletter.name},
        "state": subscription.state,
        "language": subscription.language,
        "frequency": subscription.frequency,
        "created_at": subscription.created_at.isoformat(),
        "confirmed_at": subscription.confirmed_at.isoformat()
        if subscription.confirmed_at
        else None,
        "unsubscribed_at": subscription.unsubscribed_at.isoformat()
        if subscription.unsubscribed_at
        else None,
        "events": [_event_as_dict(event) for event in events],
    }


def subscriber_export(*, address_hmac: str) -> dict[str, Any]:
    """Everything stored about an address (Art. 15/20), including its consent log; each
    exported subscription records an `exported` event."""
    now = timezone.now()
    with transaction.atomic():
        subscriptions = list(
            Subscription.objects.select_for_update(of=("self",))
            .select_related("newsletter")
            .filter(address_hmac=address_hmac)
            .order_by("id")
        )
        events = list(
            ConsentEvent.objects.filter(address_hmac=address_hmac)
            .select_related("newsletter", "consent_text")
            .order_by("at", "id")
        )
        data = {
            "exported_at": now.isoformat(),
            "address": subscriptions[0].email if subscriptions else None,
            "suppressed": Suppression.objects.filter(address_hmac=address_hmac).exists(),
            "subscriptions": [
                {
                    "newsletter": {"slug": sub.newsletter.slug, "name": sub.newsletter.name},
                    "email": sub.email,
                    "state": sub.state,
                    "language": sub.language,
                    "frequency": sub.frequency,
                    "created_at": sub.created_at.isoformat(),
                    "requested_at": sub.requested_at.isoformat() if sub.requested_at else None,
                    "confirmed_at": sub.confirmed_at.isoformat() if sub.confirmed_at else None,
                    "unsubscribed_at": sub.unsubscribed_at.isoformat()
                    if sub.unsubscribed_at
                    else None,
                    "confirmation_sends": sub.confirmation_sends,
                    "last_mailed_at": sub.last_mailed_at.isoformat()
                    if sub.last_mailed_at
                    else None,
                }
                for sub in subscriptions
            ],
            "consent_log": [_event_as_dict(event) for event in events],
        }
        for sub in subscriptions:
            event_record(
                subscription=sub,
                kind=ConsentEventKind.EXPORTED,
                at=now,
                channel=RevocationChannel.PREFERENCES,
            )
    return data
