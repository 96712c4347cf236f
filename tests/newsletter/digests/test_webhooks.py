"""Provider webhooks: signed, deduplicated by event id, suppress/revoke with evidence, and
only about the project's own deliveries to the very address that was mailed."""

import base64

import psycopg
import pytest
from django.core import signing
from django.db import OperationalError, connection
from django.utils import timezone

from newsletter.models import (
    Batch,
    BatchState,
    ConsentEvent,
    Delivery,
    Digest,
    DigestState,
    Frequency,
    ProviderEvent,
    SubscriptionState,
    Suppression,
)
from newsletter.services.digest_events import TrackingEvent, provider_event_record
from newsletter.services.digest_sending import digest_drain, digest_reconcile
from newsletter.services.digests import digest_fan_out
from newsletter.tokens import make_delivery_ref, make_unsubscribe_token, read_delivery_ref
from newsletter.urls_unprefixed import tracking_webhooks
from newsletter.webhooks import tracking_webhook_esp
from tests.fakes.mailgun import FakeMailgun, Received
from tests.newsletter.factories import SubscriptionFactory

from .conftest import SIGNING_KEY, WEBHOOK_SECRET, seed_subscribers

URL = "/anymail/mailgun/tracking/"
POSTMARK_URL = "/anymail/postmark/tracking/"


@pytest.fixture
def anymail_webhooks(settings):
    settings.ANYMAIL_ESP = "mailgun"
    settings.ANYMAIL = {
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    return FakeMailgun(signing_key=SIGNING_KEY)  # only its payload builder is used


@pytest.fixture
def postmark(settings):
    settings.ANYMAIL_ESP = "postmark"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test", "WEBHOOK_SECRET": WEBHOOK_SECRET}


@pytest.fixture
def digest(db, newsletter_with_articles):
    return Digest.objects.create(
        newsletter=newsletter_with_articles,
        frequency=Frequency.DAILY,
        slot=timezone.now(),
        state=DigestState.SENDING,
        period_start=timezone.now(),
        period_end=timezone.now(),
    )


def _delivery(digest, *, state=BatchState.SENT, esp="mailgun") -> Delivery:
    """A delivery in a batch of its own, in `state`, claimed for `esp` (None: no batch)."""
    subscription = SubscriptionFactory(newsletter=digest.newsletter)
    delivery = Delivery.objects.create(digest=digest, subscription=subscription)
    if state is not None:
        Batch.objects.create(
            digest=digest,
            first_delivery_id=delivery.pk,
            last_delivery_id=delivery.pk,
            size=1,
            state=state,
            esp=esp,
        )
    return delivery


@pytest.fixture
def delivery(digest):
    return _delivery(digest)


def _post(client, payload, secret=WEBHOOK_SECRET, url=URL):
    auth = base64.b64encode(secret.encode()).decode()
    return client.post(
        url, data=payload, content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}"
    )


def _payload(fake, delivery, kind, severity=None, *, ref=None, recipient=None):
    item = Received(
        email=recipient or delivery.subscription.email,
        digest_id=str(delivery.digest_id),
        subject="",
        headers={},
        variables={
            "delivery_ref": make_delivery_ref(delivery.pk) if ref is None else ref,
            "digest_id": str(delivery.digest_id),
        },
    )
    return fake.event_payload(item, "<m@fake>", (kind, severity))


def _untouched(delivery) -> bool:
    delivery.subscription.refresh_from_db()
    return (
        delivery.subscription.state == SubscriptionState.CONFIRMED
        and delivery.subscription.soft_bounces == 0
        and not Suppression.objects.exists()
        and not ProviderEvent.objects.filter(delivery=delivery).exists()
    )


def test_event_is_recorded_once_however_often_it_is_posted(client, anymail_webhooks, delivery):
    payload = _payload(anymail_webhooks, delivery, "delivered")
    for _i in range(3):
        assert _post(client, payload).status_code == 200
    assert ProviderEvent.objects.filter(delivery=delivery).count() == 1
    assert ProviderEvent.objects.get().esp == "mailgun"


