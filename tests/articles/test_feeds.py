"""Feeds carry the disclaimer; the sitemap and robots.txt point crawlers at live pages only."""

import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from articles.services import article_withdraw
from tests.articles.factories import ArticleFactory, DraftArticleFactory, TopicFactory

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


def test_rss_items_carry_the_disclaimer(client, default_disclaimer):
    article = ArticleFactory(disclaimer_version=default_disclaimer, title="Gold & Silber")
    DraftArticleFactory(title="Entwurf bleibt intern")
    response = client.get(reverse("articles:feed_rss"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    root = ET.fromstring(response.content)
    items = root.findall("./channel/item")
    assert [item.findtext("title") for item in items] == ["Gold & Silber"]
    description = items[0].findtext("description")
    assert default_disclaimer.text_de in description
    assert "<h2>Überschrift</h2>" in description
    assert items[0].findtext("link").endswith(article.get_absolute_url())


def test_atom_feed_in_english_uses_the_english_disclaimer(client, default_disclaimer):
    ArticleFactory(disclaimer_version=default_disclaimer)
    response = client.get("/en" + reverse("articles:feed_atom"))
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 1
    assert default_disclaimer.text_en in entries[0].findtext(f"{ATOM}summary")


@pytest.mark.parametrize("kind", ["topic_feed_rss", "topic_feed_atom"])
def test_topic_feeds_list_only_the_topic(client, kind):
    gold, tech = TopicFactory(name="Edelmetalle"), TopicFactory(name="Technologie")
    ArticleFactory(title="Über Gold", topics=[gold])
    ArticleFactory(title="Über Chips", topics=[tech])
    response = client.get(reverse(f"articles:{kind}", kwargs={"slug": gold.slug}))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Über Gold" in body and "Über Chips" not in body
    assert "Edelmetalle" in body


def test_sitemap_lists_live_articles_topics_and_pages_in_both_languages(client):
    topic = TopicFactory()
    live = ArticleFactory(topics=[topic])
    gone = ArticleFactory()
    article_withdraw(article=gone, reason="Test")
    draft = DraftArticleFactory()
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    body = response.content.decode()
    assert f"http://testserver{live.get_absolute_url()}" in body
    assert f"http://testserver/en{live.get_absolute_url()}" in body
    assert topic.get_absolute_url() in body
    assert reverse("articles:impressum") in body
    assert gone.slug not in body and draft.slug not in body


def test_robots_txt_points_to_the_sitemap(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "User-agent: *" in text
    assert "Sitemap: http://testserver/sitemap.xml" in text
    assert "Disallow: /vorschau/" in text
