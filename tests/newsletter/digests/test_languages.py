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


def test_the_english_digest_uses_english_translations_and_marks_the_rest_german(
    digest, rates_in_english
):
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


@pytest.fixture
def archived(digest, rates_in_english):
    from newsletter.models import Digest, DigestState

    Digest.objects.filter(pk=digest.pk).update(state=DigestState.DONE, finished_at=timezone.now())
    digest.refresh_from_db()
    return digest


@pytest.mark.parametrize(
    ("prefix", "language", "subject", "date", "other"),
    [
        (
            "",
            "de",
            "Meinung am Morgen: 2 neue Artikel vom 30.11.2026",
            "30.11.2026",
            "new articles",
        ),
        (
            "/en",
            "en",
            "Meinung am Morgen: 2 new articles, 30 November 2026",
            "30 November 2026",
            "neue Artikel",
        ),
    ],
)
def test_the_archive_names_each_issue_in_the_readers_language(
    client, archived, prefix, language, subject, date, other
):
    html = client.get(f"{prefix}/newsletter/archiv/").content.decode()
    assert f'<html lang="{language}">' in html
    assert subject in html and date in html and other not in html
    detail = client.get(f"{prefix}/newsletter/archiv/{archived.pk}/").content.decode()
    assert f'<html lang="{language}">' in detail
    assert f"<h1>{subject}</h1>" in detail and other not in detail


def test_the_english_archive_lists_translations_and_marks_the_rest_german(client, archived):
    html = client.get(f"/en/newsletter/archiv/{archived.pk}/").content.decode()
    assert '<h2 lang="en"><a href="http://testserver/en/artikel/rates-are-rising/">' in html
    assert '<p lang="en">Why that is good.</p>' in html
    assert re.search(r'<h2 lang="de"><a href="[^"]+">Energie im Wandel<', html)
    assert "Uhr" not in html and "Zinsen steigen" not in html
    german = client.get(f"/newsletter/archiv/{archived.pk}/").content.decode()
    assert '<h2 lang="de"><a href="http://testserver/artikel/' in german
    assert "Zinsen steigen" in german and "Rates are rising" not in german


def test_an_issue_from_before_english_subjects_were_stored_gets_its_english_one(client, archived):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from articles.models import Article
    from newsletter.models import Digest

    archived.newsletter.subject_template_en = "{newsletter}: {first_title} and more, {date}"
    archived.newsletter.save()
    Digest.objects.filter(pk=archived.pk).update(subject_en="")
    first = Article.objects.get(pk=archived.article_ids[0]).title
    title = {"Zinsen steigen": "Rates are rising"}.get(first, first)
    client.get("/en/newsletter/archiv/")  # warms what every page reads (navigation, box)

    def archive_reads(issues: int) -> int:
        for back in range(Digest.objects.count(), issues):
            older = Digest.objects.get(pk=archived.pk)
            older.pk, older.slot = None, older.slot - timezone.timedelta(days=back)
            older.save()
        with CaptureQueriesContext(connection) as counted:
            html = client.get("/en/newsletter/archiv/").content.decode()
        assert html.count(f"Meinung am Morgen: {title} and more,") == issues
        return len(counted.captured_queries)

    # The first articles of all such issues and their translations are read at once.
    assert archive_reads(1) == archive_reads(4)


def test_the_archive_lists_digests_not_campaigns(client, archived, newsletter_with_articles):
    from newsletter.models import Campaign, Digest, DigestState
    from newsletter.services.mailings import campaign_send

    campaign = Campaign.objects.create(
        newsletter=newsletter_with_articles,
        name="Angebot",
        subject="Unser Jahresangebot",
        article_id=archived.article_ids[0],
    )
    mailing = campaign_send(campaign_id=campaign.pk)
    Digest.objects.filter(pk=mailing.pk).update(state=DigestState.DONE)
    assert "Jahresangebot" not in client.get("/newsletter/archiv/").content.decode()
    assert client.get(f"/newsletter/archiv/{mailing.pk}/").status_code == 404


def test_the_sitemap_lists_signup_and_archive_pages_in_both_languages(client, archived):
    from newsletter.models import Digest, DigestState

    unsent = Digest.objects.get(pk=archived.pk)
    unsent.pk, unsent.slot, unsent.state = None, unsent.slot.replace(year=2027), DigestState.PAUSED
    unsent.save()
    xml = client.get("/sitemap.xml").content.decode()
    for path in (
        "/newsletter/anmelden/",
        "/newsletter/archiv/",
        f"/newsletter/archiv/{archived.pk}/",
    ):
        assert f"<loc>http://testserver{path}</loc>" in xml
        assert f"<loc>http://testserver/en{path}</loc>" in xml
        assert f'hreflang="en" href="http://testserver/en{path}"' in xml
    assert f"/newsletter/archiv/{unsent.pk}/" not in xml
