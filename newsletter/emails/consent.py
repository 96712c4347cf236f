"""Mails of the consent flows: confirmation, welcome and preference-centre link.

The confirmation mail carries no advertising and no tracking: only the confirm link, what was
asked for, and the imprint and privacy links. Links are absolute, built on SITE_URL when the
mail is built.
"""

from __future__ import annotations

from email.utils import formataddr, make_msgid

from anymail.message import AnymailMessage
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from newsletter import tokens
from newsletter.emails.layout import brand_context, html_inline
from newsletter.languages import LANGUAGE_PARAM, language_supported
from newsletter.models import ConsentEvent, ConsentEventKind, Newsletter, Subscription

# Consent mails in the branded layout (the data and preference links stay plain and short).
BRANDED = ("confirm", "welcome")


def site_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def legal_links(newsletter: Newsletter) -> dict[str, str]:
    """A mail's imprint and privacy links: the newsletter's own, else the site's pages on the
    SITE_URL of the moment of sending, so a moved site (or port) is never linked stale."""
    return {
        "imprint_url": newsletter.imprint_url or site_url(reverse("articles:impressum")),
        "privacy_url": newsletter.privacy_url or site_url(reverse("articles:datenschutz")),
    }


def reader_link(route: str, token: str, *, language: str) -> str:
    """An absolute link to a page reached from mail, opening in the reader's language."""
    path = reverse(route, kwargs={"token": token})
    return site_url(f"{path}?{LANGUAGE_PARAM}={language_supported(language) or 'de'}")


def confirm_url(subscription: Subscription) -> str:
    token = tokens.make_confirm_token(subscription.id, subscription.confirm_round)
    return reader_link("newsletter_confirm", token, language=subscription.language)


def unsubscribe_url(subscription: Subscription) -> str:
    token = tokens.make_unsubscribe_token(subscription.id)
    return reader_link("newsletter_unsubscribe", token, language=subscription.language)


def preferences_url(subscription: Subscription) -> str:
    token = tokens.make_preferences_token(subscription.id, subscription.address_hmac)
    return reader_link("newsletter_preferences", token, language=subscription.language)


DATA_LINK_ROUTES = {
    tokens.DATA_EXPORT: "newsletter_data_export",
    tokens.DATA_ERASE: "newsletter_data_erase",
}


def data_url(subscription: Subscription, purpose: str) -> str:
    token = tokens.make_data_token(purpose, subscription.id, subscription.address_hmac)
    return reader_link(DATA_LINK_ROUTES[purpose], token, language=subscription.language)


def message_id_of(message: AnymailMessage) -> str:
    """The provider's id where an ESP answered, else the Message-ID we set for SMTP."""
    status = getattr(message, "anymail_status", None)
    return (status.message_id if status and status.message_id else "") or message.extra_headers.get(
        "Message-ID", ""
    )


def _build(
    *,
    subscription: Subscription,
    template: str,
    context: dict,
    tag: str,
    headers: dict[str, str] | None = None,
) -> AnymailMessage:
    newsletter = subscription.newsletter
    with translation.override(subscription.language):
        context = {
            "subscription": subscription,
            "newsletter": newsletter,
            "language": subscription.language,
            **legal_links(newsletter),
            **brand_context(newsletter),
            **context,
        }
        subject = render_to_string(f"newsletter/email/{template}_subject.txt", context)
        text = render_to_string(f"newsletter/email/{template}_body.txt", context)
        html = render_to_string(f"newsletter/email/{template}_body.html", context)
    if template in BRANDED:
        html = html_inline(html)
    domain = newsletter.sender_email.rpartition("@")[2] or "localhost"
    message = AnymailMessage(
        subject=" ".join(subject.split()),
        body=text,
        from_email=formataddr((newsletter.sender_name, newsletter.sender_email)),
        to=[subscription.email],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers={"Message-ID": make_msgid(domain=domain), **(headers or {})},
        tags=[f"newsletter-{tag}"],
        metadata={"subscription_id": str(subscription.id), "kind": tag},
        track_clicks=False,
        track_opens=False,
    )
    message.attach_alternative(html, "text/html")
    return message


def confirmation_message_build(*, subscription: Subscription) -> AnymailMessage:
    """The double opt-in mail: the confirm link and exactly what was asked for, nothing else."""
    requested = (
        ConsentEvent.objects.filter(subscription=subscription, kind=ConsentEventKind.REQUESTED)
        .select_related("consent_text")
        .order_by("-at", "-id")
        .first()
    )
    return _build(
        subscription=subscription,
        template="confirm",
        tag="confirmation",
        context={
            "confirm_url": confirm_url(subscription),
            "requested": requested,
            "consent_text": requested.consent_text if requested else None,
            "max_age_days": max(1, settings.NEWSLETTER_CONFIRM_MAX_AGE // 86400),
        },
    )


def welcome_message_build(*, subscription: Subscription) -> AnymailMessage:
    """The optional welcome mail, with the personal unsubscribe link in body and headers."""
    link = unsubscribe_url(subscription)
    return _build(
        subscription=subscription,
        template="welcome",
        tag="welcome",
        context={"unsubscribe_url": link, "preferences_url": preferences_url(subscription)},
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def data_link_message_build(*, subscription: Subscription, purpose: str) -> AnymailMessage:
    """The short-lived link that confirms an export or erasure asked for in the preference
    centre: only who reads this mailbox can take the data out or erase it."""
    return _build(
        subscription=subscription,
        template="data_link",
        tag="data-link",
        context={
            "data_url": data_url(subscription, purpose),
            "erase": purpose == tokens.DATA_ERASE,
            "max_age_minutes": max(1, settings.NEWSLETTER_DATA_LINK_MAX_AGE // 60),
        },
    )


def preferences_link_message_build(*, subscription: Subscription) -> AnymailMessage:
    """The personal link to the preference centre, asked for by address."""
    return _build(
        subscription=subscription,
        template="preferences_link",
        tag="preferences-link",
        context={"preferences_url": preferences_url(subscription)},
    )
