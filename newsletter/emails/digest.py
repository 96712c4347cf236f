"""The digest mail: rendered once per digest and language, personalised by string substitution.

The rendered subject, text and HTML carry Mailgun-style placeholders (``%recipient.key%``). A
batch-capable provider (Mailgun) substitutes them itself from the message's ``merge_data``; for
every other backend `digest_message_single` replaces them here with plain ``str.replace``. The
per-recipient parts are only the unsubscribe and preference links and the consent date, so the
costly template render happens once per (digest, language) and process.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import make_msgid
from functools import lru_cache
from zoneinfo import ZoneInfo

from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext

from articles.markdown import render_markdown
from articles.pictures import BodyPictures, picture_file, pictures_flattened
from articles.selectors import article_list_by_ids, articles_localize
from articles.templatetags.article_tags import byline_time
from newsletter.emails.consent import legal_links
from newsletter.emails.layout import brand_context, html_inline
from newsletter.languages import LANGUAGE_PARAM
from newsletter.models import Digest, MailingKind, Newsletter
from newsletter.selectors.digests import digest_articles
from newsletter.tokens import (
    LinkSigners,
    delivery_ref_signer,
    make_delivery_ref,
    make_preferences_token,
    make_unsubscribe_token,
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
    return _mail_day(value.astimezone(BERLIN).date(), language)


@lru_cache(maxsize=4096)
def _mail_day(day: date, language: str) -> str:
    # Once per day and language and process: every reader of a batch has a consent date, and
    # switching the language for each of them cost more than signing their links.
    with translation.override(digest_language(language)):
        # Translators: a PHP-style date format (Django's `date` filter) for dates in mails.
        fmt = pgettext("mail date format", "d.m.Y")
        return dateformat.format(day, fmt)


def digest_subject(
    *, newsletter: Newsletter, articles: list, slot: datetime, language: str = "de"
) -> str:
    """The editor's template of the language filled in; an unusable template falls back to a
    plain subject."""
    first = (
        articles_localize([copy.copy(articles[0])], language=digest_language(language))[0]
        if articles
        else None
    )
    return subject_fill(
        newsletter=newsletter,
        count=len(articles),
        first_title=first.title if first else "",
        slot=slot,
        language=language,
    )


def subject_fill(
    *, newsletter: Newsletter, count: int, first_title: str, slot: datetime, language: str
) -> str:
    values = {
        "newsletter": newsletter.name,
        "count": count,
        "date": mail_date(slot, language),
        "first_title": first_title,
    }
    try:
        subject = newsletter.subject_template_for(language).format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError):
        subject = f"{newsletter.name}: {values['date']}"
    return header_safe(subject)[:300]


def digest_subjects_localize(digests: list[Digest], *, language: str) -> list[Digest]:
    """Each mailing with `display_subject` and `display_date` as readers of `language` got
    them. A digest from before English subjects were stored fills in its English template,
    with the first articles of all such digests (and their translations) read at once."""
    language = digest_language(language)
    legacy = [
        d
        for d in digests
        if language == "en" and not d.subject_en and d.kind == MailingKind.DIGEST and d.article_ids
    ]
    firsts = {
        article.pk: article
        for article in articles_localize(
            article_list_by_ids([d.article_ids[0] for d in legacy]) if legacy else [],
            language=language,
        )
    }
    for digest in digests:
        digest.display_subject = digest.subject_for(language)
        digest.display_date = mail_date(digest.slot, language)
    for digest in legacy:
        first = firsts.get(digest.article_ids[0])
        digest.display_subject = subject_fill(
            newsletter=digest.newsletter,
            count=len(digest.article_ids),
            first_title=first.title if first else "",
            slot=digest.slot,
            language=language,
        )
    return digests


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
                    "image": _mail_image(article),
                    # Untranslated articles keep their German words, marked as German.
                    "language": article.text_language,
                }
            )
    return items


# Mail is read in a column of about 600 px; the 1200 px rendition is sharp on dense screens.
MAIL_IMAGE_WIDTH = 600


def _mail_image(article) -> dict | None:
    """The feature image as JPEG (mail clients do not all show WebP), absolute URL, scaled
    to the mail's column with its height, so the layout does not jump while it loads."""
    if not article.feature_image_id:
        return None
    picture = picture_file(article.feature_image, min_width=MAIL_IMAGE_WIDTH * 2)
    width = min(MAIL_IMAGE_WIDTH, picture.width)
    return {
        "url": picture.url,
        "alt": picture.alt,
        "width": width,
        "height": round(picture.height * width / picture.width),
        "caption": article.feature_image.caption,
        "credit": article.feature_image.credit,
    }


