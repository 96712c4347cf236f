"""Provider tracking events: recorded once per (esp, event id), acted on once.

Hard bounces and complaints suppress the address, a provider-side unsubscribe revokes the
subscription (each with its consent event, written by the consent services); soft bounces
count toward NEWSLETTER_SOFT_BOUNCE_LIMIT. An event acts only when it names, by its signed
reference, a delivery of a batch handed to this very provider and its recipient is that
delivery's address; only such an event is linked to the delivery, so only such an event is
the evidence the reconciler uses to call an uncertain batch sent. Anything else is kept
unlinked (the provider did say it) and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef

from newsletter.models import (
    Batch,
    BatchState,
    Delivery,
    DeliveryState,
    ProviderEvent,
    RevocationChannel,
    Subscription,
)
from newsletter.services.consent import subscription_revoke, subscription_suppress
from newsletter.tokens import TokenInvalid, read_delivery_ref

logger = logging.getLogger(__name__)

HARD_BOUNCE = {"bounced", "rejected"}
COMPLAINT = {"complained"}
UNSUBSCRIBE = {"unsubscribed"}
SOFT_BOUNCE = {"deferred"}
# Raw bounce types that anymail reports as "bounced" although the provider calls them
# temporary: they count toward the soft-bounce limit instead of suppressing at once.
SOFT_BOUNCE_RAW_TYPES = {("postmark", "SoftBounce")}
# A batch in these states was (or is being) handed to its provider; "sending" because the
# provider's webhook can overtake the worker's own record of the call, and is then exactly
# the evidence the reconciler needs if that worker dies.
HANDED_TO_PROVIDER = (BatchState.SENDING, BatchState.SENT, BatchState.UNCERTAIN)


@dataclass(frozen=True)
class TrackingEvent:
    esp: str
    event_id: str
    event_type: str
    recipient: str
    # From an authentic signed reference only; None for none or a forged one.
    delivery_id: int | None
    occurred_at: datetime | None
    detail: str = ""


def esp_key(esp_name: str) -> str:
    """anymail's display name of a provider ("Unisender Go") as ANYMAIL_ESP spells it."""
    return str(esp_name).strip().lower().replace(" ", "_")


def _delivery_id(*, esp: str, event_id: str, metadata: dict) -> int | None:
    ref = metadata.get("delivery_ref")
    if ref is None:
        # Mail that is no digest (confirmations, test sends), or sent before references
        # were signed.
        return None
    try:
        return read_delivery_ref(ref)
    except TokenInvalid:
        logger.warning("%s event %s: delivery reference not authentic, ignored", esp, event_id)
        return None


def tracking_event_from_anymail(*, esp: str, event) -> TrackingEvent:
    esp = esp_key(esp)
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    event_id = str(event.event_id or "")
    event_type = str(event.event_type or "unknown")
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    raw_type = raw.get("Type")
    detail = " ".join(
        str(part) for part in (event.reject_reason, event.description, event.mta_response) if part
    )
    if isinstance(raw_type, str) and (esp, raw_type) in SOFT_BOUNCE_RAW_TYPES:
        event_type = "deferred"
        detail = f"{raw_type} {detail}".strip()
    return TrackingEvent(
        esp=esp,
        event_id=event_id,
        event_type=event_type,
        recipient=str(event.recipient or "")[:254],
        delivery_id=_delivery_id(esp=esp, event_id=event_id, metadata=metadata),
        occurred_at=event.timestamp,
        detail=detail[:500],
    )


def _delivery_acted_on(event: TrackingEvent) -> Delivery | None:
    """The delivery this event may act on, or None (logged) when it must not."""
    if event.delivery_id is None:
        return None
    handed_over = Batch.objects.filter(
        digest_id=OuterRef("digest_id"),
        first_delivery_id__lte=OuterRef("pk"),
        last_delivery_id__gte=OuterRef("pk"),
        state__in=HANDED_TO_PROVIDER,
        esp=event.esp,
    )
    delivery = (
        Delivery.objects.filter(pk=event.delivery_id)
        .exclude(state=DeliveryState.SKIPPED)
        .select_related("subscription")
        .only("pk", "digest_id", "subscription", "subscription__email")
        .annotate(handed_over=Exists(handed_over))
        .first()
    )
    reason = None
    if delivery is None:
        reason = "no such delivery, or it was never sent"
    elif delivery.subscription is None:
        reason = "subscription erased"
    elif event.recipient.strip().casefold() != delivery.subscription.email.casefold():
        reason = "recipient is not the delivery's address"
    elif not delivery.handed_over:
        reason = f"its batch was never handed to {event.esp}"
    if reason:
        logger.warning(
            "%s event %s about delivery %s ignored: %s",
            event.esp,
            event.event_id,
            event.delivery_id,
            reason,
            extra={"delivery_id": event.delivery_id},
        )
        return None
    return delivery


def _effect_apply(*, event: TrackingEvent, subscription_id: int) -> None:
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


def provider_event_record(*, event: TrackingEvent) -> bool:
    """Keep a tracking event once per (esp, event id) and apply its effect in the same
    transaction: a failure keeps neither, so the provider's retry redoes both; a replay
    returns False and changes nothing. Only an event about a delivery it may speak for
    (see `_delivery_acted_on`) is linked to it and has an effect."""
    if not event.event_id:
        return False
    with transaction.atomic():
        delivery = _delivery_acted_on(event)
        try:
            with transaction.atomic():
                ProviderEvent.objects.create(
                    esp=event.esp,
                    event_id=event.event_id[:200],
                    event_type=event.event_type[:40],
                    recipient=event.recipient,
                    delivery=delivery,
                    digest_id=delivery.digest_id if delivery is not None else None,
                    occurred_at=event.occurred_at,
                    detail=event.detail,
                )
        except IntegrityError:
            return False
        if delivery is not None:
            _effect_apply(event=event, subscription_id=delivery.subscription_id)
    return True
