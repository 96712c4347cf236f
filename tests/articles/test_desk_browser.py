"""The editors' writing desk in a real Chromium: write, preview, autosave, find the draft
again, schedule, go live, correct, compare, restore and withdraw, under the strict CSP.

Set SHOTS_DIR to keep screenshots of the pages at 1280 and 390 px."""

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from articles.models import (
    Article,
    ArticleEvent,
    ArticleEventKind,
    ArticleKind,
    ArticleStatus,
    Image,
)
from articles.selectors import disclaimer_default_version
from tests.articles.factories import (
    SEED_NOTE,
    ArticleFactory,
    AuthorFactory,
    DisclaimerFactory,
    DisclaimerVersionFactory,
    TopicFactory,
    picture_bytes,
)
from tests.articles.test_browser_images import upload_by_button
from tests.ops.test_browser_csp import COLLECT_VIOLATIONS

SHOTS = os.environ.get("SHOTS_DIR")


def _shot(page, name: str) -> None:
    """The page at 1280 and at 390 px: nothing scrolls sideways, neither the page nor the
    article form's editor; screenshots of both when asked for (SHOTS_DIR)."""
    size = page.viewport_size
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)  # one layout pass after the resize, nothing to wait on
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"desk-{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px scrolls {overflow} px sideways"
        # A change list shows all its columns without scrolling its table either.
        table = page.locator("#changelist .results")
        if table.count():
            overflow = table.evaluate("el => el.scrollWidth - el.clientWidth")
            assert overflow <= 0, f"{name}'s table at {width} px is {overflow} px too wide"
    page.set_viewport_size(size)


def _login(page, base: str) -> None:
    User.objects.create_superuser("chefin", "chefin@example.org", "pw-chefin-123")
    page.goto(base + reverse("admin:login"))
    page.fill("#id_username", "chefin")
    page.fill("#id_password", "pw-chefin-123")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


def _eventually(read, seconds: float = 15):
    """What the browser stores in the background (autosave), once it is there."""
    deadline = time.monotonic() + seconds
    while (found := read()) is None:
        assert time.monotonic() < deadline, "not stored in time"
        time.sleep(0.2)
    return found


