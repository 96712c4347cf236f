"""The subscriber's own settings: language, frequency, topics, and the link to change them."""

from __future__ import annotations

from collections.abc import Collection

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from newsletter.emails.consent import data_link_message_build, preferences_link_message_build
from newsletter.models import (
    ConsentEventKind,
    Frequency,
    RevocationChannel,
    Subscription,
)
from newsletter.services.consent._ledger import (
    event_record,
    language_or_default,
    subscription_locked,
)


def subscription_preferences_change(
    *,
    subscription_id: int,
    language: str | None = None,
    frequency: str | None = None,
    topic_ids: Collection[int] | None = None,
) -> Subscription | None:
    """Change language, frequency (only one the newsletter offers) or the topics the reader
    chose; records what changed."""
    with transaction.atomic():
        subscription = subscription_locked(subscription_id)
        if subscription is None:
            return None
        newsletter = subscription.newsletter
        changes = []
        if language is not None:
            language = language_or_default(language, fallback=subscription.language)
            if language != subscription.language:
                changes.append(f"language: {subscription.language} → {language}")
                subscription.language = language
        if frequency is not None and frequency != subscription.frequency:
            offered = {
                Frequency.DAILY: newsletter.offers_daily,
                Frequency.WEEKLY: newsletter.offers_weekly,
            }
            if not offered.get(frequency, False):
                raise ValidationError(
                    _("Diese Häufigkeit bietet der Newsletter nicht an."), code="frequency"
                )
            changes.append(f"frequency: {subscription.frequency} → {frequency}")
            subscription.frequency = frequency
        if topic_ids is not None:
            before = set(subscription.topics.values_list("pk", flat=True))
            after = set(topic_ids)
            if after != before:
                # Ids, not names: a topic renamed later must not change what the record says.
                changes.append(f"topics: {sorted(before)} → {sorted(after)}")
                subscription.topics.set(after)
        if not changes:
            return subscription
        subscription.save(update_fields=["language", "frequency"])
        event_record(
            subscription=subscription,
            kind=ConsentEventKind.PREFERENCES_CHANGED,
            at=timezone.now(),
            channel=RevocationChannel.PREFERENCES,
            note="; ".join(changes),
        )
    return subscription


def preferences_link_send(*, address_hmac: str) -> bool:
    """Mail the preference-centre link to an address we hold; False when we hold none."""
    subscription = (
        Subscription.objects.select_related("newsletter")
        .filter(address_hmac=address_hmac)
        .order_by("id")
        .first()
    )
    if subscription is None:
        return False
    preferences_link_message_build(subscription=subscription).send()
    return True


def data_link_send(*, subscription_id: int, purpose: str) -> bool:
    """Mail the short-lived link that confirms an export or erasure to the address of the
    subscription the preference link was issued for; False when it no longer exists."""
    subscription = (
        Subscription.objects.select_related("newsletter").filter(id=subscription_id).first()
    )
    if subscription is None:
        return False
    data_link_message_build(subscription=subscription, purpose=purpose).send()
    return True