def digest_render(
    *,
    digest: Digest,
    articles: list,
    language: str,
    personal: bool = True,
    test_note: str = "",
) -> Rendered:
    """Render subject, text and HTML once, CSS inlined; personal parts are placeholders (or
    left out). A campaign's mailing shows the campaign's Markdown and its quoted article (with
    the article's disclaimer); a digest its articles."""
    newsletter = digest.newsletter
    campaign = digest.campaign if digest.kind == MailingKind.CAMPAIGN else None
    # Both subjects are frozen on the mailing when it is created; a digest from before English
    # subjects were stored fills in its English template as it always did.
    subject = digest.subject_for(language)
    if campaign is None and digest_language(language) == "en" and not digest.subject_en:
        subject = digest_subject(
            newsletter=newsletter, articles=articles, slot=digest.slot, language=language
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
        "test_note": test_note,
        **brand_context(newsletter),
    }
    template = "digest"
    if campaign is not None:
        template = "campaign"
        # Without an English version, English readers get the German text, marked as German
        # inside their English mail (footer, links and dates stay theirs).
        body = campaign.body_markdown_for(language)
        context.update(
            body_html=pictures_flattened(
                render_markdown(body, pictures=BodyPictures.for_texts(body)),
                max_width=MAIL_IMAGE_WIDTH,
            ),
            body_text=body,
            body_language=campaign.text_language(language),
            preheader=campaign.preheader_for(language),
        )
    with translation.override(language):
        context.update(legal_links(newsletter))
        text = render_to_string(f"newsletter/email/{template}_body.txt", context)
        html = render_to_string(f"newsletter/email/{template}_body.html", context)
    return Rendered(subject=subject, text=text, html=html_inline(html))


@lru_cache(maxsize=64)
def _cached_render(digest_id: int, language: str) -> Rendered:
    digest = Digest.objects.select_related("newsletter", "campaign").get(pk=digest_id)
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


def personal_values(
    recipient: Recipient, signers: LinkSigners | None = None, *, language: str = "de"
) -> dict[str, str]:
    unsubscribe, preferences = _url_prefixes(settings.SITE_URL, digest_language(language))
    confirmed = recipient.confirmed_at
    unsubscribe_token = make_unsubscribe_token(recipient.subscription_id, signers)
    preferences_token = make_preferences_token(
        recipient.subscription_id, recipient.address_hmac, signers
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


def newsletter_sender(newsletter: Newsletter) -> str:
    """The newsletter's From: its sender name (one header line) and address."""
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
    signers = LinkSigners()
    ref_signer = delivery_ref_signer()
    for recipient in recipients:
        values = personal_values(recipient, signers, language=language)
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
        from_email=newsletter_sender(newsletter),
        to=[r.email for r in recipients],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=common_headers(digest),
    )
    message.attach_alternative(rendered.html, "text/html")
    message.merge_data = merge_data
    message.merge_headers = merge_headers
    message.merge_metadata = merge_metadata
    message.metadata = {"digest_id": str(digest.pk), "batch_id": str(batch_id)}
    message.tags = [digest.kind]
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
        from_email=newsletter_sender(newsletter),
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
    message.tags = [digest.kind]
    _tracking_off(message)
    return message


def mailing_preview_html(*, digest: Digest, language: str, confirmed_at: datetime | None) -> str:
    """The HTML part as a reader of `language` gets it, but with inert links in place of the
    personal ones: whoever looks at a preview must never get a way into a reader's
    subscription (unsubscribe, preferences, export, erasure). `digest` may be a draft that
    is not saved yet (nothing exists for sending before the manager confirms)."""
    rendered = digest_render(
        digest=digest, articles=digest_articles(digest=digest, live_only=False), language=language
    )
    return substitute(rendered.html, preview_values(confirmed_at, language))


def mailing_test_message(*, digest: Digest, email: str, language: str) -> AnymailMessage:
    """A test of a mailing (saved or a draft) to one address: marked as a test in subject and
    body, with the same inert links as the preview (a test address has no subscription whose
    link could work), no List-Unsubscribe, and nothing recorded anywhere."""
    with translation.override(language):
        note = str(
            _("Testversand: Die Links zum Abmelden und zu den Einstellungen sind ohne Funktion.")
        )
    rendered = digest_render(
        digest=digest,
        articles=digest_articles(digest=digest, live_only=False),
        language=language,
        test_note=note,
    )
    values = preview_values(None, language)
    newsletter = digest.newsletter
    message = AnymailMessage(
        subject=f"[Test] {rendered.subject}",
        body=substitute(rendered.text, values),
        from_email=newsletter_sender(newsletter),
        to=[email],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers={"Message-ID": make_msgid(domain="mailing-test.invalid")},
    )
    message.attach_alternative(substitute(rendered.html, values), "text/html")
    message.metadata = {"test": "1"}
    message.tags = ["test"]
    _tracking_off(message)
    return message


def preview_values(confirmed_at: datetime | None, language: str = "de") -> dict[str, str]:
    """Visibly inert stand-ins for the personal values (fragment links lead nowhere); the
    consent date as the reader of `language` would see it."""
    return {
        "unsubscribe_url": PREVIEW_UNSUBSCRIBE_URL,
        "preferences_url": PREVIEW_PREFERENCES_URL,
        "consent_date": mail_date(confirmed_at or timezone.now(), language),
    }
