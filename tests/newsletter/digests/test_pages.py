"""Admin digest pages, the public archive and the send_digest command."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from articles.models import Article
from articles.services import article_purge, article_withdraw
from newsletter.models import Batch, BatchState, Delivery, DeliveryState, Digest, DigestState
from newsletter.services.digests import digest_start_now

from .conftest import deliveries_write, seed_subscribers

pytestmark = pytest.mark.django_db


@pytest.fixture
def digest(newsletter_with_articles, monkeypatch):
    from newsletter.services import digests

    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: None)
    subs = seed_subscribers(newsletter_with_articles, 30, language_every=2)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    digests.digest_fan_out(digest_id=digest.pk)
    ids = deliveries_write(digest)
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
    assert "opinion of our editors" in html and "#vorschau-abmelden" in html
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


def test_archive_names_articles_withdrawn_or_purged_since_instead_of_miscounting(client, digest):
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.DONE, finished_at=timezone.now())
    digest.refresh_from_db()
    assert "2 neue Artikel" in digest.subject
    url = reverse("newsletter:digest_archive_detail", args=[digest.pk])
    assert b"zur\xc3\xbcckgezogen oder entfernt" not in client.get(url).content
    chief = User.objects.create_superuser("chefin", "chefin@example.org", "x")
    purged, withdrawn = Article.objects.filter(pk__in=digest.article_ids).order_by("pk")
    article_purge(article=purged, actor=chief, reason="Gerichtliche Verfügung")
    html = client.get(url).content.decode()
    assert purged.title not in html and withdrawn.title in html
    assert "Ein Artikel dieser Ausgabe wurde inzwischen zurückgezogen oder entfernt." in html
    article_withdraw(article=withdrawn, reason="Falsche Zahlen", actor=chief)
    html = client.get(url).content.decode()
    assert withdrawn.title not in html
    assert "2 Artikel dieser Ausgabe wurden inzwischen zurückgezogen oder entfernt." in html


def test_archive_is_paged_and_answers_404_past_its_last_page(client, digest, monkeypatch):
    from newsletter.views import digests as archive_views

    monkeypatch.setattr(archive_views, "ARCHIVE_PAGE_SIZE", 1)
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.DONE, finished_at=timezone.now())
    older = Digest.objects.get(pk=digest.pk)
    older.pk, older.slot, older.subject = None, digest.slot - timedelta(days=7), "Vorige Woche"
    older.save()
    url = reverse("newsletter:digest_archive")

    first, second = client.get(url), client.get(url, {"page": "2"})
    assert digest.subject in first.content.decode() and "Vorige Woche" not in first.content.decode()
    assert 'rel="next" href="?page=2">Ältere Ausgaben' in first.content.decode()
    assert "Vorige Woche" in second.content.decode()
    assert 'rel="prev" href="?page=1">Neuere Ausgaben' in second.content.decode()
    assert client.get(url, {"page": "3"}).status_code == 404
    assert client.get(url, {"page": "²"}).status_code == 404


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


# --- Permissions ---------------------------------------------------------------------------


def _staff_with(client, *codenames: str):
    user = User.objects.create_user(
        "nur-lesen", email="nur-lesen@example.org", password="x", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="newsletter", codename__in=codenames)
    )
    client.force_login(user)
    return client


def test_view_digest_alone_cannot_cancel_send_a_test_or_see_subscribers(client, digest):
    viewer = _staff_with(client, "view_digest")
    changelist = reverse("admin:newsletter_digest_changelist")
    assert viewer.get(changelist).status_code == 200
    for action in ("pause_selected", "resume_selected", "cancel_selected"):
        viewer.post(changelist, {"action": action, "_selected_action": [digest.pk]})
        digest.refresh_from_db()
        assert digest.state == DigestState.SENDING, action

    mail.outbox.clear()
    test_url = reverse("admin:newsletter_digest_test", args=[digest.pk])
    assert viewer.post(test_url, {"language": "de"}).status_code == 403
    assert mail.outbox == []

    page = viewer.get(reverse("admin:newsletter_digest_progress", args=[digest.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert ">30<" in html  # the counts stay
    assert "@example.org" not in html and "preview-subscription" not in html
    assert "Test senden" not in html

    preview = reverse("admin:newsletter_digest_preview", args=[digest.pk])
    assert viewer.get(preview, {"subscription": digest.subs[1].pk}).status_code == 403
    # Without a subscriber the preview is the digest with placeholders, no one's data.
    generic = viewer.get(preview, {"language": "en"})
    assert generic.status_code == 200
    assert "opinion of our editors" in generic.content.decode()
    assert "@example.org" not in generic.content.decode()


def test_managers_get_the_test_send_and_the_preview_as_a_subscriber(client, digest):
    user = User.objects.create_user(
        "verwaltung", email="verwaltung@example.org", password="x", is_staff=True
    )
    user.groups.add(Group.objects.get(name="Newsletter-Verwaltung"))
    assert user.has_perms(["newsletter.send_test_digest", "newsletter.preview_as_subscriber"])
    client.force_login(user)
    page = client.get(reverse("admin:newsletter_digest_progress", args=[digest.pk])).content
    assert digest.subs[0].email.encode() in page and b"Test senden" in page
    mail.outbox.clear()
    client.post(reverse("admin:newsletter_digest_test", args=[digest.pk]), {"language": "de"})
    assert [m.to for m in mail.outbox] == [["verwaltung@example.org"]]


def test_preview_as_a_subscriber_never_holds_a_working_personal_link(admin_client, digest):
    subscriber = digest.subs[1]
    url = reverse("admin:newsletter_digest_preview", args=[digest.pk])
    response = admin_client.get(url, {"subscription": subscriber.pk})
    html = response.content.decode()
    mail_html = response.context["preview_html"]
    assert "opinion of our editors" in mail_html and subscriber.email in html
    assert 'href="#vorschau-abmelden"' in mail_html
    assert 'href="#vorschau-einstellungen"' in mail_html
    # Shown in a sandboxed frame: never run, never navigating the admin page.
    assert html.count("<iframe") == 2  # desktop and phone width
    assert html.count('<iframe class="digest-preview') == html.count('sandbox=""') == 2
    for route in ("/n/abmelden/", "/n/einstellungen/", "/n/bestaetigen/"):
        assert route not in html, route
    assert "%recipient" not in html


@pytest.mark.parametrize(
    ("raw", "status"), [("abc", 400), ("1" * 40, 400), ("-1", 400), ("99999999", 404)]
)
def test_preview_refuses_an_odd_subscription_in_plain_words(admin_client, digest, raw, status):
    url = reverse("admin:newsletter_digest_preview", args=[digest.pk])
    response = admin_client.get(url, {"subscription": raw})
    assert response.status_code == status
    if status == 400:
        assert "Ungültige Abonnement-Nummer" in response.content.decode()


def test_a_skipped_digest_offers_no_preview_and_no_test(admin_client, digest):
    Digest.objects.filter(pk=digest.pk).update(state=DigestState.SKIPPED, article_ids=[])
    page = admin_client.get(reverse("admin:newsletter_digest_progress", args=[digest.pk]))
    html = page.content.decode()
    assert "Vorschau öffnen" not in html and "Test senden" not in html
    assert "wurde übersprungen" in html
    preview = admin_client.get(reverse("admin:newsletter_digest_preview", args=[digest.pk]))
    assert preview.status_code == 400
    test = admin_client.post(reverse("admin:newsletter_digest_test", args=[digest.pk]))
    assert test.status_code == 400
    assert not mail.outbox


def test_start_page_has_one_heading_styled_buttons_and_a_banner_without_a_state(
    admin_client, newsletter_with_articles, monkeypatch
):
    from newsletter.services import digests

    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)
    url = reverse("admin:newsletter_digest_start")
    html = admin_client.get(url).content.decode()
    assert html.count("Digest jetzt senden</h1>") == 1
    assert '<button type="submit" class="button">Digest zusammenstellen</button>' in html
    # Composed (GET), the shared workflow confirms with the primary button naming the count.
    choice = {"newsletter": newsletter_with_articles.pk, "frequency": "daily"}
    html = admin_client.get(url, choice).content.decode()
    assert html.count("Digest jetzt senden</h1>") == 1
    count = re.search(r'id="check-count">(\d+)<', html).group(1)
    assert (
        f'<button type="submit" class="button default" id="confirm-send">An {count} Empfänger'
        in html
    )
    assert not Digest.objects.exists()
    page = admin_client.post(
        url, {"newsletter": newsletter_with_articles.pk, "frequency": "daily"}, follow=True
    )
    banner = [str(m) for m in page.context["messages"]]
    digest = Digest.objects.get(newsletter=newsletter_with_articles)
    # The table below shows the live state; the banner names none that could contradict it.
    assert banner == [f"Digest {digest.pk} angelegt."]
    assert 'class="button"' in page.content.decode()
