"""Whole pages come from the cache for anonymous readers; only their own tokens differ."""

import re

import pytest
from django.core.cache import cache
from django.test import Client

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

    assert "__reader_" not in page_a + page_b
    assert csrf_a != csrf_b and started_a != started_b
    assert page_b.replace(csrf_b, csrf_a).replace(started_b, started_a) == page_a

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
    assert "__reader_" not in html
    assert admin_client.cookies["csrftoken"].value
