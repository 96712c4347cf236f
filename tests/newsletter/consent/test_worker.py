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


def test_a_large_import_runs_in_a_real_worker_with_progress_and_a_report(
    celery_workers, smtp_sink, live_newsletter, admin_client
):
    """30,000 rows through the upload page: it answers at once with the job's page, a real
    worker checks and writes the file, the page shows progress and then the report; the
    suppressed and the known address stay out, the rows without proof get their mail. (The
    100,000-row refusal runs eagerly in test_import.py; writing 100,000 rows takes minutes
    on the loaded test machine.)"""
    from newsletter.models import SubscriptionImport
    from newsletter.services.consent import subscription_suppress
    from newsletter.services.ledger import chain_verify

    SubscriptionFactory(newsletter=live_newsletter, email="leser7@example.org")  # known
    blocked = SubscriptionFactory(newsletter=live_newsletter, email="leser8@example.org")
    subscription_suppress(
        subscription_id=blocked.id, reason="complaint", channel=RevocationChannel.WEBHOOK
    )
    rows = [
        f"leser{i}@example.org,de,2025-03-01T09:30:00+01:00,198.51.100.4,Messe,1\n"
        for i in range(30_000)
    ]
    for i in (11, 12):  # no proof: double opt-in
        rows[i] = f"leser{i}@example.org,de,,,,\n"
    content = "email,language,consent_at,ip,source,text_version\n" + "".join(rows)
    celery_workers(concurrency=1, env={"EMAIL_URL": smtp_sink.url})
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = admin_client.post(
        "/admin/newsletter/subscription/import/",
        {
            "newsletter": live_newsletter.pk,
            "file": SimpleUploadedFile("messe.csv", content.encode(), "text/csv"),
        },
    )
    assert response.status_code == 302
    job = SubscriptionImport.objects.get()
    page = admin_client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' in page  # still open: the page reloads itself
    states = set()
    deadline = time.monotonic() + 600
    while job.is_open:
        assert time.monotonic() < deadline, job.state
        states.add(job.state)
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.state == "imported", (job.file_error, job.errors)
    assert (job.rows, job.confirmed, job.pending, job.existing, job.suppressed) == (
        30_000,
        29_996,
        2,
        1,
        1,
    )
    assert Subscription.objects.filter(newsletter=live_newsletter).count() == 30_000
    assert Subscription.objects.get(pk=blocked.pk).state == SubscriptionState.SUPPRESSED
    assert ConsentEvent.objects.filter(kind="imported").count() == 29_996
    assert chain_verify().ok
    page = admin_client.get(response["Location"]).content.decode()
    assert "29996 Adressen mit Nachweis als bestätigt übernommen" in page
    assert 'http-equiv="refresh"' not in page
    for address in ("leser11@example.org", "leser12@example.org"):
        smtp_sink.wait_for(lambda m, a=address: m["To"] == a)
    print("import job states seen:", sorted(states), "seconds:", job.finished_at - job.started_at)
