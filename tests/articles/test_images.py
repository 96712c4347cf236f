"""Uploads into the media library: hostile files are refused or defused, never a 500; what is
stored is only what Pillow wrote; the files are served with long-lived caching headers."""

import io
import struct
import subprocess
import sys
import zipfile
import zlib

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from articles.imaging import RENDITION_WIDTHS
from articles.models import Image
from tests.articles.factories import image_create, picture_bytes

pytestmark = pytest.mark.django_db
UPLOAD = "admin:articles_image_upload"
GPS_IFD = 0x8825


def _upload(client, data: bytes, *, name="bild.jpg", content_type="image/jpeg", alt="Alt"):
    return client.post(
        reverse(UPLOAD),
        {"upload": SimpleUploadedFile(name, data, content_type=content_type), "alt_text": alt},
    )


def _stored_files(image: Image) -> dict[str, bytes]:
    names = [image.file] + [i[fmt] for i in image.renditions for fmt in ("jpeg", "webp")]
    files = {}
    for name in names:
        with default_storage.open(name) as handle:
            files[name] = handle.read()
    return files


def _png_claiming(width: int, height: int) -> bytes:
    """A real decompression bomb: a valid PNG of `width` × `height` black pixels, whose rows
    of zeros deflate to a small file (about 1 MB per 1,000 megabytes of pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    compressor = zlib.compressobj(6)
    row = b"\0" * (1 + width)  # filter byte + one grey byte per pixel
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_upload_stores_reencoded_renditions_and_answers_with_the_markdown(admin_client):
    response = _upload(admin_client, picture_bytes(width=2000, height=1000), alt="Ein [Test]")
    assert response.status_code == 201, response.content
    data = response.json()
    image = Image.objects.get(pk=data["id"])
    assert (image.width, image.height, image.alt_text) == (2000, 1000, "Ein [Test]")
    assert [item["width"] for item in image.renditions] == list(RENDITION_WIDTHS)
    assert image.uploaded_by.is_superuser
    assert data["markdown"] == f"![Ein Test]({data['url']})"
    assert data["url"] == default_storage.url(image.rendition(min_width=960)["jpeg"])
    for name, content in _stored_files(image).items():
        decoded = PILImage.open(io.BytesIO(content))
        assert decoded.format == ("WEBP" if name.endswith(".webp") else "JPEG")


def test_type_comes_from_the_content_not_the_name_or_header(admin_client):
    response = _upload(
        admin_client, picture_bytes(fmt="GIF"), name="foto.jpg", content_type="image/jpeg"
    )
    assert response.status_code == 201
    image = Image.objects.get()
    assert image.file.endswith(".jpg")
    assert PILImage.open(default_storage.open(image.file)).format == "JPEG"


@pytest.mark.parametrize(
    ("name", "data", "content_type", "code_text"),
    [
        (
            "logo.svg",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "image/svg+xml",
            "SVG-Dateien sind nicht erlaubt.",
        ),
        (
            "logo.png",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/png",
            "SVG-Dateien sind nicht erlaubt.",
        ),
        ("seite.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg", "kein Bild"),
        ("leer.png", b"", "image/png", "leer"),
        ("abgeschnitten.png", picture_bytes()[:400], "image/png", "beschädigt"),
        ("bild.bmp", picture_bytes(fmt="BMP"), "image/bmp", "kein Bild"),
        ("bild.tif", picture_bytes(fmt="TIFF"), "image/tiff", "kein Bild"),
    ],
)
def test_what_is_not_a_raster_image_is_refused_with_a_message(
    admin_client, name, data, content_type, code_text
):
    response = _upload(admin_client, data, name=name, content_type=content_type)
    assert response.status_code == 400
    assert code_text in str(response.json())
    assert not Image.objects.exists()


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (7000, 7000),  # 49 megapixels: above our limit (40), below Pillow's warning (89)
        (14000, 14000),  # 196 megapixels: Pillow itself calls this a bomb
    ],
)
def test_decompression_bombs_are_refused_before_decoding(admin_client, width, height):
    bomb = _png_claiming(width, height)
    assert len(bomb) < 1_000_000  # small on the wire, gigantic once decoded
    response = _upload(admin_client, bomb, name="bombe.png", content_type="image/png")
    assert response.status_code == 400
    assert "zu viele Pixel" in response.json()["errors"]["upload"][0]["message"]
    assert not Image.objects.exists()


def test_a_50_mb_file_is_refused_unread(admin_client):
    huge = b"\xff\xd8\xff\xe0" + b"\0" * 50_000_000
    response = _upload(admin_client, huge, name="riesig.jpg")
    assert response.status_code == 400
    assert "zu groß (höchstens 15 MB)" in response.json()["errors"]["upload"][0]["message"]
    assert not Image.objects.exists()


def test_gps_exif_and_comments_are_stripped_and_orientation_applied(admin_client):
    exif = PILImage.Exif()
    exif[0x010F] = "Spionage-Kamera"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    original = picture_bytes(
        width=800, height=400, fmt="JPEG", exif=exif, comment=b"<script>alert(1)</script>"
    )
    assert PILImage.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # the test's premise

    response = _upload(admin_client, original, name="urlaub.jpg")

    assert response.status_code == 201
    image = Image.objects.get()
    assert (image.width, image.height) == (400, 800)  # shown upright
    for content in _stored_files(image).values():
        stored = PILImage.open(io.BytesIO(content))
        assert not stored.getexif()
        assert "comment" not in stored.info
        for marker in (b"Exif", b"Spionage", b"<script", b"GPS"):
            assert marker not in content


def test_jpeg_zip_polyglot_keeps_the_picture_and_loses_the_archive(admin_client):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload.js", "alert(document.cookie)")
    polyglot = picture_bytes(fmt="JPEG") + archive.getvalue()
    assert zipfile.ZipFile(io.BytesIO(polyglot)).namelist() == ["payload.js"]

    response = _upload(admin_client, polyglot, name="harmlos.jpg")

    assert response.status_code == 201
    for content in _stored_files(Image.objects.get()).values():
        assert b"PK\x03\x04" not in content and b"payload.js" not in content
        assert not zipfile.is_zipfile(io.BytesIO(content))


def test_gif_javascript_polyglot_is_defused(admin_client):
    payload = b"*/=alert(document.domain);/*"
    gif = picture_bytes(fmt="GIF", comment=payload)
    polyglot = gif + b"\n" + payload  # script after the GIF trailer too
    assert payload in polyglot

    response = _upload(admin_client, polyglot, name="anim.gif", content_type="image/gif")

    assert response.status_code == 201
    for content in _stored_files(Image.objects.get()).values():
        assert b"alert" not in content


def test_alt_text_is_required(admin_client):
    response = _upload(admin_client, picture_bytes(), alt="   ")
    assert response.status_code == 400
    assert "alt_text" in response.json()["errors"]
    assert not Image.objects.exists()


def test_upload_needs_the_right_to_add_images_and_a_csrf_token(client):
    editor = User.objects.create_user("redakteur", password="pw", is_staff=True)
    client.force_login(editor)
    assert _upload(client, picture_bytes()).status_code == 403
    editor.user_permissions.add(Permission.objects.get(codename="add_image"))
    assert client.get(reverse(UPLOAD)).status_code == 405

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(editor)
    assert _upload(strict, picture_bytes()).status_code == 403
    assert not Image.objects.exists()
    assert _upload(client, picture_bytes()).status_code == 201

    anonymous = Client()
    assert _upload(anonymous, picture_bytes()).status_code == 302


def test_library_upload_through_the_admin_add_form(admin_client):
    response = admin_client.post(
        reverse("admin:articles_image_add"),
        {
            "upload": SimpleUploadedFile("bild.png", picture_bytes(), content_type="image/png"),
            "alt_text": "Goldbarren im Tresor",
            "caption": "Ein Tresor",
            "credit": "Foto: Archiv",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    image = Image.objects.get()
    assert (image.caption, image.credit) == ("Ein Tresor", "Foto: Archiv")
    listing = admin_client.get(reverse("admin:articles_image_changelist"))
    assert listing.status_code == 200
    assert default_storage.url(image.renditions[0]["jpeg"]) in listing.content.decode()
    change = admin_client.get(reverse("admin:articles_image_change", args=[image.pk]))
    assert 'alt="Goldbarren im Tresor"' in change.content.decode()

    refused = admin_client.post(
        reverse("admin:articles_image_add"),
        {"upload": SimpleUploadedFile("x.svg", b"<svg/>"), "alt_text": "x"},
    )
    assert refused.status_code == 200
    assert "SVG-Dateien sind nicht erlaubt." in refused.content.decode()
    assert Image.objects.count() == 1


def test_media_files_are_served_with_immutable_caching(client):
    image = image_create()
    url = default_storage.url(image.renditions[0]["webp"])
    assert url.startswith("/media/images/")
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert (
        b"".join(response.streaming_content)
        == default_storage.open(image.renditions[0]["webp"]).read()
    )
    assert client.get("/media/images/").status_code == 404
    assert client.get("/media/../config/settings.py").status_code == 404
    assert client.get("/media/images/gibt-es-nicht.jpg").status_code == 404
    default_storage.save("images/notiz.txt", io.BytesIO(b"hallo"))
    assert client.get("/media/images/notiz.txt").status_code == 404


def _settings_in_subprocess(env: dict[str, str], code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_SECRET_KEY": "x" * 50,
            "NEWSLETTER_ADDRESS_HMAC_KEY": "y" * 50,
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_object_storage_and_the_csp_follow_the_media_variables():
    code = (
        "from django.conf import settings; from django.core.files.storage import storages; "
        "s = storages['default']; print(type(s).__name__); print(s.url('images/a.jpg')); "
        "print(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']); "
        "print(settings.MEDIA_SERVE)"
    )
    out = _settings_in_subprocess(
        {
            "MEDIA_S3_BUCKET": "bilder",
            "MEDIA_S3_ENDPOINT_URL": "https://s3.example.net",
            "MEDIA_URL": "https://media.example.org/",
        },
        code,
    ).splitlines()
    assert out == [
        "S3Storage",
        "https://media.example.org/images/a.jpg",
        "[\"'self'\", 'data:', 'https://media.example.org']",
        "False",
    ]
    local = _settings_in_subprocess({}, code).splitlines()
    assert local[1:] == ["/media/images/a.jpg", "[\"'self'\", 'data:']", "True"]
