"""Feature images wherever an article goes: its page (srcset, sizes, dimensions), the cards
of social networks, RSS and Atom, and the digest mail, always with absolute URLs and alt text."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse

from articles.models import Article
from articles.services import image_update
from tests.articles.factories import ArticleFactory, image_create

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def pictured():
    image = image_create(
        width=2000,
        height=1000,
        alt_text="Goldbarren im Tresor",
        caption="Die Reserven wachsen",
        credit="Archiv",
    )
    return ArticleFactory(title="Gold glänzt", feature_image=image)


def _rendition(article, width: int, fmt: str) -> str:
    item = next(i for i in article.feature_image.renditions if i["width"] == width)
    return default_storage.url(item[fmt])


def test_article_page_shows_the_picture_in_every_width_with_its_dimensions(client, pictured):
    html = client.get(pictured.get_absolute_url()).content.decode()
    webp = ", ".join(f"{_rendition(pictured, w, 'webp')} {w}w" for w in (480, 960, 1600))
    jpeg = ", ".join(f"{_rendition(pictured, w, 'jpeg')} {w}w" for w in (480, 960, 1600))
    assert (
        f'<source type="image/webp" srcset="{webp}" sizes="(min-width: 46rem) 44rem, 100vw">'
        in html
    )
    img = re.search(r"<img [^>]*class=\"article__image\"[^>]*>", html).group(0)
    assert f'srcset="{jpeg}"' in img
    assert f'src="{_rendition(pictured, 960, "jpeg")}"' in img
    # The largest rendition's size: the browser reserves the box before loading (no shift).
    assert 'width="1600" height="800"' in img
    assert 'alt="Goldbarren im Tresor"' in img
    assert 'fetchpriority="high"' in img
    # The library's caption has no translation: marked German on every page.
    assert (
        '<figcaption><span lang="de">Die Reserven wachsen</span> '
        '<span class="credit">Foto: Archiv</span>' in html
    )


def test_social_cards_name_the_picture_with_an_absolute_url(client, pictured):
    html = client.get(pictured.get_absolute_url()).content.decode()
    card = "http://testserver" + _rendition(pictured, 1600, "jpeg")
    assert f'<meta property="og:image" content="{card}">' in html
    assert '<meta property="og:image:width" content="1600">' in html
    assert '<meta property="og:image:alt" content="Goldbarren im Tresor">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    assert f'<meta name="twitter:image" content="{card}">' in html


def test_article_without_picture_has_no_figure_and_a_small_card(client):
    article = ArticleFactory()
    html = client.get(article.get_absolute_url()).content.decode()
    assert "<figure" not in html and "og:image" not in html
    assert '<meta name="twitter:card" content="summary">' in html


def test_rss_has_an_enclosure_and_the_picture_in_the_description(client, pictured):
    root = ET.fromstring(client.get(reverse("articles:feed_rss")).content)
    item = root.find("./channel/item")
    enclosure = item.find("enclosure")
    rendition = next(i for i in pictured.feature_image.renditions if i["width"] == 960)
    assert enclosure.attrib == {
        "url": "http://testserver" + default_storage.url(rendition["jpeg"]),
        "length": str(rendition["jpeg_bytes"]),
        "type": "image/jpeg",
    }
    description = item.findtext("description")
    assert (
        f'<img src="http://testserver{default_storage.url(rendition["jpeg"])}" width="960" '
        f'height="480" alt="Goldbarren im Tresor">'
    ) in description


def test_atom_links_the_picture_as_enclosure(client, pictured):
    root = ET.fromstring(client.get(reverse("articles:feed_atom")).content)
    links = root.find(f"{ATOM}entry").findall(f"{ATOM}link")
    enclosure = [link.attrib for link in links if link.get("rel") == "enclosure"]
    assert enclosure[0]["href"] == "http://testserver" + _rendition(pictured, 960, "jpeg")
    assert enclosure[0]["type"] == "image/jpeg"


def test_cached_page_follows_a_changed_alt_text(
    client, pictured, django_capture_on_commit_callbacks
):
    client.get(pictured.get_absolute_url())
    image = pictured.feature_image
    image.alt_text = "Ein neuer Alternativtext"
    with django_capture_on_commit_callbacks(execute=True):
        image_update(image=image)
    html = client.get(pictured.get_absolute_url()).content.decode()
    assert 'alt="Ein neuer Alternativtext"' in html


def test_seed_demo_gives_every_demo_article_a_picture_once(client):
    call_command("seed_demo", verbosity=0)
    articles = list(Article.objects.select_related("feature_image"))
    assert articles and all(a.feature_image and a.feature_image.alt_text for a in articles)
    images = {a.feature_image_id for a in articles}
    assert len(images) == len(articles)
    call_command("seed_demo", verbosity=0)
    assert {a.feature_image_id for a in Article.objects.all()} == images
    html = client.get(articles[0].get_absolute_url()).content.decode()
    assert "<picture>" in html
    assert client.get(articles[0].feature_image.url).status_code == 200
