"""Fixtures for digest tests: a newsletter with fresh articles, bulk-seeded subscribers, the
fake Mailgun (the provider counts), and the worker environment that points anymail at it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from django.utils import timezone

from newsletter.models import Batch, Delivery, Digest, DigestState, Subscription, SubscriptionState
from newsletter.selectors.mailings import mailing_audience_rows, mailing_audience_snapshot
from newsletter.services.digest_sending import batch_claim
from tests.articles.factories import ArticleFactory
from tests.fakes.mailgun import FakeMailgun
from tests.newsletter.factories import NewsletterFactory

SIGNING_KEY = "test-webhook-signing-key"
WEBHOOK_SECRET = "hook:secret-for-tests"
FINAL_STATES = {DigestState.DONE, DigestState.CANCELLED, DigestState.SKIPPED}


@pytest.fixture
def newsletter_with_articles(db):
    newsletter = NewsletterFactory(
        name="Meinung am Morgen",
        imprint_text="Verlag Beispiel GmbH, Musterstraße 1, 10115 Berlin",
        starts_at=timezone.now() - timezone.timedelta(days=2),
    )
    # A day old, so the latest daily slot (whatever the time of day) already covers them.
    day_ago = timezone.now() - timezone.timedelta(days=1)
    ArticleFactory(title="Zinsen steigen", lead="Warum das gut ist.", published_at=day_ago)
    ArticleFactory(title="Energie im Wandel", lead="Ein Kommentar.", published_at=day_ago)
    return newsletter


@pytest.fixture
def rates_in_english(newsletter_with_articles):
    """The English translation of one of the two articles; the other stays German only."""
    from articles.models import Article
    from tests.articles.factories import english_translation_save

    return english_translation_save(
        Article.objects.get(title="Zinsen steigen"),
        title="Rates are rising",
        slug="rates-are-rising",
        lead="Why that is good.",
    )


def seed_subscribers(newsletter, n: int, *, language_every: int = 0, prefix: str = "r") -> list:
    """Confirmed subscribers in one INSERT … SELECT (no Python loop over rows)."""
    table = Subscription._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (email, newsletter_id, state, language, frequency, created_at,
                                 confirmed_at, confirmation_sends, soft_bounces, address_hmac,
                                 confirm_round)
            SELECT %s || g || '@example.org', %s, %s,
                   CASE WHEN %s > 0 AND g %% %s = 0 THEN 'en' ELSE 'de' END,
                   'daily', now(), now() - interval '1 day', 1, 0, '', 1
            FROM generate_series(1, %s) g
            """,
            [
                prefix,
                newsletter.pk,
                SubscriptionState.CONFIRMED,
                language_every,
                max(language_every, 1),
                n,
            ],
        )
    return list(
        Subscription.objects.filter(newsletter=newsletter, email__startswith=prefix).order_by("id")
    )


@pytest.fixture
def fake_mailgun(live_server, settings) -> Iterator[FakeMailgun]:
    """The fake provider, pointed at the live server's anymail endpoint with its webhooks off:
    a test that needs tracking events asks with ``fake_mailgun.webhook_mode = "first"`` (one
    event per accepted call, enough to prove a call arrived) or ``"all"`` (one per recipient),
    and waits for those it relies on with ``wait_webhooks()``."""
    user, password = WEBHOOK_SECRET.split(":")
    host = live_server.url.split("://", 1)[1]
    fake = FakeMailgun(
        webhook_url=f"http://{user}:{password}@{host}/anymail/mailgun/tracking/",
        signing_key=SIGNING_KEY,
        webhook_mode="off",
    ).start()
    # Only the configured provider's tracking URL exists.
    settings.ANYMAIL_ESP = "mailgun"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "test",
        "MAILGUN_API_URL": fake.api_url,
        "MAILGUN_SENDER_DOMAIN": "example.org",
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    try:
        yield fake
    finally:
        # While the test's settings are still in place: events the test did not wait for are
        # dropped, a post still under way after the webhook timeout is an error (TimeoutError).
        fake.stop()
    # Every webhook the project answered with an error is a failure of the test.
    assert not fake.stats.webhook_errors, fake.stats.webhook_errors[:5]


