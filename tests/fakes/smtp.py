"""A local SMTP sink (aiosmtpd) on a free 127.0.0.1 port that keeps every message it accepts.

Use it where mail must leave the process for real: a Celery worker with EMAIL_URL pointing at
it, or a live server whose EMAIL_BACKEND is SMTP. It counts every accepted recipient and can
refuse given addresses permanently (550 at RCPT), so per-recipient paths meet a real SMTP
conversation.
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default

import pytest
from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if self.sink.refuses(address):
            return "550 5.1.1 mailbox unavailable"
        if address.lower() in {item.lower() for item in self.sink.transient}:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        message = email.message_from_bytes(envelope.content, policy=default)
        with self.sink.condition:
            for rcpt in envelope.rcpt_tos:
                self.sink.counts[rcpt] += 1
            self.sink.messages.append(message)
            self.sink.condition.notify_all()
        return "250 Message accepted"


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        # Accepted messages per envelope recipient: exactly-once checks look for all ones.
        self.counts: Counter[str] = Counter()
        # Addresses answered with a permanent 550 at RCPT (compared case-insensitively).
        self.refuse: set[str] = set()
        # Addresses answered with a temporary 451 at RCPT; seconds before each DATA answer.
        self.transient: set[str] = set()
        self.delay = 0.0
        self.condition = threading.Condition()
        self.port = 0
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def refuses(self, address: str) -> bool:
        return address.lower() in {refused.lower() for refused in self.refuse}

    def start(self) -> SmtpSink:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(
        self, predicate: Callable[[EmailMessage], bool] = lambda m: True, timeout: float = 30
    ) -> EmailMessage:
        """The first accepted message matching predicate; waits for it to arrive."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching mail after {timeout}s: {self.messages}")
                self.condition.wait(remaining)

    @staticmethod
    def text_of(message: EmailMessage) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()
