"""Provider tracking events: recorded once per (esp, event id), acted on once.

Hard bounces and complaints suppress the address, a provider-side unsubscribe revokes the
subscription (each with its consent event, written by the consent services); soft bounces
count toward NEWSLETTER_SOFT_BOUNCE_LIMIT. Any recorded event for a delivery is also the
evidence the reconciler uses to call an uncertain batch sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from newsletter.models import Delivery, ProviderEvent, RevocationChannel, Subscription
from newsletter.services.consent import subscription_revoke, subscription_suppress

HARD_BOUNCE = {"bounced", "rejected"}
COMPLAINT = {"complained"}
UNSUBSCRIBE = {"unsubscribed"}
SOFT_BOUNCE = {"deferred"}


@dataclass(frozen=True)
class TrackingEvent:
    esp: str
    event_id: str
    event_type: str
    recipient: str
    delivery_id: int | None
    occurred_at: datetime | None
    detail: str = ""


def _delivery_id(raw: object) -> int | None:
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def tracking_event_from_anymail(*, esp: str, event) -> TrackingEvent:
    metadata = event.metadata or {}
    detail = " ".join(
        str(part) for part in (event.reject_reason, event.description, event.mta_response) if part
    )
    return TrackingEvent(
        esp=esp,
        event_id=str(event.event_id or ""),
        event_type=str(event.event_type or "unknown"),
        recipient=str(event.recipient or "")[:254],
        delivery_id=_delivery_id(metadata.get("delivery_id")),
        occurred_at=event.timestamp,
        detail=detail[:500],
    )


def provider_event_record(*, event: TrackingEvent) -> bool:
    """Keep a tracking event once per (esp, event id) and apply its effect once; a replay
    returns False and changes nothing."""
    if not event.event_id:
        return False
    delivery = None
    if event.delivery_id:
        delivery = (
            Delivery.objects.filter(pk=event.delivery_id).only("pk", "subscription_id").first()
        )
    try:
        with transaction.atomic():
            ProviderEvent.objects.create(
                esp=event.esp,
                event_id=event.event_id[:200],
                event_type=event.event_type[:40],
                recipient=event.recipient,
                delivery=delivery,
                occurred_at=event.occurred_at,
                detail=event.detail,
            )
    except IntegrityError:
        return False
    subscription_id = delivery.subscription_id if delivery else None
    if subscription_id is None:
        return True
    note = f"{event.esp} {event.event_type} {event.detail}".strip()
    if event.event_type in HARD_BOUNCE:
        subscription_suppress(
            subscription_id=subscription_id,
            reason="hard_bounce",
            channel=RevocationChannel.WEBHOOK,
            note=note,
        )
    elif event.event_type in COMPLAINT:
        subscription_suppress(
            subscription_id=subscription_id,
            reason="complaint",
            channel=RevocationChannel.WEBHOOK,
            note=note,
        )
    elif event.event_type in UNSUBSCRIBE:
        subscription_revoke(
            subscription_id=subscription_id, channel=RevocationChannel.WEBHOOK, note=note
        )
    elif event.event_type in SOFT_BOUNCE:
        Subscription.objects.filter(pk=subscription_id).update(soft_bounces=F("soft_bounces") + 1)
        bounces = (
            Subscription.objects.filter(pk=subscription_id)
            .values_list("soft_bounces", flat=True)
            .first()
        )
        if bounces is not None and bounces >= settings.NEWSLETTER_SOFT_BOUNCE_LIMIT:
            subscription_suppress(
                subscription_id=subscription_id,
                reason="soft_bounce_limit",
                channel=RevocationChannel.WEBHOOK,
                note=note,
            )
    return True
