"""The newsletter admin at the size of the biggest lists: p95 and query count per page.

Seeds, in a database of its own, N subscriptions (80 % confirmed, 10 % pending, 10 %
unsubscribed, signed up over three years) and about 5N consent and provider events with
set-based SQL (generate_series), then requests each page ROUNDS times as a logged-in
superuser through Django's test client with production settings (DEBUG off) and prints
p50/p95 and the number of SQL queries of each page and the time of the dashboard's daily
roll-up; then it sends one campaign to every confirmed reader through two real Celery
workers and the fake provider, and checks that each was mailed exactly once. One JSON line
on stdout.

    .venv/bin/python bench/admin.py --n 1000000
    .venv/bin/python bench/admin.py            # N = 10,000,000 (disk: about 30 GB)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    base_env,
    consent_chain_link,
    db_recreate,
    log,
    machine_info,
    redis_flush,
    secondary_indexes_set_aside,
    stop,
)
from bench.digest import Bench  # noqa: E402
from bench.digest import parse_args as digest_args  # noqa: E402

HMAC_KEY = "bench-only-address-key"
QUEUE = "bench-admin"
# Their indexes are set aside while the seed writes and built once afterwards.
SEEDED_TABLES = (
    "newsletter_subscription",
    "newsletter_consentevent",
    "newsletter_delivery",
    "newsletter_providerevent",
)
LIMIT_MS = 300


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="subscriptions to seed")
    parser.add_argument("--rounds", type=int, default=20, help="requests per page")
    parser.add_argument("--db", default="bench_admin", help="private database (dropped first)")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument(
        "--reuse", action="store_true", help="measure an already seeded database again"
    )
    parser.add_argument(
        "--no-campaign", action="store_true", help="skip sending the campaign to every reader"
    )
    parser.add_argument(
        "--seed-only", action="store_true", help="seed and stop (measure later with --reuse)"
    )
    parser.add_argument(
        "--chain",
        action="store_true",
        help="also link the ledger's hash chain (no page reads it; 30 M links take an hour "
        "here, and bench/consent_verify.py measures the chain at this size)",
    )
    return parser.parse_args(argv)


SEED = [
    # Subscriptions: signed up over three years, ids in sign-up order.
    """
    INSERT INTO newsletter_subscription (email, address_hmac, newsletter_id, state, language,
        frequency, created_at, requested_at, confirm_round, confirmed_at, unsubscribed_at,
        confirmation_sends, soft_bounces)
    SELECT e, encode(hmac(e, %(key)s, 'sha256'), 'hex'), %(nl)s,
           CASE WHEN g %% 10 = 0 THEN 'pending' WHEN g %% 10 = 1 THEN 'unsubscribed'
                ELSE 'confirmed' END,
           CASE WHEN g %% 7 = 0 THEN 'en' ELSE 'de' END, 'daily', t, t, 1,
           -- Never in the future: a mailing goes to readers confirmed by its start.
           CASE WHEN g %% 10 = 0 THEN NULL ELSE LEAST(t + interval '1 hour', now()) END,
           CASE WHEN g %% 10 = 1 THEN LEAST(t + interval '30 days', now()) END, 1, 0
    FROM (SELECT g, 'leser' || g || '@example.org' AS e,
                 now() - interval '1095 days' * (1 - g::float / %(n)s) AS t
          FROM generate_series(1, %(n)s) g) x
    """,
    # Ledger: a request and a confirmation mail for everyone, a confirmation for 90 %, a
    # revocation for 10 %, a change of preferences (language, frequency, topics) for 40 %.
    """
    INSERT INTO newsletter_consentevent (subscription_id, newsletter_id, address_hmac, kind, at,
        ip, user_agent, url, channel, form, consent_text_id, text_sha256, message_id, note,
        chain_seq, prev_hash, row_hash, personal_digest, prune_digest, redacted)
    SELECT s.id, s.newsletter_id, s.address_hmac, k.kind,
           LEAST(s.created_at + k.delay, now()), '203.0.113.1', 'Bench', '', k.channel,
           'signup_box',
           CASE WHEN k.kind = 'requested' THEN %(text)s END,
           CASE WHEN k.kind = 'requested' THEN %(sha)s ELSE '' END, '', '',
           -- chained in time order afterwards (consent_chain_link), as event_record appends
           row_number() OVER (ORDER BY s.created_at + k.delay, s.id, k.delay), '', '', '', '',
           false
    FROM newsletter_subscription s
    CROSS JOIN (VALUES ('requested', interval '0', ''),
                       ('confirmation_sent', interval '1 minute', ''),
                       ('confirmed', interval '1 hour', ''),
                       ('revoked', interval '30 days', 'link'),
                       ('preferences_changed', interval '2 days', '')) AS k(kind, delay, channel)
    WHERE s.newsletter_id = %(nl)s
      AND (k.kind IN ('requested', 'confirmation_sent')
           OR (k.kind = 'confirmed' AND s.confirmed_at IS NOT NULL)
           OR (k.kind = 'revoked' AND s.state = 'unsubscribed')
           OR (k.kind = 'preferences_changed' AND s.id %% 5 < 2))
    """,
    # One digest to everyone confirmed, sent in batches of 1,000.
    """
    INSERT INTO newsletter_delivery (digest_id, subscription_id, language, state, reason)
    SELECT %(digest)s, id, language, NULL, '' FROM newsletter_subscription
    WHERE newsletter_id = %(nl)s AND state = 'confirmed' ORDER BY id
    """,
    """
    INSERT INTO newsletter_batch (digest_id, first_delivery_id, last_delivery_id, size, language,
        sent_count, state, esp, attempts, error, provider_message_ids, created_at, sent_at)
    SELECT %(digest)s, min(id), max(id), count(*), 'de', count(*), 'sent', 'mailgun', 1, '',
           '[]', now(), now()
    FROM newsletter_delivery WHERE digest_id = %(digest)s GROUP BY (id / 1000)
    """,
    # Provider events: two per delivery (accepted, delivered), a bounce or complaint per 200.
    """
    INSERT INTO newsletter_providerevent (esp, event_id, event_type, recipient, delivery_id,
        digest_id, occurred_at, received_at, detail)
    SELECT 'mailgun', d.id || '-' || k.t, k.t, '', d.id, d.digest_id,
           now() - interval '1 day' * (d.id %% 90),
           now() - interval '1 day' * (d.id %% 90), ''
    FROM newsletter_delivery d
    CROSS JOIN (VALUES ('queued'), ('delivered'), ('bounced'), ('complained')) AS k(t)
    WHERE d.digest_id = %(digest)s
      AND (k.t IN ('queued', 'delivered') OR (k.t = 'bounced' AND d.id %% 200 = 0)
           OR (k.t = 'complained' AND d.id %% 200 = 1))
    """,
]


def seed(n: int, *, chain: bool) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from newsletter.models import ConsentText, Digest, Newsletter
    from newsletter.services.consent import consent_text_default_publish

    newsletter = Newsletter.objects.create(
        name="Bench",
        slug="bench",
        sender_name="Redaktion",
        sender_email="digest@zeitung.example",
        starts_at=timezone.now() - timezone.timedelta(days=1200),
    )
    consent_text_default_publish(newsletter=newsletter)
    text = ConsentText.objects.filter(newsletter=newsletter).first()
    now = timezone.now()
    digest = Digest.objects.create(
        newsletter=newsletter,
        frequency="daily",
        slot=now - timezone.timedelta(days=1),
        state="done",
        period_start=now - timezone.timedelta(days=2),
        period_end=now - timezone.timedelta(days=1),
        article_ids=[],
        fanned_out_at=now - timezone.timedelta(days=1),
        finished_at=now - timezone.timedelta(days=1),
    )
    params = {
        "key": HMAC_KEY,
        "nl": newsletter.pk,
        "n": n,
        "text": text.pk,
        "sha": text.sha256,
        "digest": digest.pk,
    }
    with contextlib.ExitStack() as stack:
        for table in SEEDED_TABLES:
            stack.enter_context(secondary_indexes_set_aside(table))
        with connection.cursor() as cursor:
            for number, sql in enumerate(SEED, start=1):
                t0 = time.monotonic()
                cursor.execute(sql, params)
                seconds = time.monotonic() - t0
                log(f"seed step {number}/{len(SEED)}: {cursor.rowcount} rows, {seconds:.0f}s")
            cursor.execute(
                "UPDATE newsletter_digest SET recipients = (SELECT count(*) FROM "
                "newsletter_delivery WHERE digest_id = %(digest)s) WHERE id = %(digest)s",
                params,
            )
        if chain:
            consent_chain_link()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    User.objects.create_superuser("bench", "bench@example.org", "bench")
    return {"digest": digest.pk, "newsletter": newsletter.pk}


def counts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        result = {}
        for table in ("subscription", "consentevent", "providerevent", "delivery"):
            cursor.execute(f"SELECT count(*) FROM newsletter_{table}")
            result[table] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        result["database_size"] = cursor.fetchone()[0]
    return result


def measure(pages: dict[str, str], rounds: int, *, cold: bool = False) -> dict:
    """p50/p95 and query counts per page; `cold` empties the cache before every request
    (the dashboard's figures are otherwise built once per five minutes)."""
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost")
    # The seeded superuser, without a login request: django-axes guards authenticate() and
    # wants the request it throttles, which the test client's login() does not pass.
    client.force_login(User.objects.get(username="bench"))
    figures = {}
    for name, url in pages.items():
        response = client.get(url)  # warm: content types, templates, the plan cache
        assert response.status_code == 200, (url, response.status_code)
        times, queries = [], set()
        for _ in range(rounds):
            if cold:
                cache.clear()
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries.add(len(ctx.captured_queries))
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        figures[name] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(p95, 1),
            "queries": sorted(queries),
            "ok": p95 <= LIMIT_MS and len(queries) == 1,
        }
        log(f"{name}: p95 {p95:.0f} ms, queries {sorted(queries)}")
    return figures


