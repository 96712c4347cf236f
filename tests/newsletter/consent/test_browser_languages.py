"""The whole journey of an English reader and of a German one in Chromium, from an article page
through signup, the confirmation mail, confirm, welcome, preferences, one digest and
unsubscribe: every page and mail in the reader's language, and on a phone nothing scrolls
sideways. With SCREENSHOT_DIR set, each page is also saved there as a PNG."""

import os
import re
from pathlib import Path

import pytest

from newsletter.models import Subscription, SubscriptionState
from newsletter.services import digests
from newsletter.services.consent import consent_text_default_publish
from newsletter.services.digest_sending import digest_drain
from newsletter.services.digests import digest_fan_out, digest_start_now
from tests.articles.factories import ArticleFactory, english_translation_save
from tests.newsletter.factories import NewsletterFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JOURNEYS = {
    "en": {
        "locale": "en-GB",
        "article": "/en/artikel/gold-as-insurance/",
        "title": "Gold as insurance",
        "consent": "I agree to be informed by e-mail",
        "button": "Submit",
        "too_fast": "That was very fast",
        "done": "/en/newsletter/anmelden/danke/",
        "confirm_subject": "Please confirm",
        "confirmed": "Thank you!",
        "welcome_subject": "Welcome",
        "preferences": "Your newsletter preferences",
        "digest_subject": "new articles",
        "read_more": "Read more",
        "unsubscribe_heading": "Unsubscribe from the newsletter",
        "unsubscribe_button": "Unsubscribe",
        "to_preferences": "To your newsletter preferences",
        "erase_all": "Erase all data",
        "check_inbox": "Please check your inbox",
        "erase_kept": "cannot be recovered",
        "erase_yes": "Yes, erase for good",
        "export": "Download all data (JSON)",
    },
    "de": {
        "locale": "de-DE",
        "article": "/artikel/gold-als-versicherung/",
        "title": "Gold als Versicherung",
        "consent": "Ich bin damit einverstanden",
        "button": "Abschicken",
        "too_fast": "Das ging sehr schnell",
        "done": "/newsletter/anmelden/danke/",
        "confirm_subject": "Bitte bestätigen",
        "confirmed": "Vielen Dank!",
        "welcome_subject": "Willkommen",
        "preferences": "Ihre Newsletter-Einstellungen",
        "digest_subject": "neue Artikel vom",
        "read_more": "Weiterlesen",
        "unsubscribe_heading": "Newsletter abbestellen",
        "unsubscribe_button": "Abbestellen",
        "to_preferences": "Zu Ihren Newsletter-Einstellungen",
        "erase_all": "Alle Daten löschen",
        "check_inbox": "Bitte sehen Sie in Ihr Postfach",
        "erase_kept": "nicht zurückgewinnen",
        "erase_yes": "Ja, endgültig löschen",
        "export": "Alle Daten herunterladen (JSON)",
    },
}


@pytest.fixture
def site(settings, smtp_sink, live_server, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # The digest is driven step by step below; nothing needs waking.
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk: None)
    newsletter = NewsletterFactory(
        slug="meinung-am-morgen",
        name="Meinung am Morgen",
        welcome_mail=True,
        description="Die neuen Meinungsbeiträge, morgens in Ihrem Postfach.",
        description_en="The new opinion pieces, in your inbox every morning.",
    )
    consent_text_default_publish(newsletter=newsletter)
    article = ArticleFactory(
        title="Gold als Versicherung", slug="gold-als-versicherung", lead="Warum Gold."
    )
    english_translation_save(
        article,
        title="Gold as insurance",
        slug="gold-as-insurance",
        lead="Why gold.",
        body_markdown="The English text.",
    )
    return newsletter


def fits(page) -> None:
    """Nothing wider than the window: no sideways scrolling."""
    scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, (page.url, scroll, inner)


def check(page, language: str, text: str, shot: str, width: int) -> None:
    assert page.evaluate("() => document.documentElement.lang") == language, page.url
    assert text in page.locator("body").inner_text(), (page.url, text)
    fits(page)
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(
            path=str(Path(folder) / f"languages-{shot}-{language}-{width}.png"), full_page=True
        )


def link_in(mail, sink, route: str) -> str:
    return re.search(rf"(http://\S+/n/{route}/[^/\s]+/\?lang=[a-z]+)", sink.text_of(mail)).group(1)


