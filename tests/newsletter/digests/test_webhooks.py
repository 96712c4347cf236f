"""Provider webhooks: signed, deduplicated by event id, suppress/revoke with evidence."""

import base64

import pytest
from django.utils import timezone

from newsletter.models import (
    ConsentEvent,
    Delivery,
    Digest,
    DigestState,
    Frequency,
    ProviderEvent,
    SubscriptionState,
    Suppression,
)
from tests.fakes.mailgun import FakeMailgun, Received
from tests.newsletter.factories import SubscriptionFactory

from .conftest import SIGNING_KEY, WEBHOOK_SECRET

URL = "/anymail/mailgun/tracking/"


@pytest.fixture
def anymail_webhooks(settings):
    settings.ANYMAIL = {
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    return FakeMailgun(signing_key=SIGNING_KEY)  # only its payload builder is used


@pytest.fixture
def delivery(db, newsletter_with_articles):
    subscription = SubscriptionFactory(newsletter=newsletter_with_articles)
    digest = Digest.objects.create(
        newsletter=newsletter_with_articles,
        frequency=Frequency.DAILY,
        slot=timezone.now(),
        state=DigestState.SENDING,
        period_start=timezone.now(),
        period_end=timezone.now(),
    )
    return Delivery.objects.create(digest=digest, subscription=subscription)


def _post(client, payload, secret=WEBHOOK_SECRET):
    auth = base64.b64encode(secret.encode()).decode()
    return client.post(
        URL, data=payload, content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}"
    )


def _payload(fake, delivery, kind, severity=None):
    item = Received(
        email=delivery.subscription.email,
        delivery_id=str(delivery.pk),
        digest_id=str(delivery.digest_id),
        subject="",
        headers={},
    )
    return fake.event_payload(item, "<m@fake>", (kind, severity))


def test_event_is_recorded_once_however_often_it_is_posted(client, anymail_webhooks, delivery):
    payload = _payload(anymail_webhooks, delivery, "delivered")
    for _i in range(3):
        assert _post(client, payload).status_code == 200
    assert ProviderEvent.objects.filter(delivery=delivery).count() == 1


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
    delivery.subscription.refresh_from_db()
    assert delivery.subscription.state == SubscriptionState.CONFIRMED
