"""The subscriber's own settings: the preference centre's save and "leave all", language,
frequency and topics, and the links that reach the centre and the data."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from newsletter.emails.consent import data_link_message_build, preferences_link_message_build
from newsletter.enqueue import DATA_LINK_SEND, PREFERENCES_LINK_SEND, task_enqueue_on_commit
from newsletter.models import (
    ConsentEventKind,
    ConsentText,
    Frequency,
    Newsletter,
    RevocationChannel,
    Subscription,
    SubscriptionState,
)
from newsletter.services.consent.events import (
    event_record,
    language_or_default,
    subscription_locked,
)
from newsletter.services.consent.revocation import subscription_revoke
from newsletter.services.consent.signup import subscription_request

ACTIVE_STATES = (SubscriptionState.PENDING, SubscriptionState.CONFIRMED)


@dataclass(frozen=True)
class PreferenceChoice:
    """One newsletter's row of the preference centre as the reader left it."""

    newsletter: Newsletter
    wanted: bool
    frequency: str | None = None
    # The text shown beside an unticked newsletter: ticking it is consent to that text.
    consent_text: ConsentText | None = None


def _subscriptions_locked(address_hmac: str) -> dict[int, Subscription]:
    # All of the address's rows up front, in id order, before any event takes the chain lock:
    # a transition of one of them elsewhere then waits for this save instead of deadlocking.
    return {
        sub.newsletter_id: sub
        for sub in Subscription.objects.select_for_update(of=("self",))
        .select_related("newsletter")
        .filter(address_hmac=address_hmac)
        .order_by("id")
    }


def preferences_apply(
    *,
    address_hmac: str,
    language: str,
    choices: list[PreferenceChoice],
    ip: str | None,
    user_agent: str,
    url: str,
    topic_ids: Collection[int] | None = None,
) -> list[Subscription]:
    """Apply the preference centre's save in one transaction: a ticked newsletter is requested
    (its own text, its own double opt-in), an unticked one revoked, and every held one, as well
    as one requested here for the first time, gets the language, frequency and topics; an
    error on any row leaves none of it applied."""
    with transaction.atomic():
        held = _subscriptions_locked(address_hmac)
        if not held:
            return []
        email = next(iter(held.values())).email
        for choice in choices:
            sub = held.get(choice.newsletter.id)
            active = sub is not None and sub.state in ACTIVE_STATES
            if choice.wanted and not active:
                requested = subscription_request(
                    address=email,
                    newsletter=choice.newsletter,
                    ip=ip,
                    user_agent=user_agent,
                    url=url,
                    form="preferences",
                    language=language,
                    consent_text=choice.consent_text,
                )
                if sub is None:
                    # A newsletter first subscribed to from the centre starts pending with the
                    # topics, language and frequency of the same save, recorded as for any
                    # held one, and keeps them once confirmed.
                    sub = requested
            elif active and not choice.wanted:
                subscription_revoke(
                    subscription_id=sub.id,
                    channel=RevocationChannel.PREFERENCES,
                    ip=ip,
                    user_agent=user_agent,
                )
            if sub is not None:
                subscription_preferences_change(
                    subscription_id=sub.id,
                    language=language,
                    frequency=choice.frequency or None,
                    topic_ids=topic_ids,
                )
        return list(_subscriptions_locked(address_hmac).values())


def subscription_revoke_all(
    *, address_hmac: str, channel: str, ip: str | None = None, user_agent: str = ""
) -> int:
    """Withdraw every consent of an address in one transaction ("leave all"); returns how many
    were live. Repeating it writes nothing."""
    with transaction.atomic():
        held = _subscriptions_locked(address_hmac)
        revoked = 0
        for sub in held.values():
            if sub.state in ACTIVE_STATES:
                subscription_revoke(
                    subscription_id=sub.id, channel=channel, ip=ip, user_agent=user_agent
                )
                revoked += 1
    return revoked


def preferences_link_request(*, address_hmac: str) -> None:
    """Mail the preference-centre link after commit (to an address we hold; else nothing)."""
    task_enqueue_on_commit(PREFERENCES_LINK_SEND, address_hmac)


def data_link_request(*, subscription_id: int, purpose: str) -> None:
    """Mail the short-lived export or erasure link after commit; the preference link alone
    never releases or deletes the data."""
    task_enqueue_on_commit(DATA_LINK_SEND, subscription_id, purpose)


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
        changes: dict[str, dict] = {}
        if language is not None:
            language = language_or_default(language, fallback=subscription.language)
            if language != subscription.language:
                changes["language"] = {"old": subscription.language, "new": language}
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
            changes["frequency"] = {"old": subscription.frequency, "new": frequency}
            subscription.frequency = frequency
        if topic_ids is not None:
            before = sorted(subscription.topics.values_list("pk", flat=True))
            after = sorted(set(topic_ids))
            if after != before:
                # Ids, not names: a topic renamed later must not change what the record says.
                changes["topics"] = {"old": before, "new": after}
                subscription.topics.set(after)
        if not changes:
            return subscription
        subscription.save(update_fields=["language", "frequency"])
        event_record(
            subscription=subscription,
            kind=ConsentEventKind.PREFERENCES_CHANGED,
            at=timezone.now(),
            channel=RevocationChannel.PREFERENCES,
            data=changes,
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
