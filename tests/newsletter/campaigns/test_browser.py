"""The manager's path in Chromium: write a campaign, preview it as a subscriber (desktop and
phone), test it to two addresses caught by the SMTP sink, read the checklist's count, send,
watch the progress and read the final counts. Screenshots of each page at 1280 and 390 px go
to /work/wt/shots when that folder exists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect

from newsletter.models import Campaign, Digest, DigestState
from newsletter.services import digests
from newsletter.services.digest_sending import digest_drain
from tests.articles.factories import TopicFactory
from tests.fakes.smtp import SmtpSink
from tests.newsletter.digests.conftest import seed_subscribers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-browser-123"
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/work/wt/shots"))


def shoot(page, name: str) -> None:
    if not SHOTS.is_dir():
        return
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"campaigns-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def sink(settings):
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    sink.stop()


def test_manager_writes_tests_checks_sends_and_reads_the_report(
    browser_page, live_server, newsletter_with_articles, sink, monkeypatch
):
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: None)
    newsletter = newsletter_with_articles
    newsletter.brand_color, newsletter.brand_footer = "#8a1538", "Verlag Beispiel GmbH"
    newsletter.save()
    subs = seed_subscribers(newsletter, 30, language_every=3)
    english = [s for s in subs if s.language == "en"]
    # Every English reader and five German ones chose "Märkte"; the segment asks for both.
    markets = TopicFactory(name="Märkte")
    TopicFactory(name="Energie")
    for sub in english + [s for s in subs if s.language == "de"][:5]:
        sub.topics.add(markets)
    manager = User.objects.create_user(
        "verwaltung", email="verwaltung@example.org", password=PASSWORD, is_staff=True
    )
    # Every newsletter permission, as the managers' group has (a transactional test flushes
    # the group the migration created once a test before it ran).
    manager.user_permissions.set(Permission.objects.filter(content_type__app_label="newsletter"))
    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "verwaltung")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    # Write the campaign.
    page.goto(f"{base}/admin/newsletter/campaign/add/")
    page.select_option("#id_newsletter", str(newsletter.pk))
    page.fill("#id_name", "Herbstangebot")
    page.fill("#id_subject", "One year for half the price")
    page.fill("#id_body_markdown", "## Our offer\n\nRead **a whole year** for half the price.")
    page.select_option("#id_segment_language", "en")
    page.get_by_label("Märkte").check()
    shoot(page, "form")
    page.click("input[name=_save]")
    page.wait_for_url(f"{base}/admin/newsletter/campaign/")
    campaign = Campaign.objects.get(name="Herbstangebot")

    # The list leads to the workflow; the checklist counts the segment.
    page.get_by_role("link", name="Prüfen und senden").click()
    page.wait_for_url(f"**/campaign/{campaign.pk}/send/")
    assert page.locator("#check-count").inner_text() == str(len(english)) == "10"
    assert page.locator("#check-topics").inner_text() == "Märkte"
    assert "redaktion@example.org" in page.locator("#check-sender").inner_text()
    assert not Digest.objects.exists()

    # Preview as one subscriber, desktop and phone.
    page.select_option("#preview-subscription", str(english[0].pk))
    with page.expect_popup() as popup:
        page.locator("#preview-subscription ~ button").click()
    preview = popup.value
    preview.wait_for_load_state()
    assert english[0].email in preview.locator("#content").inner_text()
    for frame in ("iframe.preview-desktop", "iframe.preview-phone"):
        mail = preview.frame_locator(frame)
        assert "a whole year" in mail.locator("body").inner_text()
        hrefs = mail.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert "#vorschau-abmelden" in hrefs and not [h for h in hrefs if "/n/" in h]
    shoot(preview, "preview")
    preview.close()

    # A test to two addresses, caught by the SMTP sink.
    page.fill("#id_addresses", "erste@example.org\nzweite@example.org")
    page.get_by_role("button", name="Test senden").click()
    page.wait_for_url(f"**/campaign/{campaign.pk}/send/")
    sink.wait_for(lambda m: "zweite@example.org" in m["To"], timeout=30)
    assert set(sink.counts) == {"erste@example.org", "zweite@example.org"}
    assert all(m["Subject"].startswith("[Test] ") for m in sink.messages)
    assert not Digest.objects.exists()
    shoot(page, "checklist")

    # Confirm, then the progress page while it sends and when it is done.
    page.get_by_role("button", name="An 10 Empfänger senden").click()
    page.wait_for_url("**/progress/")
    mailing = Digest.objects.get(campaign=campaign)
    digests.digest_fan_out(digest_id=mailing.pk)
    page.reload()
    assert page.locator("[data-key=recipients]").inner_text() == "10"
    shoot(page, "progress")
    digest_drain(digest_id=mailing.pk)
    assert {e: n for e, n in sink.counts.items() if "@example.org" in e and n != 1} == {}
    assert {s.email for s in english} <= set(sink.counts)
    mailing.refresh_from_db()
    assert mailing.state == DigestState.DONE
    # The progress page's script refreshes the counts by itself.
    expect(page.locator("[data-key=sent]")).to_have_text("10", timeout=20_000)
    assert "Öffnungen und Klicks werden nicht gemessen" in page.locator("#content").inner_text()
    shoot(page, "report")

    # The rendered branded mail as a reader's client shows it.
    html = next(
        part.get_payload(decode=True).decode()
        for m in sink.messages
        if not m["Subject"].startswith("[Test]")
        for part in m.walk()
        if part.get_content_type() == "text/html"
    )
    page.set_content(html)
    shoot(page, "mail")


def test_the_digest_start_page_is_linked_from_the_list_and_counts_before_sending(
    browser_page, live_server, newsletter_with_articles, monkeypatch
):
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: None)
    seed_subscribers(newsletter_with_articles, 7)
    manager = User.objects.create_user("verwaltung", password=PASSWORD, is_staff=True)
    # Every newsletter permission, as the managers' group has (a transactional test flushes
    # the group the migration created once a test before it ran).
    manager.user_permissions.set(Permission.objects.filter(content_type__app_label="newsletter"))
    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "verwaltung")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    page.goto(f"{base}/admin/newsletter/digest/")
    page.get_by_role("link", name="Digest jetzt senden").click()
    page.wait_for_url("**/digest/start/")
    assert page.locator("#content h1").count() == 1
    page.select_option("#id_newsletter", str(newsletter_with_articles.pk))
    page.select_option("#id_frequency", "daily")
    page.get_by_role("button", name="Digest zusammenstellen").click()
    page.wait_for_url("**/digest/start/?*")
    assert page.locator("#check-count").inner_text() == "7"
    assert not Digest.objects.exists()
    shoot(page, "digest-start")
    page.get_by_role("button", name="An 7 Empfänger senden").click()
    page.wait_for_url("**/progress/")
    assert Digest.objects.get().state == DigestState.FANNING_OUT

    page.goto(f"{base}/admin/newsletter/newsletter/{newsletter_with_articles.pk}/change/")
    assert page.locator("#id_brand_color").is_visible()
    shoot(page, "newsletter-form")
