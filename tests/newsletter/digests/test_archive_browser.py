"""The public digest archive in Chromium, as a German and an English reader find it: from the
navigation, each issue named in the reader's language, English translations where present, on a
phone without sideways scrolling. With SCREENSHOT_DIR set, each page is saved there as a PNG."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from articles.models import Article
from newsletter.emails.digest import digest_subject
from newsletter.models import Digest, DigestState
from newsletter.services import digests
from newsletter.services.digests import digest_start_now

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

READERS = {
    "de": {
        "locale": "de-DE",
        "home": "/",
        "nav": "Newsletter-Archiv",
        "subject": "neue Artikel vom",
        "title": "Zinsen steigen",
        "all": "Alle Ausgaben",
    },
    "en": {
        "locale": "en-GB",
        "home": "/en/",
        "nav": "Newsletter archive",
        "subject": "new articles,",
        "title": "Rates are rising",
        "all": "All issues",
    },
}


@pytest.fixture
def archive(newsletter_with_articles, rates_in_english, monkeypatch):
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: None)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.DONE, finished_at=timezone.now())
    # An issue from before English subjects were stored: named from the English template.
    older = Digest.objects.get(pk=digest.pk)
    older.pk, older.slot, older.subject_en = None, older.slot - timedelta(days=1), ""
    older.subject = digest_subject(
        newsletter=older.newsletter,
        articles=list(Article.objects.filter(pk__in=older.article_ids)),
        slot=older.slot,
    )
    older.save()
    return digest


def fits(page) -> None:
    scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, (page.url, scroll, inner)


def shoot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("language", ["de", "en"])
def test_readers_find_the_archive_and_read_it_in_their_language(
    browser_pages, live_server, archive, language, width
):
    words = READERS[language]
    page = browser_pages(locale=words["locale"], width=width)
    page.goto(live_server.url + words["home"])
    page.locator(".topic-nav").get_by_role("link", name=words["nav"]).click()
    page.wait_for_selector("ul.digest-archive")
    assert page.evaluate("() => document.documentElement.lang") == language
    issues = page.locator("ul.digest-archive > li")
    assert issues.count() == 2
    for i in range(2):
        assert words["subject"] in issues.nth(i).inner_text()
    fits(page)
    shoot(page, f"archive-list-{language}-{width}")
    issues.first.get_by_role("link").click()
    page.wait_for_selector("article.digest h1")
    assert words["subject"] in page.locator("h1").inner_text()
    heading = page.locator("article.digest h2", has_text=words["title"])
    assert heading.get_attribute("lang") == language
    # The untranslated article keeps its German words, marked as German.
    assert (
        page.locator("article.digest h2", has_text="Energie im Wandel").get_attribute("lang")
        == "de"
    )
    assert page.get_by_role("link", name=words["all"]).is_visible()
    fits(page)
    shoot(page, f"archive-detail-{language}-{width}")
