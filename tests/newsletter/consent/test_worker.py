"""The consent mails through a REAL Celery worker on Redis, delivered over SMTP to a sink."""

import re
import time

import pytest
from django.test import Client

from newsletter.forms import form_started_token
from newsletter.models import (
    ConsentEvent,
    ConsentText,
    Newsletter,
    RevocationChannel,
    Subscription,
    SubscriptionState,
)
from newsletter.services.consent import consent_text_default_publish, subscription_revoke
from newsletter.tasks.consent import (
    subscription_confirmation_send_task,
    subscription_welcome_send_task,
)
from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

pytestmark = [pytest.mark.worker]


def wait_for_row(queryset, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = queryset.first()
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no row for {queryset.query}")


CONFIRM_LINK = re.compile(r"http://testserver(/n/bestaetigen/[^/\s]+/)")


@pytest.fixture
def live_newsletter(transactional_db) -> Newsletter:
    newsletter = NewsletterFactory(slug="meinung-am-morgen", welcome_mail=True)
    consent_text_default_publish(newsletter=newsletter)
    return newsletter


def test_signup_mail_goes_through_a_real_worker_and_the_link_confirms(
    celery_workers, smtp_sink, live_newsletter, settings
):
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0
    worker = celery_workers(concurrency=1, env={"EMAIL_URL": smtp_sink.url})
    text = ConsentText.objects.get(newsletter=live_newsletter, language="de")
    client = Client()
    response = client.post(
        "/newsletter/anmelden/",
        {
            "email": "echt@example.org",
            "newsletter": live_newsletter.slug,
            "consent_text": text.id,
            "page": "/artikel/x/",
            "website": "",
            "started": form_started_token(),
        },
    )
    assert response.status_code == 303

    try:
        mail = smtp_sink.wait_for(lambda m: m["To"] == "echt@example.org")
    except AssertionError:
        print(worker.log())
        raise
    body = smtp_sink.text_of(mail)
    sub = Subscription.objects.get(email="echt@example.org")
    # The worker sends under the row lock and commits the evidence right after.
    sent = wait_for_row(ConsentEvent.objects.filter(subscription=sub, kind="confirmation_sent"))
    assert sent.message_id == mail["Message-ID"]
    assert "Ich bin damit einverstanden" in body

    path = CONFIRM_LINK.search(body).group(1)
    assert client.get(path).status_code == 200
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.PENDING
    assert client.post(path).status_code == 200
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED

    # The welcome mail follows from the worker, with the one-click headers.
    welcome = smtp_sink.wait_for(lambda m: "Willkommen" in m["Subject"])
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/n/abmelden/" in welcome["List-Unsubscribe"]


def test_revocation_at_commit_stops_mail_already_queued(celery_workers, smtp_sink, live_newsletter):
    leaving = SubscriptionFactory(newsletter=live_newsletter, email="geht@example.org")
    staying = SubscriptionFactory(
        newsletter=live_newsletter, email="bleibt@example.org", state="pending", confirmed_at=None
    )
    # Queued while the subscription is confirmed, before any worker runs ...
    subscription_welcome_send_task.delay(leaving.id)
    subscription_revoke(subscription_id=leaving.id, channel=RevocationChannel.LINK)
    # ... and a later mail that proves the worker has been through the queue (one process, FIFO).
    subscription_confirmation_send_task.delay(staying.id)
    celery_workers(concurrency=1, env={"EMAIL_URL": smtp_sink.url})

    smtp_sink.wait_for(lambda m: m["To"] == "bleibt@example.org")
    assert [m["To"] for m in smtp_sink.messages] == ["bleibt@example.org"]
    leaving.refresh_from_db()
    assert leaving.state == SubscriptionState.UNSUBSCRIBED
    assert leaving.last_mailed_at is None
