"""Claims that fence, leases that beat, a call with a total deadline: in the test process,
against PostgreSQL and the fake provider (the worker-level proofs are in test_workers.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, Digest, DigestState, ProviderEvent
from newsletter.services.digest_sending import (
    batch_claim,
    batch_recheck,
    batch_send,
    digest_drain,
)
from newsletter.services.digest_sending import reconcile as reconcile_module
from newsletter.services.digest_sending.lease import lease_kept
from newsletter.services.digest_sending.reconcile import digest_reconcile
from newsletter.services.digest_sending.record import batch_record_sent
from newsletter.services.digests import digest_fan_out, digest_start_now
from tests.conftest import ROOT
from tests.fakes.smtp import SmtpSink

from .conftest import seed_subscribers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def steps_by_hand(monkeypatch):
    from newsletter.services import digests

    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: None)
    monkeypatch.setattr(digests, "_enqueue_fan_out", lambda pk: None)


def _fanned_out(newsletter, n: int) -> Digest:
    seed_subscribers(newsletter, n)
    digest = digest_start_now(newsletter=newsletter).digest
    digest_fan_out(digest_id=digest.pk)
    return Digest.objects.get(pk=digest.pk)


def _expire(batch: Batch) -> None:
    Batch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def test_a_write_under_a_replaced_token_changes_nothing_and_says_so(
    newsletter_with_articles, mailgun_in_process, caplog
):
    digest = _fanned_out(newsletter_with_articles, 10)
    first = batch_claim(digest_id=digest.pk)
    _expire(first)
    assert digest_reconcile(digest_id=digest.pk)["freed"] == 1
    second = batch_claim(digest_id=digest.pk)
    assert second.pk == first.pk and (first.attempts, second.attempts) == (1, 2)
    with caplog.at_level(logging.ERROR):
        assert not batch_record_sent(batch=first, token=1, sent=10, message_ids=[])
    second.refresh_from_db()
    assert second.state == BatchState.SENDING and second.attempts == 2
    (record,) = [r for r in caplog.records if "lost claim" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert (
        f"batch {first.pk} of digest {digest.pk}, our token 1, current token 2"
        in record.getMessage()
    )
    # The stale attempt's send does not even start; the live one sends.
    assert batch_send(batch_id=first.pk, token=1).state == "not_claimed"
    assert batch_send(batch_id=second.pk, token=2).state == BatchState.SENT
    assert mailgun_in_process.accepted_addresses(digest.pk) == {
        f"r{i}@example.org": 1 for i in range(1, 11)
    }


def test_final_check_gives_a_batch_up_when_the_lease_would_not_cover_the_call(
    newsletter_with_articles, mailgun_in_process, settings
):
    digest = _fanned_out(newsletter_with_articles, 10)
    batch = batch_claim(digest_id=digest.pk)
    # Still ours, but with less left than the call deadline plus the margin.
    Batch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() + timedelta(seconds=2))
    settings.NEWSLETTER_CALL_DEADLINE_SECONDS = 5
    assert batch_send(batch_id=batch.pk, token=batch.attempts).state == BatchState.RETRY
    batch.refresh_from_db()
    assert batch.state == BatchState.RETRY and batch.call_started_at is None
    assert batch.next_attempt_at <= timezone.now()
    assert mailgun_in_process.stats.calls == 0
    # Due at once: the next claim takes it and sends it.
    again = batch_claim(digest_id=digest.pk)
    assert again.pk == batch.pk
    assert batch_send(batch_id=again.pk, token=again.attempts).state == BatchState.SENT


def test_lost_lease_frees_a_batch_at_once_only_if_its_call_never_started(
    newsletter_with_articles, mailgun_in_process, settings
):
    settings.NEWSLETTER_BATCH_SIZE = 5
    digest = _fanned_out(newsletter_with_articles, 10)
    never_called = batch_claim(digest_id=digest.pk)
    maybe_called = batch_claim(digest_id=digest.pk)
    Batch.objects.filter(pk=maybe_called.pk).update(call_started_at=timezone.now())
    _expire(never_called)
    _expire(maybe_called)
    result = digest_reconcile(digest_id=digest.pk)
    assert (result["freed"], result["expired"]) == (1, 1)
    never_called.refresh_from_db()
    maybe_called.refresh_from_db()
    assert never_called.state == BatchState.RETRY
    assert never_called.next_attempt_at <= timezone.now()
    assert maybe_called.state == BatchState.UNCERTAIN
    assert maybe_called.next_attempt_at > timezone.now() + timedelta(
        seconds=settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS - 5
    )


def test_heartbeat_keeps_a_held_lease_ahead_and_stops_when_released(
    newsletter_with_articles, settings
):
    settings.NEWSLETTER_LEASE_SECONDS = 2
    settings.NEWSLETTER_HEARTBEAT_SECONDS = 0.3
    digest = _fanned_out(newsletter_with_articles, 5)
    batch = batch_claim(digest_id=digest.pk)
    with lease_kept(batch_id=batch.pk, token=batch.attempts):
        deadline = time.monotonic() + 30
        while True:
            lease = Batch.objects.get(pk=batch.pk).lease_until
            if lease > batch.lease_until + timedelta(seconds=1):
                break
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            time.sleep(0.1)
        # Past the original lease, the batch is still held.
        while timezone.now() < batch.lease_until + timedelta(seconds=0.5):
            time.sleep(0.1)
        assert digest_reconcile(digest_id=digest.pk)["freed"] == 0
    released = Batch.objects.get(pk=batch.pk).lease_until
    while timezone.now() < released + timedelta(seconds=0.2):
        time.sleep(0.1)
    assert Batch.objects.get(pk=batch.pk).lease_until == released
    assert digest_reconcile(digest_id=digest.pk)["freed"] == 1


def test_the_provider_call_has_a_total_deadline(
    newsletter_with_articles, mailgun_in_process, settings
):
    # Per-read timeout far beyond the answer's delay: only a total deadline cuts the call.
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 30}
    settings.NEWSLETTER_CALL_DEADLINE_SECONDS = 1
    mailgun_in_process.latency = 3
    mailgun_in_process.webhook_mode = "first"
    digest = _fanned_out(newsletter_with_articles, 10)
    batch = batch_claim(digest_id=digest.pk)
    started = time.monotonic()
    assert batch_send(batch_id=batch.pk, token=batch.attempts).state == BatchState.UNCERTAIN
    assert time.monotonic() - started < 2.5
    batch.refresh_from_db()
    assert "call deadline" in batch.error and batch.call_started_at is not None
    # The provider did take it; its tracking event proves the batch sent, nothing is resent.
    mailgun_in_process.latency = 0
    deadline = time.monotonic() + 30
    while mailgun_in_process.stats.accepted_calls < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    mailgun_in_process.wait_webhooks()
    assert digest_drain(digest_id=digest.pk).done
    assert mailgun_in_process.duplicates == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"NEWSLETTER_LEASE_SECONDS": "10", "NEWSLETTER_CALL_DEADLINE_SECONDS": "8"},
            "NEWSLETTER_LEASE_SECONDS must exceed",
        ),
        (
            {"NEWSLETTER_UNCERTAIN_GRACE_SECONDS": "1", "NEWSLETTER_LEASE_MARGIN_SECONDS": "2"},
            "NEWSLETTER_UNCERTAIN_GRACE_SECONDS must be at least",
        ),
    ],
)
def test_lease_settings_that_cannot_cover_a_call_stop_the_start(env, message):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_smtp_lease_lost_mid_batch_raises_nothing_and_resumes_after_what_was_sent(
    newsletter_with_articles, settings, caplog
):
    sink = SmtpSink().start()
    try:
        settings.ANYMAIL_ESP = ""
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.NEWSLETTER_BATCH_SIZE = 20
        settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS = 1
        digest = _fanned_out(newsletter_with_articles, 20)
        emails = {f"r{i}@example.org" for i in range(1, 21)}
        sink.delay = 0.3
        # Had the worker kept going, this address would answer 451 after its lease was gone:
        # the old split of the batch then collided with the range it no longer owned.
        sink.transient = {"r8@example.org"}
        batch = batch_claim(digest_id=digest.pk)
        outcome: list = []

        def send() -> None:
            try:
                outcome.append(batch_send(batch_id=batch.pk, token=batch.attempts))
            finally:
                connection.close()

        sender = threading.Thread(target=send)
        with caplog.at_level(logging.ERROR):
            sender.start()
            sink.wait_for(lambda _m: len(sink.messages) >= 3, timeout=30)
            # The lease runs out mid-batch (a pause, a lost heartbeat): the reconciler takes it.
            _expire(batch)
            digest_reconcile(digest_id=digest.pk)
            sender.join(60)
        # Either the reconciler took the batch (uncertain: a message may have been in flight)
        # or the worker's own check saw the lease gone first and gave the batch up.
        assert outcome and outcome[0].state in {"lost", BatchState.RETRY}
        sent_first = set(sink.counts)
        assert 3 <= len(sent_first) < 8
        batch.refresh_from_db()
        assert batch.state in {BatchState.UNCERTAIN, BatchState.RETRY}
        assert batch.sent_count == len(sent_first)
        if batch.state == BatchState.UNCERTAIN:
            assert any("lost claim" in r.getMessage() for r in caplog.records)
        # After the grace period the batch is resent: from where the first attempt stopped.
        sink.transient = set()
        sink.delay = 0
        while timezone.now() < batch.next_attempt_at:
            time.sleep(0.1)
        digest_reconcile(digest_id=digest.pk)
        assert digest_drain(digest_id=digest.pk).done
        assert set(sink.counts) == emails
        assert set(sink.counts.values()) == {1}
        batch.refresh_from_db()
        assert batch.state == BatchState.SENT and batch.sent_count == 20
        assert Digest.objects.get(pk=digest.pk).state == DigestState.DONE
    finally:
        sink.stop()


def _uncertain_mid_batch(digest: Digest, *, handed_over: int) -> tuple[Batch, list[int]]:
    """A per-recipient batch whose lease ran out while the message after the first
    `handed_over` deliveries was in flight."""
    batch = batch_claim(digest_id=digest.pk)
    ids = list(Delivery.objects.filter(digest=digest).order_by("pk").values_list("pk", flat=True))
    Batch.objects.filter(pk=batch.pk).update(
        sent_through=ids[handed_over - 1],
        sent_count=handed_over,
        call_started_at=timezone.now(),
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    return batch, ids


def _event(delivery_id: int, n: int) -> None:
    ProviderEvent.objects.create(
        esp="postmark", event_id=f"e{n}", event_type="delivered", delivery_id=delivery_id
    )


def test_an_event_for_a_message_before_the_one_in_flight_proves_nothing_per_recipient(
    newsletter_with_articles, settings
):
    settings.ANYMAIL_ESP = "postmark"
    digest = _fanned_out(newsletter_with_articles, 5)
    batch, ids = _uncertain_mid_batch(digest, handed_over=2)
    _event(ids[0], 1)
    result = digest_reconcile(digest_id=digest.pk)
    assert (result["expired"], result["proven"]) == (1, 0)
    batch.refresh_from_db()
    assert batch.state == BatchState.UNCERTAIN
    assert (batch.sent_through, batch.sent_count) == (ids[1], 2)


def test_an_event_for_the_message_in_flight_resumes_the_batch_after_it(
    newsletter_with_articles, settings
):
    settings.ANYMAIL_ESP = "postmark"
    digest = _fanned_out(newsletter_with_articles, 5)
    batch, ids = _uncertain_mid_batch(digest, handed_over=2)
    _event(ids[0], 1)
    _event(ids[2], 2)
    assert digest_reconcile(digest_id=digest.pk)["proven"] == 1
    batch.refresh_from_db()
    # Proven through the message in flight; the two after it were never handed over.
    assert batch.state == BatchState.RETRY and batch.next_attempt_at <= timezone.now()
    assert (batch.sent_through, batch.sent_count) == (ids[2], 3)
    assert batch.call_started_at is None and batch.sent_at is None
    # The retry resumes after it and sends only the two left.
    again = batch_claim(digest_id=digest.pk)
    assert again.pk == batch.pk and again.attempts == batch.attempts + 1
    assert [r.delivery_id for r in batch_recheck(batch=again)] == ids[3:]


def test_an_event_for_the_last_message_in_flight_proves_the_batch_sent(
    newsletter_with_articles, settings
):
    settings.ANYMAIL_ESP = "postmark"
    digest = _fanned_out(newsletter_with_articles, 5)
    batch, ids = _uncertain_mid_batch(digest, handed_over=4)
    _event(ids[4], 1)
    assert digest_reconcile(digest_id=digest.pk)["proven"] == 1
    batch.refresh_from_db()
    assert batch.state == BatchState.SENT and batch.sent_at is not None
    assert (batch.sent_through, batch.sent_count) == (ids[4], 5)


def test_a_proof_does_not_overwrite_progress_written_after_it_was_read(
    newsletter_with_articles, settings
):
    settings.ANYMAIL_ESP = "postmark"
    digest = _fanned_out(newsletter_with_articles, 5)
    batch, ids = _uncertain_mid_batch(digest, handed_over=2)
    Batch.objects.filter(pk=batch.pk).update(state=BatchState.UNCERTAIN, lease_until=None)
    _event(ids[2], 1)
    read_before = Batch.objects.get(pk=batch.pk)
    # The late worker of the same attempt records the message in flight and the next one.
    Batch.objects.filter(pk=batch.pk).update(sent_through=ids[3], sent_count=4)
    assert reconcile_module._in_flight_proven(batch=read_before, now=timezone.now()) == 0
    batch.refresh_from_db()
    assert batch.state == BatchState.UNCERTAIN
    assert (batch.sent_through, batch.sent_count) == (ids[3], 4)


def test_every_reconcile_tick_wakes_a_drain_while_work_is_claimable(
    newsletter_with_articles, monkeypatch, settings
):
    from newsletter.services import digests

    settings.NEWSLETTER_BATCH_SIZE = 5
    digest = _fanned_out(newsletter_with_articles, 20)
    woken: list[int | None] = []
    monkeypatch.setattr(digests, "_enqueue_drains", lambda pk, count=None: woken.append(count))
    # A live lease on one batch (another worker is sending) and three ranges still unclaimed:
    # a worker without a drain message (just started, or its message died with a killed
    # worker) must still be woken.
    batch_claim(digest_id=digest.pk)
    assert digests.digest_kick_stalled() == [digest.pk]
    assert woken == [1]
    # Nobody holds a live lease: all drains are woken.
    Batch.objects.filter(digest=digest).update(lease_until=timezone.now() - timedelta(seconds=1))
    digests.digest_kick_stalled()
    assert woken == [1, None]


def test_a_drain_out_of_work_wakes_again_when_another_workers_lease_ends(
    newsletter_with_articles, mailgun_in_process, settings
):
    settings.NEWSLETTER_BATCH_SIZE = 5
    digest = _fanned_out(newsletter_with_articles, 10)
    held = batch_claim(digest_id=digest.pk)
    result = digest_drain(digest_id=digest.pk)
    assert result.batches == 1 and not result.done
    # If the holder died, its batch is free when the lease ends: the drain is back by then.
    left = (held.lease_until - timezone.now()).total_seconds()
    assert result.wake_in is not None and left - 2 <= result.wake_in <= left + 0.5
