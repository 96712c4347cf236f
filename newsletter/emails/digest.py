"""The digest mail: rendered once per digest and language, personalised by string substitution.

The rendered subject, text and HTML carry Mailgun-style placeholders (``%recipient.key%``). A
batch-capable provider (Mailgun) substitutes them itself from the message's ``merge_data``; for
every other backend `digest_message_single` replaces them here with plain ``str.replace``. The
per-recipient parts are only the unsubscribe and preference links and the consent date, so the
costly template render happens once per (digest, language) and process.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone, translation
from django.utils.translation import pgettext

from articles.selectors import articles_localize
from articles.templatetags.article_tags import byline_time
from newsletter.emails.consent import legal_links
from newsletter.languages import LANGUAGE_PARAM
from newsletter.models import Digest, Newsletter
from newsletter.selectors.digests import digest_articles
from newsletter.tokens import (
    PREFERENCES,
    UNSUBSCRIBE,
    delivery_ref_signer,
    make_delivery_ref,
    make_preferences_token,
    make_unsubscribe_token,
    preferences_token_value,
)

BERLIN = ZoneInfo("Europe/Berlin")
PERSONAL_KEYS = ("unsubscribe_url", "preferences_url", "consent_date")
PREVIEW_UNSUBSCRIBE_URL = "#vorschau-abmelden"
PREVIEW_PREFERENCES_URL = "#vorschau-einstellungen"
_TOKEN = "TOKENPLACEHOLDER"
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x00\u2028\u2029\x85]+")


def digest_language(code: str | None) -> str:
    """The language a digest is written in for a reader's language code: English for any
    English, else German (the fan-out's SQL applies the same rule to each delivery)."""
    return "en" if (code or "").startswith("en") else "de"


def placeholder(key: str) -> str:
    return f"%recipient.{key}%"


def header_safe(value: str) -> str:
    """No CR/LF (or other line breaks) from editable text ever reaches a header."""
    return " ".join(_LINE_BREAKS.sub(" ", value).split())


def format_when(value: datetime) -> str:
    """As the site's bylines show it, in the active language ('25.07.2025 06:11 Uhr')."""
    return byline_time(value)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    subscription_id: int
    email: str
    address_hmac: str
    confirmed_at: datetime | None


def mail_date(value: datetime, language: str) -> str:
    """A day as readers of the language write it: '30.11.2026', '30 November 2026'."""
    with translation.override(digest_language(language)):
        # Translators: a PHP-style date format (Django's `date` filter) for dates in mails.
        fmt = pgettext("mail date format", "d.m.Y")
        return dateformat.format(value.astimezone(BERLIN), fmt)


def digest_subject(
    *, newsletter: Newsletter, articles: list, slot: datetime, language: str = "de"
) -> str:
    """The editor's template of the language filled in; an unusable template falls back to a
    plain subject."""
    values = {
        "newsletter": newsletter.name,
        "count": len(articles),
        "date": mail_date(slot, language),
        "first_title": (
            articles_localize([copy.copy(articles[0])], language=digest_language(language))[0].title
            if articles
            else ""
        ),
    }
    try:
        subject = newsletter.subject_template_for(language).format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError):
        subject = f"{newsletter.name}: {values['date']}"
    return header_safe(subject)[:300]


def article_items(articles: list, language: str) -> list[dict]:
    base = settings.SITE_URL
    items = []
    with translation.override(language):
        for article in articles_localize(
            [copy.copy(article) for article in articles], language=digest_language(language)
        ):
            disclaimer = ""
            if article.disclaimer_version_id:
                disclaimer = article.disclaimer_version.text_for(language)
            items.append(
                {
                    "title": article.title,
                    "when": format_when(article.published_at),
                    "lead": article.lead,
                    "url": base + article.get_absolute_url(),
                    "disclaimer": disclaimer,
                    "kind": article.kind,
                    # Untranslated articles keep their German words, marked as German.
                    "language": article.text_language,
                }
            )
    return items


