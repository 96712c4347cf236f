"""How a stored picture is shown: `<picture>` markup with srcset, and absolute URLs for
cards, feeds and mail. Reads the renditions kept on the row; never asks the storage whether a
file exists (a URL is a string join, also for S3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.html import format_html

from .markdown import HtmlRewriter
from .models import IMAGE_STEM, ORIGINAL_LANGUAGE, Image
from .selectors import image_list_named_in

# The article column is at most 44rem (704 px) wide; on phones the picture spans the screen.
ARTICLE_SIZES = "(min-width: 46rem) 44rem, 100vw"


def media_absolute_url(url: str) -> str:
    """MEDIA_URL may be a path (served by the site) or a URL of its own (S3, a CDN)."""
    if url.startswith(("http://", "https://")):
        return url
    if url.startswith("//"):
        return "https:" + url
    return settings.SITE_URL + url


@dataclass(frozen=True)
class PictureFile:
    url: str
    width: int
    height: int
    alt: str
    bytes: int
    mime_type: str = "image/jpeg"


def picture_file(image: Image, *, min_width: int) -> PictureFile:
    """The JPEG rendition at least `min_width` wide (or the largest), with an absolute URL:
    JPEG because mail clients and feed readers do not all show WebP."""
    item = image.rendition(min_width=min_width)
    return PictureFile(
        url=media_absolute_url(default_storage.url(item["jpeg"])),
        width=item["width"],
        height=item["height"],
        alt=image.alt_text,
        bytes=item["jpeg_bytes"],
    )


def picture_html(
    image: Image,
    *,
    sizes: str = ARTICLE_SIZES,
    eager: bool = False,
    css_class: str = "",
    alt: str = "",
) -> str:
    """WebP for browsers that take it, JPEG for the rest, both in every width; width and
    height of the largest rendition let the browser reserve the space before loading."""
    url = default_storage.url
    webp = ", ".join(f"{url(item['webp'])} {item['width']}w" for item in image.renditions)
    jpeg = ", ".join(f"{url(item['jpeg'])} {item['width']}w" for item in image.renditions)
    fallback = image.rendition(min_width=960)
    largest = image.renditions[-1]
    return format_html(
        '<picture><source type="image/webp" srcset="{}" sizes="{}">'
        '<img src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}"{} '
        'class="{}" decoding="async" {}="{}"></picture>',
        webp,
        sizes,
        url(fallback["jpeg"]),
        jpeg,
        sizes,
        largest["width"],
        largest["height"],
        alt or image.alt_text,
        # An alt text from the Markdown is in the text's own language; the library's texts
        # have no translation, so an English page marks them as German.
        "" if alt else format_html(' lang="{}"', ORIGINAL_LANGUAGE),
        css_class,
        *(("fetchpriority", "high") if eager else ("loading", "lazy")),
    )


class BodyPictures:
    """The picture resolver of an article's text (see articles.markdown.render_markdown): an
    image whose URL names a file of a library picture (the upload inserts the 960 px JPEG's
    URL) is shown as that picture, with every rendition in its srcsets and its dimensions.

    Built from the texts to render, with one query for all the pictures they name."""

    def __init__(self, images: Iterable[Image]) -> None:
        self._by_name = {name: image for image in images for name in image.file_names}

    @classmethod
    def for_texts(cls, *texts: str) -> BodyPictures:
        return cls(image_list_named_in(texts=texts))

    def __call__(self, src: str, alt: str) -> str | None:
        path = urlsplit(src).path
        stem = IMAGE_STEM.search(path)
        image = self._by_name.get(path[stem.start() :]) if stem else None
        if image is None:
            return None
        # The editor's words in the Markdown describe the picture here; the library's alt
        # text stands in when they are empty.
        return picture_html(image, alt=alt.strip(), css_class="article__body-image")


class _PicturesFlattened(HtmlRewriter):
    """For mail and feed readers: each `<picture>` becomes its JPEG `<img>` with an absolute
    URL, at most `max_width` wide (its height to scale), and with its alt text."""

    def __init__(self, max_width: int) -> None:
        super().__init__()
        self.max_width = max_width
        self.in_picture = False

    def start(self, tag, attrs):
        if tag == "picture":
            self.in_picture = True
            return ""
        if tag == "source" and self.in_picture:
            return ""
        if tag != "img":
            return self.tag(tag, attrs)
        values = dict(attrs)
        src = values.get("src") or ""
        # A path of this site gets its host; a URL (or a relative name) stays as written.
        src = media_absolute_url(src) if src.startswith("/") else src
        if not self.in_picture:
            return self.tag(tag, [(k, src if k == "src" else v) for k, v in attrs])
        width, height = int(values["width"]), int(values["height"])
        shown = min(self.max_width, width)
        return self.tag(
            "img",
            [
                ("src", src),
                ("width", str(shown)),
                ("height", str(max(1, round(height * shown / width)))),
                ("alt", values.get("alt") or ""),
            ],
        )

    def end(self, tag):
        if tag == "picture":
            self.in_picture = False
            return ""
        return super().end(tag)


def pictures_flattened(html: str, *, max_width: int) -> str:
    """Stored body HTML as mail clients and feed readers take it: plain `<img>` with absolute
    JPEG URLs (not all of them show `<picture>`, WebP or a path without a host)."""
    return _PicturesFlattened(max_width).rewrite(html)
