"""The fake provider itself: what the tests and the benchmarks count with must count right,
misbehave when told to, stay quiet about tracking unless asked, and stop promptly."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from anymail.message import AnymailMessage
from django.core.mail import get_connection

from newsletter.tokens import make_delivery_ref, read_delivery_ref
from tests.fakes.mailgun import FakeMailgun

BACKEND = "newsletter.mailgun_backend.EmailBackend"
SIGNING_KEY = "fake-test-signing-key"


class Receiver:
    """A webhook endpoint that records what it is posted, answering `status` after `delay`."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                receiver.posts.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def start_fake(settings):
    started: list[FakeMailgun] = []

    def start(**options) -> FakeMailgun:
        fake = FakeMailgun(signing_key=SIGNING_KEY, **options).start()
        settings.ANYMAIL = {
            "MAILGUN_API_KEY": "test",
            "MAILGUN_API_URL": fake.api_url,
            "MAILGUN_SENDER_DOMAIN": "example.org",
        }
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


def _send(emails: list[str], *, digest_id: str = "7") -> AnymailMessage:
    message = AnymailMessage(
        subject="Digest",
        body="Hallo %recipient.name%",
        from_email="digest@example.org",
        to=emails,
    )
    message.merge_data = {email: {"name": f"Leser {i}"} for i, email in enumerate(emails)}
    message.merge_metadata = {
        email: {"delivery_ref": make_delivery_ref(100 + i)} for i, email in enumerate(emails)
    }
    message.metadata = {"digest_id": digest_id}
    get_connection(BACKEND, fail_silently=False).send_messages([message])
    return message


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _emails(n: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{i}@example.org" for i in range(n)]


def test_webhooks_are_off_unless_a_test_asks(start_fake, receiver):
    fake = start_fake(webhook_url=receiver.url)
    _send(_emails(3))
    fake.wait_webhooks(timeout=5)
    assert fake.accepted == 3
    assert receiver.posts == [] and fake.stats.webhooks_posted == 0


def test_first_mode_posts_one_signed_event_per_call_echoing_the_delivery_ref(start_fake, receiver):
    fake = start_fake(webhook_url=receiver.url)
    fake.webhook_mode = "first"
    _send(_emails(3))
    _send(_emails(2, prefix="s"))
    fake.wait_webhooks(timeout=10)
    assert len(receiver.posts) == 2
    for post in receiver.posts:
        signature = post["signature"]
        expected = hmac.new(
            SIGNING_KEY.encode(),
            f"{signature['timestamp']}{signature['token']}".encode(),
            hashlib.sha256,
        ).hexdigest()
        assert signature["signature"] == expected
    events = {post["event-data"]["recipient"]: post["event-data"] for post in receiver.posts}
    assert set(events) == {"r0@example.org", "s0@example.org"}
    assert read_delivery_ref(events["r0@example.org"]["user-variables"]["delivery_ref"]) == 100
    assert events["r0@example.org"]["user-variables"]["digest_id"] == "7"
    assert events["r0@example.org"]["event"] == "delivered"


def test_all_mode_posts_one_event_per_recipient_with_its_own_outcome(start_fake, receiver):
    fake = start_fake(webhook_url=receiver.url, webhook_mode="all")
    fake.bounce = {"r1@example.org"}
    _send(_emails(3))
    fake.wait_webhooks(timeout=10)
    events = {p["event-data"]["recipient"]: p["event-data"] for p in receiver.posts}
    assert {
        email: read_delivery_ref(e["user-variables"]["delivery_ref"]) for email, e in events.items()
    } == {"r0@example.org": 100, "r1@example.org": 101, "r2@example.org": 102}
    assert events["r1@example.org"]["event"] == "failed"
    assert events["r1@example.org"]["severity"] == "permanent"


def test_an_error_answer_to_a_webhook_is_recorded_not_swallowed(start_fake, receiver):
    receiver.status = 500
    fake = start_fake(webhook_url=receiver.url, webhook_mode="first")
    _send(_emails(2))
    fake.wait_webhooks(timeout=10)
    assert fake.stats.webhooks_failed == 1
    assert fake.stats.webhook_errors == ["delivered for r0@example.org: HTTP 500"]


def test_stop_drops_unposted_events_and_raises_while_a_post_hangs(settings):
    receiver = Receiver(delay=3)
    fake = FakeMailgun(
        webhook_url=receiver.url, webhook_mode="all", webhook_threads=1, webhook_timeout=10
    ).start()
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "test",
        "MAILGUN_API_URL": fake.api_url,
        "MAILGUN_SENDER_DOMAIN": "example.org",
    }
    try:
        _send(_emails(5))
        _wait_for(lambda: fake._events.qsize() < 5)  # the one poster is on its first event
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="1 webhook post"):
            fake.stop(timeout=0.5)
        assert time.monotonic() - started < 2
        assert fake.stats.webhooks_dropped == 4
    finally:
        receiver.close()


