"""Import from CSV: proof rows confirmed with `imported` evidence, the rest double opt-in,
suppressed and known addresses never re-added, and hostile files refused whole."""

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from newsletter.models import (
    ConsentEvent,
    ConsentEventKind,
    RevocationChannel,
    Subscription,
    SubscriptionState,
)
from newsletter.services.consent import (
    IMPORT_MAX_ROWS,
    subscription_import,
    subscription_suppress,
)
from tests.newsletter.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
URL = "/admin/newsletter/subscription/import/"
HEADER = "email,language,consent_at,ip,source,text_version\n"


@pytest.fixture
def manager_client(client):
    user = User.objects.create_user("verwaltung", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Newsletter-Verwaltung"))
    client.force_login(user)
    return client


def upload(client, newsletter, content: bytes | str, name="liste.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        URL,
        {"newsletter": newsletter.pk, "file": SimpleUploadedFile(name, data, "text/csv")},
    )


def test_proof_rows_are_confirmed_with_imported_evidence_and_the_rest_pending(
    manager_client, newsletter, django_capture_on_commit_callbacks
):
    known = SubscriptionFactory(newsletter=newsletter, email="bekannt@example.org")
    blocked = SubscriptionFactory(newsletter=newsletter, email="gesperrt@example.org")
    subscription_suppress(
        subscription_id=blocked.id, reason="hard_bounce", channel=RevocationChannel.WEBHOOK
    )
    content = (
        HEADER
        + "mit-beleg@example.org,de,2025-03-01T09:30:00+01:00,198.51.100.4,Gewinnspiel 2025,1\n"
        + "ohne-beleg@example.org,en,,,,\n"
        + "BEKANNT@example.org,de,,,,\n"
        + "Gesperrt@Example.org,de,,,,\n"
        + ",,,,,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(manager_client, newsletter, content)
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.confirmed, report.pending, report.existing, report.suppressed) == (1, 1, 1, 1)
    html = response.content.decode()
    assert "1 Adresse mit Nachweis als bestätigt übernommen" in html

    imported = Subscription.objects.get(email="mit-beleg@example.org")
    assert imported.state == SubscriptionState.CONFIRMED
    assert imported.confirmed_at.isoformat() == "2025-03-01T08:30:00+00:00"
    event = ConsentEvent.objects.get(subscription=imported)
    assert event.kind == ConsentEventKind.IMPORTED
    assert (event.ip, event.form) == ("198.51.100.4", "Gewinnspiel 2025")
    assert event.consent_text is not None and event.consent_text.version == 1
    assert event.text_sha256 == event.consent_text.sha256
    # Who imported is the event's actor; file and line are structured data, and the chained
    # data never repeats the IP (erasure can blank the ip field, not the data).
    assert event.actor.get_username() == "verwaltung"
    assert event.data["file"] == "liste.csv" and event.data["line"] == 2
    assert "ip" not in event.data and event.note == ""

    pending = Subscription.objects.get(email="ohne-beleg@example.org")
    assert pending.state == SubscriptionState.PENDING and pending.language == "en"
    assert [m.to for m in mail.outbox] == [["ohne-beleg@example.org"]]
    # The suppressed and the known address are untouched; no second subscription.
    assert Subscription.objects.filter(newsletter=newsletter).count() == 4
    assert Subscription.objects.get(pk=blocked.pk).state == SubscriptionState.SUPPRESSED
    assert Subscription.objects.get(pk=known.pk).state == SubscriptionState.CONFIRMED


HOSTILE = [
    pytest.param(
        (HEADER + "a@example.org,de,,,,\nkeine-adresse,de,,,,\n").encode(),
        "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
        id="malformed-address",
    ),
    pytest.param(
        (HEADER + "a@example.org,de,,,,\nA@example.org,de,,,,\n").encode(),
        "Adresse doppelt (schon in Zeile 2).",
        id="duplicate",
    ),
    pytest.param(
        "email\nmüller@example.org\n".encode("latin-1"),
        "nicht UTF-8-kodiert",
        id="latin-1",
    ),
    pytest.param(
        "email\nmüller@example.org\n".encode("utf-16"),
        "nicht UTF-8-kodiert",
        id="utf-16",
    ),
    pytest.param(
        (HEADER + "a@example.org,de,2025-03-01T09:30:00,198.51.100.4,,\n").encode(),
        "Nachweis unvollständig, es fehlt: source, text_version.",
        id="partial-proof",
    ),
    pytest.param(
        (HEADER + "a@example.org,de,gestern,198.51.100.4,web,1\n").encode(),
        "ist kein Zeitpunkt",
        id="bad-timestamp",
    ),
    pytest.param(
        (HEADER + "a@example.org,de,2025-03-01T09:30:00,=1+1,web,1\n").encode(),
        "„ip“ ist keine IP-Adresse.",
        id="formula-as-ip",
    ),
    pytest.param(
        b"adresse;name\na@example.org;A\n",
        "mindestens „email“",
        id="no-email-column",
    ),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", "keine Textdatei", id="binary"),
    pytest.param(
        ("email\n" + "".join(f"x{i}@example.org\n" for i in range(IMPORT_MAX_ROWS + 1))).encode(),
        "mehr als 2000 Zeilen",
        id="too-many-rows",
    ),
]


@pytest.mark.parametrize(("content", "message"), HOSTILE)
def test_hostile_files_import_nothing_and_say_why(manager_client, newsletter, content, message):
    response = upload(manager_client, newsletter, content)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "Es wurde nichts übernommen" in html
    assert not Subscription.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_one_hundred_thousand_rows_are_refused_whole_with_a_clear_report(
    manager_client, newsletter
):
    content = "email\n" + "".join(f"leser{i}@example.org\n" for i in range(100_000))
    response = upload(manager_client, newsletter, content)
    assert response.status_code == 400
    assert "mehr als 2000 Zeilen" in response.content.decode()
    assert not Subscription.objects.exists()


def test_a_failure_midway_leaves_nothing_behind(newsletter, monkeypatch):
    from newsletter.services.consent import importing

    calls = {"n": 0}
    original = importing.event_record

    def failing(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database gone")
        return original(**kwargs)

    monkeypatch.setattr(importing, "event_record", failing)
    content = HEADER + "".join(
        f"l{i}@example.org,de,2025-03-01T09:30:00,198.51.100.4,web,1\n" for i in range(5)
    )
    with pytest.raises(RuntimeError):
        subscription_import(
            newsletter=newsletter, file_name="x.csv", data=content.encode(), actor=None
        )
    assert not Subscription.objects.exists() and not ConsentEvent.objects.exists()


def test_export_escapes_formulas_and_names_consent_dates(manager_client, newsletter):
    SubscriptionFactory(newsletter=newsletter, email="=cmd|'/C calc'!A0@example.org")
    SubscriptionFactory(newsletter=newsletter, email="plain@example.org")
    SubscriptionFactory(
        newsletter=newsletter, email="offen@example.org", state="pending", confirmed_at=None
    )
    response = manager_client.post(
        reverse("admin:newsletter_subscription_changelist"),
        {
            "action": "export_confirmed_csv",
            "_selected_action": list(Subscription.objects.values_list("pk", flat=True)),
        },
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "email",
        "newsletter",
        "language",
        "frequency",
        "requested_at",
        "confirmed_at",
    ]
    emails = sorted(r[0] for r in rows[1:])
    assert emails == ["'=cmd|'/C calc'!A0@example.org", "plain@example.org"]
    assert all(r[5].endswith(("+01:00", "+02:00")) for r in rows[1:])


def test_import_page_needs_its_own_permission(client, newsletter):
    viewer = User.objects.create_user("leser", password="x", is_staff=True)
    client.force_login(viewer)
    assert client.get(URL).status_code == 403


def test_import_form_without_a_file_says_so(manager_client, newsletter):
    response = manager_client.post(URL, {"newsletter": newsletter.pk})
    assert response.status_code == 400
    assert "Dieses Feld ist zwingend erforderlich." in response.content.decode()
