"""The public pages: what readers see, odd input, fixed query counts and cache invalidation."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.models import ArticleKind
from articles.services import (
    article_correct,
    article_publish,
    article_withdraw,
)
from tests.articles.factories import (
    ArticleFactory,
    AuthorFactory,
    DraftArticleFactory,
    TopicFactory,
)

pytestmark = pytest.mark.django_db
SEED_MOMENT = timezone.make_aware(datetime(2025, 7, 25, 6, 11))


def _get(client, url):
    response = client.get(url)
    return response, response.content.decode()


def test_article_page_shows_byline_disclaimer_and_related(client, default_disclaimer):
    gold = TopicFactory(name="Edelmetalle", slug="edelmetalle")
    other = TopicFactory(name="Sonstiges", slug="sonstiges")
    article = ArticleFactory(
        title="Chinas KI-Charmeoffensive",
        published_at=SEED_MOMENT,
        topics=[gold],
        disclaimer_version=default_disclaimer,
        lead="Der Vorspann.",
        meta_description="Kurz gesagt.",
    )
    article.authors.set([AuthorFactory(name="Lena Hartmann"), AuthorFactory(name="Jonas Berger")])
    related = [
        ArticleFactory(topics=[gold], published_at=SEED_MOMENT - timedelta(hours=n))
        for n in range(1, 7)
    ]
    unrelated = ArticleFactory(topics=[other])

    response, html = _get(client, article.get_absolute_url())
    assert response.status_code == 200
    assert "25.07.2025 06:11 Uhr" in html
    assert "Lena Hartmann" in html and "Jonas Berger" in html
    assert default_disclaimer.text_de in html
    assert "Wissenswertes zum Thema" in html
    for shown in related[:4]:
        assert shown.title in html
    for hidden in [*related[4:], unrelated]:
        assert hidden.title not in html
    assert '<link rel="canonical" href="http://testserver/artikel/' in html
    assert '<meta property="og:title" content="Chinas KI-Charmeoffensive">' in html
    assert '<meta name="description" content="Kurz gesagt.">' in html
    assert '<main id="inhalt"' in html and "<header" in html and "<footer" in html
    assert 'class="skip-link" href="#inhalt"' in html
    assert html.count("<h1") == 1


def test_article_page_in_english(client, default_disclaimer):
    article = ArticleFactory(disclaimer_version=default_disclaimer, published_at=SEED_MOMENT)
    response, html = _get(client, "/en" + article.get_absolute_url())
    assert response.status_code == 200
    assert '<html lang="en">' in html
    assert default_disclaimer.text_en in html
    assert "25 July 2025, 06:11" in html


def test_corrected_article_says_when(client):
    article = ArticleFactory()
    article_correct(article=article, lead="Korrigiert.", now=SEED_MOMENT)
    _, html = _get(client, article.get_absolute_url())
    assert "aktualisiert am 25.07.2025 06:11 Uhr" in html


def test_list_is_newest_first_and_paginated(client):
    articles = [ArticleFactory(published_at=timezone.now() - timedelta(hours=n)) for n in range(12)]
    _, first = _get(client, reverse("articles:list"))
    assert first.index(articles[0].title + "<") < first.index(articles[1].title + "<")
    assert articles[11].title + "<" not in first
    response, second = _get(client, reverse("articles:list") + "?page=2")
    assert response.status_code == 200
    assert articles[11].title + "<" in second


def test_drafts_scheduled_and_withdrawn_are_not_public(client, default_disclaimer):
    draft = DraftArticleFactory()
    scheduled = article_publish(
        article=DraftArticleFactory(), at=timezone.now() + timedelta(hours=1)
    )
    withdrawn = ArticleFactory()
    article_withdraw(article=withdrawn, reason="Test")
    _, html = _get(client, reverse("articles:list"))
    for hidden in (draft, scheduled, withdrawn):
        assert hidden.title not in html
        assert client.get(hidden.get_absolute_url()).status_code == 404


def test_topic_page_lists_only_its_articles(client):
    gold, tech = TopicFactory(name="Edelmetalle"), TopicFactory(name="Technologie")
    on_topic = ArticleFactory(topics=[gold])
    off_topic = ArticleFactory(topics=[tech])
    response, html = _get(client, gold.get_absolute_url())
    assert response.status_code == 200
    assert on_topic.title in html and off_topic.title not in html
    assert "Thema: Edelmetalle" in html


@pytest.mark.parametrize(
    "url",
    [
        "/artikel/gibt-es-nicht/",
        "/thema/gibt-es-nicht/",
        "/?page=abc",
        "/?page=0",
        "/?page=-1",
        "/?page=99999",
        "/?page=1e3",
        "/?page=" + "9" * 50,
        "/thema/gibt-es-nicht/?page=2",
        "/vorschau/999999/",
        "/thema/gibt-es-nicht/feed/rss/",
    ],
)
def test_odd_input_is_not_found_never_an_error(client, admin_client, url):
    ArticleFactory()
    assert (admin_client if "vorschau" in url else client).get(url).status_code == 404


def test_post_to_a_page_is_refused_not_crashed(client):
    assert client.post(reverse("articles:list")).status_code == 405


def test_preview_is_for_staff_only_and_never_cached(client, admin_client):
    draft = DraftArticleFactory(title="Noch geheim")
    url = reverse("articles:preview", kwargs={"pk": draft.pk})
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]

    response, html = _get(admin_client, url)
    assert response.status_code == 200
    assert "Noch geheim" in html and "Vorschau" in html
    assert "no-cache" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert '<meta name="robots" content="noindex, nofollow">' in html
    # Same template as the public page: the article markup is identical.
    assert '<article class="article" lang="de">' in html

    draft.title = "Geändert"
    draft.save()
    assert "Geändert" in admin_client.get(url).content.decode()


def test_language_switch_links_to_the_same_page(client):
    article = ArticleFactory()
    _, html = _get(client, article.get_absolute_url())
    assert f'href="/en{article.get_absolute_url()}" hreflang="en"' in html


def test_static_pages_and_footer(client):
    _, html = _get(client, reverse("articles:list"))
    assert reverse("articles:impressum") in html and reverse("articles:datenschutz") in html
    assert client.get(reverse("articles:impressum")).status_code == 200
    assert client.get(reverse("articles:datenschutz")).status_code == 200


def test_no_inline_styles_or_scripts(client):
    article = ArticleFactory(topics=[TopicFactory()])
    for url in (reverse("articles:list"), article.get_absolute_url()):
        html = client.get(url).content.decode()
        assert "style=" not in html and "<style" not in html
        # Scripts only as files (CSP script-src 'self'), never inline.
        assert not re.search(r"<script(?![^>]*\ssrc=)", html)


# --- Query counts ---------------------------------------------------------------------------


def _make(count: int, topics_each: int = 3):
    topics = [TopicFactory() for _ in range(topics_each)]
    articles = []
    for _ in range(count):
        article = ArticleFactory(topics=topics)
        article.authors.set([AuthorFactory(), AuthorFactory()])
        articles.append(article)
    return articles


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", ["list", "topic", "article"])
def test_pages_run_a_fixed_number_of_queries(client, page, django_assert_max_num_queries):
    def url_for(articles):
        first = articles[0]
        if page == "list":
            return reverse("articles:list")
        if page == "topic":
            return first.topics.first().get_absolute_url()
        return first.get_absolute_url()

    few = _make(1, topics_each=1)
    from django.core.cache import cache

    cache.clear()
    with django_assert_max_num_queries(12):
        few_count = _queries(client, url_for(few))

    many = _make(25, topics_each=6)
    cache.clear()
    with django_assert_max_num_queries(12):
        many_count = _queries(client, url_for(many))
    assert many_count == few_count

    # Served from the cache, the page needs no article queries at all.
    with django_assert_max_num_queries(few_count - 3):
        _queries(client, url_for(many))


# --- Caching and invalidation ---------------------------------------------------------------


def test_publish_shows_up_at_once(client, default_disclaimer, django_capture_on_commit_callbacks):
    ArticleFactory()
    client.get(reverse("articles:list"))  # warm the cache
    draft = DraftArticleFactory(title="Frisch veröffentlicht")
    with django_capture_on_commit_callbacks(execute=True):
        article_publish(article=draft)
    assert "Frisch veröffentlicht" in client.get(reverse("articles:list")).content.decode()


def test_withdraw_disappears_at_once(client, django_capture_on_commit_callbacks):
    article = ArticleFactory(title="Bald weg")
    assert client.get(article.get_absolute_url()).status_code == 200
    assert "Bald weg" in client.get(reverse("articles:list")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        article_withdraw(article=article, reason="Test")
    assert client.get(article.get_absolute_url()).status_code == 404
    assert "Bald weg" not in client.get(reverse("articles:list")).content.decode()


def test_correction_shows_up_at_once(client, django_capture_on_commit_callbacks):
    article = ArticleFactory()
    assert "Korrigierter Vorspann" not in client.get(article.get_absolute_url()).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        article_correct(article=article, lead="Korrigierter Vorspann", now=SEED_MOMENT)
    html = client.get(article.get_absolute_url()).content.decode()
    assert "Korrigierter Vorspann" in html
    assert "aktualisiert am 25.07.2025 06:11 Uhr" in html


def test_pages_are_served_from_the_cache_until_a_change(client):
    article = ArticleFactory(title="Alter Titel")
    client.get(article.get_absolute_url())
    # A write that bypasses the services is not seen: proof the page came from the cache.
    type(article).objects.filter(pk=article.pk).update(title="Neuer Titel")
    assert "Alter Titel" in client.get(article.get_absolute_url()).content.decode()


def test_cached_pages_expire_when_the_next_scheduled_article_goes_live(
    client, default_disclaimer, settings
):
    """Scheduled articles need no job to appear: cached pages end at their minute."""
    import redis

    settings.CACHE_PAGE_SECONDS = 3600
    ArticleFactory()
    go_live = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=10)
    article_publish(article=DraftArticleFactory(title="Pünktlich"), at=go_live)
    assert "Pünktlich" not in client.get(reverse("articles:list")).content.decode()

    connection_ = redis.Redis.from_url(settings.REDIS_CACHE_URL)
    keys = list(connection_.scan_iter(match="*articles:list:*"))
    assert len(keys) == 1
    remaining = connection_.ttl(keys[0])
    assert 0 < remaining <= (go_live - timezone.now()).total_seconds() + 2
    assert remaining < 3600


def test_opinion_kind_is_labelled(client):
    ArticleFactory(kind=ArticleKind.ANALYSIS, title="Eine Analyse")
    html = client.get(reverse("articles:list")).content.decode()
    assert "Analyse" in html


def test_related_lists_shared_by_articles_on_one_topic_leave_out_each_page_itself(
    client, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    cache.clear()
    topic = TopicFactory(name="Geldpolitik", slug="geldpolitik")
    articles = [
        ArticleFactory(
            title=f"Zins {n}", topics=[topic], published_at=SEED_MOMENT - timedelta(hours=n)
        )
        for n in range(6)
    ]

    def related_titles(article):
        html = _get(client, article.get_absolute_url())[1]
        section = html.split('id="related-heading"')[1]
        return [a.title for a in articles if a.title in section]

    assert related_titles(articles[0]) == ["Zins 1", "Zins 2", "Zins 3", "Zins 4"]
    assert related_titles(articles[2]) == ["Zins 0", "Zins 1", "Zins 3", "Zins 4"]
    assert related_titles(articles[5]) == ["Zins 0", "Zins 1", "Zins 2", "Zins 3"]

    with django_capture_on_commit_callbacks(execute=True):
        newest = DraftArticleFactory(title="Zins neu", topics=[topic])
        article_publish(article=newest)
    articles.insert(0, newest)
    assert related_titles(articles[3]) == ["Zins neu", "Zins 0", "Zins 1", "Zins 3"]


def test_preview_needs_the_view_article_permission_not_just_staff(client):
    draft = DraftArticleFactory(title="Noch geheim")
    url = reverse("articles:preview", kwargs={"pk": draft.pk})
    staff = User.objects.create_user("personal", password="x", is_staff=True)
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 403
    assert "Noch geheim" not in response.content.decode()

    staff.user_permissions.add(Permission.objects.get(codename="view_article"))
    staff = User.objects.get(pk=staff.pk)  # permissions are cached on the instance
    client.force_login(staff)
    assert "Noch geheim" in client.get(url).content.decode()
