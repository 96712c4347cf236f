"""A fake Mailgun HTTP API on 127.0.0.1 for tests and benchmarks.

It speaks ``POST /v3/<domain>/messages`` as anymail's Mailgun backend sends it (multipart form,
``to`` repeated, ``recipient-variables`` JSON, ``h:``/``v:`` fields with ``%recipient.x%``
indirection), counts every accepted recipient at the provider (which is what makes "exactly
once" a measurement), can misbehave on request, and posts Mailgun-format signed tracking
webhooks back to the project.

    fake = FakeMailgun(webhook_url=..., signing_key=...).start()
    fake.fail_every = 7            # every 7th call answers 500
    fake.status_until(429, 2.0)    # 429 for two seconds
    fake.latency = 0.5             # seconds per call
    fake.refuse = {"bad@example.org"}   # 400 naming the address, nothing accepted
    fake.drop_every = 5            # accept, record, then drop the connection (no answer)
    fake.stop()
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import re
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import requests

_VAR = re.compile(r"%recipient\.([^%]+)%")


@dataclass
class Received:
    """One recipient of one accepted call, with the personal parts filled in."""

    email: str
    digest_id: str
    subject: str
    headers: dict[str, str]
    text: str = ""
    html: str = ""
    call: int = 0
    # The custom variables (anymail's metadata) with this recipient's values filled in;
    # Mailgun echoes them back in every webhook about the message.
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class _Stats:
    calls: int = 0
    accepted_calls: int = 0
    failed_calls: int = 0
    dropped_calls: int = 0
    refused_calls: int = 0
    webhooks_posted: int = 0
    webhooks_failed: int = 0
    per_key: Counter = field(default_factory=Counter)


def parse_form(content_type: str, body: bytes) -> dict[str, list[str]]:
    """anymail posts form-urlencoded without attachments, multipart with them."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return defaultdict(list, parse_qs(body.decode("utf-8"), keep_blank_values=True))
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    message = BytesParser(policy=HTTP).parsebytes(raw)
    fields: dict[str, list[str]] = defaultdict(list)
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        fields[name].append(payload.decode(charset, errors="replace"))
    return fields


def _fill(template: str, variables: dict) -> str:
    return _VAR.sub(lambda m: str(variables.get(m.group(1), "")), template)


