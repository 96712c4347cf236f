"""An editor uploads pictures into an article in Chromium (button and paste), picks one as
the feature image, saves, and a reader sees both on the page, loaded from the media URL."""

import pytest
from django.contrib.auth.models import User

from articles.models import Article, Image
from tests.articles.factories import ArticleFactory, DisclaimerVersionFactory, picture_bytes


def _log_in(page, base: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "chefin")
    page.fill("#id_password", "geheim-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def upload_by_button(page, *, alt: str, file: dict) -> None:
    """The editor's upload bar: the alt text first, then the file chooser behind the button;
    returns once the picture's Markdown is in the text."""
    page.fill(".image-upload__alt", alt)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Bild hochladen").click()
    chooser.value.set_files(file)
    page.wait_for_function(
        "alt => document.querySelector('#id_body_markdown').value.includes('![' + alt + '](')",
        arg=alt,
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_editor_uploads_pictures_into_an_article_and_readers_see_them(browser_page, live_server):
    User.objects.create_superuser("chefin", "chefin@example.org", "geheim-123")
    article = ArticleFactory(
        title="Gold im Bild", disclaimer_version=DisclaimerVersionFactory(), body_markdown="Text."
    )
    page, base = browser_page, live_server.url
    _log_in(page, base)
    page.goto(f"{base}/admin/articles/article/{article.pk}/change/")
    body = page.locator("#id_body_markdown")
    body.click()
    body.press("End")

    upload_by_button(
        page,
        alt="Goldbarren im Tresor",
        file={"name": "tresor.png", "mimeType": "image/png", "buffer": picture_bytes(width=1800)},
    )
    page.get_by_text("Bild eingefügt.").wait_for()
    first = Image.objects.get()
    assert "![Goldbarren im Tresor](/media/images/" in body.input_value()

    # By pasting a picture into the textarea (the alt text is asked for when none is typed).
    page.once("dialog", lambda dialog: dialog.accept("Ein Diagramm"))
    jpeg = list(picture_bytes(width=700, height=400, fmt="JPEG", colour=(200, 60, 40)))
    page.evaluate(
        """bytes => {
            const file = new File([new Uint8Array(bytes)], "clip.jpg", {type: "image/jpeg"});
            const data = new DataTransfer();
            data.items.add(file);
            const area = document.querySelector("#id_body_markdown");
            area.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true,
                                                            cancelable: true}));
        }""",
        jpeg,
    )
    page.wait_for_function(
        "() => document.querySelector('#id_body_markdown').value.includes('![Ein Diagramm]')"
    )
    assert Image.objects.count() == 2

    # A refused file says why, in the page, and inserts nothing.
    page.fill(".image-upload__alt", "Ein Logo")
    page.set_input_files(
        ".image-upload__file",
        {"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": b"<svg onload=alert(1)/>"},
    )
    page.get_by_text("SVG-Dateien sind nicht erlaubt.").wait_for()

    # The first upload becomes the feature image through the autocomplete.
    page.locator(".field-feature_image .select2-selection").click()
    page.locator(".select2-search__field[aria-controls=select2-id_feature_image-results]").fill(
        "Tresor"
    )
    page.locator(".select2-results__option", has_text="Goldbarren im Tresor").click()
    page.locator("input[name=_save]").first.click()
    page.wait_for_url(f"{base}/admin/articles/article/")
    article.refresh_from_db()
    assert article.feature_image_id == first.pk
    assert article.body_markdown.count("](/media/images/") == 2

    page.context.clear_cookies()  # as a reader
    page.goto(f"{base}{Article.objects.get().get_absolute_url()}")
    feature = page.locator("img.article__image")
    assert feature.get_attribute("alt") == "Goldbarren im Tresor"
    for image in (feature, page.locator(".article__body img").first):
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "el => el.complete && el.naturalWidth > 0", arg=image.element_handle()
        )
    # The browser picked a WebP rendition from the srcset.
    assert feature.evaluate("el => el.currentSrc").endswith(".webp")
