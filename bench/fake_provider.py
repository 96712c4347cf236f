"""A lean fake Mailgun for benchmarks, run as its own process: `python bench/fake_provider.py`.

It speaks the one endpoint anymail's Mailgun backend calls (``POST /v3/<domain>/messages``),
counts every accepted recipient per digest (the ``v:digest_id`` custom variable) and checks
that each recipient has its personal variables, so "exactly once" is measured at the provider.
Unlike tests/fakes/mailgun.py it keeps no bodies and posts no webhooks: at thousands of
recipients a second it shares two cores with the workers, so it must stay cheap.

Control (JSON over the same port, loopback only):
    POST /_bench/config  {"fail_every": 7, "latency": 0.5, "reset": true}
    GET  /_bench/stats   calls, failures, accepted/duplicates/bad per digest, accept times
    POST /_bench/dump    {"digest": "12", "path": "/tmp/x.tsv"}  address<TAB>count lines
On start it prints its port as the first line of stdout.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_MESSAGES = re.compile(r"/v3/[^/]+/messages")
_ANGLE = re.compile(r"<([^>]+)>")
_BOUNDARY = re.compile(r"boundary=([^;]+)")
_NAME = re.compile(rb'name="([^"]*)"')


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fail_every = 0
        self.latency = 0.0
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.failed_calls = 0
        self.accepted_calls = 0
        self.per_digest: dict[str, Counter] = {}
        # Recipients without their personal variables (a broken merge would mail placeholders).
        self.unpersonalised: Counter = Counter()
        self.first_accept: dict[str, float] = {}
        self.last_accept: dict[str, float] = {}
        self.first_call_size: dict[str, int] = {}

    def stats(self) -> dict:
        with self.lock:
            digests = {}
            for key, counts in self.per_digest.items():
                digests[key] = {
                    "accepted": sum(counts.values()),
                    "distinct": len(counts),
                    "duplicates": sum(n - 1 for n in counts.values() if n > 1),
                    "unpersonalised": self.unpersonalised[key],
                    "first_accept": self.first_accept.get(key),
                    "last_accept": self.last_accept.get(key),
                    "first_call_size": self.first_call_size.get(key, 0),
                }
            return {
                "calls": self.calls,
                "failed_calls": self.failed_calls,
                "accepted_calls": self.accepted_calls,
                "digests": digests,
            }


STATE = State()


def parse_multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    """Form fields of a multipart/form-data body (no files expected), split by hand: the
    email package's parser costs more per call than the rest of this server."""
    boundary = _BOUNDARY.search(content_type).group(1).strip('"').encode()
    fields: dict[str, list[str]] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _sep, value = part.partition(b"\r\n\r\n")
        name = _NAME.search(head).group(1).decode()
        fields.setdefault(name, []).append(value[:-2].decode("utf-8"))
    return fields


def _addr(value: str) -> str:
    match = _ANGLE.search(value)
    return (match.group(1) if match else value).strip()


def handle_send(fields: dict[str, list[str]]) -> tuple[int, dict]:
    state = STATE
    if state.latency:
        time.sleep(state.latency)
    with state.lock:
        state.calls += 1
        n = state.calls
    if state.fail_every and n % state.fail_every == 0:
        with state.lock:
            state.failed_calls += 1
        return 500, {"message": "fake failure 500"}
    to = [_addr(v) for v in fields.get("to", [])]
    if not to:
        return 400, {"message": "'to' parameter is missing"}
    variables = json.loads(fields.get("recipient-variables", ["{}"])[0] or "{}")
    digest = fields.get("v:digest_id", [""])[0]
    # Mailgun fills %recipient.x% per recipient; a recipient without variables would get the
    # raw placeholders, which counts as a defect here.
    needs = {
        m for v in (fields.get("text", [""])[0],) for m in re.findall(r"%recipient\.([^%]+)%", v)
    }
    bad = sum(1 for email in to if not needs.issubset(variables.get(email, {})))
    now = time.monotonic()
    with state.lock:
        counts = state.per_digest.setdefault(digest, Counter())
        counts.update(to)
        state.unpersonalised[digest] += bad
        state.accepted_calls += 1
        if digest not in state.first_accept:
            state.first_accept[digest] = now
            state.first_call_size[digest] = len(to)
        state.last_accept[digest] = now
    return 200, {"id": f"<{digest}.{n}@fake.mailgun>", "message": "Queued. Thank you."}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/_bench/stats":
            self._answer(200, STATE.stats())
        else:
            self._answer(404, {"message": "not found"})

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self._body()
        if body is None:
            return
        if self.path == "/_bench/config":
            config = json.loads(body or b"{}")
            with STATE.lock:
                if config.get("reset"):
                    STATE.reset()
                STATE.fail_every = int(config.get("fail_every", STATE.fail_every))
                STATE.latency = float(config.get("latency", STATE.latency))
            self._answer(200, {"ok": True})
            return
        if self.path == "/_bench/dump":
            request = json.loads(body)
            with STATE.lock:
                counts = dict(STATE.per_digest.get(str(request["digest"]), Counter()))
            with open(request["path"], "w") as out:
                out.writelines(f"{email}\t{n}\n" for email, n in counts.items())
            self._answer(200, {"written": len(counts)})
            return
        if not _MESSAGES.fullmatch(self.path):
            self._answer(404, {"message": "not found"})
            return
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        elif content_type.startswith("multipart/form-data"):
            fields = parse_multipart(content_type, body)
        else:
            self._answer(400, {"message": f"unsupported content type {content_type}"})
            return
        status, payload = handle_send(fields)
        self._answer(status, payload)

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    server = ThreadingHTTPServer(
        ("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler
    )
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
