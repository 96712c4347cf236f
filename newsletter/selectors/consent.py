"""Reads of the consent ledger that carry a rule."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import timezone

from newsletter.csvcells import csv_lines
from newsletter.models import (
    SUPPRESSION_ERASURE,
    ConsentEvent,
    ConsentText,
    Newsletter,
    Subscription,
    SubscriptionState,
    Suppression,
)

BERLIN = ZoneInfo("Europe/Berlin")


def newsletter_default() -> Newsletter | None:
    """The newsletter a signup box offers when the page names none: the first active one."""
    return Newsletter.objects.filter(is_active=True).order_by("id").first()


def newsletter_list_active() -> QuerySet[Newsletter]:
    return Newsletter.objects.filter(is_active=True).order_by("name", "id")


def signup_offer(*, slug: str = "", language: str) -> tuple[Newsletter | None, ConsentText | None]:
    """What a signup box offers: the active newsletter with this slug (else the default) and
    its current text in the language. Pages embed it in their cached layout; saving a
    newsletter or publishing a text makes that stale (see newsletter_texts_save)."""
    newsletter = slug and Newsletter.objects.filter(slug=slug, is_active=True).first()
    newsletter = newsletter or newsletter_default()
    if newsletter is None:
        return None, None
    return newsletter, consent_text_current(newsletter=newsletter, language=language)


def consent_text_current(*, newsletter: Newsletter, language: str) -> ConsentText | None:
    """The newest version in the language, falling back to the newsletter's own language."""
    texts = ConsentText.objects.filter(newsletter=newsletter).order_by("-version")
    for lang in (language, newsletter.language, "de"):
        text = texts.filter(language=lang).first()
        if text is not None:
            return text
    return texts.first()


def preferences_link_is_live(*, subscription_id: int, address_hmac: str) -> bool:
    """A preference link opens the centre only while the subscription it was issued for still
    exists for that address: after an erasure a new signup gets a new id, never the old one."""
    return Subscription.objects.filter(id=subscription_id, address_hmac=address_hmac).exists()


def subscription_list_for_address(*, address_hmac: str) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(address_hmac=address_hmac)
        .select_related("newsletter")
        .order_by("newsletter__name", "id")
    )


def topic_ids_chosen_by_address(*, address_hmac: str) -> set[int]:
    """The topics the reader chose, on any of the address's live subscriptions."""
    return set(
        Subscription.topics.through.objects.filter(
            subscription__address_hmac=address_hmac,
            subscription__state__in=(SubscriptionState.PENDING, SubscriptionState.CONFIRMED),
        ).values_list("topic_id", flat=True)
    )


def consent_event_list_for_address(*, address_hmac: str) -> QuerySet[ConsentEvent]:
    """Every event about the address, including the pseudonymised ones of erased rows."""
    return (
        ConsentEvent.objects.filter(address_hmac=address_hmac)
        .select_related("newsletter", "consent_text")
        .order_by("at", "id")
    )


def consent_event_list_for_subscription(*, subscription: Subscription) -> QuerySet[ConsentEvent]:
    return (
        ConsentEvent.objects.filter(subscription=subscription)
        .select_related("consent_text")
        .order_by("at", "id")
    )


def address_is_suppressed(*, address_hmac: str) -> bool:
    return Suppression.objects.filter(address_hmac=address_hmac).exists()


def address_refuses_mail(*, address_hmac: str) -> bool:
    """The address bounced hard, complained or kept bouncing: nothing may be mailed to it, not
    even a confirmation request. An erasure alone does not refuse a later signup."""
    return (
        Suppression.objects.filter(address_hmac=address_hmac)
        .exclude(reason=SUPPRESSION_ERASURE)
        .exists()
    )


def subscription_list_confirmed(*, newsletter: Newsletter | None = None) -> QuerySet[Subscription]:
    qs = Subscription.objects.filter(state=SubscriptionState.CONFIRMED)
    if newsletter is not None:
        qs = qs.filter(newsletter=newsletter)
    return qs.select_related("newsletter").order_by("newsletter_id", "id")


def subscription_language_get(*, subscription_id: int) -> str | None:
    """The language a subscription's mails and pages are in; None once it is gone."""
    return (
        Subscription.objects.filter(id=subscription_id).values_list("language", flat=True).first()
    )


def _berlin(value) -> str:
    return timezone.localtime(value, BERLIN).isoformat() if value else ""


def subscription_export_csv(*, queryset: QuerySet[Subscription]) -> Iterator[str]:
    """The confirmed subscriptions among `queryset` with their consent dates (Europe/Berlin),
    as CSV lines safe to open in a spreadsheet, read in chunks (no list in memory)."""
    confirmed = (
        queryset.filter(state=SubscriptionState.CONFIRMED)
        .select_related("newsletter")
        .order_by("newsletter_id", "id")
    )
    return csv_lines(
        ["email", "newsletter", "language", "frequency", "requested_at", "confirmed_at"],
        (
            [
                sub.email,
                sub.newsletter.slug,
                sub.language,
                sub.frequency,
                _berlin(sub.requested_at),
                _berlin(sub.confirmed_at),
            ]
            for sub in confirmed.iterator(chunk_size=2000)
        ),
    )
