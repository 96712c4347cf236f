"""The digest mail shows each article's feature image: absolute URL, alt text, dimensions."""

import pytest
from django.core.files.storage import default_storage

from articles.models import Article
from newsletter.emails.digest import digest_render
from newsletter.selectors.digests import digest_articles
from newsletter.services.digests import digest_start_now
from tests.articles.factories import image_create

pytestmark = pytest.mark.django_db


def test_digest_html_and_text_carry_the_picture_with_absolute_url(newsletter_with_articles):
    image = image_create(width=1600, height=900, alt_text="Zinskurve auf einer Tafel")
    with_picture = newsletter_with_articles  # two articles; one gets a picture
    article = Article.objects.get(title="Zinsen steigen")
    article.feature_image = image
    article.save(update_fields=["feature_image"])

    digest = digest_start_now(newsletter=with_picture).digest
    rendered = digest_render(
        digest=digest, articles=digest_articles(digest=digest, live_only=False), language="de"
    )

    item = image.rendition(min_width=1200)
    url = "http://testserver" + default_storage.url(item["jpeg"])
    assert url.endswith(".jpg")
    assert (
        f'<img src="{url}" width="600" height="338" alt="Zinskurve auf einer Tafel"'
        in rendered.html
    )
    assert rendered.html.count("<img ") == 1  # the other article has none
    assert f"[Bild: Zinskurve auf einer Tafel] {url}" in rendered.text
