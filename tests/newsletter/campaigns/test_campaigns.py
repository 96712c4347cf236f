"""Campaigns: the segment decides the fan-out, the mail is branded and quotes an article with
its disclaimer, and the shared workflow previews, tests and counts before anything is created.

Worker-level exactly-once for campaigns: tests/newsletter/digests/test_workers.py (the same
fault tests, parametrized over digest and campaign).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from newsletter.drafts import campaign_draft
from newsletter.emails.digest import digest_render
from newsletter.models import (
    Campaign,
    Delivery,
    Digest,
    DigestState,
    MailingKind,
    SegmentLanguage,
    SubscriptionState,
)
from newsletter.selectors.mailings import mailing_audience_of
from newsletter.services import digests
from newsletter.services.digests import digest_cancel, digest_fan_out, mailing_start_due
from newsletter.services.mailings import campaign_send
from tests.articles.factories import (
    ArticleFactory,
    DraftArticleFactory,
    TopicFactory,
    image_create,
)
from tests.newsletter.digests.conftest import claims_all
from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def no_workers(monkeypatch):
    woken = []
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: woken.append(("fan_out", pk)))
    monkeypatch.setattr(
        digests, "_enqueue_drains", lambda pk, count=None: woken.append(("drain", pk))
    )
    return woken


@pytest.fixture
def newsletter():
    return NewsletterFactory(
        name="Meinung am Morgen", brand_color="#8a1538", brand_footer="Verlag Beispiel GmbH"
    )


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN)


@pytest.fixture
def readers(newsletter):
    """German and English readers confirmed on different days, plus some who may not get it."""
    return {
        "de_old": SubscriptionFactory(
            newsletter=newsletter, language="de", confirmed_at=at(date(2026, 1, 10))
        ),
        "de_new": SubscriptionFactory(
            newsletter=newsletter, language="de", confirmed_at=at(date(2026, 3, 1))
        ),
        "en_old": SubscriptionFactory(
            newsletter=newsletter, language="en-GB", confirmed_at=at(date(2026, 1, 31), 23)
        ),
        "en_new": SubscriptionFactory(
            newsletter=newsletter, language="en", confirmed_at=at(date(2026, 2, 1), 0)
        ),
        "pending": SubscriptionFactory(
            newsletter=newsletter, state=SubscriptionState.PENDING, confirmed_at=None
        ),
        "left": SubscriptionFactory(newsletter=newsletter, state=SubscriptionState.UNSUBSCRIBED),
        "other_list": SubscriptionFactory(language="de"),
    }


def campaign_for(newsletter, **fields) -> Campaign:
    values = {"name": "Angebot", "subject": "Nur diese Woche", "body_markdown": "**Neu**"}
    return Campaign.objects.create(newsletter=newsletter, **{**values, **fields})


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ({}, {"de_old", "de_new", "en_old", "en_new"}),
        ({"segment_language": SegmentLanguage.EN}, {"en_old", "en_new"}),
        ({"segment_language": SegmentLanguage.DE}, {"de_old", "de_new"}),
        # Confirmation days in Europe/Berlin, both ends included.
        ({"segment_confirmed_until": date(2026, 1, 31)}, {"de_old", "en_old"}),
        ({"segment_confirmed_from": date(2026, 2, 1)}, {"de_new", "en_new"}),
        (
            {
                "segment_language": SegmentLanguage.EN,
                "segment_confirmed_from": date(2026, 2, 1),
                "segment_confirmed_until": date(2026, 2, 1),
            },
            {"en_new"},
        ),
    ],
)
def test_the_fan_out_writes_exactly_the_segment_the_checklist_counted(
    newsletter, readers, segment, expected
):
    campaign = campaign_for(newsletter, **segment)
    counted = mailing_audience_of(campaign_draft(campaign=campaign, slot=timezone.now())).count()
    mailing = campaign_send(campaign_id=campaign.pk)
    assert mailing.kind == MailingKind.CAMPAIGN and mailing.state == DigestState.FANNING_OUT
    assert digest_fan_out(digest_id=mailing.pk) == counted == len(expected)
    claims_all(mailing.pk)
    written = set(Delivery.objects.filter(digest=mailing).values_list("subscription_id", flat=True))
    assert written == {readers[name].pk for name in expected}
    languages = dict(
        Delivery.objects.filter(digest=mailing).values_list("subscription_id", "language")
    )
    assert all(languages[readers[n].pk] == ("en" if n.startswith("en") else "de") for n in expected)


def test_a_topic_segment_reaches_readers_who_chose_any_of_its_topics_once(newsletter, readers):
    markets, energy, culture = (TopicFactory(name=n) for n in ("Märkte", "Energie", "Kultur"))
    readers["de_old"].topics.set([markets, energy])  # both: still one delivery
    readers["en_new"].topics.set([energy])
    readers["de_new"].topics.set([culture])
    readers["pending"].topics.set([markets])  # not confirmed: never
    readers["other_list"].topics.set([markets])  # another newsletter: never
    campaign = campaign_for(newsletter, segment_language=SegmentLanguage.ALL)
    campaign.segment_topics.set([markets, energy])
    draft = campaign_draft(campaign=campaign, slot=timezone.now())
    counted = mailing_audience_of(draft).count()
    mailing = campaign_send(campaign_id=campaign.pk)
    assert digest_fan_out(digest_id=mailing.pk) == counted == 2
    claims_all(mailing.pk)
    written = Delivery.objects.filter(digest=mailing).values_list("subscription_id", flat=True)
    assert sorted(written) == sorted([readers["de_old"].pk, readers["en_new"].pk])
    # Combined with the language: only the English reader of those topics.
    english = campaign_for(newsletter, segment_language=SegmentLanguage.EN)
    english.segment_topics.set([markets, energy])
    audience = mailing_audience_of(campaign_draft(campaign=english, slot=timezone.now()))
    assert list(audience.values_list("pk", flat=True)) == [readers["en_new"].pk]


def test_the_checklist_names_the_topics_and_counts_their_readers(
    client, manager, newsletter, readers
):
    markets = TopicFactory(name="Märkte")
    readers["de_old"].topics.set([markets])
    readers["en_old"].topics.set([markets])
    campaign = campaign_for(newsletter)
    campaign.segment_topics.set([markets])
    client.force_login(manager)
    page = client.get(reverse("admin:newsletter_campaign_send", args=[campaign.pk]))
    html = page.content.decode()
    assert re.search(r'id="check-count">2<', html)
    assert '<span id="check-topics">Märkte</span>' in html


def test_a_campaign_is_sent_once_however_often_it_is_confirmed(newsletter, readers, no_workers):
    campaign = campaign_for(newsletter)
    first = campaign_send(campaign_id=campaign.pk)
    again = campaign_send(campaign_id=campaign.pk)
    assert first.pk == again.pk and Digest.objects.filter(campaign=campaign).count() == 1
    assert no_workers == [("fan_out", first.pk)]


def test_a_scheduled_campaign_starts_at_its_time_and_can_be_cancelled_before(
    newsletter, readers, no_workers
):
    now = timezone.now()
    later = campaign_send(
        campaign_id=campaign_for(newsletter).pk, send_at=now + timedelta(hours=2), now=now
    )
    assert later.state == DigestState.SCHEDULED and no_workers == []
    assert mailing_start_due(now=now + timedelta(hours=1)) == []
    assert mailing_start_due(now=now + timedelta(hours=2)) == [later.pk]
    assert mailing_start_due(now=now + timedelta(hours=3)) == []  # started once
    assert no_workers == [("fan_out", later.pk)]
    other = campaign_send(
        campaign_id=campaign_for(newsletter, name="B").pk, send_at=now + timedelta(days=1), now=now
    )
    assert digest_cancel(digest_id=other.pk)
    assert mailing_start_due(now=now + timedelta(days=2)) == []


def test_a_send_time_in_the_past_is_refused_in_plain_words(newsletter):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Vergangenheit"):
        campaign_send(
            campaign_id=campaign_for(newsletter).pk, send_at=timezone.now() - timedelta(hours=1)
        )
    assert not Digest.objects.exists()


def test_the_campaign_mail_is_branded_inlined_and_quotes_the_article_with_its_disclaimer(
    newsletter,
):
    article = ArticleFactory(title="Zinsen steigen", lead="Warum das gut ist.")
    disclaimer = article.disclaimer_version.text_for("de")
    assert disclaimer
    campaign = campaign_for(
        newsletter,
        body_markdown="## Unser Angebot\n\n<script>alert(1)</script>Ein **Jahr** lesen.",
        article=article,
        preheader="Nur bis Sonntag",
    )
    rendered = digest_render(
        digest=campaign_draft(campaign=campaign, slot=timezone.now()),
        articles=[article],
        language="de",
    )
    html = rendered.html
    assert "<h2" in html and "<strong" in html and "<script>alert" not in html
    assert "Zinsen steigen" in html and disclaimer in html and disclaimer in rendered.text
    # CSS inlined (style attributes), brand colour and footer, 600 px, dark mode kept.
    assert re.search(r'class="mail"[^>]*style="[^"]*width: 600px', html)
    assert "background-color: #8a1538" in html and "Verlag Beispiel GmbH" in html
    assert "prefers-color-scheme: dark" in html and 'name="color-scheme"' in html
    assert "Nur bis Sonntag" in html
    # Personal parts stay placeholders: filled per recipient without re-rendering.
    assert "%recipient.unsubscribe_url%" in html and "%recipient.unsubscribe_url%" in rendered.text
    assert "Ein **Jahr** lesen." in rendered.text


def test_the_confirmation_mail_is_branded_too(newsletter):
    from newsletter.emails.consent import confirmation_message_build

    subscription = SubscriptionFactory(
        newsletter=newsletter, state=SubscriptionState.PENDING, confirmed_at=None
    )
    html = confirmation_message_build(subscription=subscription).alternatives[0][0]
    assert "background-color: #8a1538" in html and "Verlag Beispiel GmbH" in html
    assert 'style="' in html and "/n/bestaetigen/" in html


# --- The workflow in the admin --------------------------------------------------------------


def test_manager_writes_previews_tests_checks_and_sends_a_campaign(
    client, manager, newsletter, readers, no_workers
):
    response = client.post(
        reverse("admin:newsletter_campaign_add"),
        {
            "newsletter": newsletter.pk,
            "name": "Herbst",
            "subject": "Herbstangebot",
            "preheader": "",
            "body_markdown": "Lesen Sie **ein Jahr** zum halben Preis.",
            "article": "",
            "segment_language": "en",
            "segment_confirmed_from": "",
            "segment_confirmed_until": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Herbst")
    assert campaign.created_by == manager
    listing = client.get(reverse("admin:newsletter_campaign_changelist")).content.decode()
    send_url = reverse("admin:newsletter_campaign_send", args=[campaign.pk])
    assert send_url in listing
    # The checklist: subject, sender, the segment's count; nothing created for sending yet.
    page = client.get(send_url).content.decode()
    assert "Herbstangebot" in page and "redaktion@example.org" in page
    assert re.search(r'id="check-count">2<', page)
    assert not Digest.objects.exists()
    # Preview as one subscriber: desktop and phone, inert links only.
    preview = client.get(
        reverse("admin:newsletter_campaign_preview", args=[campaign.pk]),
        {"subscription": readers["en_new"].pk},
    )
    assert preview.status_code == 200
    assert 'href="#vorschau-abmelden"' in preview.context["preview_html"]
    assert "/n/abmelden/" not in preview.content.decode()
    assert preview.content.decode().count("<iframe") == 2
    # A test to two addresses, marked and inert.
    mail.outbox.clear()
    client.post(
        reverse("admin:newsletter_campaign_test", args=[campaign.pk]),
        {"addresses": "a@example.org,\nb@example.org", "language": "en"},
    )
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.org", "b@example.org"]
    for message in mail.outbox:
        html = message.alternatives[0][0]
        assert message.subject == "[Test] Herbstangebot"
        assert "/n/abmelden/" not in html + message.body and "#vorschau-abmelden" in html
        assert "List-Unsubscribe" not in message.extra_headers
    assert not Digest.objects.exists()
    # Confirm: one mailing, fanned out after commit, then its progress page.
    response = client.post(send_url, {"send_at": ""})
    mailing = Digest.objects.get(campaign=campaign)
    assert response["Location"] == reverse("admin:newsletter_digest_progress", args=[mailing.pk])
    assert no_workers == [("fan_out", mailing.pk)]
    digest_fan_out(digest_id=mailing.pk)
    progress = client.get(response["Location"]).content.decode()
    assert "Herbstangebot" in progress and "Öffnungen und Klicks werden nicht gemessen" in progress
    # Only the controls the mailing's state allows.
    assert "Pausieren" in progress and "Abbrechen" in progress and "Fortsetzen" not in progress
    # Sent is sent: the campaign is frozen, and its send page leads to the progress.
    assert client.get(send_url)["Location"] == response["Location"]
    change = client.post(
        reverse("admin:newsletter_campaign_change", args=[campaign.pk]),
        {"newsletter": newsletter.pk, "name": "X", "subject": "Anders", "body_markdown": "x"},
    )
    assert change.status_code == 403
    campaign.refresh_from_db()
    assert campaign.subject == "Herbstangebot"
    # Pause, resume, cancel from the progress page.
    control = reverse("admin:newsletter_digest_control", args=[mailing.pk])
    for action, state in (
        ("pause", DigestState.PAUSED),
        ("resume", DigestState.SENDING),
        ("cancel", DigestState.CANCELLED),
    ):
        client.post(control, {"control": action})
        mailing.refresh_from_db()
        assert mailing.state == state


@pytest.mark.parametrize(
    ("addresses", "message"),
    [
        ("", "Dieses Feld ist zwingend erforderlich"),
        ("keine-adresse", "keine gültige E-Mail-Adresse"),
        (",".join(f"t{i}@example.org" for i in range(11)), "Höchstens 10 Testadressen"),
    ],
)
def test_bad_test_addresses_are_answered_in_plain_words(
    client, manager, newsletter, addresses, message
):
    campaign = campaign_for(newsletter)
    mail.outbox.clear()
    response = client.post(
        reverse("admin:newsletter_campaign_test", args=[campaign.pk]), {"addresses": addresses}
    )
    assert response.status_code == 200 and message in response.content.decode()
    assert mail.outbox == []


def test_a_send_time_in_the_past_is_shown_on_the_checklist(client, manager, newsletter):
    campaign = campaign_for(newsletter)
    response = client.post(
        reverse("admin:newsletter_campaign_send", args=[campaign.pk]),
        {"send_at": "2020-01-01T09:00"},
    )
    assert response.status_code == 200 and "Vergangenheit" in response.content.decode()
    assert not Digest.objects.exists()


def test_the_digest_start_page_counts_and_previews_before_creating_anything(
    client, manager, newsletter, readers
):
    ArticleFactory(title="Zinsen steigen", published_at=timezone.now() - timedelta(hours=1))
    changelist = client.get(reverse("admin:newsletter_digest_changelist")).content.decode()
    start = reverse("admin:newsletter_digest_start")
    assert start in changelist
    page = client.get(start, {"newsletter": newsletter.pk, "frequency": "daily"}).content.decode()
    assert re.search(r'id="check-count">4<', page) and "Zinsen steigen" not in page
    assert page.count("<h1") == 1
    preview = client.get(
        reverse("admin:newsletter_digest_start_preview"),
        {"newsletter": newsletter.pk, "frequency": "daily", "language": "de"},
    )
    assert "Zinsen steigen" in preview.context["preview_html"]
    mail.outbox.clear()
    client.post(
        reverse("admin:newsletter_digest_start_test"),
        {"newsletter": newsletter.pk, "frequency": "daily", "addresses": "a@example.org"},
    )
    assert [m.to for m in mail.outbox] == [["a@example.org"]]
    assert not Digest.objects.exists()


def test_a_test_mail_of_a_digest_holds_no_link_that_answers_invalid(
    client, manager, newsletter, readers
):
    """Before, a test mail carried an unsubscribe token for subscription 0, which the site
    answered with 'Dieser Link ist ungültig … wurde verändert'."""
    ArticleFactory(published_at=timezone.now() - timedelta(hours=1))
    digest = digests.digest_start_now(newsletter=newsletter).digest
    mail.outbox.clear()
    client.post(reverse("admin:newsletter_digest_test", args=[digest.pk]), {"language": "de"})
    (message,) = mail.outbox
    for part in (message.body, message.alternatives[0][0]):
        assert "/n/abmelden/" not in part and "/n/einstellungen/" not in part
        assert "#vorschau-abmelden" in part
    assert "ohne Funktion" in message.body


def test_a_skipped_digest_offers_no_preview_or_test(client, manager, newsletter):
    digest = digests.digest_start_now(newsletter=newsletter).digest
    assert digest.state == DigestState.SKIPPED
    page = client.get(reverse("admin:newsletter_digest_progress", args=[digest.pk]))
    assert b"Vorschau \xc3\xb6ffnen" not in page.content and b"Test senden" not in page.content


def test_only_a_published_article_can_be_quoted(client, manager, newsletter):
    draft = DraftArticleFactory(title="Noch geheim")
    response = client.post(
        reverse("admin:newsletter_campaign_add"),
        {
            "newsletter": newsletter.pk,
            "name": "Vorab",
            "subject": "Vorab",
            "body_markdown": "",
            "article": draft.pk,
        },
    )
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["article"]
    assert "Noch geheim" not in response.content.decode()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"kind": MailingKind.CAMPAIGN, "frequency": ""}, "mailing_kind_matches_source"),
        ({"kind": MailingKind.DIGEST, "frequency": ""}, "mailing_kind_matches_source"),
    ],
)
def test_the_database_keeps_a_mailings_kind_and_source_together(newsletter, fields, constraint):
    from django.db import IntegrityError, transaction

    now = timezone.now()
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Digest.objects.create(
            newsletter=newsletter,
            slot=now,
            state=DigestState.SENDING,
            period_start=now,
            period_end=now,
            **fields,
        )


def test_campaign_segment_dates_must_be_in_order(newsletter):
    from django.db import IntegrityError, transaction

    with (
        pytest.raises(IntegrityError, match="campaign_segment_dates_ordered"),
        transaction.atomic(),
    ):
        campaign_for(
            newsletter,
            segment_confirmed_from=date(2026, 3, 1),
            segment_confirmed_until=date(2026, 2, 1),
        )


def test_a_library_picture_in_the_campaign_text_reaches_the_mail_absolute_with_alt(newsletter):
    image = image_create(width=2000, height=1000, alt_text="Ein Balkendiagramm")
    url = default_storage.url(next(i["jpeg"] for i in image.renditions if i["width"] == 960))
    campaign = campaign_for(newsletter, body_markdown=f"Angebot.\n\n![Gold seit 2020]({url})")
    html = digest_render(
        digest=campaign_draft(campaign=campaign, slot=timezone.now()), articles=[], language="de"
    ).html
    img = re.search(r"<img [^>]*alt=\"Gold seit 2020\"[^>]*>", html).group(0)
    # JPEG by absolute URL, scaled to the mail's 600 px column with its height.
    assert f'src="http://testserver{url}"' in img
    assert 'width="600"' in img and 'height="300"' in img
    assert "<picture" not in html and ".webp" not in html
