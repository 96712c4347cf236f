"""Whole pages come from the cache for anonymous readers; only their own tokens differ."""

import re

import pytest
from django.core.cache import cache
from django.test import Client, TestCase

from newsletter.models import Subscription
from newsletter.services.consent import consent_text_default_publish
from tests.articles.factories import ArticleFactory
from tests.newsletter.factories import NewsletterFactory

pytestmark = pytest.mark.django_db

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STARTED_FIELD = re.compile(r'name="started" value="([^"]+)"')


@pytest.fixture
def article_with_signup_box(settings):
    cache.clear()
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0
    newsletter = NewsletterFactory(slug="meinung-am-morgen", name="Meinung am Morgen")
    consent_text_default_publish(newsletter=newsletter)
    return ArticleFactory(title="Gold im Depot")


def _reader_fields(client: Client, url: str) -> tuple[str, str, str]:
    html = client.get(url).content.decode()
    return CSRF_FIELD.search(html).group(1), STARTED_FIELD.search(html).group(1), html


def test_cached_page_carries_each_readers_own_tokens(
    article_with_signup_box, django_assert_max_num_queries
):
    url = article_with_signup_box.get_absolute_url()
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    csrf_a, started_a, page_a = _reader_fields(first, url)
    with django_assert_max_num_queries(0):  # the second reader's page is a cache hit
        csrf_b, started_b, page_b = _reader_fields(second, url)

    assert "__slot_" not in page_a + page_b
    assert csrf_a != csrf_b and started_a != started_b
    assert page_b.replace(csrf_b, csrf_a).replace(started_b, started_a) == page_a

    with TestCase.captureOnCommitCallbacks(execute=True):  # the signup task applies it
        response = second.post(
            "/newsletter/anmelden/",
            {
                "csrfmiddlewaretoken": csrf_b,
                "email": "leserin@example.org",
                "newsletter": "meinung-am-morgen",
                "consent_text": re.search(r'name="consent_text" value="(\d+)"', page_b).group(1),
                "page": url,
                "website": "",
                "started": started_b,
            },
        )
    assert response.status_code == 303
    assert Subscription.objects.filter(email="leserin@example.org").exists()


def test_signed_in_editors_get_the_page_rendered_afresh(article_with_signup_box, admin_client):
    url = article_with_signup_box.get_absolute_url()
    Client().get(url)  # fills the cache
    html = admin_client.get(url).content.decode()
    assert "__slot_" not in html
    assert admin_client.cookies["csrftoken"].value


def test_a_new_consent_text_or_newsletter_name_shows_on_cached_pages(
    article_with_signup_box, django_capture_on_commit_callbacks
):
    from newsletter.models import Newsletter
    from newsletter.services.consent import newsletter_texts_save

    url = article_with_signup_box.get_absolute_url()
    assert "Meinung am Morgen" in Client().get(url).content.decode()
    newsletter = Newsletter.objects.get(slug="meinung-am-morgen")
    newsletter.name = "Meinung zum Frühstück"
    newsletter.save()
    with django_capture_on_commit_callbacks(execute=True):
        newsletter_texts_save(
            newsletter=newsletter, texts={"de": "Neue Erklärung, Version zwei.", "en": ""}
        )

    page = Client().get(url).content.decode()
    assert "Meinung zum Frühstück" in page
    assert "Neue Erklärung, Version zwei." in page
    text_id = re.search(r'name="consent_text" value="(\d+)"', page).group(1)
    assert newsletter.consent_texts.get(pk=text_id).version == 2


def test_pages_built_from_the_shared_layout_carry_their_own_path_and_language_links(
    article_with_signup_box,
):
    other = ArticleFactory(title="Silber im Depot")
    reader = Client()
    for article in (article_with_signup_box, other, article_with_signup_box):
        url = article.get_absolute_url()
        page = reader.get(url + "?utm=a&b=<x>").content.decode()
        assert f'name="page" value="{url}?utm=a&amp;b=%3Cx%3E"' in page
        assert f'hreflang="en" href="http://testserver/en{url}?utm=a&amp;b=%3Cx%3E"' in page
        assert f"<h1>{article.title}</h1>" in page
        assert "__slot_" not in page


def test_article_text_that_looks_like_a_slot_stays_as_written(article_with_signup_box):
    title = "Kein Platzhalter: __slot_csrf__ __slot_main__ __slot_path__"
    article = ArticleFactory(title=title, lead="Auch hier nicht: __slot_title__")
    page = Client().get(article.get_absolute_url()).content.decode()
    assert f"<h1>{title}</h1>" in page
    assert "Auch hier nicht: __slot_title__" in page
    assert page.count('<article class="article" lang="de">') == 1


def test_a_page_from_the_shared_layout_equals_the_page_rendered_whole(
    article_with_signup_box, django_user_model
):
    """Anonymous readers get the page filled into the cached layout, signed-in users get it
    rendered in one go with the request: the two must be the same page."""
    url = article_with_signup_box.get_absolute_url() + "?seite=1"
    signed_in = Client()
    signed_in.force_login(django_user_model.objects.create_user("leser", password="x" * 12))

    def without_tokens(html: str) -> str:
        html = CSRF_FIELD.sub('name="csrfmiddlewaretoken" value="…"', html)
        return STARTED_FIELD.sub('name="started" value="…"', html)

    for prefix in ("", "/en"):
        anonymous_page = Client().get(prefix + url).content.decode()
        whole_page = signed_in.get(prefix + url).content.decode()
        assert without_tokens(anonymous_page) == without_tokens(whole_page)


def test_only_pages_with_the_signup_form_set_a_csrf_cookie(article_with_signup_box):
    article_page = Client().get(article_with_signup_box.get_absolute_url())
    list_page = Client().get("/")
    imprint = Client().get("/impressum/")
    assert "csrftoken" in article_page.cookies
    assert "csrftoken" in list_page.cookies
    assert "csrftoken" not in imprint.cookies
    assert "__slot_" not in list_page.content.decode()


def test_tracking_parameters_do_not_store_another_copy_of_a_page(article_with_signup_box):
    from articles.caching import content_generation_get

    url = article_with_signup_box.get_absolute_url()
    Client().get(url)
    tagged = Client().get(url + "?utm_source=mail&x=1").content.decode()
    assert 'name="page" value="' + url + '?utm_source=mail&amp;x=1"' in tagged

    def stored(path):
        return cache.get(f"articles:page:{content_generation_get()}:de:{path}") is not None

    assert stored(url)
    assert not stored(url + "?utm_source=mail&x=1")
