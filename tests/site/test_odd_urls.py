"""Odd, hostile or stale URLs get a 4xx (or a page), never a 500."""

import pytest

from tests.articles.factories import ArticleFactory, TopicFactory

pytestmark = pytest.mark.django_db

ODD = [
    "/artikel/gibt-es-nicht/",
    "/artikel/%E2%80%AE-rtl/",
    "/thema/gibt-es-nicht/",
    "/thema/gibt-es-nicht/feed/rss/",
    "/thema/gibt-es-nicht/feed/atom/",
    "/?page=999999",
    "/?page=-1",
    "/?page=%00",
    "/?page=%C2%B2",
    "/newsletter/archiv/?page=%C2%B2",
    "/thema/geld/?page=1e9",
    "/vorschau/1/",
    "/vorschau/99999999999999999999/",
    "/sitemap.xml?p=abc",
    "/sitemap.xml?p=99",
    "/newsletter/archiv/999999/",
    "/newsletter/archiv/99999999999999999999/",
    "/n/abmelden/x/",
    "/n/abmelden/%ff%fe/",
    "/n/bestaetigen/eyJhbGciOiJub25lIn0/",
    "/n/einstellungen/" + "a" * 3000 + "/",
    "/en/artikel/gibt-es-nicht/",
    "/de/",
    "/xx/",
]


@pytest.mark.parametrize("path", ODD)
@pytest.mark.parametrize("method", ["get", "post", "head"])
def test_odd_urls_never_answer_500(client, path, method):
    TopicFactory(slug="geld")
    ArticleFactory()
    response = getattr(client, method)(path)
    assert response.status_code < 500, (path, response.status_code)
