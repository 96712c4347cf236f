"""A reader opens an article in a real Chromium and sees the disclaimer and the dated byline."""

from datetime import datetime

import pytest
from django.utils import timezone

from tests.articles.factories import (
    SEED_NOTE,
    ArticleFactory,
    AuthorFactory,
    DisclaimerVersionFactory,
    TopicFactory,
)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_reader_sees_article_with_disclaimer_and_byline(browser_page, live_server):
    # Its own disclaimer rather than the migration's: transactional tests flush the tables.
    disclaimer = DisclaimerVersionFactory(text_de=SEED_NOTE)
    topic = TopicFactory(name="Technologie", slug="technologie")
    article = ArticleFactory(
        title="Chinas KI-Charmeoffensive",
        published_at=timezone.make_aware(datetime(2025, 7, 25, 6, 11)),
        disclaimer_version=disclaimer,
        topics=[topic],
    )
    article.authors.set([AuthorFactory(name="Mira Yilmaz")])
    related = ArticleFactory(title="Europas Chips", topics=[topic])

    browser_page.goto(live_server.url + "/")
    browser_page.get_by_role("link", name="Chinas KI-Charmeoffensive").click()
    browser_page.wait_for_url(f"**{article.get_absolute_url()}")

    assert browser_page.get_by_role("heading", level=1).inner_text() == article.title
    assert browser_page.locator("time.byline-time").inner_text() == "25.07.2025 06:11 Uhr"
    disclaimer_box = browser_page.get_by_role("complementary", name="Hinweis")
    assert disclaimer_box.inner_text().strip() == disclaimer.text_de
    assert browser_page.get_by_role("heading", name="Wissenswertes zum Thema").is_visible()
    assert browser_page.get_by_role("link", name=related.title).is_visible()

    # Stylesheet served and applied: the disclaimer box has its background colour.
    background = disclaimer_box.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")

    browser_page.get_by_role("link", name="English").click()
    browser_page.wait_for_url("**/en/**")
    assert disclaimer.text_en in browser_page.get_by_role("complementary").first.inner_text()
