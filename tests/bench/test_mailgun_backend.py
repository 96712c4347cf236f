"""The lightened Mailgun backend the digest batches use (newsletter/mailgun_backend.py):
multipart/form-data instead of form-urlencoding, and a direct path for plain addresses. The
provider must see exactly what anymail's own backend would have told it."""

from __future__ import annotations

import pytest
from anymail.message import AnymailMessage
from django.core.mail import get_connection

from newsletter.mailgun_backend import address_list_parse
from tests.fakes.mailgun import FakeMailgun

BACKEND = "newsletter.mailgun_backend.EmailBackend"


@pytest.fixture
def fake(settings):
    fake = FakeMailgun().start()
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "test",
        "MAILGUN_API_URL": fake.api_url,
        "MAILGUN_SENDER_DOMAIN": "example.org",
    }
    yield fake
    fake.stop()


def _batch(to: list[str]) -> AnymailMessage:
    message = AnymailMessage(
        subject="Digest für %recipient.name%",
        body="Hallo %recipient.name%, abmelden: %recipient.unsubscribe_url%",
        from_email="Redaktion <digest@example.org>",
        to=to,
    )
    message.attach_alternative("<p>%recipient.name%</p>", "text/html")
    emails = [address_list_parse([item])[0].addr_spec for item in to]
    message.merge_data = {
        email: {"name": f"Leser {i}", "unsubscribe_url": f"https://x.example/u/{i}/"}
        for i, email in enumerate(emails)
    }
    message.merge_headers = {
        email: {"List-Unsubscribe": f"<https://x.example/u/{i}/>"} for i, email in enumerate(emails)
    }
    message.merge_metadata = {
        email: {"delivery_id": str(100 + i)} for i, email in enumerate(emails)
    }
    message.metadata = {"digest_id": "7"}
    return message


def test_batch_arrives_as_multipart_with_every_personal_part(fake):
    to = ["a@example.org", "B.c+tag@mail.example.com", "Änne Müller <anne@example.net>"]
    message = _batch(to)
    sent = get_connection(BACKEND, fail_silently=False).send_messages([message])
    assert sent == 1
    assert message.anymail_status.status == {"queued"}
    request = message.anymail_status.esp_response.request
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    by_email = {r.email: r for r in fake.received}
    assert set(by_email) == {"a@example.org", "B.c+tag@mail.example.com", "anne@example.net"}
    for i, email in enumerate(["a@example.org", "B.c+tag@mail.example.com", "anne@example.net"]):
        received = by_email[email]
        assert received.subject == f"Digest für Leser {i}"
        assert received.text == f"Hallo Leser {i}, abmelden: https://x.example/u/{i}/"
        assert received.headers["List-Unsubscribe"] == f"<https://x.example/u/{i}/>"
        assert received.variables["delivery_id"] == str(100 + i)
        assert received.digest_id == "7"


def test_a_message_without_merge_data_is_still_sent(fake):
    message = AnymailMessage(
        subject="Test", body="Hallo", from_email="digest@example.org", to=["x@example.org"]
    )
    assert get_connection(BACKEND, fail_silently=False).send_messages([message]) == 1
    assert [r.email for r in fake.received] == ["x@example.org"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["a@example.org"], [("", "a@example.org")]),
        (["Name <a@example.org>"], [("Name", "a@example.org")]),
        (["a@example.org, b@example.org"], [("", "a@example.org"), ("", "b@example.org")]),
        (["jörg@bücher.example"], [("", "jörg@bücher.example")]),
    ],
)
def test_address_parse_matches_anymail(value, expected):
    assert [(a.display_name, a.addr_spec) for a in address_list_parse(value)] == expected
