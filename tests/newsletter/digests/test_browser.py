"""The digest's admin pages in Chromium: what a manager and a digest-only viewer see, and that
the preview's frame shows the mail with nothing in it that leads into a subscription."""

import pytest
from django.contrib.auth.models import Permission, User

from newsletter.services import digests
from newsletter.services.digests import digest_start_now

from .conftest import seed_subscribers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-browser-123"


@pytest.fixture
def digest(newsletter_with_articles, monkeypatch):
    # The digest's pages only read; no worker needs to be woken.
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk: None)
    subs = seed_subscribers(newsletter_with_articles, 12, language_every=3)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    digests.digest_fan_out(digest_id=digest.pk)
    digest.refresh_from_db()
    digest.subs = subs
    return digest


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_manager_previews_as_a_subscriber_with_inert_links(
    browser_page, live_server, digest, managers_group
):
    manager = User.objects.create_user("verwaltung", password=PASSWORD, is_staff=True)
    manager.groups.add(managers_group)
    page = browser_page
    log_in(page, live_server.url, "verwaltung")

    page.goto(f"{live_server.url}/admin/newsletter/digest/{digest.pk}/progress/")
    assert page.locator("#digest-progress [data-key=recipients]").inner_text() == "12"
    english = digest.subs[2]
    page.select_option("#preview-subscription", str(english.pk))
    assert page.get_by_role("button", name="Test senden").is_visible()

    page.goto(
        f"{live_server.url}/admin/newsletter/digest/{digest.pk}/preview/?subscription={english.pk}"
    )
    assert english.email in page.locator("#content").inner_text()
    mail = page.frame_locator("iframe.preview-desktop")
    assert "opinion of our editors" in mail.locator("body").inner_text()
    hrefs = mail.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "#vorschau-abmelden" in hrefs and "#vorschau-einstellungen" in hrefs
    assert not [href for href in hrefs if "/n/" in href]
    # Following the inert link leaves the admin page where it is.
    mail.get_by_role("link", name="Unsubscribe").click()
    assert "/preview/" in page.url


def test_digest_viewer_sees_counts_but_no_address(browser_page, live_server, digest):
    viewer = User.objects.create_user("nur-digests", password=PASSWORD, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_digest"))
    page = browser_page
    log_in(page, live_server.url, "nur-digests")

    page.goto(f"{live_server.url}/admin/newsletter/digest/{digest.pk}/progress/")
    content = page.locator("#content").inner_text()
    assert page.locator("#digest-progress [data-key=recipients]").inner_text() == "12"
    assert "@example.org" not in content
    assert page.locator("#preview-subscription").count() == 0
    assert page.get_by_role("button", name="Test senden").count() == 0

    page.select_option("#preview-language", "de")
    with page.expect_popup() as popup:
        page.get_by_role("button", name="Vorschau öffnen").click()
    preview = popup.value
    preview.wait_for_load_state()
    mail = preview.frame_locator("iframe.preview-desktop")
    assert "Meinungsäußerung unserer Redaktion" in mail.locator("body").inner_text()
    assert "@example.org" not in preview.locator("#content").inner_text()