def roll_up() -> dict:
    """The dashboard's daily roll-up: the first run counts 90 days, a beat tick two."""
    from newsletter.services.stats import daily_counts_roll_up

    t0 = time.monotonic()
    rows = daily_counts_roll_up()
    first = time.monotonic() - t0
    t0 = time.monotonic()
    daily_counts_roll_up()
    tick = time.monotonic() - t0
    log(f"roll-up: 90 days {first:.1f}s ({rows} rows), a beat tick {tick:.1f}s")
    return {"first_run_seconds": round(first, 2), "tick_seconds": round(tick, 2), "rows": rows}


def campaign_send(newsletter_id: int, *, database_url: str, redis_url: str) -> dict:
    """Confirm a campaign to every confirmed reader as the admin does and send it through two
    real workers and the fake provider (bench/digest.py's machinery, attached to this
    database): the start (audience fixed and counted) in seconds, the send rate, worker peak
    memory, and what the provider accepted against who was entitled."""
    from newsletter.models import Newsletter

    bench = Bench(
        digest_args(
            ["--campaign", "--workers", "2", "--redis-db", redis_url.rsplit("/", 1)[-1]]
            + ["--timeout", "7200", "--provider-nice", "19"]
        )
    )
    # This process enqueues the campaign's tasks on its own default queue.
    bench.queue = QUEUE
    bench.attach(database_url=database_url, redis_url=redis_url)
    # The mail's footer names the publisher (a seed from before this step has none).
    Newsletter.objects.filter(pk=newsletter_id, imprint_text="").update(
        imprint_text="Verlag Beispiel GmbH, Musterstraße 1, 10115 Berlin",
        imprint_url="https://zeitung.example/impressum/",
        privacy_url="https://zeitung.example/datenschutz/",
    )
    try:
        newsletter = Newsletter.objects.get(pk=newsletter_id)
        mailing_id = bench.trigger(newsletter)
        result = bench.wait_and_count(mailing_id, newsletter_id)
    finally:
        bench.stop_workers()
        stop(bench.provider)
    log(f"campaign: {json.dumps(result)}")
    mailing_remove(mailing_id)
    return {
        key: result[key]
        for key in (
            "n",
            "state",
            "fanout_s",
            "first_send_s",
            "total_s",
            "recipients_per_s",
            "worker_peak_rss_mb",
            "accepted",
            "duplicates",
            "missing",
            "unconfirmed",
            "loadavg",
        )
    }


