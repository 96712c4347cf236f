"""A campaign in two languages: each reader gets their own, through the send pipeline, the
preview, the test mail and the checklist. A campaign written only in German reaches English
readers in German, marked lang="de" inside their English mail, and the checklist says so."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from newsletter.emails import digest as digest_emails
from newsletter.models import Campaign, Digest
from newsletter.services import digests
from newsletter.services.digest_sending import digest_drain
from newsletter.services.digests import digest_fan_out
from newsletter.services.mailings import campaign_send
from tests.articles.factories import ArticleFactory, english_translation_save
from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
STYLE = r'(?: style="[^"]*")?'


@pytest.fixture(autouse=True)
def no_workers(monkeypatch):
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: None)
    digest_emails._cached_render.cache_clear()


@pytest.fixture
def newsletter():
    return NewsletterFactory(name="Meinung am Morgen")


@pytest.fixture
def readers(newsletter):
    return {
        "de": SubscriptionFactory(newsletter=newsletter, language="de", email="leser@example.org"),
        "en": SubscriptionFactory(
            newsletter=newsletter, language="en-GB", email="reader@example.org"
        ),
    }


@pytest.fixture
def article():
    article = ArticleFactory(title="Zinsen steigen", lead="Warum das gut ist.")
    english_translation_save(
        article, title="Rates are rising", slug="rates-are-rising", lead="Why that is good."
    )
    return article


def bilingual(newsletter, article=None, **fields) -> Campaign:
    values = {
        "name": "Herbst",
        "subject": "Herbstangebot",
        "preheader": "Nur bis Sonntag",
        "body_markdown": "Lesen Sie **ein Jahr** zum halben Preis.",
        "subject_en": "Autumn offer",
        "preheader_en": "Until Sunday only",
        "body_markdown_en": "Read **a year** at half price.",
        "article": article,
    }
    return Campaign.objects.create(newsletter=newsletter, **{**values, **fields})


def sent_through_the_pipeline(campaign, fake) -> dict:
    mailing = campaign_send(campaign_id=campaign.pk)
    digest_fan_out(digest_id=mailing.pk)
    assert digest_drain(digest_id=mailing.pk).done
    return {r.email: r for r in fake.received if r.digest_id == str(mailing.pk)}


def test_each_reader_gets_the_campaign_in_their_language(
    newsletter, readers, article, mailgun_in_process
):
    by_address = sent_through_the_pipeline(bilingual(newsletter, article), mailgun_in_process)
    german, english = by_address["leser@example.org"], by_address["reader@example.org"]
    assert german.subject == "Herbstangebot"
    assert '<html lang="de">' in german.html and "ein Jahr" in german.html
    assert "Zinsen steigen" in german.text and "Weiterlesen" in german.text
    assert "Autumn offer" not in german.html + german.text
    assert english.subject == "Autumn offer"
    assert '<html lang="en">' in english.html
    assert re.search(rf'<div lang="en"{STYLE}><p{STYLE}>Read <strong', english.html)
    assert "Until Sunday only" in english.html and "Nur bis Sonntag" not in english.html
    # The quoted article in its English translation, linked under its English slug.
    assert re.search(
        rf'<h2 lang="en"{STYLE}><a href="http://testserver/en/artikel/rates', english.html
    )
    assert "Read more" in english.text and "Unsubscribe" in english.text
    assert "Lesen Sie" not in english.html + english.text


def test_a_german_only_campaign_reaches_english_readers_in_german_marked_as_german(
    newsletter, readers, article, mailgun_in_process
):
    campaign = bilingual(newsletter, article, subject_en="", preheader_en="", body_markdown_en="")
    english = sent_through_the_pipeline(campaign, mailgun_in_process)["reader@example.org"]
    assert english.subject == "Herbstangebot"
    # Their mail stays English (footer, links, the quoted article's translation); only the
    # campaign's own words are German, and say so.
    assert '<html lang="en">' in english.html and "Unsubscribe" in english.text
    assert re.search(rf'<div lang="de"{STYLE}><p{STYLE}>Lesen Sie', english.html)
    assert re.search(rf'<div class="preheader" lang="de"{STYLE}>Nur bis Sonntag', english.html)
    assert "Rates are rising" in english.html


@pytest.mark.parametrize(
    "fields",
    [
        # An English text under no English subject.
        {"subject_en": "", "preheader_en": "", "body_markdown_en": "Read this."},
        # An English subject over the German text.
        {"subject_en": "Autumn offer", "preheader_en": "", "body_markdown_en": ""},
        {"subject_en": "", "preheader_en": "Until Sunday only", "body_markdown_en": ""},
    ],
)
def test_an_english_version_is_whole_or_absent(newsletter, fields):
    with (
        pytest.raises(IntegrityError, match="campaign_english_version_whole"),
        transaction.atomic(),
    ):
        bilingual(newsletter, **fields)
    # An article-only campaign needs only an English subject for its English version.
    bilingual(
        newsletter,
        ArticleFactory(),
        body_markdown="",
        body_markdown_en="",
        preheader_en="",
    )


def test_the_admin_writes_checks_previews_and_tests_both_languages(
    client, manager, newsletter, readers
):
    form = {
        "newsletter": newsletter.pk,
        "name": "Herbst",
        "subject": "Herbstangebot",
        "preheader": "",
        "body_markdown": "Lesen Sie **ein Jahr** zum halben Preis.",
        "subject_en": "Autumn offer",
        "preheader_en": "",
        "body_markdown_en": "",
        "article": "",
        "segment_language": "",
        "segment_confirmed_from": "",
        "segment_confirmed_until": "",
    }
    # Half an English version is answered in plain words, not with an error page.
    refused = client.post(reverse("admin:newsletter_campaign_add"), form)
    assert refused.status_code == 200
    assert "braucht einen Betreff und" in refused.content.decode()
    form["body_markdown_en"] = "Read **a year** at half price."
    assert client.post(reverse("admin:newsletter_campaign_add"), form).status_code == 302
    campaign = Campaign.objects.get(name="Herbst")
    send_url = reverse("admin:newsletter_campaign_send", args=[campaign.pk])
    page = client.get(send_url).content.decode()
    assert re.search(r'id="check-subject-en"><span lang="en">Autumn offer<', page)
    assert re.search(r'id="check-count">2<', page)
    assert re.search(r'id="check-languages">1 auf Deutsch, 1 auf Englisch<', page)
    preview = client.get(
        reverse("admin:newsletter_campaign_preview", args=[campaign.pk]), {"language": "en"}
    )
    assert "Read <strong>a year</strong>" in preview.context["preview_html"]
    assert "Autumn offer" in preview.context["preview_html"]
    # Titled with the subject English readers get, their consent date written their way.
    assert "Vorschau: Autumn offer" in preview.content.decode()
    assert re.search(r"on \d{1,2} [A-Z][a-z]+ \d{4}", preview.context["preview_html"])
    mail.outbox.clear()
    client.post(
        reverse("admin:newsletter_campaign_test", args=[campaign.pk]),
        {"addresses": "a@example.org", "language": "en"},
    )
    (message,) = mail.outbox
    assert message.subject == "[Test] Autumn offer" and "Read **a year**" in message.body
    # Without an English version the checklist says what English readers get.
    Campaign.objects.filter(pk=campaign.pk).update(subject_en="", body_markdown_en="")
    page = client.get(send_url).content.decode()
    assert "englische Leser erhalten Betreff und Text auf Deutsch" in page
    client.post(send_url, {"send_at": ""})
    assert Digest.objects.get(campaign=campaign).subject_en == ""
