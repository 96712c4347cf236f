"""Pictures of the media library inside an article's text: shown with their renditions and
dimensions on the page and in the editor's preview, as plain absolute JPEGs with alt text in
feeds, and recorded as used by the article, so the library says where and refuses to delete
them."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.core.files.storage import default_storage
from django.db.models import ProtectedError
from django.urls import reverse

from articles.models import ArticleImage, ArticleTranslation, Image
from articles.services import (
    article_save,
    article_translation_delete,
    article_translation_save,
    image_delete,
    image_update,
)
from tests.articles.factories import ArticleFactory, image_create

pytestmark = pytest.mark.django_db


def _url(image: Image, width: int = 960, fmt: str = "jpeg") -> str:
    item = next(i for i in image.renditions if i["width"] == width)
    return default_storage.url(item[fmt])


def _markdown(image: Image, alt: str) -> str:
    """What the editor's upload inserts: the 960 px JPEG's URL."""
    return f"![{alt}]({_url(image)})"


@pytest.fixture
def chart() -> Image:
    return image_create(width=2000, height=1000, alt_text="Ein Balkendiagramm")


def _with_body(body: str, **fields):
    article = ArticleFactory(**fields)
    article.body_markdown = body
    return article_save(article=article)


def _body_img(html: str) -> str:
    body = html[html.index('class="article__body"') :]
    return re.search(r"<img [^>]*>", body).group(0)


def test_a_library_picture_in_the_text_gets_every_rendition_and_its_dimensions(client, chart):
    article = _with_body(f"Vorher.\n\n{_markdown(chart, 'Gold seit 2020')}\n\nNachher.")
    html = client.get(article.get_absolute_url()).content.decode()
    webp = ", ".join(f"{_url(chart, w, 'webp')} {w}w" for w in (480, 960, 1600))
    jpeg = ", ".join(f"{_url(chart, w)} {w}w" for w in (480, 960, 1600))
    assert f'<source type="image/webp" srcset="{webp}"' in html
    img = _body_img(html)
    assert f'srcset="{jpeg}"' in img and f'src="{_url(chart)}"' in img
    # The box is reserved before the file arrives: no layout shift.
    assert 'width="1600" height="800"' in img
    # The editor's alt text for this place, not the library's.
    assert 'alt="Gold seit 2020"' in img and 'loading="lazy"' in img


def test_an_empty_alt_in_the_markdown_takes_the_librarys(client, chart):
    article = _with_body(_markdown(chart, ""))
    img = _body_img(client.get(article.get_absolute_url()).content.decode())
    assert 'alt="Ein Balkendiagramm"' in img


@pytest.mark.parametrize(
    "src",
    [
        "https://example.org/bild.jpg",
        "/media/images/2026/11/0123456789abcdef-960.jpg",  # the pattern, but no such picture
    ],
)
def test_other_images_stay_plain_and_record_nothing(client, src):
    article = _with_body(f"![Fremd]({src})")
    assert article.body_html == f'<p><img alt="Fremd" src="{src}"></p>'
    assert not ArticleImage.objects.exists()


def test_the_texts_pictures_are_recorded_as_used_and_follow_every_save(chart):
    other = image_create(width=800, height=600, alt_text="Eine Karte")
    article = _with_body(f"{_markdown(chart, 'a')}\n\n{_markdown(chart, 'b')}")
    assert list(article.body_images.values_list("image", flat=True)) == [chart.pk]
    # A link to the file is a use too: deleting the picture would break it.
    article.body_markdown = f"[Die Karte]({_url(other, 800)})"
    article_save(article=article)
    assert list(article.body_images.values_list("image", flat=True)) == [other.pk]
    # The translation's text counts for the article as well.
    translation = article_translation_save(
        translation=ArticleTranslation(
            article=article,
            language="en",
            title="In English",
            slug="in-english",
            body_markdown=_markdown(chart, "Gold since 2020"),
        )
    )
    assert set(article.body_images.values_list("image", flat=True)) == {chart.pk, other.pk}
    assert 'alt="Gold since 2020"' in translation.body_html and "srcset=" in translation.body_html
    article_translation_delete(translation=translation)
    assert list(article.body_images.values_list("image", flat=True)) == [other.pk]


def test_a_picture_in_use_cannot_be_deleted_an_unused_one_goes_with_its_files(
    chart, django_capture_on_commit_callbacks
):
    _with_body(_markdown(chart, "Gold"))
    with pytest.raises(ProtectedError):
        image_delete(image=chart)
    assert Image.objects.filter(pk=chart.pk).exists()
    unused = image_create(width=600, height=400)
    names = unused.file_names
    with django_capture_on_commit_callbacks(execute=True):
        image_delete(image=unused)
    assert not Image.objects.filter(pk=unused.pk).exists()
    assert not any(default_storage.exists(name) for name in names)


def test_deleting_a_selection_is_all_or_nothing(chart, django_capture_on_commit_callbacks):
    """The library's bulk delete checks uses first; a picture put to use after that check
    keeps the whole selection and every file (the action runs outside the admin's own
    transaction)."""
    from django.contrib.admin.sites import site

    unused = image_create(width=600, height=400)
    names = unused.file_names
    _with_body(_markdown(chart, "Gold"))
    # The unused (newer) picture first: it is gone, files and all, before the used one fails.
    selection = Image.objects.filter(pk__in=[unused.pk, chart.pk]).order_by("-pk")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ProtectedError):
        site._registry[Image].delete_queryset(None, selection)
    assert Image.objects.filter(pk=unused.pk).exists()
    assert all(default_storage.exists(name) for name in names)


def test_the_library_says_where_a_picture_is_used_and_refuses_to_delete_it(admin_client, chart):
    article = _with_body(_markdown(chart, "Gold"), title="Gold im Text")
    ArticleFactory(title="Gold als Titelbild", feature_image=chart)
    unused = image_create(width=600, height=400, alt_text="Niemand zeigt mich")

    listing = admin_client.get(reverse("admin:articles_image_changelist")).content.decode()
    assert "2 Artikeln" in listing
    unused_only = admin_client.get(
        reverse("admin:articles_image_changelist") + "?verwendet=nein"
    ).content.decode()
    assert "Niemand zeigt mich" in unused_only and "Ein Balkendiagramm" not in unused_only

    page = admin_client.get(reverse("admin:articles_image_change", args=[chart.pk]))
    html = page.content.decode()
    assert reverse("admin:articles_article_change", args=[article.pk]) in html
    assert "Gold im Text</a> (im Text, Veröffentlicht)" in html
    assert "Gold als Titelbild</a> (Titelbild, Veröffentlicht)" in html

    delete = reverse("admin:articles_image_delete", args=[chart.pk])
    confirm = admin_client.get(delete).content.decode()
    assert "geschützt" in confirm and "Gold im Text" in confirm
    assert admin_client.post(delete, {"post": "yes"}).status_code == 200
    assert Image.objects.filter(pk=chart.pk).exists()

    response = admin_client.post(
        reverse("admin:articles_image_delete", args=[unused.pk]), {"post": "yes"}
    )
    assert response.status_code == 302 and not Image.objects.filter(pk=unused.pk).exists()


def test_a_changed_library_alt_text_reaches_texts_that_use_it(chart):
    article = _with_body(_markdown(chart, ""))
    chart.alt_text = "Goldpreis seit 2020, in Euro"
    image_update(image=chart)
    article.refresh_from_db()
    assert 'alt="Goldpreis seit 2020, in Euro"' in article.body_html


def test_the_editors_live_preview_shows_the_picture_as_readers_get_it(admin_client, chart):
    article = _with_body(_markdown(chart, "Gold"))
    response = admin_client.post(
        reverse("articles:preview_unsaved") + "?teil=main",
        {
            "article_id": article.pk,
            "title": article.title,
            "slug": article.slug,
            "kind": article.kind,
            "status": article.status,
            "body_markdown": article.body_markdown,
        },
    )
    assert response.status_code == 200
    assert _body_img(response.json()["html"]) == _body_img(
        admin_client.get(article.get_absolute_url()).content.decode()
    )


@pytest.mark.parametrize("feed", ["articles:feed_rss", "articles:feed_atom"])
def test_feeds_show_the_texts_pictures_as_absolute_jpegs_with_alt_text(client, chart, feed):
    _with_body(
        f"Text.\n\n{_markdown(chart, 'Gold seit 2020')}\n\n![Fremd](https://example.org/x.png)"
    )
    root = ET.fromstring(client.get(reverse(feed)).content)
    content = root.findtext("./channel/item/description") or root.findtext(
        "{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}summary"
    )
    assert (
        f'<img src="http://testserver{_url(chart)}" width="960" height="480" alt="Gold seit 2020">'
    ) in content
    assert "<picture" not in content and "<source" not in content
    assert '<img alt="Fremd" src="https://example.org/x.png">' in content
    assert not re.search(r'src="/', content)