def _preview_main(page):
    return page.frame_locator("iframe[data-preview-frame]").locator("main")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_editor_writes_publishes_corrects_restores_and_withdraws(browser_page, live_server):
    page = browser_page
    page.context.add_init_script(COLLECT_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    base = live_server.url
    # Transactional tests flush the migration's data: the opinion default may need to come back.
    note = disclaimer_default_version(kind=ArticleKind.OPINION) or DisclaimerVersionFactory(
        disclaimer=DisclaimerFactory(default_for_kind=ArticleKind.OPINION), text_de=SEED_NOTE
    )
    _login(page, base)

    # --- Write: toolbar, live preview from the server, word count ---------------------------
    page.goto(base + reverse("admin:articles_article_add"))
    page.fill("#id_title", "Gold im Aufwind")
    body = page.locator("textarea#id_body_markdown")
    body.fill("## Die Lage\n\nDer Goldpreis steigt.")
    body.press("End")
    body.press("Shift+Home")  # select the last line …
    page.get_by_role("button", name="Fett (Strg+B)").click()  # … and make it bold
    assert "**Der Goldpreis steigt.**" in body.input_value()
    body.press("Control+End")
    body.type("\n\nZweiter Absatz mit vier Wörtern.")
    preview = _preview_main(page)
    preview.locator("strong", has_text="Der Goldpreis steigt.").wait_for()
    preview.locator("h2", has_text="Die Lage").wait_for()
    # A draft shows the disclaimer it will be published with.
    assert preview.locator("aside.disclaimer").inner_text().strip() == note.text_de
    # "Die Lage" + "Der Goldpreis steigt." + "Zweiter Absatz mit vier Wörtern."
    page.locator("[data-editor-counts]").filter(has_text="10 Wörter · ca. 1 Min.").wait_for()

    # --- Images: one uploaded into the text, one as the feature image ------------------------
    body.press("Control+End")
    body.type("\n\n")
    upload_by_button(
        page,
        alt="Goldpreis seit 2020",
        file={"name": "kurve.png", "mimeType": "image/png", "buffer": picture_bytes(width=1800)},
    )
    assert "![Goldpreis seit 2020](/media/images/" in body.input_value()
    upload_by_button(
        page,
        alt="Goldbarren im Tresor",
        file={
            "name": "tresor.jpg",
            "mimeType": "image/jpeg",
            "buffer": picture_bytes(width=2000, height=1000, fmt="JPEG", colour=(190, 150, 40)),
        },
    )
    # The second upload is the feature image, not part of the text.
    text = body.input_value()
    body.fill(text[: text.index("![Goldbarren im Tresor]")].rstrip() + "\n")
    page.locator(".field-feature_image .select2-selection").click()
    page.locator(".select2-search__field[aria-controls=select2-id_feature_image-results]").fill(
        "Tresor"
    )
    page.locator(".select2-results__option", has_text="Goldbarren im Tresor").click()
    body.press("Control+End")
    body.type("Quelle: eigene Daten.")
    # The live preview shows both as readers will get them: every rendition, the box
    # reserved by width and height, and the files load under the CSP.
    preview = _preview_main(page)
    for image in (
        preview.locator(".article__body img[alt='Goldpreis seit 2020']"),
        preview.locator("img.article__image[alt='Goldbarren im Tresor']"),
    ):
        image.wait_for()
        assert image.get_attribute("srcset").count("w, ") == 2  # three widths
        assert image.get_attribute("width") and image.get_attribute("height")
        image.scroll_into_view_if_needed()
        image.evaluate("el => el.loading = 'eager'")
        page.wait_for_function(
            "el => el.complete && el.naturalWidth > 0", arg=image.element_handle()
        )

    # --- Autosave: the draft is stored without pressing save ------------------------------
    page.locator("[data-editor-saved]").filter(has_text="Entwurf gesichert").wait_for()
    assert re.search(r"/admin/articles/article/\d+/change/$", page.url)
    chart = Image.objects.get(alt_text="Goldpreis seit 2020")
    tresor = Image.objects.get(alt_text="Goldbarren im Tresor")
    # The last autosave stored the text's end, the feature image and the picture in the text.
    article = _eventually(
        lambda: Article.objects.filter(
            slug="gold-im-aufwind", body_markdown__endswith="eigene Daten.", feature_image=tresor
        ).first()
    )
    assert article.status == ArticleStatus.DRAFT
    assert list(article.body_images.values_list("image", flat=True)) == [chart.pk]
    # Side by side on a desktop, the preview under the text on a phone.
    frame = page.locator("iframe[data-preview-frame]")
    text_box, frame_box = body.bounding_box(), frame.bounding_box()
    assert frame_box["x"] >= text_box["x"] + text_box["width"]
    assert abs(frame_box["y"] - text_box["y"]) < 2
    page.set_viewport_size({"width": 390, "height": 900})
    text_box, frame_box = body.bounding_box(), frame.bounding_box()
    assert frame_box["y"] >= text_box["y"] + text_box["height"]
    assert frame_box["x"] + frame_box["width"] <= 390
    page.set_viewport_size({"width": 1280, "height": 900})
    _shot(page, "article-form")

    # --- Close the tab; the draft is in the list --------------------------------------------
    page.close()
    page = browser_page.context.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base + reverse("admin:articles_article_changelist"))
    row = page.locator("#result_list tr", has_text="Gold im Aufwind")
    assert "Entwurf" in row.inner_text()
    row.get_by_role("link", name="Gold im Aufwind").click()
    assert "Zweiter Absatz" in page.locator("textarea#id_body_markdown").input_value()

    # --- Schedule, then the minute comes ---------------------------------------------------
    when = timezone.localtime(timezone.now() + timedelta(hours=2))
    page.select_option("#id_status", ArticleStatus.SCHEDULED)
    page.fill("#id_published_at_0", when.strftime("%d.%m.%Y"))
    page.fill("#id_published_at_1", when.strftime("%H:%M:%S"))
    page.click("input[name=_continue]")
    page.locator(".messagelist .success").wait_for()
    article.refresh_from_db()
    assert article.status == ArticleStatus.SCHEDULED
    assert article.disclaimer_version == note
    # Time passes: the go-live minute is reached (the beat has not flipped the row yet).
    Article.objects.filter(pk=article.pk).update(published_at=timezone.now() - timedelta(minutes=5))
    page.goto(base + reverse("admin:articles_article_changelist"))
    row = page.locator("#result_list tr", has_text="Gold im Aufwind")
    assert "Veröffentlicht" in row.inner_text() and "Geplant" not in row.inner_text()
    _shot(page, "article-list")

    # --- Preview unsaved changes to the live article, in the page layout ------------------
    page.goto(base + reverse("admin:articles_article_change", args=[article.pk]))
    body = page.locator("textarea#id_body_markdown")
    body.press("Control+End")
    body.type("\n\nNachtrag: Die Notenbank kauft.")
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Vorschau im Seitenlayout").click()
    unsaved = opened.value
    unsaved.wait_for_load_state()
    assert "Nachtrag: Die Notenbank kauft." in unsaved.locator("main").inner_text()
    assert "nichts davon ist gespeichert" in unsaved.locator(".preview-banner").inner_text()
    _shot(unsaved, "preview-unsaved")
    unsaved.close()
    # Autosave of a live article keeps a revision, nothing readers see.
    page.locator("[data-editor-saved]").filter(has_text="nicht veröffentlicht").wait_for()
    reader = page.context.new_page()
    reader.goto(base + article.get_absolute_url())
    assert "Nachtrag" not in reader.locator("main").inner_text()
    assert reader.locator(".corrected").count() == 0
    # Readers get both pictures, each as the WebP rendition their screen needs.
    for image in (
        reader.locator(".article__body img[alt='Goldpreis seit 2020']"),
        reader.locator("img.article__image[alt='Goldbarren im Tresor']"),
    ):
        image.scroll_into_view_if_needed()
        reader.wait_for_function(
            "el => el.complete && el.naturalWidth > 0", arg=image.element_handle()
        )
        assert image.evaluate("el => el.currentSrc").endswith(".webp")

    # --- Correct it: "aktualisiert am" from the first change after go-live -----------------
    page.click("input[name=_continue]")
    page.locator(".messagelist .success").wait_for()
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    assert article.corrected_at is not None
    reader.reload()
    assert "Nachtrag: Die Notenbank kauft." in reader.locator("main").inner_text()
    assert "aktualisiert am" in reader.locator(".corrected").inner_text()
    # Byte for byte: the editor's live pane shows what readers now get.
    page.reload()
    preview = _preview_main(page)
    preview.locator("p", has_text="Nachtrag").wait_for()
    assert preview.locator("article").inner_html() == reader.locator("main article").inner_html()
    assert page.evaluate("window.__cspViolations") == []

    # --- See the diff of the correction ----------------------------------------------------
    page.goto(base + reverse("admin:articles_article_history", args=[article.pk]))
    # The newest saved revision: an autosave of the reloaded editor may stand above it.
    history = page.locator("#change-history tbody tr:not(.revision--unpublished)")
    _shot(page, "revision-history")
    assert "Text (Markdown)" in history.first.inner_text()
    history.first.get_by_role("link").click()
    diff = page.locator(".revision-diff", has_text="Text (Markdown)").first
    assert diff.locator(".diff_add", has_text="Nachtrag: Die Notenbank kauft.").count() == 1
    _shot(page, "revision-diff")

    # --- Restore the revision before the correction ----------------------------------------
    page.goto(base + reverse("admin:articles_article_history", args=[article.pk]))
    saved = page.locator("#change-history tbody tr:not(.revision--unpublished)")
    saved.nth(1).get_by_role("link").click()
    page.get_by_role("button", name="Diese Fassung wiederherstellen").click()
    page.locator(".messagelist .success").wait_for()
    article.refresh_from_db()
    assert "Nachtrag" not in article.body_markdown
    assert article.status == ArticleStatus.PUBLISHED
    reader.reload()
    assert "Nachtrag" not in reader.locator("main").inner_text()

    # --- Leaving with unsaved changes asks first -------------------------------------------
    page.goto(base + reverse("admin:articles_article_change", args=[article.pk]))
    page.locator("textarea#id_body_markdown").press("Control+End")
    page.locator("textarea#id_body_markdown").type(" Ungesichert.")
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.close(run_before_unload=True)
    page.wait_for_timeout(500) if not asked else None
    assert asked == ["beforeunload"]

    # --- Withdraw with a reason and a confirmation ------------------------------------------
    page = browser_page.context.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base + reverse("admin:articles_article_change", args=[article.pk]))
    assert page.locator(".deletelink").count() == 0  # no delete once it was out
    page.get_by_role("link", name="Zurückziehen").first.click()
    page.fill("#id_reason", "Zahlen der Notenbank waren falsch.")
    _shot(page, "withdraw-confirmation")
    page.get_by_role("button", name="Zurückziehen").click()
    # Not confirmed: the browser keeps the form (the server would refuse it too, see
    # test_admin_desk), and nothing changed.
    assert page.locator("#id_confirm:invalid").count() == 1
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    page.check("#id_confirm")
    page.get_by_role("button", name="Zurückziehen").click()
    page.locator(".messagelist .success").wait_for()
    article.refresh_from_db()
    assert article.status == ArticleStatus.WITHDRAWN
    event = ArticleEvent.objects.get(kind=ArticleEventKind.WITHDRAWN)
    assert (event.reason, event.acting_user.username) == (
        "Zahlen der Notenbank waren falsch.",
        "chefin",
    )
    assert reader.goto(base + article.get_absolute_url()).status == 404

    # --- The library says where its pictures are used ----------------------------------------
    page.goto(base + reverse("admin:articles_image_changelist"))
    assert (
        "1 Artikel" in page.locator("#result_list tr", has_text="Goldpreis seit 2020").inner_text()
    )
    _shot(page, "image-library")
    page.goto(base + reverse("admin:articles_image_change", args=[chart.pk]))
    assert "Gold im Aufwind (im Text, Zurückgezogen)" in page.locator(".media-usage").inner_text()
    _shot(page, "image-change")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_article_list_fits_1280_px_with_its_useful_columns(browser_page, live_server):
    page = browser_page
    _login(page, live_server.url)
    topics = [TopicFactory(name=name) for name in ("Edelmetalle", "Geldpolitik", "Technologie")]
    for number in range(12):
        article = ArticleFactory(
            title=f"Warum die Notenbanken ihre Goldreserven aufstocken – Teil {number}",
            topics=topics,
            corrected_at=timezone.now() if number % 3 == 0 else None,
        )
        article.authors.set(
            [AuthorFactory(name="Mira Yilmaz-Hoffmann"), AuthorFactory(name="Lena Hartmann")]
        )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("admin:articles_article_changelist"))
    results = page.locator("#changelist .results")
    overflow = results.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the list is {overflow}px wider than its box"
    viewport_right = 1280
    for header in ("Titel", "Status", "Art", "Autoren", "Online ab", "Vorschau"):
        box = page.locator("#result_list thead th", has_text=header).first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= viewport_right, header
    _shot(page, "article-list-full")