def test_stop_is_prompt_when_nothing_is_being_posted(start_fake, receiver):
    fake = FakeMailgun(webhook_url=receiver.url).start()
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1


def test_rate_limit_answers_429_beyond_the_configured_calls_per_second(start_fake):
    fake = start_fake()
    fake.rate_limit = 4
    url = f"{fake.api_url}/example.org/messages"
    answers = [
        requests.post(url, data={"to": f"x{i}@example.org", "v:digest_id": "9"}, timeout=5)
        for i in range(12)
    ]
    statuses = [answer.status_code for answer in answers]
    # A burst of up to the rate is taken; the rest of a fast burst is refused.
    assert 4 <= statuses.count(200) <= 6, statuses
    assert statuses.count(429) == 12 - statuses.count(200)
    assert {a.headers["Retry-After"] for a in answers if a.status_code == 429} == {"1"}
    assert fake.stats.rate_limited_calls == statuses.count(429)
    assert fake.accepted == statuses.count(200)
    time.sleep(0.6)
    ok = requests.post(url, data={"to": "late@example.org", "v:digest_id": "9"}, timeout=5)
    assert ok.status_code == 200


def test_lean_mode_counts_per_digest_and_is_steered_over_http(start_fake, tmp_path):
    fake = start_fake(keep_messages=False)
    base = f"http://127.0.0.1:{fake.port}"
    _send(_emails(3), digest_id="11")
    # A call whose first recipient lacks the name its text asks for (anymail never sends
    # one: it fills in blanks, so this one is posted by hand).
    variables = {"r1@example.org": {"name": "Leser 1"}}
    requests.post(
        f"{fake.api_url}/example.org/messages",
        data={
            "to": _emails(2),
            "text": "Hallo %recipient.name%",
            "recipient-variables": json.dumps(variables),
            "v:digest_id": "11",
        },
        timeout=5,
    ).raise_for_status()
    config = {"fail_every": 1, "reset": False}
    assert requests.post(f"{base}/_fake/config", json=config, timeout=5).json() == {"ok": True}
    with pytest.raises(Exception, match="500"):
        _send(_emails(1, prefix="z"), digest_id="11")
    assert fake.received == []
    stats = requests.get(f"{base}/_fake/stats", timeout=5).json()
    assert stats["calls"] == 3 and stats["failed_calls"] == 1 and stats["accepted_calls"] == 2
    digest = stats["digests"]["11"]
    assert (digest["accepted"], digest["distinct"], digest["duplicates"]) == (5, 3, 2)
    assert digest["unpersonalised"] == 1
    assert digest["first_call_size"] == 3
    dump = tmp_path / "accepted.tsv"
    requests.post(f"{base}/_fake/dump", json={"digest": "11", "path": str(dump)}, timeout=5)
    assert sorted(dump.read_text().splitlines()) == [
        "r0@example.org\t2",
        "r1@example.org\t2",
        "r2@example.org\t1",
    ]
    bad = requests.post(f"{base}/_fake/config", json={"webhook_mode": "loud"}, timeout=5)
    assert bad.status_code == 400 and "webhook_mode" in bad.json()["message"]


def test_full_mode_keeps_each_recipients_filled_message(start_fake):
    fake = start_fake()
    _send(_emails(2))
    assert [(r.email, r.text, r.call) for r in fake.received] == [
        ("r0@example.org", "Hallo Leser 0", 1),
        ("r1@example.org", "Hallo Leser 1", 1),
    ]
    assert fake.counts() == {("7", "r0@example.org"): 1, ("7", "r1@example.org"): 1}