# 320 px is the narrowest phone the issue names; German, whose words are longest, is tried there.
@pytest.mark.parametrize(
    ("language", "width"), [("en", 390), ("en", 1280), ("de", 390), ("de", 320)], ids=str
)
def test_reader_journey_in_their_language(
    browser_pages, live_server, smtp_sink, site, settings, language, width
):
    words = JOURNEYS[language]
    address = f"journey.{language}.{width}@example.org"
    page = browser_pages(locale=words["locale"], width=width)

    # The article page, in the reader's language, with the signup box under it.
    page.goto(live_server.url + words["article"])
    check(page, language, words["title"], "article", width)
    box = page.locator("section.nl-box")
    assert words["consent"] in box.inner_text()
    box.locator("input[type=email]").fill(address)

    # Too fast for the anti-bot check: the reader stays on the article, address kept.
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 3600
    box.get_by_role("button", name=words["button"]).click()
    page.wait_for_selector(f"section.nl-box .nl-errors:has-text('{words['too_fast']}')")
    assert page.url == live_server.url + words["article"]
    box = page.locator("section.nl-box")
    assert box.locator("input[type=email]").input_value() == address
    check(page, language, words["too_fast"], "signup-too-fast", width)
    # Once the minimum time has passed since the form was shown, a second press succeeds.
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0
    box.get_by_role("button", name=words["button"]).click()
    page.wait_for_url(f"**{words['done']}")
    check(page, language, "", "signup-done", width)

    # The confirmation mail and the page it links to.
    mail = smtp_sink.wait_for(lambda m: m["To"] == address)
    assert words["confirm_subject"] in mail["Subject"]
    assert words["consent"] in smtp_sink.text_of(mail)
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert f'<html lang="{language}">' in html
    page.goto(link_in(mail, smtp_sink, "bestaetigen"))
    page.wait_for_selector("h1.nl-confirmed")
    check(page, language, words["confirmed"], "confirmed", width)
    sub = Subscription.objects.get(email=address)
    assert sub.state == SubscriptionState.CONFIRMED and sub.language == language

    # The welcome mail's preference link.
    welcome = smtp_sink.wait_for(
        lambda m: m["To"] == address and words["welcome_subject"] in m["Subject"]
    )
    page.goto(link_in(welcome, smtp_sink, "einstellungen"))
    check(page, language, words["preferences"], "preferences", width)
    checkbox = page.locator(f"#id_nl_{site.pk}")
    label = page.locator(f"label[for=id_nl_{site.pk}]")
    box_at, label_at = checkbox.bounding_box(), label.bounding_box()
    assert label_at["x"] > box_at["x"] and abs(label_at["y"] - box_at["y"]) < 20

    # One digest, in the reader's language.
    digest = digest_start_now(newsletter=site).digest
    digest_fan_out(digest_id=digest.pk)
    digest_drain(digest_id=digest.pk)
    mail = smtp_sink.wait_for(
        lambda m: m["To"] == address and words["digest_subject"] in m["Subject"]
    )
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert f'<html lang="{language}">' in html
    assert words["title"] in html and words["read_more"] in html
    assert f"?lang={language}>" in mail["List-Unsubscribe"] or f"?lang={language}>" in mail[
        "List-Unsubscribe"
    ].replace("\n", "")

    # Unsubscribe through the digest's link.
    page.goto(link_in(mail, smtp_sink, "abmelden"))
    check(page, language, words["unsubscribe_heading"], "unsubscribe", width)
    page.get_by_role("button", name=words["unsubscribe_button"]).click()
    page.wait_for_selector("h1.nl-unsubscribed")
    check(page, language, "", "unsubscribed", width)
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.UNSUBSCRIBED

    # Export and erasure through the links mailed from the preference centre.
    page.get_by_role("link", name=words["to_preferences"]).click()
    check(page, language, words["preferences"], "preferences-after-unsubscribe", width)
    page.get_by_role("button", name=words["export"]).click()
    check(page, language, words["check_inbox"], "data-link-sent", width)
    export = smtp_sink.wait_for(
        lambda m: m["To"] == address and "daten-export" in smtp_sink.text_of(m)
    )
    page.goto(link_in(export, smtp_sink, "daten-export"))
    check(page, language, words["export"], "data-export", width)
    page.goto(link_in(welcome, smtp_sink, "einstellungen"))
    page.get_by_role("button", name=words["erase_all"]).click()
    page.wait_for_selector(f"h1:has-text('{words['check_inbox']}')")
    erase = smtp_sink.wait_for(
        lambda m: m["To"] == address and "daten-loeschen" in smtp_sink.text_of(m)
    )
    page.goto(link_in(erase, smtp_sink, "daten-loeschen"))
    check(page, language, words["erase_kept"], "data-erase", width)
    page.get_by_role("button", name=words["erase_yes"]).click()
    page.wait_for_selector("h1.nl-erased")
    check(page, language, "", "data-erased", width)
    assert not Subscription.objects.filter(email=address).exists()
