"""Pages reached from mail speak the subscription's language, links carry it, and the reader
can switch; consent texts are shown in the language they were agreed in."""

import re

import pytest
from django.core import mail
from django.test import TestCase
from django.urls import reverse

from newsletter import tokens
from newsletter.emails.consent import (
    confirmation_message_build,
    data_url,
    preferences_url,
    unsubscribe_url,
)
from newsletter.models import ConsentEvent, ConsentText, Subscription, SubscriptionState
from newsletter.services.consent import consent_text_default_publish
from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def html_lang(response) -> str:
    return re.search(r'<html lang="([a-z-]+)"', response.content.decode()).group(1)


@pytest.fixture
def english_sub(newsletter):
    return SubscriptionFactory(
        email="reader@example.org", newsletter=newsletter, language="en", state="pending"
    )


def _paths(sub) -> dict[str, str]:
    return {
        "confirm": reverse(
            "newsletter_confirm",
            kwargs={"token": tokens.make_confirm_token(sub.id, sub.confirm_round)},
        ),
        "unsubscribe": reverse(
            "newsletter_unsubscribe", kwargs={"token": tokens.make_unsubscribe_token(sub.id)}
        ),
        "preferences": reverse(
            "newsletter_preferences",
            kwargs={"token": tokens.make_preferences_token(sub.id, sub.address_hmac)},
        ),
        "export": reverse(
            "newsletter_data_export",
            kwargs={"token": tokens.make_data_token(tokens.DATA_EXPORT, sub.id, sub.address_hmac)},
        ),
        "erase": reverse(
            "newsletter_data_erase",
            kwargs={"token": tokens.make_data_token(tokens.DATA_ERASE, sub.id, sub.address_hmac)},
        ),
    }


ENGLISH_WORDS = {
    "confirm": "Confirm signup",
    "unsubscribe": "Unsubscribe from the newsletter",
    "preferences": "Your newsletter preferences",
    "export": "Download your data",
    "erase": "Erase all data?",
}
GERMAN_WORDS = {
    "confirm": "Anmeldung bestätigen",
    "unsubscribe": "Newsletter abbestellen",
    "preferences": "Ihre Newsletter-Einstellungen",
    "export": "Ihre Daten herunterladen",
    "erase": "Alle Daten löschen?",
}


@pytest.mark.parametrize("page", sorted(ENGLISH_WORDS))
def test_old_unprefixed_links_open_in_the_subscriptions_language(client, english_sub, page):
    """Links in mails already sent carry no language: the page speaks the subscription's."""
    response = client.get(_paths(english_sub)[page])
    assert response.status_code == 200
    assert html_lang(response) == "en"
    assert ENGLISH_WORDS[page] in response.content.decode()


@pytest.mark.parametrize("page", sorted(ENGLISH_WORDS))
def test_reader_can_switch_the_language_of_each_mail_page(client, english_sub, page):
    path = _paths(english_sub)[page]
    english = client.get(path).content.decode()
    assert f'href="{path}?lang=de" hreflang="de"' in english
    response = client.get(f"{path}?lang=de")
    assert html_lang(response) == "de"
    html = response.content.decode()
    assert GERMAN_WORDS[page] in html
    # Forms on the page keep the chosen language for what they answer.
    for action in re.findall(r'<form[^>]* action="([^"]+)"', html):
        assert action.endswith("?lang=de")


def test_an_unknown_language_is_ignored_not_an_error(client, english_sub):
    response = client.get(_paths(english_sub)["unsubscribe"] + "?lang=xx")
    assert response.status_code == 200
    assert html_lang(response) == "en"


def test_mail_links_carry_the_subscriptions_language(english_sub):
    for url in (
        unsubscribe_url(english_sub),
        preferences_url(english_sub),
        data_url(english_sub, tokens.DATA_ERASE),
    ):
        assert url.endswith("?lang=en")
    message = confirmation_message_build(subscription=english_sub)
    link = re.search(r"(http\S+/n/bestaetigen/\S+)", message.body).group(1)
    assert link.endswith("?lang=en")