class FakeMailgun:
    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        signing_key: str = "test-signing-key",
        api_key: str | None = None,
        webhook_mode: str = "all",
        webhook_threads: int = 4,
    ) -> None:
        self.webhook_url = webhook_url
        self.signing_key = signing_key
        self.api_key = api_key
        # "all": one event per accepted recipient (as Mailgun does); "first": only the first
        # recipient of each call (enough to prove a call arrived; cheaper); "off".
        self.webhook_mode = webhook_mode
        self.webhook_threads = webhook_threads
        self.latency = 0.0
        self.fail_every = 0
        self.drop_every = 0
        self.refuse: set[str] = set()
        self.bounce: set[str] = set()
        self.soft_bounce: set[str] = set()
        self.complain: set[str] = set()
        self.unsubscribe: set[str] = set()
        self._status: int | None = None
        self._status_until = 0.0
        self._lock = threading.Lock()
        self.stats = _Stats()
        self.received: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._events: queue.Queue = queue.Queue()
        self._posters: list[threading.Thread] = []
        self._pending_events = 0

    # --- control -------------------------------------------------------------------------
    def start(self) -> FakeMailgun:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        for _i in range(self.webhook_threads):
            poster = threading.Thread(target=self._post_events, daemon=True)
            poster.start()
            self._posters.append(poster)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        # Unposted events are dropped: a stopped provider posts nothing more.
        with contextlib.suppress(queue.Empty):
            while True:
                self._events.get_nowait()
        for _poster in self._posters:
            self._events.put(None)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    def status_until(self, status: int, seconds: float) -> None:
        """Answer every call with `status` for the next `seconds`."""
        self._status, self._status_until = status, time.monotonic() + seconds

    def reset_faults(self) -> None:
        self.latency, self.fail_every, self.drop_every = 0.0, 0, 0
        self._status, self.refuse = None, set()

    # --- counts --------------------------------------------------------------------------
    def counts(self) -> Counter:
        """How often each (digest id, address) was accepted."""
        with self._lock:
            return Counter(self.stats.per_key)

    def accepted_addresses(self, digest_id: int | str | None = None) -> Counter:
        with self._lock:
            return Counter(
                email
                for (digest, email), n in self.stats.per_key.items()
                for _i in range(n)
                if digest_id is None or digest == str(digest_id)
            )

    @property
    def duplicates(self) -> int:
        with self._lock:
            return sum(n - 1 for n in self.stats.per_key.values() if n > 1)

    @property
    def accepted(self) -> int:
        with self._lock:
            return sum(self.stats.per_key.values())

    def wait_webhooks(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending_events == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError("webhooks still pending")

    # --- request handling ----------------------------------------------------------------
    def _decide(self) -> tuple[str, int]:
        with self._lock:
            self.stats.calls += 1
            n = self.stats.calls
        if self._status and time.monotonic() < self._status_until:
            return "status", self._status
        if self.fail_every and n % self.fail_every == 0:
            return "status", 500
        if self.drop_every and n % self.drop_every == 0:
            return "drop", 0
        return "accept", 200

    def handle_send(self, fields: dict[str, list[str]]) -> tuple[str, int, dict]:
        if self.latency:
            time.sleep(self.latency)
        action, status = self._decide()
        if action == "status":
            with self._lock:
                self.stats.failed_calls += 1
            return "answer", status, {"message": f"fake failure {status}"}
        to = [_addr_spec(value) for value in fields.get("to", [])]
        refused = [email for email in to if email.lower() in self.refuse]
        if refused:
            with self._lock:
                self.stats.refused_calls += 1
            return (
                "answer",
                400,
                {"message": "'to' parameter is not a valid address: " + ", ".join(refused)},
            )
        variables = json.loads(fields.get("recipient-variables", ["{}"])[0] or "{}")
        subject = fields.get("subject", [""])[0]
        text = fields.get("text", [""])[0]
        html = fields.get("html", [""])[0]
        header_fields = {k[2:]: v[0] for k, v in fields.items() if k.startswith("h:")}
        custom = {k[2:]: v[0] for k, v in fields.items() if k.startswith("v:")}
        message_id = f"<{uuid.uuid4().hex}@fake.mailgun>"
        received = []
        with self._lock:
            call = self.stats.calls
            for email in to:
                rv = variables.get(email, {})
                user_vars = {k: _fill(v, rv) for k, v in custom.items()}
                key = (user_vars.get("digest_id", ""), email)
                self.stats.per_key[key] += 1
                item = Received(
                    email=email,
                    digest_id=user_vars.get("digest_id", ""),
                    subject=_fill(subject, rv),
                    headers={k: _fill(v, rv) for k, v in header_fields.items()},
                    text=_fill(text, rv),
                    html=_fill(html, rv),
                    call=call,
                    variables=user_vars,
                )
                received.append(item)
            self.received.extend(received)
            self.stats.accepted_calls += 1
        self._queue_events(received, message_id)
        if action == "drop":
            with self._lock:
                self.stats.dropped_calls += 1
            return "drop", 0, {}
        return "answer", 200, {"id": message_id, "message": "Queued. Thank you."}

    # --- webhooks ------------------------------------------------------------------------
    def _queue_events(self, received: list[Received], message_id: str) -> None:
        if not self.webhook_url or self.webhook_mode == "off":
            return
        chosen = received if self.webhook_mode == "all" else received[:1]
        for item in chosen:
            email = item.email.lower()
            if email in self.bounce:
                event = ("failed", "permanent")
            elif email in self.soft_bounce:
                event = ("failed", "temporary")
            elif email in self.complain:
                event = ("complained", None)
            elif email in self.unsubscribe:
                event = ("unsubscribed", None)
            else:
                event = ("delivered", None)
            with self._lock:
                self._pending_events += 1
            self._events.put((item, message_id, event))

    def event_payload(self, item: Received, message_id: str, event: tuple) -> dict:
        kind, severity = event
        timestamp = str(int(time.time()))
        token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
        signature = hmac.new(
            self.signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
        ).hexdigest()
        data = {
            "event": kind,
            "id": uuid.uuid4().hex[:22],
            "timestamp": float(timestamp),
            "recipient": item.email,
            "user-variables": dict(item.variables),
            "message": {"headers": {"message-id": message_id.strip("<>")}},
            "tags": ["digest"],
        }
        if kind == "failed":
            data["severity"] = severity
            data["reason"] = "bounce" if severity == "permanent" else "generic"
            data["delivery-status"] = {
                "code": 550 if severity == "permanent" else 452,
                "message": "mailbox unavailable" if severity == "permanent" else "try later",
                "description": "",
            }
        return {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": data,
        }

    def post_event(self, payload: dict, session: requests.Session | None = None) -> int:
        session = session or requests.Session()
        response = session.post(self.webhook_url, json=payload, timeout=30)
        return response.status_code

    def _post_events(self) -> None:
        session = requests.Session()
        while True:
            job = self._events.get()
            if job is None:
                return
            item, message_id, event = job
            try:
                status = self.post_event(self.event_payload(item, message_id, event), session)
                ok = 200 <= status < 300
            except requests.RequestException:
                ok = False
            with self._lock:
                self._pending_events -= 1
                if ok:
                    self.stats.webhooks_posted += 1
                else:
                    self.stats.webhooks_failed += 1


def _addr_spec(value: str) -> str:
    match = re.search(r"<([^>]+)>", value)
    return (match.group(1) if match else value).strip()


class _Handler(BaseHTTPRequestHandler):
    owner: FakeMailgun
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:
            # The client died mid-request: like a real API, accept nothing of a torn call.
            self.close_connection = True
            return
        if not re.fullmatch(r"/v3/[^/]+/messages", self.path):
            self._answer(404, {"message": "not found"})
            return
        fields = parse_form(self.headers.get("Content-Type", ""), body)
        action, status, payload = self.owner.handle_send(fields)
        if action == "drop":
            # The provider has the message, the client never hears so.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(status, payload)

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
