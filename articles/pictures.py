"""How a stored picture is shown: `<picture>` markup with srcset, and absolute URLs for
cards, feeds and mail. Reads the renditions kept on the row; never asks the storage whether a
file exists (a URL is a string join, also for S3)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.html import format_html

from .models import ORIGINAL_LANGUAGE, Image

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
    image: Image, *, sizes: str = ARTICLE_SIZES, eager: bool = False, css_class: str = ""
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
        '<img src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}" lang="{}" '
        'class="{}" decoding="async" {}="{}"></picture>',
        webp,
        sizes,
        url(fallback["jpeg"]),
        jpeg,
        sizes,
        largest["width"],
        largest["height"],
        image.alt_text,
        # The library's texts have no translation: an English page marks them as German.
        ORIGINAL_LANGUAGE,
        css_class,
        *(("fetchpriority", "high") if eager else ("loading", "lazy")),
    )
