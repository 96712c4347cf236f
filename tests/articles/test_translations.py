"""Articles with an English translation beside the German original: pages, alternates,
feeds, sitemap, topics; untranslated text on English pages is marked as German."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from articles.models import ArticleTranslation
from articles.services import article_translation_save
from tests.articles.factories import ArticleFactory, TopicFactory, english_translation_save

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold():
    topic = TopicFactory(name="Edelmetalle", slug="edelmetalle", name_en="Precious metals")
    article = ArticleFactory(
        title="Gold als Versicherung",
        slug="gold-als-versicherung",
        lead="Warum Anleger Gold halten.",
        topics=[topic],
    )
    english_translation_save(
        article,
        title="Gold as insurance",
        slug="gold-as-insurance",
        lead="Why investors hold gold.",
        body_markdown="## Heading\n\nThe English text.",
        meta_description="Gold, explained.",
    )
    return article


def test_english_page_shows_the_translation_under_its_own_slug(client, gold):
    html = client.get("/en/artikel/gold-as-insurance/").content.decode()
    assert '<html lang="en">' in html
    assert '<article class="article" lang="en">' in html
    assert "Gold as insurance" in html and "The English text." in html
    assert "Gold als Versicherung" not in html
    assert '<meta name="description" content="Gold, explained.">' in html
    assert 'rel="canonical" href="http://testserver/en/artikel/gold-as-insurance/"' in html
    assert ">Precious metals</a>" in html
    # The alternates name each language's own slug, absolute (search engines ignore others),
    # and the German original as the default for readers of any other language.
    assert 'hreflang="de" href="http://testserver/artikel/gold-als-versicherung/"' in html
    assert 'hreflang="x-default" href="http://testserver/artikel/gold-als-versicherung/"' in html
    assert 'hreflang="en" href="http://testserver/en/artikel/gold-as-insurance/"' in html
    german = client.get("/artikel/gold-als-versicherung/").content.decode()
    assert 'hreflang="en" href="http://testserver/en/artikel/gold-as-insurance/"' in german
    assert "Gold as insurance" not in german and ">Edelmetalle</a>" in german


def test_the_german_slug_under_en_shows_the_translation_too(client, gold):
    html = client.get("/en/artikel/gold-als-versicherung/").content.decode()
    assert "Gold as insurance" in html
    assert 'rel="canonical" href="http://testserver/en/artikel/gold-as-insurance/"' in html


def test_an_untranslated_article_on_an_english_page_is_marked_german(client):
    ArticleFactory(title="Nur auf Deutsch", slug="nur-deutsch")
    html = client.get("/en/artikel/nur-deutsch/").content.decode()
    assert '<html lang="en">' in html
    assert '<article class="article" lang="de">' in html
    listing = client.get("/en/").content.decode()
    assert re.search(r'<article class="card" lang="de">\s*.*?Nur auf Deutsch', listing, re.S)


def test_english_list_topic_and_feeds_use_the_translation(client, gold):
    listing = client.get("/en/").content.decode()
    assert '<article class="card" lang="en">' in listing
    assert 'href="/en/artikel/gold-as-insurance/"' in listing
    topic = client.get("/en/thema/edelmetalle/").content.decode()
    assert "Topic: Precious metals" in topic or "Precious metals" in topic
    assert "Gold as insurance" in topic
    root = ET.fromstring(client.get("/en/feed/rss/").content)
    item = root.find("./channel/item")
    assert item.findtext("title") == "Gold as insurance"
    assert item.findtext("link").endswith("/en/artikel/gold-as-insurance/")
    german = ET.fromstring(client.get("/feed/rss/").content)
    assert german.find("./channel/item").findtext("title") == "Gold als Versicherung"


def test_sitemap_lists_each_language_under_its_own_slug(client, gold):
    xml = client.get("/sitemap.xml").content.decode()
    assert "http://testserver/artikel/gold-als-versicherung/" in xml
    assert "http://testserver/en/artikel/gold-as-insurance/" in xml
    assert "/en/artikel/gold-als-versicherung/" not in xml


def test_one_translation_per_language_and_slugs_unique_per_language(gold):
    with pytest.raises(ValidationError, match="schon eine Übersetzung"):
        article_translation_save(
            translation=ArticleTranslation(
                article=gold, language="en", title="x", slug="x", body_markdown="x"
            )
        )
    other = ArticleFactory(slug="silber")
    with pytest.raises(ValidationError, match="Kurznamen"):
        article_translation_save(
            translation=ArticleTranslation(
                article=other, language="en", title="x", slug="gold-as-insurance", body_markdown="x"
            )
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ArticleTranslation.objects.create(
            article=other, language="de", title="x", slug="y", body_markdown="x"
        )


def test_a_new_translation_shows_at_once_on_cached_pages(
    client, django_capture_on_commit_callbacks
):
    article = ArticleFactory(title="Zinsen", slug="zinsen")
    assert "Zinsen" in client.get("/en/artikel/zinsen/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        article_translation_save(
            translation=ArticleTranslation(
                article=article, language="en", title="Rates", slug="rates", body_markdown="Text"
            )
        )
    html = client.get("/en/artikel/zinsen/").content.decode()
    assert "Rates" in html


def test_untranslated_topic_words_on_an_english_page_are_marked_german(client, gold):
    plain = TopicFactory(name="Geldpolitik", slug="geldpolitik", description="Zinsen und Geld.")
    ArticleFactory(slug="zinsen", topics=[plain])
    html = client.get("/en/thema/geldpolitik/").content.decode()
    assert '<h1>Topic: <span lang="de">Geldpolitik</span></h1>' in html
    assert '<p class="lead" lang="de">Zinsen und Geld.</p>' in html
    assert 'href="/en/thema/geldpolitik/" lang="de">Geldpolitik</a>' in html
    # A translated topic speaks the page's language everywhere it is named.
    html = client.get("/en/thema/edelmetalle/").content.decode()
    assert '<h1>Topic: <span lang="en">Precious metals</span></h1>' in html
    assert 'href="/en/thema/edelmetalle/" lang="en">Precious metals</a>' in html
