"""Leases: short, and renewed by a heartbeat while a worker holds the batch.

A short lease tells a dead worker from a slow one within seconds: the heartbeat (one thread
per worker process, one UPDATE per beat for whatever the process holds) keeps a live worker's
claims ahead, and a killed or paused process stops renewing with everything else it does. The
renewal is fenced like every other write (same attempt number, still sending).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from newsletter.models import Batch, BatchState

logger = logging.getLogger(__name__)


def lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)


class _Heartbeat:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[int, int] = {}
        self.pid = 0
        self.thread: threading.Thread | None = None
        # Set when the last claim is released, so the idle connection closes at once.
        self.idle = threading.Event()

    def _ensure_thread(self) -> None:
        # Threads do not survive a fork: each pool child starts its own on first use.
        if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
            self.pid = os.getpid()
            self.held = {}
            self.thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
            self.thread.start()

    def hold(self, batch_id: int, token: int) -> None:
        with self.lock:
            self._ensure_thread()
            self.held[batch_id] = token

    def release(self, batch_id: int) -> None:
        with self.lock:
            self.held.pop(batch_id, None)
            if not self.held:
                self.idle.set()

    def _run(self) -> None:
        while True:
            self.idle.wait(settings.NEWSLETTER_HEARTBEAT_SECONDS)
            # The renewal runs under the lock, so release() returns only once no renewal of
            # that batch is still on its way: a beat landing after the release pushed a
            # given-up batch's lease ahead once more (seen in the suite's heartbeat test).
            with self.lock:
                self.idle.clear()
                held = list(self.held.items())
                if not held:
                    # Nothing held: keep no idle connection (a test database must be droppable).
                    connection.close()
                    continue
                try:
                    batch_lease_renew(claims=held)
                except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                    logger.warning("lease heartbeat failed", exc_info=True)
                    with contextlib.suppress(Exception):
                        connection.close()


_heartbeat = _Heartbeat()


def batch_lease_renew(*, claims: list[tuple[int, int]], now: datetime | None = None) -> int:
    """Push the lease of each (batch id, token) still held ahead; returns how many were."""
    if not claims:
        return 0
    now = now or timezone.now()
    owned = functools.reduce(operator.or_, (Q(pk=pk, attempts=token) for pk, token in claims))
    return Batch.objects.filter(owned, state=BatchState.SENDING, lease_until__gt=now).update(
        lease_until=lease_end(now)
    )


@contextlib.contextmanager
def lease_kept(*, batch_id: int, token: int) -> Iterator[None]:
    """Renew the batch's lease in the background for as long as the block runs."""
    _heartbeat.hold(batch_id, token)
    try:
        yield
    finally:
        _heartbeat.release(batch_id)
