import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from newsletter import tokens
from newsletter.addresses import address_hmac
from newsletter.models import (
    ConsentEvent,
    ConsentEventKind,
    ConsentText,
    RevocationChannel,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.services.consent import (
    DEFAULT_CONSENT_TEXTS,
    consent_retention_run,
    consent_text_publish,
    subscriber_erase,
    subscriber_export,
    subscription_confirm,
    subscription_confirmation_send,
    subscription_preferences_change,
    subscription_revoke,
    subscription_suppress,
)

pytestmark = pytest.mark.django_db

SEED_DECLARATION = (
    "„Ich bin damit einverstanden, per E-Mail über Produktneuheiten, spannende "
    "Finanznachrichten und exklusive Sonderangebote informiert zu werden und willige daher in "
    "die Verarbeitung meiner E-Mail-Adresse zum Zwecke der Zusendung des Newsletters ein. Diese "
    "Einwilligung kann ich jederzeit und ohne Angabe von Gründen mit Wirkung für die Zukunft "
    "widerrufen. Die Rechtmäßigkeit der bis zum Widerruf erfolgten Verarbeitung bleibt im Falle "
    "des Widerrufs unberührt.“"
)


def kinds(subscription):
    return list(
        ConsentEvent.objects.filter(subscription=subscription).values_list("kind", flat=True)
    )


def confirm(subscription, **kwargs):
    return subscription_confirm(
        subscription_id=subscription.id,
        confirm_round=subscription.confirm_round,
        ip=kwargs.get("ip", "198.51.100.1"),
        user_agent=kwargs.get("user_agent", "Mailreader"),
    )


def test_default_german_text_quotes_the_seed_declaration_verbatim(newsletter):
    text = ConsentText.objects.get(newsletter=newsletter, language="de")
    assert SEED_DECLARATION in text.text
    assert "„Meinung am Morgen“" in text.text
    assert "Kettner" not in text.text
    assert text.sha256 == hashlib.sha256(text.text.encode()).hexdigest()
    assert ConsentText.objects.filter(newsletter=newsletter, language="en").exists()
    assert DEFAULT_CONSENT_TEXTS["de"].count("„Ich bin damit einverstanden") == 1


def test_editing_a_consent_text_makes_a_new_version_and_same_text_does_not(newsletter):
    first = ConsentText.objects.get(newsletter=newsletter, language="de")
    same = consent_text_publish(newsletter=newsletter, language="de", text=first.text + "\r\n")
    assert same == first
    new = consent_text_publish(newsletter=newsletter, language="de", text="Neuer Text.")
    assert new.version == first.version + 1
    first.refresh_from_db()
    assert SEED_DECLARATION in first.text
    with pytest.raises(ValidationError, match="leer"):
        consent_text_publish(newsletter=newsletter, language="de", text="  \n ")


def test_request_records_evidence_and_sends_one_confirmation_after_commit(
    request_signup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub = request_signup("Leserin@BEISPIEL.de")
    sub.refresh_from_db()
    assert sub.email == "Leserin@beispiel.de"
    assert sub.address_hmac == address_hmac("leserin@beispiel.de")
    assert sub.state == SubscriptionState.PENDING
    requested = ConsentEvent.objects.get(subscription=sub, kind=ConsentEventKind.REQUESTED)
    current = ConsentText.objects.get(newsletter=sub.newsletter, language="de")
    assert requested.consent_text == current
    assert requested.text_sha256 == current.sha256
    assert (requested.ip, requested.user_agent, requested.form) == (
        "203.0.113.7",
        "Mozilla/5.0 Test",
        "signup_box",
    )
    sent = ConsentEvent.objects.get(subscription=sub, kind=ConsentEventKind.CONFIRMATION_SENT)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sent.message_id == message.extra_headers["Message-ID"]
    assert message.to == ["Leserin@beispiel.de"]
    assert message.tags == ["newsletter-confirmation"]
    assert message.metadata["subscription_id"] == str(sub.id)
    token = re.search(r"http://testserver/n/bestaetigen/([^/\s]+)/", message.body).group(1)
    assert tokens.read_confirm_token(token) == (sub.id, sub.confirm_round)
    assert "https://example.org/impressum" in message.body
    assert "https://example.org/datenschutz" in message.body
    assert SEED_DECLARATION in message.body
    html = message.alternatives[0][0]
    assert "<img" not in html and "utm_" not in html


def test_pending_address_gets_the_mail_again_at_most_daily_and_three_times(
    request_signup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub = request_signup()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            request_signup()
    assert len(mail.outbox) == 1
    for _day in range(1, 6):
        Subscription.objects.filter(id=sub.id).update(
            last_confirmation_sent_at=timezone.now() - timedelta(hours=25)
        )
        with django_capture_on_commit_callbacks(execute=True):
            request_signup()
    assert len(mail.outbox) == 3
    assert kinds(sub).count(ConsentEventKind.REQUESTED) == 1
    assert kinds(sub).count(ConsentEventKind.CONFIRMATION_SENT) == 3
    assert subscription_confirmation_send(subscription_id=sub.id) is False


def test_confirm_twice_is_harmless_and_writes_one_event(request_signup):
    sub = request_signup()
    confirmed = confirm(sub)
    again = confirm(sub)
    assert confirmed.state == again.state == SubscriptionState.CONFIRMED
    assert kinds(sub).count(ConsentEventKind.CONFIRMED) == 1
    event = ConsentEvent.objects.get(subscription=sub, kind=ConsentEventKind.CONFIRMED)
    assert (event.ip, event.user_agent) == ("198.51.100.1", "Mailreader")


def test_request_for_confirmed_address_changes_nothing(request_signup):
    sub = request_signup()
    confirm(sub)
    before = kinds(sub)
    request_signup()
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED
    assert kinds(sub) == before


def test_revoke_is_idempotent_and_needs_a_channel(request_signup):
    sub = request_signup()
    confirm(sub)
    subscription_revoke(subscription_id=sub.id, channel=RevocationChannel.LINK)
    subscription_revoke(subscription_id=sub.id, channel=RevocationChannel.ONE_CLICK)
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.UNSUBSCRIBED and sub.unsubscribed_at
    revoked = ConsentEvent.objects.filter(subscription=sub, kind=ConsentEventKind.REVOKED)
    assert [event.channel for event in revoked] == [RevocationChannel.LINK]
    with pytest.raises(ValueError):
        subscription_revoke(subscription_id=sub.id, channel="carrier pigeon")
    assert subscription_revoke(subscription_id=999999, channel=RevocationChannel.LINK) is None


def test_old_confirm_link_does_not_confirm_a_new_round(request_signup):
    sub = request_signup()
    old_round = sub.confirm_round
    confirm(sub)
    subscription_revoke(subscription_id=sub.id, channel=RevocationChannel.LINK)
    with pytest.raises(ValidationError) as stale:
        subscription_confirm(
            subscription_id=sub.id, confirm_round=old_round, ip=None, user_agent=""
        )
    assert stale.value.code == "stale"
    sub = request_signup()
    assert sub.confirm_round == old_round + 1
    with pytest.raises(ValidationError):
        subscription_confirm(
            subscription_id=sub.id, confirm_round=old_round, ip=None, user_agent=""
        )
    assert confirm(sub).state == SubscriptionState.CONFIRMED


def test_suppression_covers_the_address_and_a_new_signup_mails_it_nothing(
    request_signup, newsletter
):
    from tests.newsletter.factories import NewsletterFactory

    other = NewsletterFactory(slug="wochenblick")
    from newsletter.services.consent import consent_text_default_publish

    consent_text_default_publish(newsletter=other)
    sub = request_signup()
    confirm(sub)
    sibling = request_signup(newsletter=other)
    confirm(sibling)
    subscription_suppress(
        subscription_id=sub.id, reason="bounce", channel=RevocationChannel.WEBHOOK, note="5.1.1"
    )
    subscription_suppress(
        subscription_id=sub.id, reason="bounce", channel=RevocationChannel.WEBHOOK
    )
    sub.refresh_from_db()
    sibling.refresh_from_db()
    assert sub.state == sibling.state == SubscriptionState.SUPPRESSED
    assert Suppression.objects.filter(address_hmac=sub.address_hmac, reason="bounce").exists()
    assert kinds(sub).count(ConsentEventKind.SUPPRESSED) == 1
    # A bounced address is sent no confirmation request: a signup changes nothing, here or
    # for a newsletter it never had.
    third = NewsletterFactory(slug="drittes")
    consent_text_default_publish(newsletter=third)
    sent_before = len(mail.outbox)
    again = request_signup()
    assert again.id == sub.id and again.state == SubscriptionState.SUPPRESSED
    assert request_signup(newsletter=third) is None
    assert len(mail.outbox) == sent_before
    assert kinds(sub).count(ConsentEventKind.REQUESTED) == 1
    assert Suppression.objects.filter(address_hmac=sub.address_hmac).exists()


def test_preferences_change_only_to_an_offered_frequency(request_signup, newsletter):
    sub = request_signup()
    confirm(sub)
    subscription_preferences_change(subscription_id=sub.id, language="en", frequency="weekly")
    sub.refresh_from_db()
    assert (sub.language, sub.frequency) == ("en", "weekly")
    newsletter.offers_daily = False
    newsletter.save()
    with pytest.raises(ValidationError) as refused:
        subscription_preferences_change(subscription_id=sub.id, frequency="daily")
    assert refused.value.code == "frequency"
    assert kinds(sub).count(ConsentEventKind.PREFERENCES_CHANGED) == 1


def test_export_contains_everything_and_is_logged(request_signup):
    sub = request_signup()
    confirm(sub)
    data = subscriber_export(address_hmac=sub.address_hmac)
    assert data["address"] == "leserin@example.org"
    assert data["subscriptions"][0]["state"] == "confirmed"
    assert [e["kind"] for e in data["consent_log"]] == ["requested", "confirmed"]
    assert data["consent_log"][0]["consent_text"]["text"].startswith("Melden Sie sich")
    assert kinds(sub)[-1] == ConsentEventKind.EXPORTED


def test_erasure_deletes_personal_data_and_keeps_pseudonymised_evidence(request_signup):
    sub = request_signup()
    confirm(sub)
    key = sub.address_hmac
    assert subscriber_erase(address_hmac=key) == 1
    assert not Subscription.objects.filter(id=sub.id).exists()
    events = ConsentEvent.objects.filter(address_hmac=key)
    assert [e.kind for e in events] == ["requested", "confirmed", "erased"]
    assert all(e.subscription_id is None and e.ip is None and e.user_agent == "" for e in events)
    assert Suppression.objects.filter(address_hmac=key, reason="erasure").exists()
    assert subscriber_erase(address_hmac=key) == 0
    assert "leserin@example.org" not in str(list(events.values()))


def test_retention_deletes_stale_pending_and_old_evidence_only(
    request_signup, newsletter, settings
):
    from newsletter.models import SignupRequest
    from newsletter.services.consent import signup_request_record

    # Signups whose task never ran (a lost broker message): a day later they go, with the
    # address they hold; younger ones wait for their task.
    lost, waiting = (
        signup_request_record(
            address=address,
            newsletter=newsletter,
            ip=None,
            user_agent="",
            url="",
            form="signup_page",
            language="de",
        )
        for address in ("verloren@example.org", "wartend@example.org")
    )
    SignupRequest.objects.filter(id=lost.id).update(created_at=timezone.now() - timedelta(days=2))
    stale = request_signup("alt@example.org")
    fresh = request_signup("neu@example.org")
    revoked = request_signup("weg@example.org")
    confirm(revoked)
    subscription_revoke(subscription_id=revoked.id, channel=RevocationChannel.LINK)
    erased = request_signup("geloescht@example.org")
    confirm(erased)
    subscriber_erase(address_hmac=erased.address_hmac)
    long_ago = timezone.now() - timedelta(days=settings.NEWSLETTER_RETENTION_DAYS + 1)
    Subscription.objects.filter(id=stale.id).update(requested_at=timezone.now() - timedelta(days=8))
    Subscription.objects.filter(id=revoked.id).update(unsubscribed_at=long_ago)
    ConsentEvent.objects.filter(address_hmac=erased.address_hmac).update(at=long_ago)
    Suppression.objects.filter(address_hmac=erased.address_hmac).update(created_at=long_ago)

    counts = consent_retention_run()

    assert counts == {
        "pending": 1,
        "revoked": 1,
        "erased_events": 3,
        "suppressions": 1,
        "signup_requests": 1,
    }
    assert set(SignupRequest.objects.values_list("id", flat=True)) == {waiting.id}
    assert set(Subscription.objects.values_list("id", flat=True)) == {fresh.id}
    assert not ConsentEvent.objects.filter(address_hmac=stale.address_hmac).exists()
    assert not ConsentEvent.objects.filter(address_hmac=revoked.address_hmac).exists()
    assert ConsentEvent.objects.filter(subscription=fresh).exists()
    assert consent_retention_run() == {
        "pending": 0,
        "revoked": 0,
        "erased_events": 0,
        "suppressions": 0,
        "signup_requests": 0,
    }


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("kein-at-zeichen", "invalid"),
        ("a@b", "invalid"),
        ("a" * 250 + "@example.org", "too_long"),
        ("leser@example.org\r\nBcc: x@example.org", "line_break"),
        ("<script>@example.org", "invalid"),
        ("", "invalid"),
    ],
)
def test_bad_addresses_are_refused_without_a_record(request_signup, address, code):
    with pytest.raises(ValidationError) as refused:
        request_signup(address)
    assert refused.value.code == code
    assert not Subscription.objects.exists()


def test_idn_address_is_stored_as_punycode(request_signup):
    sub = request_signup("Joerg.M@Bücher.Example")
    assert sub.email == "Joerg.M@xn--bcher-kva.example"
    # Django's validator has no SMTPUTF8: a non-ASCII local part is refused, not mangled.
    with pytest.raises(ValidationError):
        request_signup("jörg@example.org")


def test_evidence_fields_lose_line_breaks(request_signup):
    sub = request_signup(user_agent="Agent\r\nX-Evil: 1", url="http://x/\n<b>", form="a\rb")
    event = ConsentEvent.objects.get(subscription=sub, kind=ConsentEventKind.REQUESTED)
    assert "\n" not in event.user_agent + event.url + event.form
    assert "\r" not in event.user_agent + event.url + event.form


def test_demo_seed_is_idempotent_and_gives_a_working_signup_box():
    from newsletter.demo import DEMO_SLUG, newsletter_demo_seed

    first = newsletter_demo_seed()
    again = newsletter_demo_seed()
    assert first == again and first.slug == DEMO_SLUG
    assert sorted(
        ConsentText.objects.filter(newsletter=first).values_list("language", "version")
    ) == [("de", 1), ("en", 1)]


def test_every_task_a_service_names_is_a_task_of_that_name():
    from newsletter import enqueue

    paths = [value for key, value in vars(enqueue).items() if key.isupper()]
    # signup, confirmation, welcome, preference and data links, import and its confirmations;
    # digest fan-out and drain
    assert len(paths) == 9
    assert all(enqueue.task_by_path(path).name == path for path in paths), paths