def mailing_remove(mailing_id: int) -> None:
    """Remove the campaign's mailing with its rows, so that a --reuse run measures the same
    pages and sends to the same readers again."""
    from django.db import connection

    from newsletter.models import Batch, Campaign, Delivery, Digest

    campaign_id = Digest.objects.get(pk=mailing_id).campaign_id
    with connection.cursor() as cursor:
        for model in (Delivery, Batch):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE digest_id = %s", [mailing_id])
        cursor.execute(f"VACUUM ANALYZE {Delivery._meta.db_table}")
    Digest.objects.filter(pk=mailing_id).delete()
    Campaign.objects.filter(pk=campaign_id).delete()


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis_flush(redis_url)
    if args.reuse:
        database_url = f"postgres://postgres@127.0.0.1:5432/{args.db}"
    else:
        database_url = db_recreate(args.db)
    env = base_env(
        database_url=database_url,
        redis_url=redis_url,
        queue=QUEUE,
        NEWSLETTER_ADDRESS_HMAC_KEY=HMAC_KEY,
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    if not args.reuse:
        log(f"migrating {args.db}")
        call_command("migrate", verbosity=0)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        t0 = time.monotonic()
        ids = seed(args.n, chain=args.chain)
        seed_seconds = round(time.monotonic() - t0)
        log(f"seeded in {seed_seconds}s")
        if args.seed_only:
            return {"n": args.n, "seed_seconds": seed_seconds, "rows": counts()}
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # a database seeded before the last migrations
        from newsletter.models import Digest

        digest = Digest.objects.order_by("id").first()
        ids = {"digest": digest.pk, "newsletter": digest.newsletter_id}
        seed_seconds = None
    from newsletter.models import Subscription

    middle = Subscription.objects.filter(email=f"leser{args.n // 2 + 3}@example.org").first()
    pages = {
        "dashboard": "/admin/newsletter/",
        "subscriptions": "/admin/newsletter/subscription/",
        "subscriptions_filter": "/admin/newsletter/subscription/?state__exact=pending",
        "subscriptions_search": f"/admin/newsletter/subscription/?q={middle.email}",
        "subscription_detail": f"/admin/newsletter/subscription/{middle.pk}/change/",
        "suppression_search": f"/admin/newsletter/suppression/?q={middle.email}",
        "digests": "/admin/newsletter/digest/",
        "campaigns": "/admin/newsletter/campaign/",
        "digest_report": f"/admin/newsletter/digest/{ids['digest']}/bericht/",
    }
    rolled = roll_up()
    result = {
        "n": args.n,
        "rows": counts(),
        "seed_seconds": seed_seconds,
        "limit_ms": LIMIT_MS,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "roll_up": rolled,
        "pages": measure(pages, args.rounds),
        "dashboard_cold": measure(
            {"dashboard_rebuilt": pages["dashboard"]}, max(3, args.rounds // 4), cold=True
        ),
    }
    if not args.no_campaign:
        result["campaign"] = campaign_send(
            ids["newsletter"], database_url=database_url, redis_url=redis_url
        )
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine_info(redis_url=redis_url)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
