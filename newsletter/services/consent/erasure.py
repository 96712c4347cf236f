"""Erasure (Art. 17): the address leaves every table; what stays is keyed by its hash."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from newsletter.models import (
    SUPPRESSION_ERASURE,
    Batch,
    ConsentEvent,
    ConsentEventKind,
    Delivery,
    ProviderEvent,
    RevocationChannel,
    SignupRequest,
    Subscription,
    Suppression,
)
from newsletter.services.consent.retention import consent_events_pseudonymise
from newsletter.services.ledger import chain_append

ERASED = "[gelöscht]"


def _scrubber(addresses: Iterable[str]):
    """Replace every spelling of the addresses (any case) in a text by a placeholder."""
    pattern = re.compile("|".join(re.escape(a) for a in sorted(set(addresses))), re.IGNORECASE)
    return lambda text: pattern.sub(ERASED, text) if text else text


def _address_anywhere(field: str, addresses: Iterable[str]) -> Q:
    query = Q(pk__in=[])
    for address in addresses:
        query |= Q(**{f"{field}__icontains": address})
    return query


def subscriber_erase(
    *,
    address_hmac: str,
    channel: str = RevocationChannel.PREFERENCES,
    note: str = "",
    actor: AbstractBaseUser | None = None,
) -> int:
    """Erase an address at once: its subscriptions go; the consent evidence, the provider's
    tracking events, delivery errors and admin log entries that named it keep only its keyed
    hash or a placeholder (no address, IP or user agent); the hash goes on the suppression list.
    The erasure itself is a new `erased` event per subscription, naming the staff `actor`."""
    now = timezone.now()
    with transaction.atomic():
        subscriptions = list(
            Subscription.objects.select_for_update()
            .filter(address_hmac=address_hmac)
            .order_by("id")
        )
        if not subscriptions:
            return 0
        ids = [sub.id for sub in subscriptions]
        addresses = {sub.email for sub in subscriptions}
        scrub = _scrubber(addresses)

        # The one place old consent events change (see retention.py): personal fields blank.
        consent_events_pseudonymise(address_hmac=address_hmac)
        # Tracking events: by delivery (read before the subscriptions go), by recipient, and
        # any whose provider text quotes the address. The recipient becomes the hash, so a
        # later complaint about the same address can still be told apart from others.
        provider_events = ProviderEvent.objects.filter(
            Q(delivery__subscription_id__in=ids)
            | _address_anywhere("recipient", addresses)
            | _address_anywhere("detail", addresses)
        )
        for event in provider_events:
            event.recipient = address_hmac
            event.detail = scrub(event.detail)
            event.save(update_fields=["recipient", "detail"])
        for delivery in Delivery.objects.filter(subscription_id__in=ids).exclude(reason=""):
            delivery.reason = scrub(delivery.reason)
            delivery.save(update_fields=["reason"])
        for batch in Batch.objects.filter(_address_anywhere("error", addresses)):
            batch.error = scrub(batch.error)
            batch.save(update_fields=["error"])
        # The admin's history names a changed subscription by its __str__ (the address).
        for entry in LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Subscription),
            object_id__in=[str(i) for i in ids],
        ):
            entry.object_repr = scrub(entry.object_repr)
            entry.change_message = scrub(entry.change_message)
            entry.save(update_fields=["object_repr", "change_message"])

        Subscription.objects.filter(id__in=ids).delete()
        # A signup of the address that no task has applied yet would bring it back.
        SignupRequest.objects.filter(address_hmac=address_hmac).delete()
        Suppression.objects.get_or_create(
            address_hmac=address_hmac, defaults={"reason": SUPPRESSION_ERASURE}
        )
        # Last in the transaction: each append takes the chain's lock until commit.
        for sub in subscriptions:
            chain_append(
                event=ConsentEvent(
                    subscription=None,
                    newsletter_id=sub.newsletter_id,
                    address_hmac=address_hmac,
                    kind=ConsentEventKind.ERASED,
                    at=now,
                    channel=channel,
                    note=scrub(note.strip()[:2000]),
                    actor=actor,
                )
            )
    return len(subscriptions)
