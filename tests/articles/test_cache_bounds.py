"""What anonymous readers can make the page cache store: nothing they choose themselves.

Only the query parameters a page reads, in their one canonical spelling, end up in a key;
unknown slugs, page numbers out of range and parameters no page reads store nothing.
"""

import random
import string

import pytest
import redis
from django.conf import settings
from django.test import Client

from tests.articles.factories import ArticleFactory, TopicFactory

pytestmark = pytest.mark.django_db

HOSTILE_PAGES = ["²", "-1", "0", "99999999999999999999", "abc", "x" * 3000, "1e3", "٣", " 1"]
LIST_URLS = [
    "/",
    "/en/",
    "/thema/geld/",
    "/en/thema/geld/",
    "/newsletter/archiv/",
    "/en/newsletter/archiv/",
]


def _cache_keys() -> int:
    """Keys of this suite's cache in Redis (each suite has a key prefix of its own)."""
    location = settings.CACHES["default"]["LOCATION"]
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    client = redis.Redis.from_url(location)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=1000))
    finally:
        client.close()


def _junk(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "²٣-_.~", k=length))


@pytest.fixture
def site():
    topic = TopicFactory(slug="geld", name="Geld")
    articles = [ArticleFactory(topics=[topic]) for _ in range(12)]  # two list pages
    return topic, articles


@pytest.mark.parametrize("value", HOSTILE_PAGES, ids=lambda value: value[:20])
@pytest.mark.parametrize("url", LIST_URLS)
def test_list_pages_answer_404_to_a_page_they_do_not_have(site, url, value):
    response = Client().get(url, {"page": value})
    assert response.status_code == 404, (url, value, response.status_code)


def test_a_list_page_in_range_is_served(site):
    assert Client().get("/", {"page": "2"}).status_code == 200
    assert Client().get("/thema/geld/", {"page": "2"}).status_code == 200
    assert Client().get("/", {"page": "3"}).status_code == 404


def test_a_thousand_hostile_requests_store_nothing_new(site):
    """Random page values, unknown slugs and parameters no page reads, through every
    public page: the number of cache keys stays where the real pages put it."""
    _topic, articles = site
    real = ["/", "/en/", "/?page=2", "/thema/geld/", "/thema/geld/?page=2"]
    real += [article.get_absolute_url() for article in articles]
    real += ["/en" + article.get_absolute_url() for article in articles]
    reader = Client()
    for url in real:  # every real page once: what the cache legitimately holds
        assert reader.get(url).status_code == 200, url
    before = _cache_keys()

    rng = random.Random(10)
    statuses = set()
    for number in range(1000):
        article = rng.choice(articles).get_absolute_url()
        prefix = rng.choice(["", "/en"])
        kind = number % 5
        if kind == 0:
            url, query = prefix + article, {"page": _junk(rng, rng.choice([1, 8, 3000]))}
        elif kind == 1:
            url, query = f"{prefix}/artikel/{_junk(rng, 12).strip('.~²٣')}x/", {}
        elif kind == 2:
            url, query = rng.choice(["/", "/thema/geld/"]), {"page": _junk(rng, 6)}
        elif kind == 3:
            url, query = f"/thema/t{rng.randrange(10**9)}/", {"page": str(rng.randrange(1, 9))}
        else:
            url, query = prefix + article, {_junk(rng, 8): _junk(rng, 20)}
        response = reader.get(url, query)
        statuses.add(response.status_code)
        assert response.status_code in (200, 404), (url, query, response.status_code)
    after = _cache_keys()

    assert statuses == {200, 404}
    print(f"cache keys: {before} before, {after} after 1,000 hostile requests")
    assert after <= before, f"{after - before} new cache keys after 1,000 requests"
