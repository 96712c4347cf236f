"""Exactly once with real Celery workers, PostgreSQL, Redis and the fake provider.

Every test counts at the provider: each confirmed subscriber is accepted exactly once, nobody
who unsubscribed before their send is accepted, and the digest ends in a true final state.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from django.db.models import Sum
from django.utils import timezone

from newsletter.models import (
    Batch,
    BatchState,
    Campaign,
    Delivery,
    DeliveryState,
    Digest,
    DigestState,
    MailingKind,
    ProviderEvent,
    SegmentLanguage,
    Subscription,
    SubscriptionState,
)
from newsletter.ratelimit_send import send_slot_wait
from newsletter.services.consent import subscription_revoke
from newsletter.services.digest_sending import batch_claim, digest_reconcile
from newsletter.services.digests import digest_fan_out, digest_start_now, digest_tick
from newsletter.services.mailings import campaign_send
from tests.fakes.smtp import SmtpSink

from .conftest import run_until_final, seed_subscribers, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workers(celery_workers, fake_mailgun, settings):
    """Start workers against the fake; the test process shares their delivery settings
    (it plays the beat's reconcile).

    Exactly once rests on the provider's word about uncertain batches (a call cut by its
    deadline on a loaded machine, a worker killed mid-call), so these tests ask the fake for
    one tracking event per accepted call (``webhooks="first"``) unless they say otherwise.
    """

    def start(count: int = 1, concurrency: int = 2, webhooks: str = "first", **extra: str):
        fake_mailgun.webhook_mode = webhooks
        env = worker_env(fake_mailgun, **extra)
        for name in ("NEWSLETTER_BATCH_SIZE", "NEWSLETTER_DRAIN_TASKS"):
            setattr(settings, name, int(env[name]))
        for name in (
            "NEWSLETTER_LEASE_SECONDS",
            "NEWSLETTER_HEARTBEAT_SECONDS",
            "NEWSLETTER_CALL_DEADLINE_SECONDS",
            "NEWSLETTER_LEASE_MARGIN_SECONDS",
            "NEWSLETTER_UNCERTAIN_GRACE_SECONDS",
            "NEWSLETTER_RETRY_BASE_SECONDS",
            "NEWSLETTER_RETRY_MAX_SECONDS",
        ):
            setattr(settings, name, float(env[name]))
        return [celery_workers(concurrency=concurrency, env=env) for _i in range(count)]

    return start


def assert_exactly_once(fake, digest: Digest, expected_emails: set[str]) -> None:
    digest.refresh_from_db()
    assert digest.state == DigestState.DONE
    counts = fake.accepted_addresses(digest.pk)
    assert set(counts) == expected_emails
    assert set(counts.values()) == {1}, {e: n for e, n in counts.items() if n != 1}
    assert not Batch.objects.filter(
        digest=digest, state__in=[BatchState.SENDING, BatchState.RETRY, BatchState.UNCERTAIN]
    ).exists()
    sent = Batch.objects.filter(digest=digest, state=BatchState.SENT).aggregate(n=Sum("sent_count"))
    assert sent["n"] == len(expected_emails)


def _emails(subs) -> set[str]:
    return {s.email for s in subs}


@pytest.fixture(params=[MailingKind.DIGEST, MailingKind.CAMPAIGN])
def start_mailing(request):
    """Start a digest, or confirm a campaign to the same readers: one delivery protocol, so
    the same fault tests must hold for both."""

    def start(newsletter) -> Digest:
        if request.param == MailingKind.DIGEST:
            return digest_start_now(newsletter=newsletter).digest
        campaign = Campaign.objects.create(
            newsletter=newsletter,
            name="Sonderangebot",
            subject="Nur diese Woche",
            body_markdown="## Ein Angebot\n\nFür **alle** Leser.",
        )
        return campaign_send(campaign_id=campaign.pk)

    return start


def test_two_workers_share_one_digest(
    newsletter_with_articles, fake_mailgun, workers, start_mailing
):
    subs = seed_subscribers(newsletter_with_articles, 800, language_every=5)
    workers(count=2)
    digest = start_mailing(newsletter_with_articles)
    digest = run_until_final(digest.pk)
    assert_exactly_once(fake_mailgun, digest, _emails(subs))
    assert Batch.objects.filter(digest=digest).count() >= 16


def test_second_beat_tick_for_the_same_slot_sends_once(
    newsletter_with_articles, fake_mailgun, workers
):
    from newsletter.tasks.digests import digest_tick_task

    subs = seed_subscribers(newsletter_with_articles, 300)
    workers(count=2)
    # Two beats: both ticks run in workers at the same time, plus one here.
    digest_tick_task.delay()
    digest_tick_task.delay()
    digest_tick()
    deadline = time.monotonic() + 20
    while not Digest.objects.filter(newsletter=newsletter_with_articles).exists():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)
    assert Digest.objects.filter(newsletter=newsletter_with_articles).count() == 1
    digest = run_until_final(Digest.objects.get(newsletter=newsletter_with_articles).pk)
    assert_exactly_once(fake_mailgun, digest, _emails(subs))


def test_workers_killed_at_random_points_then_restarted(
    newsletter_with_articles, fake_mailgun, workers, start_mailing
):
    subs = seed_subscribers(newsletter_with_articles, 1200)
    fake_mailgun.latency = 0.25
    extra = {
        "NEWSLETTER_LEASE_SECONDS": "6",
        "NEWSLETTER_CALL_DEADLINE_SECONDS": "3",
        "ANYMAIL_REQUESTS_TIMEOUT": "3",
    }
    (worker,) = workers(**extra)
    digest = start_mailing(newsletter_with_articles)
    rng = random.Random(4)
    killed_mid_digest = 0
    for _round in range(3):
        time.sleep(rng.uniform(0.2, 1.2))
        state = Digest.objects.get(pk=digest.pk).state
        worker.kill()
        killed_mid_digest += state in (DigestState.FANNING_OUT, DigestState.SENDING)
        (worker,) = workers(**extra)
    assert killed_mid_digest >= 1
    digest = run_until_final(digest.pk, timeout=180)
    assert_exactly_once(fake_mailgun, digest, _emails(subs))


def test_provider_errors_for_a_while_then_recovering(
    newsletter_with_articles, fake_mailgun, workers, start_mailing
):
    subs = seed_subscribers(newsletter_with_articles, 600)
    fake_mailgun.fail_every = 7
    fake_mailgun.status_until(500, 1.5)
    workers(count=2)
    digest = start_mailing(newsletter_with_articles)
    time.sleep(2)
    fake_mailgun.status_until(429, 1.5)
    digest = run_until_final(digest.pk)
    assert fake_mailgun.stats.failed_calls > 0
    assert_exactly_once(fake_mailgun, digest, _emails(subs))
    assert Batch.objects.filter(digest=digest, attempts__gt=1).exists()


def test_provider_refusing_some_addresses_permanently(
    newsletter_with_articles, fake_mailgun, workers
):
    subs = seed_subscribers(newsletter_with_articles, 400)
    refused = {s.email for s in subs[::37]}
    fake_mailgun.refuse = refused
    workers(count=2)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    digest = run_until_final(digest.pk)
    assert_exactly_once(fake_mailgun, digest, _emails(subs) - refused)
    failed = Delivery.objects.filter(digest=digest, state=DeliveryState.FAILED)
    assert {d.subscription.email for d in failed} == refused
    assert {d.subscription.state for d in failed} == {SubscriptionState.SUPPRESSED}


def test_campaign_to_a_segment_reaches_exactly_that_segment_once(
    newsletter_with_articles, fake_mailgun, workers
):
    subs = seed_subscribers(newsletter_with_articles, 900, language_every=3)
    campaign = Campaign.objects.create(
        newsletter=newsletter_with_articles,
        name="Announcement",
        subject="For our English readers",
        body_markdown="Hello.",
        segment_language=SegmentLanguage.EN,
    )
    workers(count=2)
    mailing = campaign_send(campaign_id=campaign.pk)
    mailing = run_until_final(mailing.pk)
    english = {s.email for s in subs if s.language == "en"}
    assert len(english) == 300
    assert_exactly_once(fake_mailgun, mailing, english)


def test_campaign_to_a_topic_segment_reaches_exactly_its_readers_once(
    newsletter_with_articles, fake_mailgun, workers
):
    from django.db import connection

    from tests.articles.factories import TopicFactory

    subs = seed_subscribers(newsletter_with_articles, 900)
    markets, energy = TopicFactory(name="Märkte"), TopicFactory(name="Energie")
    link = Subscription.topics.through._meta.db_table
    with connection.cursor() as cursor:
        # Every 2nd reader chose markets, every 3rd energy: every 6th chose both.
        cursor.execute(
            f"INSERT INTO {link} (subscription_id, topic_id) "
            f"SELECT id, %s FROM newsletter_subscription WHERE newsletter_id = %s AND id %% 2 = 0 "
            f"UNION ALL SELECT id, %s FROM newsletter_subscription "
            f"WHERE newsletter_id = %s AND id %% 3 = 0",
            [markets.pk, newsletter_with_articles.pk, energy.pk, newsletter_with_articles.pk],
        )
    campaign = Campaign.objects.create(
        newsletter=newsletter_with_articles,
        name="Energie und Märkte",
        subject="Für Leser der Märkte und der Energie",
        body_markdown="Neu.",
    )
    campaign.segment_topics.set([markets, energy])
    workers(count=2)
    mailing = campaign_send(campaign_id=campaign.pk)
    mailing = run_until_final(mailing.pk)
    chosen = {s.email for s in subs if s.pk % 2 == 0 or s.pk % 3 == 0}
    assert 590 <= len(chosen) <= 610
    assert_exactly_once(fake_mailgun, mailing, chosen)


def _flush_broker() -> None:
    """ "Redis restarted": every queued message is gone (the shared server itself stays up)."""
    broker = urlparse(django_settings.CELERY_BROKER_URL)
    db = (broker.path or "/0").strip("/") or "0"
    host, port = broker.hostname or "127.0.0.1", str(broker.port or 6379)
    subprocess.run(
        ["redis-cli", "-h", host, "-p", port, "-n", db, "FLUSHDB"], check=True, capture_output=True
    )


def test_broker_flushed_mid_digest(newsletter_with_articles, fake_mailgun, workers):
    subs = seed_subscribers(newsletter_with_articles, 1000)
    fake_mailgun.latency = 0.1
    # The fan-out message is lost before any worker sees it...
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    _flush_broker()
    workers(count=1, concurrency=2)
    # ...the reconcile (the one a starting worker asks for, or the periodic one) finds it;
    # then the queue is lost again in the middle.
    from newsletter.services.digests import digest_kick_stalled

    deadline = time.monotonic() + 60
    while not fake_mailgun.stats.accepted_calls:
        assert time.monotonic() < deadline
        digest_kick_stalled()
        time.sleep(0.3)
    _flush_broker()
    digest = run_until_final(digest.pk)
    assert_exactly_once(fake_mailgun, digest, _emails(subs))


def test_unsubscribed_while_queued_is_never_mailed(newsletter_with_articles, fake_mailgun, workers):
    subs = seed_subscribers(newsletter_with_articles, 500)
    # The digest starts with no worker running; one batch is claimed (its readers written
    # down) and then lost with its worker, so its lease runs out unsent.
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    digest_fan_out(digest_id=digest.pk)
    claimed = batch_claim(digest_id=digest.pk)
    Batch.objects.filter(pk=claimed.pk).update(lease_until=timezone.now())
    in_claimed = set(
        Delivery.objects.filter(digest=digest).values_list("subscription_id", flat=True)
    )
    leaving = subs[::50]
    for sub in leaving:
        subscription_revoke(subscription_id=sub.pk, channel="link")
    workers(count=2)
    digest = run_until_final(digest.pk)
    assert_exactly_once(fake_mailgun, digest, _emails(subs) - _emails(leaving))
    # Readers who left after their batch was claimed are skipped at send time; the others
    # were never written down at all.
    skipped = Delivery.objects.filter(digest=digest, state=DeliveryState.SKIPPED)
    assert {d.subscription_id for d in skipped} == {s.pk for s in leaving} & in_claimed != set()
    written = Delivery.objects.filter(digest=digest, subscription__in=leaving)
    assert written.count() == len({s.pk for s in leaving} & in_claimed)


def test_smtp_path_one_message_per_recipient(newsletter_with_articles, celery_workers, settings):
    sink = SmtpSink().start()
    try:
        subs = seed_subscribers(newsletter_with_articles, 200)
        refused = {subs[10].email}
        sink.refuse = refused
        settings.NEWSLETTER_BATCH_SIZE = 40
        celery_workers(
            concurrency=2,
            env={
                "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
                "NEWSLETTER_BATCH_SIZE": "40",
                "NEWSLETTER_LEASE_SECONDS": "15",
            },
        )
        digest = digest_start_now(newsletter=newsletter_with_articles).digest
        digest = run_until_final(digest.pk)
        assert digest.state == DigestState.DONE
        assert set(sink.counts) == _emails(subs) - refused
        assert set(sink.counts.values()) == {1}
        message = sink.messages[0]
        assert len(message.get_all("List-Unsubscribe")) == 1
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        failed = Delivery.objects.get(digest=digest, state=DeliveryState.FAILED)
        assert failed.subscription.email in refused
    finally:
        sink.stop()


# --- claims that fence, recovery in seconds -----------------------------------------------
_CLAIMED = re.compile(r"^(\S+ \S+) INFO \S+ \[[^\]]*\] claimed batch (\d+) of digest (\d+)", re.M)
_READY = re.compile(r"^(\S+ \S+) INFO \S+ \[[^\]]*\] .* ready\.$", re.M)
_FAST = {
    # Short leases kept by a heartbeat: a lost worker's batch is free within seconds.
    "NEWSLETTER_LEASE_SECONDS": "4",
    "NEWSLETTER_HEARTBEAT_SECONDS": "0.5",
    "NEWSLETTER_CALL_DEADLINE_SECONDS": "2",
    "NEWSLETTER_LEASE_MARGIN_SECONDS": "1",
    "ANYMAIL_REQUESTS_TIMEOUT": "2",
}


def _log_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


def _wait_for_log(worker, pattern: re.Pattern, count: int = 1, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while True:
        found = pattern.findall(worker.log_path.read_text(errors="replace"))
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{pattern.pattern!r} not logged:\n{worker.log()}"
        time.sleep(0.05)


def test_worker_paused_past_its_lease_sends_nothing_it_no_longer_owns(
    newsletter_with_articles, fake_mailgun, workers, settings
):
    subs = seed_subscribers(newsletter_with_articles, 100)
    extra = {
        **_FAST,
        "NEWSLETTER_UNCERTAIN_GRACE_SECONDS": "2",
        "NEWSLETTER_SEND_RATE": "100",
        "NEWSLETTER_DRAIN_TASKS": "1",
    }
    (paused,) = workers(concurrency=1, **extra)
    # The provider's send-rate clock is booked 3 s ahead, so the first batch the worker claims
    # waits for its slot before the provider call: that is where the worker is paused.
    settings.NEWSLETTER_SEND_RATE = 100.0
    send_slot_wait(provider="mailgun", messages=300)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    _wait_for_log(paused, re.compile(r"waits [\d.]+s for the send rate"))
    ((_stamp, batch_id, digest_id),) = _CLAIMED.findall(paused.log())
    os.killpg(paused.proc.pid, signal.SIGSTOP)
    try:
        # Another worker takes over once the lease has ended, and finishes the digest.
        workers(concurrency=1, **extra)
        digest = run_until_final(digest.pk)
        assert_exactly_once(fake_mailgun, digest, _emails(subs))
        taken_over = Batch.objects.get(pk=batch_id)
        assert taken_over.attempts == 2 and taken_over.state == BatchState.SENT
        # Resumed after lease + grace, the paused worker finds its claim gone.
        grace_over = digest.finished_at + timedelta(seconds=2)
        while timezone.now() < grace_over:
            time.sleep(0.1)
    finally:
        os.killpg(paused.proc.pid, signal.SIGCONT)
    lost = re.compile(
        rf"ERROR .* lost claim: batch {batch_id} of digest {digest_id}, "
        r"our token 1, current token 2 \(sent\)"
    )
    _wait_for_log(paused, lost)
    assert fake_mailgun.duplicates == 0
    assert_exactly_once(fake_mailgun, digest, _emails(subs))


def test_smtp_worker_paused_mid_batch_then_proven_by_events_sends_everyone_once(
    newsletter_with_articles, celery_workers, settings
):
    """A per-recipient batch whose lease ends mid-batch is uncertain; the provider's event for
    an early message proves nothing new, the one for the message in flight resumes the batch
    after it, and nobody gets the digest twice or not at all."""
    sink = SmtpSink().start()
    try:
        subs = seed_subscribers(newsletter_with_articles, 12)
        settings.NEWSLETTER_BATCH_SIZE = 12
        env = {
            **_FAST,
            "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
            "NEWSLETTER_BATCH_SIZE": "12",
            "NEWSLETTER_DRAIN_TASKS": "1",
            # Long enough that only a provider event can settle the uncertain batch here.
            "NEWSLETTER_UNCERTAIN_GRACE_SECONDS": "600",
        }
        settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS = 600
        sink.delay = 0.6
        paused = celery_workers(concurrency=1, env=env)
        digest = digest_start_now(newsletter=newsletter_with_articles).digest
        sink.wait_for(lambda _m: len(sink.messages) >= 3, timeout=60)
        # Half a delay after the third was taken, the fourth is in flight (the sink holds its
        # DATA answer): the worker is paused there, and the sink takes that message meanwhile.
        time.sleep(sink.delay / 2)
        os.killpg(paused.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(sink.delay + 0.2)  # a message the sink was taking is counted
            handed = dict(sink.counts)
            assert 3 <= len(handed) < 12
            (batch,) = Batch.objects.filter(digest=digest)
            deadline = time.monotonic() + 30
            while batch.state != BatchState.UNCERTAIN:
                assert time.monotonic() < deadline, batch.state
                time.sleep(0.2)
                digest_reconcile(digest_id=digest.pk)
                batch.refresh_from_db()
            by_email = dict(
                Delivery.objects.filter(digest=digest).values_list("subscription__email", "pk")
            )
            # A tracking event for the first message proves nothing the batch did not know.
            first = min(by_email[e] for e in handed)
            ProviderEvent.objects.create(
                esp="smtp", event_id="early", event_type="delivered", delivery_id=first
            )
            assert digest_reconcile(digest_id=digest.pk)["proven"] == 0
            batch.refresh_from_db()
            assert batch.state == BatchState.UNCERTAIN
            # The events for every message the sink took, the one in flight among them.
            for n, email in enumerate(sorted(handed, key=by_email.get)):
                if by_email[email] != first:
                    ProviderEvent.objects.create(
                        esp="smtp",
                        event_id=f"e{n}",
                        event_type="delivered",
                        delivery_id=by_email[email],
                    )
            assert digest_reconcile(digest_id=digest.pk)["proven"] == 1
            batch.refresh_from_db()
            assert batch.state == BatchState.RETRY
            assert batch.sent_through == max(by_email[e] for e in handed)
            assert batch.sent_count == len(handed)
            # Another worker resumes after the proven message and finishes the digest.
            celery_workers(concurrency=1, env=env)
            digest = run_until_final(digest.pk)
        finally:
            os.killpg(paused.proc.pid, signal.SIGCONT)
        assert digest.state == DigestState.DONE
        assert set(sink.counts) == _emails(subs)
        assert set(sink.counts.values()) == {1}, {e: n for e, n in sink.counts.items() if n != 1}
        batch.refresh_from_db()
        assert batch.state == BatchState.SENT and batch.sent_count == 12
    finally:
        sink.stop()


def test_three_kills_with_a_slow_provider_still_exactly_once(
    newsletter_with_articles, fake_mailgun, workers
):
    """Each kill lands while the fake holds one of the worker's calls, so a batch is provably
    mid-call every time (not wherever a timer happens to fall). The provider loses the first
    held call: its batch must be claimed and sent again. It takes the other two: their
    webhooks prove them, and they must not be sent again."""
    subs = seed_subscribers(newsletter_with_articles, 1200)
    fake_mailgun.latency = 0.5
    (worker,) = workers(**_FAST)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    held_calls: list[tuple[int, int, bool]] = []
    for round_ in range(3):
        held = fake_mailgun.hold_next_call()
        batch_id = int(held.wait(timeout=60)["v:batch_id"][0])
        # The held call's attempt: its final check recorded the call's start before the request.
        batch = Batch.objects.get(pk=batch_id)
        assert batch.state == BatchState.SENDING and batch.call_started_at is not None
        assert Digest.objects.get(pk=digest.pk).state == DigestState.SENDING
        worker.kill()
        accepted = round_ > 0
        held.release(accept=accepted)
        held_calls.append((batch_id, batch.attempts, accepted))
        (worker,) = workers(**_FAST)
    digest = run_until_final(digest.pk, timeout=180)
    assert_exactly_once(fake_mailgun, digest, _emails(subs))
    for batch_id, token, accepted in held_calls:
        batch = Batch.objects.get(pk=batch_id)
        assert batch.state == BatchState.SENT
        # Lost at the provider: claimed again under a new token; taken: proven by its
        # webhook, never sent again.
        resent = batch.attempts > token
        assert resent is not accepted, (batch_id, token, accepted, batch.attempts)


def test_worker_started_mid_digest_gets_work_within_seconds(
    newsletter_with_articles, fake_mailgun, workers
):
    subs = seed_subscribers(newsletter_with_articles, 2000)
    fake_mailgun.latency = 0.3
    # One drain message only, held by the first worker for the whole digest: the second
    # worker gets work only if it is woken for it.
    extra = {**_FAST, "NEWSLETTER_DRAIN_TASKS": "1"}
    (first,) = workers(concurrency=1, **extra)
    digest = digest_start_now(newsletter=newsletter_with_articles).digest
    _wait_for_log(first, _CLAIMED, count=3)
    (second,) = workers(concurrency=1, **extra)
    ((ready,),) = [_READY.findall(second.log())]
    first_claim = _wait_for_log(second, _CLAIMED, timeout=60)[0]
    assert Digest.objects.get(pk=digest.pk).state == DigestState.SENDING
    assert (_log_time(first_claim[0]) - _log_time(ready)).total_seconds() <= 5
    digest = run_until_final(digest.pk)
    assert_exactly_once(fake_mailgun, digest, _emails(subs))
