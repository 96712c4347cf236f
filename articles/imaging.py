"""Uploaded pictures made safe with Pillow: checked by content, decoded under limits, re-encoded.

Nothing of the uploaded bytes is ever stored or served. The file is identified by its content
(Pillow's decoders for JPEG, PNG, GIF and WebP only, so SVG and anything else is refused), its
byte size and its pixel count are checked before a single pixel is decoded (decompression
bombs), and the decoded pixels are written anew as JPEG and WebP in a few widths. Re-encoding
drops whatever rode along: EXIF with GPS positions, comments, a ZIP or a script appended or
interleaved (polyglots), colour profiles.

Why Pillow directly and not django-imagekit or sorl-thumbnail: both make thumbnails lazily at
render time and look them up in the storage or a key-value store (a round trip per size, per
render, to S3 when configured), while our pages are built from cached fragments that should
cost no I/O; and the part that matters here (limits before decoding, refusing SVG, re-encoding
the master) is code neither of them has. What remains is Pillow's `thumbnail` and `save`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
RENDITION_WIDTHS = (480, 960, 1600)
MASTER_MAX_SIDE = 2400
JPEG_QUALITY = 82
WEBP_QUALITY = 78


@dataclass(frozen=True)
class Encoded:
    width: int
    height: int
    jpeg: bytes
    webp: bytes


@dataclass(frozen=True)
class PreparedImage:
    """A decoded, re-encoded picture, ready to be stored: nothing of the upload is left.
    The master is kept as JPEG only; pages use the renditions."""

    master: Encoded
    renditions: list[Encoded]


def _refuse(message, code: str) -> ValidationError:
    return ValidationError(message, code=code)


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<") and (b"<svg" in text or b"<?xml" in text)


def image_check_size(*, size: int) -> None:
    """Refuse a file above MEDIA_MAX_UPLOAD_BYTES, before it is read."""
    max_bytes = settings.MEDIA_MAX_UPLOAD_BYTES
    if size > max_bytes:
        raise _refuse(
            _("Die Datei ist zu groß (höchstens %(mb)d MB).") % {"mb": max_bytes // 1_000_000},
            "too_large",
        )


def image_decode(*, data: bytes) -> PILImage.Image:
    """Decode an upload under the size and pixel limits; raise ValidationError with a code.

    The pixel count comes from the header (Image.open reads no pixels), so a tiny file that
    claims 100,000 × 100,000 pixels is refused before any memory is taken for it.
    """
    image_check_size(size=len(data))
    if _looks_like_svg(data[:512]):
        raise _refuse(_("SVG-Dateien sind nicht erlaubt."), "svg")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            image = PILImage.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as error:
        raise _too_many_pixels() from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise _refuse(
            _("Die Datei ist kein Bild im Format JPEG, PNG, GIF oder WebP."), "not_an_image"
        ) from error
    width, height = image.size
    if width < 1 or height < 1 or width * height > settings.MEDIA_MAX_PIXELS:
        raise _too_many_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            image.load()
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as error:
        raise _too_many_pixels() from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise _refuse(_("Das Bild ist beschädigt oder unvollständig."), "broken") from error
    return image


def _too_many_pixels() -> ValidationError:
    return _refuse(
        _("Das Bild hat zu viele Pixel (höchstens %(mp)d Megapixel).")
        % {"mp": settings.MEDIA_MAX_PIXELS // 1_000_000},
        "too_many_pixels",
    )


def _flatten(image: PILImage.Image) -> PILImage.Image:
    """Upright (EXIF orientation applied, then forgotten), RGB, transparency on white."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _encode(image: PILImage.Image, *, webp: bool = True) -> Encoded:
    # No exif=, icc_profile= or comment arguments: the new files carry pixels only.
    jpeg_out, webp_out = io.BytesIO(), io.BytesIO()
    image.save(jpeg_out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    if webp:
        image.save(webp_out, "WEBP", quality=WEBP_QUALITY, method=4)
    return Encoded(image.width, image.height, jpeg_out.getvalue(), webp_out.getvalue())


def _resized(image: PILImage.Image, width: int) -> PILImage.Image:
    if image.width <= width:
        return image
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), PILImage.Resampling.LANCZOS, reducing_gap=3.0)


def image_prepare(*, data: bytes) -> PreparedImage:
    """Validate an upload and make its master and renditions (widths up to its own)."""
    decoded = image_decode(data=data)
    try:
        flat = _flatten(decoded)
    finally:
        decoded.close()
    # Pillow writes some of `info` back on save (a JPEG's comment, for one): start empty.
    flat.info = {}
    flat.thumbnail((MASTER_MAX_SIDE, MASTER_MAX_SIDE), PILImage.Resampling.LANCZOS)
    widths = [w for w in RENDITION_WIDTHS if w < flat.width] + [
        min(flat.width, RENDITION_WIDTHS[-1])
    ]
    renditions = [_encode(_resized(flat, width)) for width in sorted(set(widths))]
    return PreparedImage(master=_encode(flat, webp=False), renditions=renditions)