def digest_render(
    *, digest: Digest, articles: list, language: str, personal: bool = True
) -> Rendered:
    """Render subject, text and HTML once; personal parts are placeholders (or left out)."""
    newsletter = digest.newsletter
    # The stored subject is the German one (the digest's name in the admin and archive).
    subject = (
        digest.subject
        if digest_language(language) == "de"
        else digest_subject(
            newsletter=newsletter, articles=articles, slot=digest.slot, language=language
        )
    )
    context = {
        "subject": subject,
        "newsletter": newsletter,
        "digest": digest,
        "items": article_items(articles, language),
        "personal": personal,
        "unsubscribe_url": placeholder("unsubscribe_url"),
        "preferences_url": placeholder("preferences_url"),
        "consent_date": placeholder("consent_date"),
        "slot_date": mail_date(digest.slot, language),
        "language": digest_language(language),
    }
    with translation.override(language):
        context.update(legal_links(newsletter))
        text = render_to_string("newsletter/email/digest_body.txt", context)
        html = render_to_string("newsletter/email/digest_body.html", context)
    return Rendered(subject=subject, text=text, html=html)


@lru_cache(maxsize=64)
def _cached_render(digest_id: int, language: str) -> Rendered:
    digest = Digest.objects.select_related("newsletter").get(pk=digest_id)
    return digest_render(
        digest=digest, articles=digest_articles(digest=digest, live_only=False), language=language
    )


def digest_rendered(*, digest_id: int, language: str) -> Rendered:
    """Once per process, digest and language (a digest's content is frozen at creation)."""
    return _cached_render(digest_id, language)


@lru_cache(maxsize=8)
def _url_prefixes(site_url: str, language: str) -> tuple[str, str]:
    # The page opens in the language the mail was written in.
    query = f"?{LANGUAGE_PARAM}={language}"
    unsubscribe = site_url + reverse("newsletter_unsubscribe", args=[_TOKEN]) + query
    preferences = site_url + reverse("newsletter_preferences", args=[_TOKEN]) + query
    return unsubscribe, preferences


class BatchSigner:
    """Django's `signing.dumps(value, salt=purpose)` tokens, bit for bit, at batch speed.

    The HMAC key is derived once per purpose and the timestamp once per batch (tokens carry
    whole seconds anyway); the output is read by `newsletter.tokens` like any other token.
    """

    def __init__(self) -> None:
        from django.core.signing import b62_encode

        self.timestamp = b62_encode(int(time.time()))
        self._keys: dict[str, bytes] = {}

    def _key(self, salt: str) -> bytes:
        key = self._keys.get(salt)
        if key is None:
            secret = settings.SECRET_KEY.encode()
            key = self._keys[salt] = hashlib.sha256((salt + "signer").encode() + secret).digest()
        return key

    def dumps(self, value: int | str, *, salt: str) -> str:
        data = json.dumps(value, separators=(",", ":")).encode("latin-1")
        signed = f"{_b64(data)}:{self.timestamp}"
        mac = hmac.new(self._key(salt), signed.encode(), hashlib.sha256).digest()
        return f"{signed}:{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).strip(b"=").decode()


def personal_values(
    recipient: Recipient, signer: BatchSigner | None = None, *, language: str = "de"
) -> dict[str, str]:
    unsubscribe, preferences = _url_prefixes(settings.SITE_URL, digest_language(language))
    confirmed = recipient.confirmed_at
    if signer is None:
        unsubscribe_token = make_unsubscribe_token(recipient.subscription_id)
        preferences_token = make_preferences_token(
            recipient.subscription_id, recipient.address_hmac
        )
    else:
        unsubscribe_token = signer.dumps(recipient.subscription_id, salt=UNSUBSCRIBE)
        preferences_token = signer.dumps(
            preferences_token_value(recipient.subscription_id, recipient.address_hmac),
            salt=PREFERENCES,
        )
    return {
        "unsubscribe_url": unsubscribe.replace(_TOKEN, unsubscribe_token),
        "preferences_url": preferences.replace(_TOKEN, preferences_token),
        "consent_date": mail_date(confirmed, language) if confirmed else "",
    }


def message_id_domain(newsletter: Newsletter) -> str:
    return (newsletter.sender_email.rpartition("@")[2] or "localhost").strip()


