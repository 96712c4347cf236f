"""An English reader's digest is English from subject to date; a German one as before."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from newsletter.emails.digest import Recipient, digest_message_single
from newsletter.models import Frequency
from newsletter.services.digests import digest_create

pytestmark = pytest.mark.django_db

SLOT = datetime(2026, 11, 30, 7, 0, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.fixture
def digest(newsletter_with_articles, monkeypatch):
    from newsletter.services import digests

    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    newsletter_with_articles.starts_at = SLOT - timezone.timedelta(days=3)
    newsletter_with_articles.save()
    return digest_create(
        newsletter=newsletter_with_articles, frequency=Frequency.DAILY, slot=SLOT
    ).digest


def _message(digest, language):
    recipient = Recipient(
        delivery_id=1,
        subscription_id=7,
        email="reader@example.org",
        address_hmac="k",
        confirmed_at=SLOT - timezone.timedelta(days=40),
    )
    return digest_message_single(digest=digest, batch_id=1, language=language, recipient=recipient)


@pytest.mark.parametrize(
    ("language", "subject", "words", "dates"),
    [
        (
            "de",
            "Meinung am Morgen: 2 neue Artikel vom 30.11.2026",
            ["Weiterlesen", "Abmelden"],
            ["30.11.2026", "21.10.2026"],
        ),
        (
            "en",
            "Meinung am Morgen: 2 new articles, 30 November 2026",
            ["Read more", "Unsubscribe"],
            ["30 November 2026", "21 October 2026"],
        ),
    ],
)
def test_digest_subject_lang_dates_and_links_follow_the_readers_language(
    digest, language, subject, words, dates
):
    message = _message(digest, language)
    html = message.alternatives[0][0]
    assert message.subject == subject
    assert f'<html lang="{language}">' in html
    for text in (message.body, html):
        for word in words + dates:
            assert word in text, (language, word)
    links = re.findall(r"https?://\S+/n/(?:abmelden|einstellungen)/[^\s\"<>]+", html)
    assert links and all(link.endswith(f"?lang={language}") for link in links)
    assert message.extra_headers["List-Unsubscribe"].endswith(f"?lang={language}>")


def test_the_german_subject_stays_the_digests_stored_one(digest):
    assert digest.subject == "Meinung am Morgen: 2 neue Artikel vom 30.11.2026"


def test_the_english_digest_uses_english_translations_and_marks_the_rest_german(digest):
    from articles.models import Article, ArticleTranslation
    from articles.services import article_translation_save

    translated = Article.objects.get(title="Zinsen steigen")
    article_translation_save(
        translation=ArticleTranslation(
            article=translated,
            language="en",
            title="Rates are rising",
            slug="rates-are-rising",
            lead="Why that is good.",
            body_markdown="Text",
        )
    )
    from newsletter.emails import digest as digest_emails

    digest_emails._cached_render.cache_clear()
    english = _message(digest, "en")
    html = english.alternatives[0][0]
    # The mail's CSS is inlined: each tag may carry a style attribute, nothing else.
    style = r'(?: style="[^"]*")?'
    assert re.search(
        rf'<h2 lang="en"{style}><a href="http://testserver/en/artikel/rates-are-rising/"{style}>',
        html,
    )
    assert "Why that is good." in english.body
    assert re.search(rf'<h2 lang="de"{style}>', html) and "Energie im Wandel" in html
    german = _message(digest, "de").alternatives[0][0]
    assert "Zinsen steigen" in german and "Rates are rising" not in german
