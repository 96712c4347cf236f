"""An SMTP sink on 127.0.0.1 (aiosmtpd) that counts every accepted recipient.

It can refuse given addresses permanently (550 at RCPT), so the one-message-per-recipient
path is tested against a real SMTP conversation.
"""

from __future__ import annotations

import email
import socket
import threading
from collections import Counter
from email.policy import default

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.sink.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=default)
        with self.sink.lock:
            for rcpt in envelope.rcpt_tos:
                self.sink.counts[rcpt] += 1
            self.sink.messages.append(message)
        return "250 Message accepted"


class SmtpSink:
    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.counts: Counter = Counter()
        self.messages: list = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None
        self.port = 0

    def start(self) -> SmtpSink:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