def personal_headers(*, digest: Digest, recipient: Recipient, values: dict[str, str]) -> dict:
    """The one List-Unsubscribe (HTTPS, optional mailto) and a Message-ID unique per delivery."""
    targets = [f"<{values['unsubscribe_url']}>"]
    mailto = getattr(settings, "NEWSLETTER_UNSUBSCRIBE_MAILTO", "")
    if mailto:
        targets.append(f"<mailto:{mailto}?subject=unsubscribe-{recipient.subscription_id}>")
    domain = message_id_domain(digest.newsletter)
    return {
        "List-Unsubscribe": ", ".join(targets),
        "Message-ID": f"<digest.{digest.pk}.{recipient.delivery_id}@{domain}>",
    }


def common_headers(digest: Digest) -> dict[str, str]:
    newsletter = digest.newsletter
    list_id = f"{newsletter.slug}.{message_id_domain(newsletter)}"
    return {
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{header_safe(newsletter.name)} <{list_id}>",
    }


def _sender(newsletter: Newsletter) -> str:
    from email.utils import formataddr

    return formataddr((header_safe(newsletter.sender_name), newsletter.sender_email))


def _tracking_off(message: AnymailMessage) -> None:
    allow_clicks = getattr(settings, "NEWSLETTER_TRACK_CLICKS", False)
    message.track_opens = False
    message.track_clicks = bool(allow_clicks)


def digest_message_batch(
    *, digest: Digest, batch_id: int, language: str, recipients: list[Recipient]
) -> AnymailMessage:
    """One anymail message for a whole batch: the provider fills in the placeholders."""
    rendered = digest_rendered(digest_id=digest.pk, language=language)
    newsletter = digest.newsletter
    merge_data, merge_headers, merge_metadata = {}, {}, {}
    signer = BatchSigner()
    ref_signer = delivery_ref_signer()
    for recipient in recipients:
        values = personal_values(recipient, signer, language=language)
        merge_data[recipient.email] = values
        merge_headers[recipient.email] = personal_headers(
            digest=digest, recipient=recipient, values=values
        )
        # Webhooks name the delivery by this signed reference, never by a guessable id.
        merge_metadata[recipient.email] = {
            "delivery_ref": make_delivery_ref(recipient.delivery_id, ref_signer)
        }
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=_sender(newsletter),
        to=[r.email for r in recipients],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=common_headers(digest),
    )
    message.attach_alternative(rendered.html, "text/html")
    message.merge_data = merge_data
    message.merge_headers = merge_headers
    message.merge_metadata = merge_metadata
    message.metadata = {"digest_id": str(digest.pk), "batch_id": str(batch_id)}
    message.tags = ["digest"]
    _tracking_off(message)
    return message


def substitute(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(placeholder(key), value)
    return template


def digest_message_single(
    *, digest: Digest, batch_id: int, language: str, recipient: Recipient
) -> EmailMultiAlternatives:
    """One message for one recipient (SMTP and providers without batch sending)."""
    rendered = digest_rendered(digest_id=digest.pk, language=language)
    newsletter = digest.newsletter
    values = personal_values(recipient, language=language)
    headers = {
        **common_headers(digest),
        **personal_headers(digest=digest, recipient=recipient, values=values),
    }
    message = AnymailMessage(
        subject=rendered.subject,
        body=substitute(rendered.text, values),
        from_email=_sender(newsletter),
        to=[recipient.email],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=headers,
    )
    message.attach_alternative(substitute(rendered.html, values), "text/html")
    message.metadata = {
        "digest_id": str(digest.pk),
        "batch_id": str(batch_id),
        "delivery_ref": make_delivery_ref(recipient.delivery_id),
    }
    message.tags = ["digest"]
    _tracking_off(message)
    return message


def digest_preview_html(*, digest: Digest, language: str, confirmed_at: datetime | None) -> str:
    """The HTML part as a reader of `language` gets it, but with inert links in place of the
    personal ones: whoever looks at a preview must never get a way into a reader's
    subscription (unsubscribe, preferences, export, erasure)."""
    rendered = digest_rendered(digest_id=digest.pk, language=language)
    return substitute(rendered.html, preview_values(confirmed_at))


def preview_values(confirmed_at: datetime | None) -> dict[str, str]:
    """Visibly inert stand-ins for the personal values (fragment links lead nowhere)."""
    confirmed = confirmed_at or timezone.now()
    return {
        "unsubscribe_url": PREVIEW_UNSUBSCRIBE_URL,
        "preferences_url": PREVIEW_PREFERENCES_URL,
        "consent_date": confirmed.astimezone(BERLIN).strftime("%d.%m.%Y"),
    }
