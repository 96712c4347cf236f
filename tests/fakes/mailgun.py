"""The one fake Mailgun HTTP API on 127.0.0.1, for the tests and for the benchmarks.

It speaks ``POST /v3/<domain>/messages`` as anymail's Mailgun backend (and the digest's own
multipart variant, newsletter/mailgun_backend.py) sends it: ``to`` repeated,
``recipient-variables`` JSON, ``h:``/``v:`` fields with ``%recipient.x%`` indirection. It counts
every accepted recipient per digest at the provider (which is what makes "exactly once" a
measurement), can misbehave on request, and posts Mailgun-format signed tracking webhooks back
to the project, echoing each recipient's custom variables (anymail's metadata, e.g. the signed
``delivery_ref``) as Mailgun does.

In a test (in-process; see the ``fake_mailgun`` fixture in tests/newsletter/digests/conftest.py):

    fake = FakeMailgun(webhook_url=..., signing_key=...).start()
    fake.fail_every = 7            # every 7th call answers 500
    fake.status_until(429, 2.0)    # 429 for two seconds
    fake.rate_limit = 20           # more than 20 calls a second answer 429
    fake.latency = 0.5             # seconds per call
    fake.refuse = {"bad@example.org"}   # 400 naming the address, nothing accepted
    fake.drop_every = 5            # accept, record, then drop the connection (no answer)
    fake.webhook_mode = "first"    # webhooks are off unless asked for: "first" or "all"
    held = fake.hold_next_call()   # the next call waits, neither accepted nor answered...
    fields = held.wait(60)         # ...until it has arrived (a batch provably mid-call)...
    held.release(accept=False)     # ...and is then taken (True) or lost (False)
    fake.stop()                    # raises if a webhook is still being posted after a while

For a benchmark, as a process of its own (lean: counts only, no bodies kept, no webhooks), which
prints its port as the first line of stdout:

    python -m tests.fakes.mailgun [port]

and is steered over the same port (loopback only):

    POST /_fake/config  {"fail_every": 7, "latency": 0.5, "rate_limit": 0, "reset": true, ...}
    GET  /_fake/stats   calls, failures, accepted/duplicates/unpersonalised per digest, times
    POST /_fake/dump    {"digest": "12", "path": "/tmp/x.tsv"}  address<TAB>count lines

At thousands of recipients a second the fake shares two cores with the workers, so the lean
path does per call only what counting needs: one split of the multipart body, one Counter
update, one set check per recipient that it got its personal variables. Bodies are filled in per
recipient only when ``keep_messages`` is on (the tests), webhook payloads only for the
recipients that get an event.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import requests

_VAR = re.compile(r"%recipient\.([^%]+)%")
_MESSAGES = re.compile(r"/v3/[^/]+/messages")
_ANGLE = re.compile(r"<([^>]+)>")
_BOUNDARY = re.compile(r"boundary=([^;]+)")
_NAME = re.compile(rb'name="([^"]*)"')
WEBHOOK_MODES = ("off", "first", "all")


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
    rate_limited_calls: int = 0
    dropped_calls: int = 0
    refused_calls: int = 0
    webhooks_posted: int = 0
    webhooks_failed: int = 0
    # Queued but never posted because the fake was stopped first.
    webhooks_dropped: int = 0
    # Accepted recipients per digest id (the ``digest_id`` custom variable).
    per_digest: dict[str, Counter] = field(default_factory=dict)
    # Recipients accepted without the variables their text asks for (Mailgun would mail them
    # the raw ``%recipient.x%`` placeholders).
    unpersonalised: Counter = field(default_factory=Counter)
    first_accept: dict[str, float] = field(default_factory=dict)
    last_accept: dict[str, float] = field(default_factory=dict)
    first_call_size: dict[str, int] = field(default_factory=dict)
    # Why the webhooks that failed failed (status or error), for the teardown's message.
    webhook_errors: list[str] = field(default_factory=list)

    @property
    def per_key(self) -> Counter:
        """How often each (digest id, address) was accepted."""
        return Counter(
            {(digest, email): n for digest, c in self.per_digest.items() for email, n in c.items()}
        )


def _parse_multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    """Form fields of a multipart/form-data body, split by hand: the email package's parser
    costs more per call than everything else this server does."""
    boundary = _BOUNDARY.search(content_type).group(1).strip('"').encode()
    fields: dict[str, list[str]] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _sep, value = part.partition(b"\r\n\r\n")
        name = _NAME.search(head).group(1).decode()
        fields.setdefault(name, []).append(value[:-2].decode("utf-8", errors="replace"))
    return fields


def parse_form(content_type: str, body: bytes) -> dict[str, list[str]]:
    """anymail posts form-urlencoded without attachments, multipart with them (and the
    digest's own backend always multipart)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return parse_qs(body.decode("utf-8"), keep_blank_values=True)
    if content_type.startswith("multipart/form-data"):
        return _parse_multipart(content_type, body)
    raise ValueError(f"unsupported content type {content_type!r}")


def _fill(template: str, variables: dict) -> str:
    if "%recipient." not in template:
        return template
    return _VAR.sub(lambda m: str(variables.get(m.group(1), "")), template)


def _addr_spec(value: str) -> str:
    match = _ANGLE.search(value)
    return (match.group(1) if match else value).strip()


class HeldCall:
    """One call the fake holds on arrival, before it accepts anything: while it is held the
    sender is provably mid-call (a test kills it there), and the test decides afterwards
    whether the provider got the call (accepted, with its webhooks) or lost it (answered 503,
    nothing accepted, which only a killed sender never hears)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.fields: dict[str, list[str]] = {}
        self.accept = True
        self._released = threading.Event()

    def wait(self, timeout: float) -> dict[str, list[str]]:
        """The held call's form fields, once it has arrived."""
        if not self.arrived.wait(timeout):
            raise TimeoutError(f"no call arrived within {timeout}s")
        return self.fields

    def release(self, *, accept: bool) -> None:
        self.accept = accept
        self._released.set()

    def _hold(self, fields: dict[str, list[str]], timeout: float) -> bool:
        self.fields = fields
        self.arrived.set()
        # A test that never releases does not hang the fake's thread for ever.
        self._released.wait(timeout)
        return self.accept


class FakeMailgun:
    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        signing_key: str = "test-signing-key",
        api_key: str | None = None,
        webhook_mode: str = "off",
        webhook_threads: int = 4,
        webhook_timeout: float = 10.0,
        keep_messages: bool = True,
    ) -> None:
        self.webhook_url = webhook_url
        self.signing_key = signing_key
        self.api_key = api_key
        # "off" (the default: a test that needs tracking asks for it), "first": only the first
        # recipient of each call (enough to prove a call arrived; cheap), "all": one event per
        # accepted recipient, as Mailgun does.
        self.webhook_mode = webhook_mode
        self.webhook_threads = webhook_threads
        self.webhook_timeout = webhook_timeout
        # Off: count recipients only (the benchmarks); `received` stays empty.
        self.keep_messages = keep_messages
        self.latency = 0.0
        self.fail_every = 0
        self.drop_every = 0
        # Calls per second beyond which the fake answers 429, as Mailgun's rate limit does.
        self.rate_limit = 0.0
        self.refuse: set[str] = set()
        self.bounce: set[str] = set()
        self.soft_bounce: set[str] = set()
        self.complain: set[str] = set()
        self.unsubscribe: set[str] = set()
        self._status: int | None = None
        self._status_until = 0.0
        self._bucket = 0.0
        self._bucket_at = 0.0
        self._lock = threading.Lock()
        self.stats = _Stats()
        self.received: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._events: queue.Queue = queue.Queue()
        self._posters: list[threading.Thread] = []
        self._pending_events = 0
        self._held: HeldCall | None = None

    # --- control -------------------------------------------------------------------------
    def start(self, port: int = 0) -> FakeMailgun:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        # A short poll interval: stop() waits for the next poll, and it runs in every teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        for _i in range(self.webhook_threads):
            poster = threading.Thread(target=self._post_events, daemon=True)
            poster.start()
            self._posters.append(poster)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop answering and posting. Events not yet posted are dropped (a stopped provider
        posts nothing more; a test that needs them waits with `wait_webhooks` first); a post
        still under way after `timeout` (default: the webhook timeout plus a second) raises
        TimeoutError, so a hanging webhook endpoint is never hidden."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        dropped = 0
        with contextlib.suppress(queue.Empty):
            while True:
                if self._events.get_nowait() is not None:
                    dropped += 1
        with self._lock:
            self._pending_events -= dropped
            self.stats.webhooks_dropped += dropped
        for _poster in self._posters:
            self._events.put(None)
        deadline = time.monotonic() + (self.webhook_timeout + 1 if timeout is None else timeout)
        busy = []
        for poster in self._posters:
            poster.join(max(0.0, deadline - time.monotonic()))
            if poster.is_alive():
                busy.append(poster)
        self._posters = busy
        if busy:
            raise TimeoutError(f"{len(busy)} webhook post(s) still under way at stop")

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

    def hold_next_call(self) -> HeldCall:
        """Hold the next call that arrives until the test releases it (see HeldCall)."""
        held = HeldCall()
        with self._lock:
            self._held = held
        return held

    def reset_faults(self) -> None:
        self.latency, self.fail_every, self.drop_every, self.rate_limit = 0.0, 0, 0, 0.0
        self._status, self.refuse = None, set()

    def reset_counts(self) -> None:
        with self._lock:
            self.stats = _Stats()
            self.received = []

    def configure(self, config: dict) -> None:
        """Set faults from a JSON object (the benchmarks' control endpoint)."""
        if config.get("reset"):
            self.reset_faults()
            self.reset_counts()
        self.fail_every = int(config.get("fail_every", self.fail_every))
        self.drop_every = int(config.get("drop_every", self.drop_every))
        self.latency = float(config.get("latency", self.latency))
        self.rate_limit = float(config.get("rate_limit", self.rate_limit))
        if "refuse" in config:
            self.refuse = {email.lower() for email in config["refuse"]}
        if "status_until" in config:
            status, seconds = config["status_until"]
            self.status_until(int(status), float(seconds))
        if "webhook_mode" in config:
            if config["webhook_mode"] not in WEBHOOK_MODES:
                raise ValueError(f"webhook_mode must be one of {WEBHOOK_MODES}")
            self.webhook_mode = config["webhook_mode"]

    # --- counts --------------------------------------------------------------------------
    def counts(self) -> Counter:
        """How often each (digest id, address) was accepted."""
        with self._lock:
            return self.stats.per_key

    def accepted_addresses(self, digest_id: int | str | None = None) -> Counter:
        with self._lock:
            if digest_id is not None:
                return Counter(self.stats.per_digest.get(str(digest_id), Counter()))
            total: Counter = Counter()
            for counts in self.stats.per_digest.values():
                total.update(counts)
            return total

    @property
    def duplicates(self) -> int:
        with self._lock:
            return sum(n - 1 for c in self.stats.per_digest.values() for n in c.values() if n > 1)

    @property
    def accepted(self) -> int:
        with self._lock:
            return sum(sum(c.values()) for c in self.stats.per_digest.values())

    def digest_stats(self) -> dict:
        """Per digest: accepted, distinct, duplicates, unpersonalised, accept times."""
        with self._lock:
            stats = self.stats
            return {
                key: {
                    "accepted": sum(counts.values()),
                    "distinct": len(counts),
                    "duplicates": sum(n - 1 for n in counts.values() if n > 1),
                    "unpersonalised": stats.unpersonalised[key],
                    "first_accept": stats.first_accept.get(key),
                    "last_accept": stats.last_accept.get(key),
                    "first_call_size": stats.first_call_size.get(key, 0),
                }
                for key, counts in stats.per_digest.items()
            }

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
            if self.rate_limit:
                now = time.monotonic()
                burst = max(1.0, self.rate_limit)
                self._bucket = min(burst, self._bucket + (now - self._bucket_at) * self.rate_limit)
                self._bucket_at = now
                if self._bucket < 1:
                    self.stats.rate_limited_calls += 1
                    return "status", 429
                self._bucket -= 1
        if self._status and time.monotonic() < self._status_until:
            return "status", self._status
        if self.fail_every and n % self.fail_every == 0:
            return "status", 500
        if self.drop_every and n % self.drop_every == 0:
            return "drop", 0
        return "accept", 200

    def handle_send(self, fields: dict[str, list[str]]) -> tuple[str, int, dict]:
        if self._held is not None:
            with self._lock:
                held, self._held = self._held, None
            if held is not None and not held._hold(fields, timeout=120):
                with self._lock:
                    self.stats.calls += 1
                    self.stats.failed_calls += 1
                return "answer", 503, {"message": "fake: held call lost"}
        if self.latency:
            time.sleep(self.latency)
        action, status = self._decide()
        if action == "status":
            with self._lock:
                self.stats.failed_calls += 1
            return "answer", status, {"message": f"fake failure {status}"}
        to = [_addr_spec(value) for value in fields.get("to", [])]
        if not to:
            return "answer", 400, {"message": "'to' parameter is missing"}
        if self.refuse:
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
        text = fields.get("text", [""])[0]
        custom = {k[2:]: v[0] for k, v in fields.items() if k.startswith("v:")}
        # Mailgun fills %recipient.x% per recipient; one without the variables its text asks
        # for would get the raw placeholders.
        needs = set(_VAR.findall(text))
        unpersonalised = sum(1 for email in to if not needs.issubset(variables.get(email, ())))
        digest_template = custom.get("digest_id", "")
        if "%recipient." in digest_template:
            digests = [_fill(digest_template, variables.get(email, {})) for email in to]
        else:
            digests = None
        message_id = f"<{uuid.uuid4().hex}@fake.mailgun>"
        webhooks = bool(self.webhook_url) and self.webhook_mode in ("first", "all")
        kept = self._received(fields, to, variables, custom) if self.keep_messages else []
        now = time.monotonic()
        with self._lock:
            call = self.stats.calls
            stats = self.stats
            if digests is None:
                keys = {digest_template: to}
            else:
                keys = {}
                for digest, email in zip(digests, to, strict=True):
                    keys.setdefault(digest, []).append(email)
            for digest, emails in keys.items():
                counts = stats.per_digest.get(digest)
                if counts is None:
                    counts = stats.per_digest[digest] = Counter()
                    stats.first_accept[digest] = now
                    stats.first_call_size[digest] = len(emails)
                counts.update(emails)
                stats.last_accept[digest] = now
            stats.unpersonalised[digest_template if digests is None else digests[0]] += (
                unpersonalised
            )
            for item in kept:
                item.call = call
            self.received.extend(kept)
            stats.accepted_calls += 1
        if webhooks:
            chosen = to if self.webhook_mode == "all" else to[:1]
            by_email = {item.email: item for item in kept}
            self._queue_events(
                [
                    by_email.get(email) or self._received(fields, [email], variables, custom)[0]
                    for email in chosen
                ],
                message_id,
            )
        if action == "drop":
            with self._lock:
                self.stats.dropped_calls += 1
            return "drop", 0, {}
        return "answer", 200, {"id": message_id, "message": "Queued. Thank you."}

    @staticmethod
    def _received(
        fields: dict[str, list[str]], to: list[str], variables: dict, custom: dict[str, str]
    ) -> list[Received]:
        subject = fields.get("subject", [""])[0]
        text = fields.get("text", [""])[0]
        html = fields.get("html", [""])[0]
        header_fields = {k[2:]: v[0] for k, v in fields.items() if k.startswith("h:")}
        received = []
        for email in to:
            rv = variables.get(email, {})
            user_vars = {k: _fill(v, rv) for k, v in custom.items()}
            received.append(
                Received(
                    email=email,
                    digest_id=user_vars.get("digest_id", ""),
                    subject=_fill(subject, rv),
                    headers={k: _fill(v, rv) for k, v in header_fields.items()},
                    text=_fill(text, rv),
                    html=_fill(html, rv),
                    variables=user_vars,
                )
            )
        return received

    # --- webhooks ------------------------------------------------------------------------
    def _queue_events(self, received: list[Received], message_id: str) -> None:
        for item in received:
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
        response = session.post(self.webhook_url, json=payload, timeout=self.webhook_timeout)
        return response.status_code

    def _post_events(self) -> None:
        session = requests.Session()
        while True:
            job = self._events.get()
            if job is None:
                return
            item, message_id, event = job
            error = ""
            try:
                status = self.post_event(self.event_payload(item, message_id, event), session)
                if not 200 <= status < 300:
                    error = f"{event[0]} for {item.email}: HTTP {status}"
            except requests.RequestException as exc:
                error = f"{event[0]} for {item.email}: {exc!r}"
            with self._lock:
                self._pending_events -= 1
                if error:
                    self.stats.webhooks_failed += 1
                    self.stats.webhook_errors.append(error)
                else:
                    self.stats.webhooks_posted += 1


