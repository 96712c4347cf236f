"""A total deadline for one outgoing call (a provider API call, one SMTP message)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class CallDeadlineExceeded(Exception):
    """The call ran past its total deadline (it may have reached the provider)."""


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """Cut the block off after `seconds` in total.

    requests' timeout bounds each read, so an answer trickling in a byte at a time can stretch
    a call past the lease it was checked under; a real-time alarm bounds the whole call, the
    upload included. Signals reach only the main thread (where Celery's prefork children run
    tasks); elsewhere the per-read timeout is all there is."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum, _frame):
        raise CallDeadlineExceeded(f"no answer within the call deadline of {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
