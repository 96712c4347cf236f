"""Admin digest pages, the public archive and the send_digest command."""

import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, DeliveryState, Digest, DigestState
from newsletter.services.digests import digest_start_now

from .conftest import seed_subscribers

pytestmark = pytest.mark.django_db


@pytest.fixture
def digest(newsletter_with_articles, monkeypatch):
    from newsletter.services import digests

    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: None)
    subs = seed_subscribers(newsletter_with_articles, 30, language_every=2)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    digests.digest_fan_out(digest_id=digest.pk)
    ids = list(Delivery.objects.filter(digest=digest).order_by("pk").values_list("pk", flat=True))
    Batch.objects.create(
        digest=digest,
        first_delivery_id=ids[0],
        last_delivery_id=ids[9],
        size=10,
        sent_count=9,
        state=BatchState.SENT,
    )
    Delivery.objects.filter(pk=ids[3]).update(state=DeliveryState.SKIPPED)
    Batch.objects.create(
        digest=digest,
        first_delivery_id=ids[10],
        last_delivery_id=ids[14],
        size=5,
        state=BatchState.UNCERTAIN,
    )
    digest.refresh_from_db()
    digest.subs = subs
    return digest


def test_changelist_shows_counts_without_a_query_per_row(
    admin_client, digest, django_assert_max_num_queries
):
    url = reverse("admin:newsletter_digest_changelist")
    with django_assert_max_num_queries(12):
        response = admin_client.get(url)
    assert response.status_code == 200
    row = response.context["cl"].result_list[0]
    assert (row.n_sent, row.n_uncertain, row.n_skipped) == (9, 5, 1)


def test_progress_json_counts(admin_client, digest):
    url = reverse("admin:newsletter_digest_progress_json", args=[digest.pk])
    data = json.loads(admin_client.get(url).content)
    assert data["sent"] == 9
    assert data["uncertain"] == 5
    assert data["skipped"] == 1
    assert data["queued"] == 30 - 15
    page = admin_client.get(reverse("admin:newsletter_digest_progress", args=[digest.pk]))
    assert b"digest_progress.js" in page.content and b"<script>" not in page.content


def test_preview_as_subscriber_and_test_to_myself(admin_client, admin_user, digest):
    english = digest.subs[1]
    url = reverse("admin:newsletter_digest_preview", args=[digest.pk])
    html = admin_client.get(url, {"subscription": english.pk}).content.decode()
    assert "opinion of our editors" in html and "/n/abmelden/" in html
    assert "%recipient" not in html
    admin_user.email = "redakteurin@example.org"
    admin_user.save()
    mail.outbox.clear()
    admin_client.post(reverse("admin:newsletter_digest_test", args=[digest.pk]))
    assert [m.to for m in mail.outbox] == [["redakteurin@example.org"]]
    assert mail.outbox[0].subject.startswith("[Test] ")


def test_pause_resume_cancel_actions(admin_client, digest):
    url = reverse("admin:newsletter_digest_changelist")
    for action, state in (
        ("pause_selected", DigestState.PAUSED),
        ("resume_selected", DigestState.SENDING),
        ("cancel_selected", DigestState.CANCELLED),
    ):
        admin_client.post(url, {"action": action, "_selected_action": [digest.pk]})
        digest.refresh_from_db()
        assert digest.state == state


def test_start_now_view(admin_client, newsletter_with_articles, monkeypatch):
    from newsletter.services import digests

    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    url = reverse("admin:newsletter_digest_start")
    response = admin_client.post(
        url, {"newsletter": newsletter_with_articles.pk, "frequency": "daily"}
    )
    assert response.status_code == 302
    assert Digest.objects.filter(newsletter=newsletter_with_articles).count() == 1


def test_archive_shows_done_digests_without_personal_parts(client, digest):
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.DONE, finished_at=timezone.now())
    listing = client.get(reverse("newsletter:digest_archive"))
    assert listing.status_code == 200
    assert digest.subject.encode() in listing.content
    detail = client.get(reverse("newsletter:digest_archive_detail", args=[digest.pk]))
    assert detail.status_code == 200
    assert b"Zinsen steigen" in detail.content
    assert b"abmelden" not in detail.content and b"%recipient" not in detail.content
    assert client.get(reverse("newsletter:digest_archive_detail", args=[999999])).status_code == 404


def test_send_digest_command_uses_the_scheduler_path(newsletter_with_articles, monkeypatch):
    from io import StringIO

    from newsletter.services import digests

    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    out = StringIO()
    call_command("send_digest", newsletter_with_articles.slug, "--now", stdout=out)
    call_command("send_digest", newsletter_with_articles.slug, "--now", stdout=out)
    digest = Digest.objects.get(newsletter=newsletter_with_articles)
    assert digest.period_start == newsletter_with_articles.starts_at
    assert "already there" in out.getvalue()
    assert Digest.objects.filter(newsletter=newsletter_with_articles).count() == 1