def test_confirm_and_unsubscribe_posts_answer_in_english(client, english_sub):
    paths = _paths(english_sub)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(paths["confirm"] + "?lang=en")
    assert html_lang(response) == "en"
    assert "Thank you" in response.content.decode()
    response = client.post(paths["unsubscribe"] + "?lang=en")
    assert html_lang(response) == "en"
    english_sub.refresh_from_db()
    assert english_sub.state == SubscriptionState.UNSUBSCRIBED


def test_preferences_offer_and_record_the_english_text_to_an_english_reader(
    client, english_sub, newsletter
):
    """Resubscribing from an English preference page records and mails the English text."""
    other = NewsletterFactory(slug="wochenrueckblick", name="Wochenrückblick")
    consent_text_default_publish(newsletter=other)
    english_text = ConsentText.objects.get(newsletter=other, language="en")
    path = _paths(english_sub)["preferences"]
    html = client.get(path).content.decode()
    assert english_text.text.splitlines()[0] in html
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            path + "?lang=en",
            {
                "action": "save",
                "language": "en",
                f"nl_{newsletter.id}": "on",
                f"nl_{other.id}": "on",
            },
        )
    assert response.status_code == 303
    assert response["Location"].endswith("lang=en")
    sub = Subscription.objects.get(newsletter=other)
    assert ConsentEvent.objects.get(subscription=sub, kind="requested").consent_text == (
        english_text
    )
    sent = [m for m in mail.outbox if m.to == ["reader@example.org"]][-1]
    assert "I agree to be informed" in sent.body
    assert "Ich bin damit einverstanden" not in sent.body


def test_preferences_show_what_was_agreed_in_the_language_it_was_agreed_in(
    client, newsletter, request_signup
):
    """A German agreement stays German on the English page: it is evidence, not a label."""
    sub = request_signup(address="zwei@example.org", language="de")
    sub.language = "en"
    sub.save(update_fields=["language"])
    german = ConsentText.objects.get(newsletter=newsletter, language="de")
    html = client.get(_paths(sub)["preferences"]).content.decode()
    assert 'lang="de"' in html
    assert german.text.splitlines()[0] in html


def test_erasure_page_says_in_plain_words_what_is_kept(client, english_sub):
    german = client.get(_paths(english_sub)["erase"] + "?lang=de").content.decode()
    assert "verschlüsselter Prüfwert" not in german
    assert "Sperrliste" in german


def test_english_signup_box_has_an_english_button_named_by_the_english_text(client, newsletter):
    html = client.get("/en/newsletter/anmelden/").content.decode()
    assert ">Submit</button>" in html
    assert "clicking the “Submit” button" in html
    assert "Abschicken" not in html
    german = client.get("/newsletter/anmelden/").content.decode()
    assert ">Abschicken</button>" in german
    assert "Anklicken des Buttons „Abschicken“" in german


def test_migration_gives_the_old_english_default_a_version_naming_the_english_button(db):
    """Evidence keeps pointing at the old version; new signups get the new one."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("newsletter.migrations.0011_newsletter_english_texts")
    newsletter = NewsletterFactory(slug="alt", name="Alt")
    old_text = migration.OLD.format(name="Alt") + "the following declaration of consent: …"
    ConsentText.objects.create(
        newsletter=newsletter, language="en", version=1, text=old_text, sha256="x" * 64
    )
    migration.forwards(apps, None)
    migration.forwards(apps, None)
    texts = list(ConsentText.objects.filter(newsletter=newsletter).order_by("version"))
    assert [t.version for t in texts] == [1, 2]
    assert texts[0].text == old_text
    assert "clicking the “Submit” button" in texts[1].text
    assert texts[1].text.endswith("the following declaration of consent: …")


def test_signup_box_shows_the_newsletters_description_in_the_page_language(client, newsletter):
    newsletter.description = "Die neuen Meinungsbeiträge."
    newsletter.description_en = "The new opinion pieces."
    newsletter.save()
    assert "The new opinion pieces." in client.get("/en/newsletter/anmelden/").content.decode()
    assert "Die neuen Meinungsbeiträge." in client.get("/newsletter/anmelden/").content.decode()
    newsletter.description_en = ""
    newsletter.save()
    assert "Die neuen Meinungsbeiträge." in client.get("/en/newsletter/anmelden/").content.decode()