@pytest.mark.parametrize(
    ("kind", "severity", "state", "event_kind"),
    [
        ("failed", "permanent", SubscriptionState.SUPPRESSED, "suppressed"),
        ("complained", None, SubscriptionState.SUPPRESSED, "suppressed"),
        ("unsubscribed", None, SubscriptionState.UNSUBSCRIBED, "revoked"),
    ],
)
def test_hard_bounce_complaint_and_unsubscribe_end_the_subscription_with_evidence(
    client, anymail_webhooks, delivery, kind, severity, state, event_kind
):
    payload = _payload(anymail_webhooks, delivery, kind, severity)
    assert _post(client, payload).status_code == 200
    assert _post(client, payload).status_code == 200  # a replay changes nothing
    subscription = delivery.subscription
    subscription.refresh_from_db()
    assert subscription.state == state
    events = ConsentEvent.objects.filter(subscription=subscription, kind=event_kind)
    assert events.count() == 1
    assert events.get().channel == "webhook"
    if state == SubscriptionState.SUPPRESSED:
        assert Suppression.objects.exists()


def test_soft_bounces_count_toward_the_threshold(client, anymail_webhooks, delivery, settings):
    settings.NEWSLETTER_SOFT_BOUNCE_LIMIT = 3
    for _i in range(2):
        _post(client, _payload(anymail_webhooks, delivery, "failed", "temporary"))
    subscription = delivery.subscription
    subscription.refresh_from_db()
    assert subscription.soft_bounces == 2
    assert subscription.state == SubscriptionState.CONFIRMED
    _post(client, _payload(anymail_webhooks, delivery, "failed", "temporary"))
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.SUPPRESSED


def test_wrong_signature_or_secret_is_rejected(client, anymail_webhooks, delivery):
    payload = _payload(anymail_webhooks, delivery, "complained")
    payload["signature"]["signature"] = "0" * 64
    assert _post(client, payload).status_code == 400
    good = _payload(anymail_webhooks, delivery, "complained")
    assert _post(client, good, secret="hook:wrong").status_code in (400, 401, 403)
    assert not ProviderEvent.objects.exists()
    assert _untouched(delivery)


# --- the forged webhooks of issue 10 -----------------------------------------------------


def _forged_postmark_bounce(delivery_id: int) -> dict:
    """The body from the issue: a hard bounce for someone else, naming a delivery by its id."""
    return {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "ID": delivery_id,
        "Email": "x@evil.example",
        "Metadata": {"delivery_id": str(delivery_id)},
    }


@pytest.mark.parametrize(
    ("esp", "anymail", "status"),
    [
        ("", {}, 404),  # the README's old production minimum: no ESP, no secret
        ("mailgun", {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}, 404),  # another ESP's URL
        ("postmark", {"POSTMARK_SERVER_TOKEN": "test"}, 200),  # even with the secret known
    ],
    ids=["no-esp", "other-esp", "postmark-with-secret"],
)
def test_forged_postmark_bounces_from_the_issue_suppress_nobody(
    client, settings, digest, esp, anymail, status
):
    settings.ANYMAIL_ESP = esp
    settings.ANYMAIL = {**anymail, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    deliveries = [_delivery(digest, esp="postmark") for _i in range(5)]
    for delivery in deliveries:
        response = _post(client, _forged_postmark_bounce(delivery.pk), url=POSTMARK_URL)
        assert response.status_code == status
    assert all(_untouched(delivery) for delivery in deliveries)


@pytest.mark.parametrize("configured", ["", "mailgun", "postmark", "mandrill"])
def test_only_the_configured_providers_tracking_url_exists(db, client, settings, configured):
    settings.ANYMAIL_ESP = configured
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "MANDRILL_WEBHOOK_KEY": "mandrill-key",
    }
    urls = {f"/anymail/{p.pattern}": tracking_webhook_esp(p.name) for p in tracking_webhooks}
    assert {"mailgun", "postmark", "sendgrid", "brevo", "mandrill", "amazon_ses"} <= set(
        urls.values()
    )
    for url, esp in urls.items():
        # Unauthenticated: the configured provider's URL refuses it, every other one is absent.
        status = client.post(url, data="{}", content_type="application/json").status_code
        if esp == configured:
            assert status in (400, 401, 403), url
        else:
            assert status == 404, url