class _Handler(BaseHTTPRequestHandler):
    owner: FakeMailgun
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:
            # The client died mid-request: like a real API, accept nothing of a torn call.
            self.close_connection = True
            return None
        return body

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/_fake/stats":
            owner = self.owner
            with owner._lock:
                totals = {
                    "calls": owner.stats.calls,
                    "failed_calls": owner.stats.failed_calls,
                    "rate_limited_calls": owner.stats.rate_limited_calls,
                    "dropped_calls": owner.stats.dropped_calls,
                    "refused_calls": owner.stats.refused_calls,
                    "accepted_calls": owner.stats.accepted_calls,
                    "webhooks_posted": owner.stats.webhooks_posted,
                    "webhooks_failed": owner.stats.webhooks_failed,
                }
            self._answer(200, {**totals, "digests": owner.digest_stats()})
        else:
            self._answer(404, {"message": "not found"})

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self._body()
        if body is None:
            return
        if self.path == "/_fake/config":
            try:
                self.owner.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError, KeyError) as error:
                self._answer(400, {"message": str(error)})
                return
            self._answer(200, {"ok": True})
            return
        if self.path == "/_fake/dump":
            request = json.loads(body)
            counts = self.owner.accepted_addresses(str(request["digest"]))
            with open(request["path"], "w") as out:
                out.writelines(f"{email}\t{n}\n" for email, n in counts.items())
            self._answer(200, {"written": len(counts)})
            return
        if not _MESSAGES.fullmatch(self.path):
            self._answer(404, {"message": "not found"})
            return
        try:
            fields = parse_form(self.headers.get("Content-Type", ""), body)
        except ValueError as error:
            self._answer(400, {"message": str(error)})
            return
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
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str]) -> None:
    """Serve a lean fake (counts only) until killed; the first stdout line is its port."""
    fake = FakeMailgun(keep_messages=False, webhook_threads=0).start(int(argv[0]) if argv else 0)
    print(fake.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
