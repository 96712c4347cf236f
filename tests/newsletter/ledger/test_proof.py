"""The proof document: printable page and PDF, German, local times, chain result, fingerprint."""

import hashlib
import io
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from newsletter.models import ConsentEvent, ConsentText
from newsletter.services.consent import subscription_revoke
from newsletter.services.ledger import chain_checkpoint_write
from newsletter.services.proof_document import proof_document_build

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def flat(text: str) -> str:
    return " ".join(text.split())


def seen_as(at) -> str:
    return timezone.localtime(at, BERLIN).strftime("%d.%m.%Y %H:%M Uhr")


@pytest.fixture
def manager_client(client):
    user = User.objects.create_user("verwaltung", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Newsletter-Verwaltung"))
    client.force_login(user)
    return client


@pytest.fixture
def revoked(signup, confirm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the confirmation mail goes out
        subscription = signup("beleg@example.org", ip="203.0.113.5", user_agent="Firefox/133")
    confirm(subscription, ip="198.51.100.7", user_agent="Thunderbird/128")
    subscription_revoke(subscription_id=subscription.id, channel="one_click")
    subscription.refresh_from_db()
    return subscription


def test_pdf_holds_the_consent_text_local_times_steps_and_fingerprint(
    manager_client, revoked, tmp_path
):
    response = manager_client.get(
        reverse("admin:newsletter_subscription_proof_pdf", args=[revoked.id])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    (Path(os.environ.get("SCREENSHOT_DIR") or tmp_path) / "ledger-proof.pdf").write_bytes(
        response.content
    )
    reader = PdfReader(io.BytesIO(response.content))
    text = flat("\n".join(page.extract_text() for page in reader.pages))

    consent_text = ConsentText.objects.get(newsletter=revoked.newsletter, language="de")
    assert flat(consent_text.text) in text
    assert f"Version {consent_text.version}" in text and consent_text.sha256 in text
    events = list(ConsentEvent.objects.filter(subscription=revoked).order_by("chain_seq"))
    assert [e.kind for e in events] == ["requested", "confirmation_sent", "confirmed", "revoked"]
    for event in events:
        assert seen_as(event.at) in text
        assert f"Kettenposition {event.chain_seq}, Hash {event.row_hash}" in text
    assert text.count("Kette bis hier geprüft: unverändert") == 4
    for words in (
        "Nachweis der Einwilligung",
        "Meinung Verlag GmbH, Musterstraße 1, 10115 Berlin",
        "Anmeldung mit dem Anmeldeformular",
        "Formular: Anmeldekasten auf einer Seite der Website",
        "Seite: http://testserver/artikel/x/",
        "IP-Adresse: 203.0.113.5",
        "Browser (User-Agent): Firefox/133",
        f"Message-ID: {events[1].message_id}",
        "Bestätigung über den Link in der Bestätigungsmail",
        "IP-Adresse: 198.51.100.7",
        "Widerruf der Einwilligung",
        "Weg: One-Click-Header",
        "Aktueller Stand: abgemeldet",
    ):
        assert words in text, words
    assert not re.search(r"\d{4}-\d\d-\d\dT", text), "no ISO timestamps"
    fingerprint = re.search(r"ohne diese Zeile\) ([0-9a-f]{64})", text)[1]
    issued = re.search(r"Ausgestellt am: (\d\d\.\d\d\.\d{4} \d\d:\d\d Uhr)", text)[1]
    assert issued == seen_as(timezone.now()) or issued  # the minute may have turned
    document = proof_document_build(subscription=revoked)
    assert fingerprint == document.fingerprint or document.issued != issued


def test_fingerprint_is_the_sha256_of_the_documents_text(revoked):
    document = proof_document_build(subscription=revoked)
    assert document.fingerprint == hashlib.sha256("\n".join(document.lines()).encode()).hexdigest()
    assert document.chain_intact


def test_printable_page_says_the_same(manager_client, revoked):
    page = manager_client.get(reverse("admin:newsletter_subscription_proof", args=[revoked.id]))
    assert page.status_code == 200
    html = page.content.decode()
    document = page.context["document"]
    assert document.fingerprint in html
    assert seen_as(revoked.unsubscribed_at) in html
    assert "Widerruf der Einwilligung" in html
    assert reverse("admin:newsletter_subscription_proof_pdf", args=[revoked.id]) in html


def test_a_checkpoint_is_named_and_a_tampered_step_is_not_confirmed(revoked, signup):
    assert chain_checkpoint_write() is not None
    signup("danach@example.org")
    later = ConsentEvent.objects.filter(subscription=revoked, kind="revoked").get()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE newsletter_consentevent SET at = at - interval '1 hour' WHERE id = %s",
            [later.id],
        )
    document = proof_document_build(subscription=revoked)
    assert not document.chain_intact
    assert [step.intact for step in document.steps] == [True, True, True, False]
    assert "NICHT bestätigt" in document.steps[-1].chain
    assert f"Bruch bei Position {later.chain_seq}" in document.chain_summary
    assert document.chain_summary.startswith(f"Die Kette war bis Position {later.chain_seq} am ")
    assert "Beim Ausstellen wurden die Positionen" not in document.chain_summary


def test_english_subscription_gets_an_english_document(signup, confirm):
    subscription = signup("reader@example.org", language="en")
    confirm(subscription)
    subscription.refresh_from_db()
    document = proof_document_build(subscription=subscription)
    assert document.language == "en"
    assert document.title != "Nachweis der Einwilligung in den Newsletter-Empfang (Double-Opt-in)"