def test_an_event_for_another_address_is_kept_but_does_nothing(client, anymail_webhooks, delivery):
    payload = _payload(anymail_webhooks, delivery, "failed", "permanent", recipient="x@evil.org")
    assert _post(client, payload).status_code == 200
    assert _untouched(delivery)
    assert ProviderEvent.objects.values_list("delivery", "digest").get() == (None, None)


def test_the_recipient_is_compared_without_regard_to_case(client, anymail_webhooks, delivery):
    shouted = delivery.subscription.email.upper()
    _post(client, _payload(anymail_webhooks, delivery, "complained", recipient=shouted))
    delivery.subscription.refresh_from_db()
    assert delivery.subscription.state == SubscriptionState.SUPPRESSED


@pytest.mark.parametrize(
    "ref",
    [
        lambda d: str(d.pk),  # the sequential id of old
        lambda d: f"{d.pk}:" + "A" * 43,  # the shape of a reference, a made-up signature
        lambda d: signing.Signer(salt="other").sign(str(d.pk)),  # signed for another purpose
        lambda d: make_unsubscribe_token(d.subscription_id),  # a token the reader holds
        lambda d: make_delivery_ref(d.pk)[:-1] + "x",  # one character changed
        lambda d: 12,
    ],
    ids=["id", "made-up", "other-salt", "unsubscribe-token", "tampered", "number"],
)
def test_unsigned_or_garbled_delivery_references_are_ignored(
    client, anymail_webhooks, delivery, ref
):
    payload = _payload(anymail_webhooks, delivery, "failed", "permanent", ref=ref(delivery))
    assert _post(client, payload).status_code == 200
    assert _untouched(delivery)


@pytest.mark.parametrize(
    ("state", "esp"),
    [
        (None, "mailgun"),  # in no batch: never claimed
        (BatchState.RETRY, "mailgun"),
        (BatchState.FAILED, "mailgun"),
        (BatchState.SENT, "postmark"),
        (BatchState.SENT, "smtp"),
        (BatchState.SENT, ""),  # claimed before batches recorded their provider
    ],
)
def test_an_event_about_a_batch_not_handed_to_this_provider_does_nothing(
    client, anymail_webhooks, digest, state, esp
):
    delivery = _delivery(digest, state=state, esp=esp)
    assert _post(client, _payload(anymail_webhooks, delivery, "complained")).status_code == 200
    assert _untouched(delivery)


@pytest.mark.parametrize("state", [BatchState.SENDING, BatchState.SENT, BatchState.UNCERTAIN])
def test_an_event_about_a_batch_handed_to_this_provider_acts(
    client, anymail_webhooks, digest, state
):
    # "sending": the provider's webhook may overtake the worker's record of the call.
    delivery = _delivery(digest, state=state)
    _post(client, _payload(anymail_webhooks, delivery, "complained"))
    delivery.subscription.refresh_from_db()
    assert delivery.subscription.state == SubscriptionState.SUPPRESSED


def test_only_an_authentic_event_proves_an_uncertain_batch_sent(client, anymail_webhooks, digest):
    delivery = _delivery(digest, state=BatchState.UNCERTAIN)
    batch = Batch.objects.get(digest=digest)
    forged = [
        _payload(anymail_webhooks, delivery, "delivered", recipient="x@evil.org"),
        _payload(anymail_webhooks, delivery, "delivered", ref=str(delivery.pk)),
    ]
    for payload in forged:
        assert _post(client, payload).status_code == 200
    digest_reconcile(digest_id=digest.pk)
    batch.refresh_from_db()
    assert batch.state == BatchState.UNCERTAIN
    _post(client, _payload(anymail_webhooks, delivery, "delivered"))
    digest_reconcile(digest_id=digest.pk)
    batch.refresh_from_db()
    assert batch.state == BatchState.SENT


