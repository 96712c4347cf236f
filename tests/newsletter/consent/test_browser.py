"""A reader's whole journey in Chromium: sign up under an article, confirm from the mail caught
by a local SMTP sink, leave through the unsubscribe link; a scanner's GET confirms nobody.
Erasure from the preference centre goes through a link mailed to the address."""

import re

import pytest
import requests
from django.urls import reverse

from newsletter import tokens
from newsletter.addresses import address_hmac
from newsletter.models import ConsentEvent, Subscription, SubscriptionState
from newsletter.services.consent import consent_text_default_publish
from tests.articles.factories import ArticleFactory
from tests.newsletter.factories import NewsletterFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mail_to_sink(settings, smtp_sink, live_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0
    return smtp_sink


def test_reader_signs_up_confirms_and_unsubscribes(browser_page, live_server, mail_to_sink):
    newsletter = NewsletterFactory(slug="meinung-am-morgen", name="Meinung am Morgen")
    consent_text_default_publish(newsletter=newsletter)
    article = ArticleFactory(title="Chinas KI-Charmeoffensive", slug="chinas-ki")
    page = browser_page

    page.goto(f"{live_server.url}/artikel/{article.slug}/")
    box = page.locator("section.nl-box")
    assert "Ich bin damit einverstanden" in box.inner_text()
    box.get_by_label("E-Mail-Adresse").fill("browser.leserin@example.org")
    box.get_by_role("button", name="Abschicken").click()
    page.wait_for_url("**/newsletter/anmelden/danke/")

    mail = mail_to_sink.wait_for(lambda m: m["To"] == "browser.leserin@example.org")
    link = re.search(r"(http://\S+/n/bestaetigen/[^/\s]+/)", mail_to_sink.text_of(mail)).group(1)
    sub = Subscription.objects.get(email="browser.leserin@example.org")
    requested = ConsentEvent.objects.get(subscription=sub, kind="requested")
    assert requested.url.endswith(f"/artikel/{article.slug}/")

    # A mail scanner follows the link without running scripts: nobody is confirmed.
    scanner = requests.get(link, timeout=10)
    assert scanner.status_code == 200
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.PENDING

    page.goto(link)
    page.wait_for_selector("h1.nl-confirmed")
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED
    assert ConsentEvent.objects.get(subscription=sub, kind="confirmed").user_agent

    # The unsubscribe link as every later mail carries it.
    unsubscribe = live_server.url + reverse(
        "newsletter_unsubscribe", kwargs={"token": tokens.make_unsubscribe_token(sub.id)}
    )
    page.goto(unsubscribe)
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED
    page.get_by_role("button", name="Abbestellen").click()
    page.wait_for_selector("h1.nl-unsubscribed")
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.UNSUBSCRIBED
    assert ConsentEvent.objects.get(subscription=sub, kind="revoked").channel == "link"


def test_reader_erases_their_data_through_the_link_mailed_to_them(
    browser_page, live_server, mail_to_sink
):
    newsletter = NewsletterFactory(slug="meinung-am-morgen", name="Meinung am Morgen")
    consent_text_default_publish(newsletter=newsletter)
    sub = Subscription.objects.create(
        email="loeschen.bitte@example.org",
        address_hmac=address_hmac("loeschen.bitte@example.org"),
        newsletter=newsletter,
        state=SubscriptionState.PENDING,
    )
    page = browser_page
    page.goto(
        live_server.url
        + reverse(
            "newsletter_preferences",
            kwargs={"token": tokens.make_preferences_token(sub.id, sub.address_hmac)},
        )
    )
    page.get_by_role("button", name="Alle Daten löschen").click()
    page.wait_for_selector("text=Bitte sehen Sie in Ihr Postfach")
    assert Subscription.objects.filter(id=sub.id).exists()

    mail = mail_to_sink.wait_for(lambda m: m["To"] == "loeschen.bitte@example.org")
    assert "Löschung bestätigen" in mail["Subject"]
    link = re.search(r"(http://\S+/n/daten-loeschen/[^/\s]+/)", mail_to_sink.text_of(mail)).group(1)
    # A scanner that fetches the link erases nothing.
    assert requests.get(link, timeout=10).status_code == 200
    assert Subscription.objects.filter(id=sub.id).exists()

    page.goto(link)
    page.get_by_role("button", name="Ja, endgültig löschen").click()
    page.wait_for_selector("h1.nl-erased")
    assert not Subscription.objects.filter(id=sub.id).exists()
    assert ConsentEvent.objects.filter(address_hmac=sub.address_hmac, kind="erased").exists()


def test_reader_chooses_topics_in_the_preference_centre(browser_pages, live_server):
    """Checkboxes in the reader's language, saved on the subscription; the page fits a phone.
    With SCREENSHOT_DIR set the page is saved at 1280 and 390 px (preferences-topics-*.png)."""
    import os
    from pathlib import Path

    from tests.articles.factories import TopicFactory
    from tests.newsletter.factories import SubscriptionFactory

    newsletter = NewsletterFactory(slug="meinung-am-morgen", name="Meinung am Morgen")
    consent_text_default_publish(newsletter=newsletter)
    markets = TopicFactory(name="Märkte", name_en="Markets")
    TopicFactory(name="Energie", name_en="Energy")
    sub = SubscriptionFactory(newsletter=newsletter, email="themen@example.org")
    path = reverse(
        "newsletter_preferences",
        kwargs={"token": tokens.make_preferences_token(sub.id, address_hmac(sub.email))},
    )
    shots = os.environ.get("SCREENSHOT_DIR", "")
    for width in (1280, 390):
        page = browser_pages(locale="de-DE", width=width)
        page.goto(live_server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        if shots:
            page.screenshot(
                path=str(Path(shots) / f"preferences-topics-{width}.png"), full_page=True
            )
    page.get_by_label("Märkte").check()
    page.get_by_role("button", name="Speichern").click()
    page.wait_for_url("**gespeichert=1**")
    assert list(sub.topics.all()) == [markets]
    assert page.get_by_label("Märkte").is_checked()
    english = browser_pages(locale="en-GB", width=390)
    english.goto(live_server.url + path + "?lang=en")
    assert english.get_by_label("Markets").is_checked()