def worker_env(fake: FakeMailgun, **extra: str) -> dict[str, str]:
    env = {
        "ANYMAIL_ESP": "mailgun",
        "ANYMAIL_API_URL": fake.api_url,
        "ANYMAIL_API_KEY": "test",
        "ANYMAIL_SENDER_DOMAIN": "example.org",
        "ANYMAIL_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "ANYMAIL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ANYMAIL_REQUESTS_TIMEOUT": "5",
        "NEWSLETTER_BATCH_SIZE": "50",
        "NEWSLETTER_LEASE_SECONDS": "15",
        "NEWSLETTER_HEARTBEAT_SECONDS": "1",
        "NEWSLETTER_CALL_DEADLINE_SECONDS": "5",
        "NEWSLETTER_LEASE_MARGIN_SECONDS": "1",
        "NEWSLETTER_UNCERTAIN_GRACE_SECONDS": "4",
        "NEWSLETTER_RETRY_BASE_SECONDS": "0.5",
        "NEWSLETTER_RETRY_MAX_SECONDS": "3",
        "NEWSLETTER_DRAIN_TASKS": "4",
    }
    env.update(extra)
    return env


def run_until_final(
    digest_id: int, *, timeout: float = 120, tick: Callable[[], object] | None = None
) -> Digest:
    """Play the beat: run the periodic reconcile every half second until the digest is final.

    The reconcile is what wakes stalled digests in production (every 30 s there); calling it
    here is the same code path, only more often.
    """
    from newsletter.services.digests import digest_kick_stalled

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        digest = Digest.objects.get(pk=digest_id)
        if digest.state in FINAL_STATES:
            return digest
        (tick or digest_kick_stalled)()
        time.sleep(0.5)
    digest = Digest.objects.get(pk=digest_id)
    raise AssertionError(f"digest {digest_id} not final after {timeout}s: {digest.state}")


@pytest.fixture
def mailgun_in_process(fake_mailgun, settings) -> FakeMailgun:
    """Send from the test process itself through anymail's real Mailgun backend to the fake."""
    # The per-process connection cache lives where _provider_connection looks it up.
    from newsletter.services.digest_sending import provider

    settings.ANYMAIL_ESP = "mailgun"
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.NEWSLETTER_BATCH_SIZE = 50
    settings.NEWSLETTER_UNCERTAIN_GRACE_SECONDS = 2
    provider._connections.clear()
    yield fake_mailgun
    provider._connections.clear()


def deliveries_write(digest) -> list[int]:
    """Delivery rows for the digest's whole audience at once, without batches: for tests that
    build batches by hand (claims write the rows of the readers they take)."""
    digest.refresh_from_db()
    rows = mailing_audience_rows(mailing_audience_snapshot(digest)).order_by("id")
    created = Delivery.objects.bulk_create(
        Delivery(digest=digest, subscription_id=pk, language=language) for pk, language in rows
    )
    return [delivery.pk for delivery in created]


def claims_all(digest_id: int) -> list:
    """Claim batches until nothing is left (without sending them): every reader of the
    audience then has their delivery row."""
    batches = []
    while (batch := batch_claim(digest_id=digest_id)) is not None:
        batches.append(batch)
    return batches


def claimed_readers(digest) -> dict[int, int]:
    """Subscription id -> how many of the digest's batches cover its delivery row."""
    covered: dict[int, int] = {}
    for batch in Batch.objects.filter(digest=digest):
        for sub_id in Delivery.objects.filter(
            digest=digest, pk__gte=batch.first_delivery_id, pk__lte=batch.last_delivery_id
        ).values_list("subscription_id", flat=True):
            covered[sub_id] = covered.get(sub_id, 0) + 1
    return covered