def test_digest_mails_name_their_delivery_by_a_signed_reference(
    newsletter_with_articles, mailgun_in_process
):
    fake = mailgun_in_process
    mailgun_in_process.webhook_mode = "off"
    seed_subscribers(newsletter_with_articles, 5)
    digest = Digest.objects.create(
        newsletter=newsletter_with_articles,
        frequency=Frequency.DAILY,
        slot=timezone.now(),
        state=DigestState.FANNING_OUT,
        period_start=newsletter_with_articles.starts_at,
        period_end=timezone.now(),
    )
    digest_fan_out(digest_id=digest.pk)
    digest_drain(digest_id=digest.pk)  # (the fan-out's drains may have sent it already)
    digest.refresh_from_db()
    assert digest.state == DigestState.DONE
    deliveries = dict(
        Delivery.objects.filter(digest=digest).values_list("subscription__email", "pk")
    )
    assert len(fake.received) == 5
    for received in fake.received:
        assert "delivery_id" not in received.variables
        assert read_delivery_ref(received.variables["delivery_ref"]) == deliveries[received.email]
    assert Batch.objects.get(digest=digest).esp == "mailgun"


# --- Postmark ----------------------------------------------------------------------------


def _postmark_bounce(delivery, bounce_type: str, event_id: int) -> dict:
    return {
        "RecordType": "Bounce",
        "Type": bounce_type,
        "ID": event_id,
        "Email": delivery.subscription.email,
        "Description": "The server was unable to deliver your message.",
        "Metadata": {"delivery_ref": make_delivery_ref(delivery.pk)},
    }


def test_postmark_soft_bounces_count_toward_the_limit(client, postmark, digest, settings):
    settings.NEWSLETTER_SOFT_BOUNCE_LIMIT = 2
    delivery = _delivery(digest, esp="postmark")
    subscription = delivery.subscription
    response = _post(client, _postmark_bounce(delivery, "SoftBounce", 1), url=POSTMARK_URL)
    assert response.status_code == 200
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.CONFIRMED and subscription.soft_bounces == 1
    assert ProviderEvent.objects.get().event_type == "deferred"
    _post(client, _postmark_bounce(delivery, "SoftBounce", 2), url=POSTMARK_URL)
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.SUPPRESSED


def test_a_postmark_hard_bounce_suppresses_at_once(client, postmark, digest):
    delivery = _delivery(digest, esp="postmark")
    _post(client, _postmark_bounce(delivery, "HardBounce", 1), url=POSTMARK_URL)
    delivery.subscription.refresh_from_db()
    assert delivery.subscription.state == SubscriptionState.SUPPRESSED


# --- the event and its effect commit together --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_effect_that_fails_takes_its_event_along_so_a_replay_applies_it(digest):
    delivery = _delivery(digest)
    event = TrackingEvent(
        esp="mailgun",
        event_id="bounce-1",
        event_type="bounced",
        recipient=delivery.subscription.email,
        delivery_id=delivery.pk,
        occurred_at=timezone.now(),
    )
    table = delivery.subscription._meta.db_table
    # Another session holds the subscription row, so the suppression fails with a lock
    # timeout after the event row was written.
    with psycopg.connect(**connection.get_connection_params()) as blocker:
        blocker.execute(
            f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [delivery.subscription_id]
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            with pytest.raises(OperationalError, match="lock"):
                provider_event_record(event=event)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        blocker.rollback()
    assert not ProviderEvent.objects.exists()
    # The provider retries (anymail answered 500): now the effect happens, once.
    assert provider_event_record(event=event) is True
    assert provider_event_record(event=event) is False
    delivery.subscription.refresh_from_db()
    assert delivery.subscription.state == SubscriptionState.SUPPRESSED
    recorded = ProviderEvent.objects.get()
    # Linked to the delivery and to its mailing, whose report counts it from that column.
    assert (recorded.delivery_id, recorded.digest_id) == (delivery.pk, delivery.digest_id)
