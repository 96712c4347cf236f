"""The printable proof in Chromium: readable on a desktop and on a phone, nothing cut off."""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from newsletter.services.consent import subscription_revoke

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_printable_proof_fits_the_screen(
    browser_page, live_server, signup, confirm, width, tmp_path
):
    subscription = signup("beleg@example.org", ip="203.0.113.5", user_agent="Mozilla/5.0 (X11)")
    confirm(subscription, ip="198.51.100.7", user_agent="Thunderbird/128")
    subscription_revoke(subscription_id=subscription.id, channel="one_click")
    # A transactional test's flush drops the migrations' groups: a superuser needs none.
    user = User.objects.create_superuser("verwaltung", password="x")
    client = Client()
    client.force_login(user)
    page = browser_page
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.set_viewport_size({"width": width, "height": 900})

    page.goto(
        live_server.url + reverse("admin:newsletter_subscription_proof", args=[subscription.id])
    )

    assert page.locator("h1").inner_text().startswith("Nachweis der Einwilligung")
    assert page.locator("ol.nl-proof__steps > li").count() == 4  # with the mail sent
    assert "Kette bis hier geprüft: unverändert" in page.locator("ol.nl-proof__steps").inner_text()
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    page.screenshot(path=str(shots / f"ledger-proof-{width}.png"), full_page=True)
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
