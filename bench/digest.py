"""Digest throughput, end to end, counted at the provider.

    .venv/bin/python bench/digest.py                 # N = 20,000, one run
    .venv/bin/python bench/digest.py --n 200000 --runs 3
    .venv/bin/python bench/digest.py --n 1000000 --naive-n 0
    .venv/bin/python bench/digest.py --campaign --n 200000 --naive-n 0 --raw-n 0
                                                     # a campaign instead of a digest
    .venv/bin/python bench/digest.py --faults        # fail every 7th call, latency, rate limit,
                                                     # three SIGKILLs (kill_3x)
    .venv/bin/python bench/digest.py --profile       # cProfile one worker during the digests

It builds its own PostgreSQL database and Redis db, seeds N confirmed subscribers (plus pending,
unsubscribed and suppressed ones that must be left out) with set-based SQL, starts the suite's
fake Mailgun (tests/fakes/mailgun.py) as a process of its own in its lean mode and two real
Celery workers, and starts a digest through the scheduler's own service (`digest_start_now`,
the path of `send_digest --now` and the beat tick). In the same run it measures the naive path
(one task, one render, one API call per recipient) and the raw ceiling (anymail batch calls
from one loop, no database) on subsets.
Progress goes to stderr; the last line of stdout is one JSON object, which carries the
machine it ran on (CPU model, cores, load before and after, Python/Django/PostgreSQL/Redis
versions): absolute rates move between machines, ratios travel.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    PY,
    base_env,
    cpu_seconds,
    db_recreate,
    http_json,
    loadavg,
    log,
    machine_info,
    median,
    peak_rss_mb,
    process_tree,
    redis_flush,
    spawn,
    stop,
)

FINAL = {"done", "cancelled", "skipped"}
_LEASE_SETTINGS = (
    "NEWSLETTER_LEASE_SECONDS",
    "NEWSLETTER_HEARTBEAT_SECONDS",
    "NEWSLETTER_CALL_DEADLINE_SECONDS",
    "NEWSLETTER_LEASE_MARGIN_SECONDS",
    "NEWSLETTER_UNCERTAIN_GRACE_SECONDS",
)
# kill_3x: leases of a few seconds, renewed every second, so a killed worker's batch is free
# quickly; the call deadline still covers a 500 ms provider comfortably.
KILL_SETTINGS = {
    "NEWSLETTER_LEASE_SECONDS": "5",
    "NEWSLETTER_HEARTBEAT_SECONDS": "1",
    "NEWSLETTER_CALL_DEADLINE_SECONDS": "3",
    "NEWSLETTER_LEASE_MARGIN_SECONDS": "0.5",
    "NEWSLETTER_UNCERTAIN_GRACE_SECONDS": "30",
}
_LOG_LINE = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO \S+ \[[^\]]*\] "
_READY = re.compile(_LOG_LINE + r".* ready\.$", re.M)
_CLAIMED = re.compile(_LOG_LINE + r"claimed batch ", re.M)
HMAC_KEY = "bench-only-address-key"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="confirmed recipients")
    parser.add_argument(
        "--campaign",
        action="store_true",
        help="send a campaign (confirmed through campaign_send) instead of a digest: the same "
        "pipeline, so the same figures",
    )
    parser.add_argument("--runs", type=int, default=1, help="digests to send; medians reported")
    parser.add_argument("--faults", action="store_true", help="also run the fault scenarios")
    parser.add_argument(
        "--fault-scenarios",
        default="fail_every_7,latency_500ms,rate_limit,kill_3x",
        help="which fault scenarios --faults runs (comma-separated)",
    )
    parser.add_argument("--naive-n", type=int, default=600, help="naive subset (0 = skip)")
    parser.add_argument("--raw-n", type=int, default=20_000, help="raw-ceiling subset (0 = skip)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (-c 1 each)")
    parser.add_argument("--rate", type=float, default=2_000, help="rate limit scenario, msgs/s")
    parser.add_argument(
        "--kill-n", type=int, default=30_000, help="recipients of the kill_3x scenario"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the first worker's CPU during the digests (bench/worker_profile.py) "
        "and report its top entries per recipient",
    )
    parser.add_argument("--profile-top", type=int, default=25, help="entries --profile reports")
    parser.add_argument("--db", default="bench_digest", help="PostgreSQL database (recreated)")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database number")
    parser.add_argument("--timeout", type=float, default=0, help="per digest, 0 = from N")
    parser.add_argument(
        "--worker-nice", type=int, default=0, help="run the workers under `nice -n` (web first)"
    )
    parser.add_argument(
        "--provider-nice",
        type=int,
        default=0,
        help="run the fake provider under `nice -n`: it stands in for an ESP on other machines",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the workers (a documented setting), repeatable",
    )
    return parser.parse_args(argv)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-digest-"))
        self.queue = f"bench-digest-{uuid.uuid4().hex[:8]}"
        self.workers: list = []
        self.worker_env_extra: dict[str, str] = {}
        self.profile_prefix = self.tmp / "worker0"

    # --- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        args = self.args
        redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
        redis_flush(redis_url)
        database_url = db_recreate(args.db)
        self._provider_and_env(database_url, redis_url)
        os.environ.update(self.env)
        import django

        django.setup()
        from django.core.management import call_command

        log(f"migrating {args.db}")
        call_command("migrate", verbosity=0)
        call_command("seed_demo", verbosity=0)
        self._pgcrypto()
        self.start_workers()

    def attach(self, *, database_url: str, redis_url: str) -> None:
        """Run beside another bench that already set Django up on a migrated, seeded db
        with CELERY_TASK_DEFAULT_QUEUE set to this bench's queue."""
        self._provider_and_env(database_url, redis_url)
        self._pgcrypto()
        self.start_workers()

    def _pgcrypto(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")

    def _provider_and_env(self, database_url: str, redis_url: str) -> None:
        self.provider = spawn(
            # The suite's fake provider in its lean mode (counts only), in a process of its
            # own so that its CPU time is its own and never shares the bench's interpreter.
            [PY, "-m", "tests.fakes.mailgun"],
            env=dict(os.environ),
            log_path=self.tmp / "provider.log",
            pipe_stdout=True,
            nice=self.args.provider_nice,
        )
        self.provider_port = int(self.provider.stdout.readline())
        self.provider_url = f"http://127.0.0.1:{self.provider_port}"
        self.env = base_env(
            database_url=database_url,
            redis_url=redis_url,
            queue=self.queue,
            ANYMAIL_ESP="mailgun",
            ANYMAIL_API_URL=f"{self.provider_url}/v3",
            ANYMAIL_API_KEY="bench",
            ANYMAIL_SENDER_DOMAIN="zeitung.example",
            ANYMAIL_REQUESTS_TIMEOUT="30",
            NEWSLETTER_ADDRESS_HMAC_KEY=HMAC_KEY,
            **dict(item.split("=", 1) for item in self.args.set),
        )

    def stop_workers(self) -> None:
        for worker in self.workers:
            stop(worker)
        self.workers = []

    def start_workers(self, **extra: str) -> None:
        self.stop_workers()
        self.worker_env_extra = extra
        for i in range(self.args.workers):
            profile = (
                {"BENCH_PROFILE": str(self.profile_prefix)} if self.args.profile and i == 0 else {}
            )
            proc, log_path = self._spawn_worker(self.tmp / f"worker{i}.log", **profile)
            self.workers.append(proc)
            deadline = time.monotonic() + 60
            while b" ready." not in log_path.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {i} did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
        self._configure_in_process(extra)

    def kill_and_restart_worker(self, i: int, label: str) -> dict:
        """SIGKILL worker i with its pool child (mid-task: nothing is acknowledged, its
        messages stay with the broker until the visibility timeout) and start a new one at
        once; returns when and where to read how soon the new one got work."""
        old = self.workers[i]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL)
        old.wait(10)
        stop(old)
        spawned = datetime.now()
        proc, log_path = self._spawn_worker(self.tmp / f"worker{i}-{label}.log")
        self.workers[i] = proc
        return {"spawned": spawned, "log": log_path}

    def _spawn_worker(self, log_path: Path, **profile: str):
        # INFO so that the worker's " ready." and "claimed batch" lines show.
        env = {**self.env, "LOG_LEVEL": "INFO", **self.worker_env_extra, **profile}
        log_path.write_bytes(b"")
        proc = spawn(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--pool=prefork",
                "--concurrency=1",
                "-Q",
                self.queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--include=bench.naive,bench.worker_profile",
                "-n",
                f"bench-{uuid.uuid4().hex[:6]}@%h",
            ],
            env=env,
            log_path=log_path,
            nice=self.args.worker_nice,
        )
        return proc, log_path

    def _configure_in_process(self, extra: dict[str, str]) -> None:
        # The bench process plays the beat (reconcile) and needs the workers' delivery settings.
        from django.conf import settings

        settings.NEWSLETTER_SEND_RATE = float(extra.get("NEWSLETTER_SEND_RATE", 0))
        for name in _LEASE_SETTINGS:
            if name in extra:
                setattr(settings, name, float(extra[name]))

    def worker_pids(self) -> list[list[int]]:
        return [process_tree(w.pid) for w in self.workers]

    # --- seeding -------------------------------------------------------------------------
    def seed_newsletter(self, label: str, n: int):
        """A newsletter of its own per digest, with N confirmed subscribers and the ones that
        must be left out (pending, unsubscribed, confirmed but on the suppression list)."""
        from django.db import connection
        from django.utils import timezone

        from newsletter.models import Newsletter, Subscription, Suppression

        newsletter = Newsletter.objects.create(
            name=f"Bench {label}",
            slug=f"bench-{label}-{uuid.uuid4().hex[:6]}",
            sender_name="Redaktion",
            sender_email="digest@zeitung.example",
            imprint_text="Verlag Beispiel GmbH, Musterstraße 1, 10115 Berlin",
            imprint_url="https://zeitung.example/impressum/",
            privacy_url="https://zeitung.example/datenschutz/",
            starts_at=timezone.now() - timezone.timedelta(days=7),
            offers_daily=True,
            offers_weekly=False,
        )
        table = Subscription._meta.db_table
        extra = max(10, n // 50)
        t0 = time.monotonic()
        with connection.cursor() as cursor:
            for prefix, state, count in (
                ("b", "confirmed", n),
                ("p", "pending", extra),
                ("u", "unsubscribed", extra),
                ("s", "confirmed", max(5, n // 1000)),
            ):
                cursor.execute(
                    f"""
                    INSERT INTO {table} (email, address_hmac, newsletter_id, state, language,
                        frequency, created_at, requested_at, confirm_round, confirmed_at,
                        unsubscribed_at, confirmation_sends, soft_bounces)
                    SELECT e, encode(hmac(e, %(key)s, 'sha256'), 'hex'), %(nl)s, %(state)s,
                           CASE WHEN g %% 10 = 0 THEN 'en' ELSE 'de' END, 'daily',
                           now() - interval '2 days', now() - interval '2 days', 1,
                           CASE WHEN %(state)s = 'pending' THEN NULL
                                ELSE now() - interval '1 day' END,
                           CASE WHEN %(state)s = 'unsubscribed' THEN now() END, 1, 0
                    FROM (SELECT g, %(prefix)s || g || '@example.org' AS e
                          FROM generate_series(1, %(count)s) g) x
                    """,
                    {
                        "key": HMAC_KEY,
                        "nl": newsletter.pk,
                        "state": state,
                        "prefix": prefix,
                        "count": count,
                    },
                )
            cursor.execute(
                f"""
                INSERT INTO {Suppression._meta.db_table} (address_hmac, reason, created_at)
                SELECT address_hmac, 'bounce', now() FROM {table}
                WHERE newsletter_id = %s AND email LIKE 's%%'
                ON CONFLICT (address_hmac) DO NOTHING
                """,
                [newsletter.pk],
            )
            cursor.execute(f"ANALYZE {table}")
        log(
            f"seeded {label}: {n} confirmed (+{3 * extra} left out) in {time.monotonic() - t0:.1f}s"
        )
        return newsletter

    # --- one digest ----------------------------------------------------------------------
    def send_digest(self, label: str, n: int, provider_config: dict | None = None) -> dict:
        newsletter = self.seed_newsletter(label, n)
        http_json(
            f"{self.provider_url}/_fake/config",
            {"fail_every": 0, "latency": 0, **(provider_config or {})},
        )
        digest_id = self.trigger(newsletter)
        result = self.wait_and_count(digest_id, newsletter.pk)
        result["label"] = label
        log(f"{label}: {json.dumps(result)}")
        return result

    def send_digest_with_kills(
        self, label: str, n: int, provider_config: dict, kills: int = 3
    ) -> dict:
        """One digest during which a worker is SIGKILLed `kills` times (after 10 %, 25 %,
        40 % … of the recipients were accepted, alternating workers) and restarted at once.
        The bench also plays the provider's tracking webhooks for batches left uncertain
        (the lean fake posts none), as Mailgun would report the calls it accepted."""
        newsletter = self.seed_newsletter(label, n)
        http_json(f"{self.provider_url}/_fake/config", {"fail_every": 0, **provider_config})
        digest_id = self.trigger(newsletter)
        restarts: list[dict] = []
        polled = {"stats": 0.0, "tracking": 0.0}

        def on_tick() -> None:
            now = time.monotonic()
            if len(restarts) < kills and now - polled["stats"] > 0.2:
                polled["stats"] = now
                stats = http_json(f"{self.provider_url}/_fake/stats")["digests"]
                accepted = stats.get(str(digest_id), {}).get("accepted", 0)
                # Early enough that each restarted worker still finds work to claim.
                if accepted >= n * (0.1 + 0.15 * len(restarts)):
                    worker = len(restarts) % len(self.workers)
                    log(f"{label}: SIGKILL worker {worker} at {accepted} accepted")
                    restarts.append(self.kill_and_restart_worker(worker, f"{label}-{worker}"))
            if now - polled["tracking"] > 1:
                polled["tracking"] = now
                self.track_uncertain(digest_id)

        result = self.wait_and_count(digest_id, newsletter.pk, on_tick=on_tick)
        result["label"] = label
        # A killed worker takes its CPU counters with it: no CPU figure for this digest.
        result["cpu_us_per_recipient"] = None
        result["kills"] = len(restarts)
        result["start_to_first_claim_s"] = [self._first_claim(r) for r in restarts]
        log(f"{label}: {json.dumps(result)}")
        return result

    @staticmethod
    def _first_claim(restart: dict) -> dict:
        """Seconds from a restarted worker's spawn (and its ready line) to its first claim."""
        text = restart["log"].read_text(errors="replace")
        ready, claimed = _READY.search(text), _CLAIMED.search(text)

        def at(match):
            return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f") if match else None

        first = at(claimed)
        return {
            "from_spawn": round((first - restart["spawned"]).total_seconds(), 2) if first else None,
            "from_ready": round((first - at(ready)).total_seconds(), 2)
            if first and ready
            else None,
        }

    def track_uncertain(self, digest_id: int) -> int:
        """The provider's tracking events for uncertain batches it did accept: one delivered
        event for the first accepted recipient of each (what proves a call arrived)."""
        from newsletter.models import Batch, BatchState, Delivery, ProviderEvent

        uncertain = list(
            Batch.objects.filter(digest_id=digest_id, state=BatchState.UNCERTAIN).values_list(
                "pk", "attempts", "first_delivery_id", "last_delivery_id"
            )
        )
        if not uncertain:
            return 0
        dump = self.tmp / f"tracking-{digest_id}.tsv"
        http_json(f"{self.provider_url}/_fake/dump", {"digest": str(digest_id), "path": str(dump)})
        accepted = {line.split("\t", 1)[0] for line in dump.read_text().splitlines()}
        proven = 0
        for batch_id, attempts, first, last in uncertain:
            rows = Delivery.objects.filter(
                digest_id=digest_id, pk__gte=first, pk__lte=last, state__isnull=True
            ).values_list("pk", "subscription__email")
            hit = next(((pk, email) for pk, email in rows if email in accepted), None)
            if hit is not None:
                ProviderEvent.objects.get_or_create(
                    esp="mailgun",
                    event_id=f"bench-{batch_id}-{attempts}",
                    defaults={
                        "event_type": "delivered",
                        "recipient": hit[1],
                        "delivery_id": hit[0],
                    },
                )
                proven += 1
        return proven

    def trigger(self, newsletter) -> int:
        """Start the digest through the scheduler's own service (as `send_digest --now`), or
        confirm a campaign to every confirmed reader (`--campaign`) as the admin does."""
        from newsletter.models import Campaign
        from newsletter.services.digests import digest_start_now
        from newsletter.services.mailings import campaign_send

        self.cpu_before = cpu_seconds([p for tree in self.worker_pids() for p in tree])
        self.provider_cpu_before = cpu_seconds([self.provider.pid])
        self.load_before = os.getloadavg()[0]
        self.started = time.monotonic()
        if self.args.campaign:
            campaign = Campaign.objects.create(
                newsletter=newsletter,
                name="Bench",
                subject="Ein Angebot",
                body_markdown="## Ein Angebot\n\nFür **alle** Leser, mit [Link](https://zeitung.example/).",
            )
            return campaign_send(campaign_id=campaign.pk).pk
        return digest_start_now(newsletter=newsletter).digest.pk

    def wait_and_count(self, digest_id: int, newsletter_id: int, on_tick=None) -> dict:
        """Play the beat until the digest is final, then take the figures and the counts."""
        from django.utils import timezone

        from newsletter.models import Batch, Digest
        from newsletter.services.digests import digest_kick_stalled

        started = self.started
        timeout = self.args.timeout or max(180.0, self.args.n / 300)
        last_kick = time.monotonic()
        beat = float(self.env.get("NEWSLETTER_RECONCILE_SECONDS") or 5)
        while True:
            row = Digest.objects.filter(pk=digest_id).values("state").get()
            if row["state"] in FINAL:
                break
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"digest {digest_id} not final after {timeout:.0f}s: {row}")
            # The bench plays the beat's periodic reconcile, at the production interval.
            if time.monotonic() - last_kick > beat:
                digest_kick_stalled(now=timezone.now())
                last_kick = time.monotonic()
            if on_tick is not None:
                on_tick()
            time.sleep(0.05)
        wall = time.monotonic() - started
        trees = self.worker_pids()
        cpu = cpu_seconds([p for tree in trees for p in tree]) - self.cpu_before
        provider_cpu = cpu_seconds([self.provider.pid]) - self.provider_cpu_before
        digest = Digest.objects.get(pk=digest_id)
        # The start fixes and counts the audience; the first batch leaves after the first claim.
        fanout_s = (digest.fanned_out_at - digest.created_at).total_seconds()
        first_batch = Batch.objects.filter(digest_id=digest_id).order_by("created_at").first()
        first_send_s = (first_batch.created_at - digest.created_at).total_seconds()
        total_s = (digest.finished_at - digest.created_at).total_seconds()
        counts = self.provider_counts(digest_id, newsletter_id)
        n = counts["entitled"]
        batches = Batch.objects.filter(digest_id=digest_id)
        stats = http_json(f"{self.provider_url}/_fake/stats")["digests"].get(str(digest_id), {})
        provider_window = (stats.get("last_accept") or 0) - (stats.get("first_accept") or 0)
        return {
            "n": n,
            "digest_id": digest_id,
            "state": digest.state,
            "kind": digest.kind,
            "fanout_s": round(fanout_s, 2),
            # From confirming the mailing to its first claimed batch (start, count, first claim).
            "first_send_s": round(first_send_s, 2),
            # Recipients per second of the start (it writes no rows: the claims do).
            "fanout_rows_per_s": round(digest.recipients / fanout_s) if fanout_s > 0 else None,
            "total_s": round(total_s, 2),
            "wall_s": round(wall, 2),
            "recipients_per_s": round(n / total_s, 1),
            # Rate at the provider between the first and the last accepted call.
            "provider_rate_per_s": round(
                (counts["accepted"] - stats.get("first_call_size", 0)) / provider_window, 1
            )
            if provider_window > 0
            else None,
            "api_calls": batches.count(),
            "api_attempts": sum(b.attempts for b in batches.only("attempts")),
            "cpu_us_per_recipient": round(cpu * 1e6 / max(n, 1), 1),
            "provider_cpu_us_per_recipient": round(provider_cpu * 1e6 / max(n, 1), 1),
            # The machine is shared: the 1-minute load average before and after the digest.
            "loadavg": [round(self.load_before, 2), round(os.getloadavg()[0], 2)],
            "worker_peak_rss_mb": [round(max(peak_rss_mb(p) for p in tree), 1) for tree in trees],
            **counts,
        }

    def provider_counts(self, digest_id: int, newsletter_id: int) -> dict:
        """Compare what the provider accepted with who was entitled, in SQL."""
        from django.db import connection, transaction

        from newsletter.models import Subscription, Suppression

        dump = self.tmp / f"accepted-{digest_id}.tsv"
        http_json(f"{self.provider_url}/_fake/dump", {"digest": str(digest_id), "path": str(dump)})
        sub = Subscription._meta.db_table
        sup = Suppression._meta.db_table
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE accepted (email text PRIMARY KEY, n int) ON COMMIT DROP"
            )
            with cursor.copy("COPY accepted (email, n) FROM STDIN") as copy, open(dump, "rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            cursor.execute(
                f"""
                CREATE TEMP TABLE entitled ON COMMIT DROP AS
                SELECT s.email FROM {sub} s
                WHERE s.newsletter_id = %s AND s.state = 'confirmed'
                  AND NOT EXISTS (SELECT 1 FROM {sup} x WHERE x.address_hmac = s.address_hmac)
                """,
                [newsletter_id],
            )
            cursor.execute(
                """
                SELECT (SELECT coalesce(sum(n), 0) FROM accepted),
                       (SELECT coalesce(sum(n - 1), 0) FROM accepted WHERE n > 1),
                       (SELECT count(*) FROM entitled e
                        WHERE NOT EXISTS (SELECT 1 FROM accepted a WHERE a.email = e.email)),
                       (SELECT count(*) FROM accepted a
                        WHERE NOT EXISTS (SELECT 1 FROM entitled e WHERE e.email = a.email)),
                       (SELECT count(*) FROM entitled)
                """
            )
            accepted, duplicates, missing, unconfirmed, entitled = cursor.fetchone()
        dump.unlink(missing_ok=True)
        return {
            "entitled": entitled,
            "accepted": int(accepted),
            "duplicates": int(duplicates),
            "missing": missing,
            "unconfirmed": unconfirmed,
        }

    # --- baselines -----------------------------------------------------------------------
    def raw_ceiling(self, digest_id: int, n: int, backend: str | None = None) -> dict:
        """anymail batch calls from one loop, no database: merge data built beforehand, the
        same body, batch size and provider; anymail's stock backend unless one is named."""
        from anymail.message import AnymailMessage
        from django.conf import settings
        from django.core.mail import get_connection
        from django.utils import timezone

        from newsletter.emails.digest import (
            Recipient,
            common_headers,
            digest_rendered,
            newsletter_sender,
            personal_headers,
            personal_values,
        )
        from newsletter.models import Digest
        from newsletter.tokens import delivery_ref_signer, make_delivery_ref

        digest = Digest.objects.select_related("newsletter").get(pk=digest_id)
        rendered = digest_rendered(digest_id=digest_id, language="de")
        size = settings.NEWSLETTER_BATCH_SIZE
        now = timezone.now()
        batches = []
        for start in range(0, n, size):
            merge_data, merge_headers, merge_metadata = {}, {}, {}
            ref_signer = delivery_ref_signer()
            for i in range(start, min(n, start + size)):
                recipient = Recipient(i + 1, i + 1, f"raw{i}@example.org", f"{i:064x}", now)
                values = personal_values(recipient)
                merge_data[recipient.email] = values
                merge_headers[recipient.email] = personal_headers(
                    digest=digest, recipient=recipient, values=values
                )
                merge_metadata[recipient.email] = {
                    "delivery_ref": make_delivery_ref(recipient.delivery_id, ref_signer)
                }
            batches.append((list(merge_data), merge_data, merge_headers, merge_metadata))
        tag = f"raw-{digest_id}-{backend or 'stock'}"
        connection = get_connection(backend, fail_silently=False)
        connection.open()
        started, cpu_started = time.monotonic(), time.process_time()
        for to, merge_data, merge_headers, merge_metadata in batches:
            message = AnymailMessage(
                subject=rendered.subject,
                body=rendered.text,
                from_email=newsletter_sender(digest.newsletter),
                to=to,
                headers=common_headers(digest),
            )
            message.attach_alternative(rendered.html, "text/html")
            message.merge_data = merge_data
            message.merge_headers = merge_headers
            message.merge_metadata = merge_metadata
            message.metadata = {"digest_id": tag}
            message.tags = ["digest"]
            message.track_opens = False
            connection.send_messages([message])
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu_started
        connection.close()
        stats = http_json(f"{self.provider_url}/_fake/stats")["digests"][tag]
        assert stats["distinct"] == n and stats["duplicates"] == 0, stats
        result = {
            "n": n,
            "seconds": round(elapsed, 2),
            "recipients_per_s": round(n / elapsed, 1),
            # The sending loop's own CPU, to hold against the workers' (load moves it less).
            "cpu_us_per_recipient": round(cpu * 1e6 / n, 1),
        }
        log(f"raw ceiling ({backend or 'anymail stock backend'}): {result}")
        return result

    def profile_summary(self, top: int) -> dict:
        """The first worker's CPU profile over the digests so far: its top entries by own time,
        per recipient that worker sent (the batches its log says it claimed)."""
        import pstats

        from newsletter.models import Batch

        time.sleep(1.5)  # the last drain task's profile is written after the task returns
        dumps = sorted(self.tmp.glob(f"{self.profile_prefix.name}.*.prof"))
        if not dumps:
            return {"error": "no profile written"}
        stats = pstats.Stats(*[str(d) for d in dumps])
        claimed = {
            int(m)
            for m in re.findall(r"claimed batch (\d+) ", (self.tmp / "worker0.log").read_text())
        }
        recipients = (
            sum(Batch.objects.filter(pk__in=claimed).values_list("sent_count", flat=True)) or 1
        )
        root = str(Path(__file__).resolve().parent.parent) + "/"

        def name(func: tuple) -> str:
            path, line, function = func
            path = path.replace(root, "").split("site-packages/")[-1]
            return f"{path}:{line}({function})"

        total = stats.total_tt
        rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
        by_cum = sorted(
            (
                item
                for item in stats.stats.items()
                if root in item[0][0] and ".venv" not in item[0][0]
            ),
            key=lambda item: item[1][3],
            reverse=True,
        )[:top]

        def entry(func, data) -> dict:
            _cc, calls, tottime, cumtime, _callers = data
            return {
                "function": name(func),
                "calls": calls,
                "self_us_per_recipient": round(tottime * 1e6 / recipients, 2),
                "cum_us_per_recipient": round(cumtime * 1e6 / recipients, 2),
                "self_share": round(tottime / total, 3),
            }

        summary = {
            "recipients": recipients,
            "cpu_s": round(total, 2),
            "cpu_us_per_recipient": round(total * 1e6 / recipients, 1),
            "top_self": [entry(func, data) for func, data in rows],
            "top_cumulative_own_code": [entry(func, data) for func, data in by_cum],
        }
        log("profile of worker 0 (CPU, cProfile):")
        for item in summary["top_self"]:
            log(
                f"  {item['self_share']:6.1%} {item['self_us_per_recipient']:7.2f} µs/rcpt "
                f"self  {item['function']}"
            )
        for item in summary["top_cumulative_own_code"]:
            log(f"  {item['cum_us_per_recipient']:7.2f} µs/rcpt cum  {item['function']}")
        return summary

    def naive(self, digest_id: int, newsletter_id: int, n: int) -> dict:
        """One task, one full render and one API call per recipient, on the same workers."""
        from bench.naive import naive_send_task
        from newsletter.models import Subscription

        ids = list(
            Subscription.objects.filter(newsletter_id=newsletter_id, state="confirmed")
            .order_by("pk")
            .values_list("pk", flat=True)[:n]
        )
        tag = f"naive-{digest_id}"
        started = time.monotonic()
        for subscription_id in ids:
            naive_send_task.delay(digest_id, subscription_id, tag)
        deadline = started + max(120, n / 5)
        while True:
            stats = http_json(f"{self.provider_url}/_fake/stats")["digests"].get(tag, {})
            if stats.get("accepted", 0) >= len(ids):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"naive path incomplete: {stats}")
            time.sleep(0.1)
        elapsed = stats["last_accept"] - stats["first_accept"]
        # From the first enqueue to the last acceptance, measured on the bench's clock.
        elapsed = time.monotonic() - started
        result = {
            "n": len(ids),
            "seconds": round(elapsed, 2),
            "recipients_per_s": round(len(ids) / elapsed, 1),
        }
        log(f"naive: {result}")
        return result


def summarise(runs: list[dict], workers: int) -> dict:
    keys = (
        "fanout_s",
        "fanout_rows_per_s",
        "first_send_s",
        "total_s",
        "recipients_per_s",
        "cpu_us_per_recipient",
        "api_calls",
    )
    summary = {key: median([r[key] for r in runs]) for key in keys}
    return {
        "n": runs[0]["n"],
        "workers": workers,
        "runs": len(runs),
        **summary,
        "worker_peak_rss_mb": max(max(r["worker_peak_rss_mb"]) for r in runs),
        "worker_peak_rss_mb_each": runs[-1]["worker_peak_rss_mb"],
        # Exactness must hold in every run, so the worst run is reported.
        "accepted": min(r["accepted"] for r in runs),
        "duplicates": max(r["duplicates"] for r in runs),
        "missing": max(r["missing"] for r in runs),
        "unconfirmed": max(r["unconfirmed"] for r in runs),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    load_before = loadavg()
    bench = Bench(args)
    bench.setup()
    machine = machine_info(redis_url=bench.env["REDIS_URL"])
    runs = [bench.send_digest(f"run{i + 1}", args.n) for i in range(args.runs)]
    result = summarise(runs, args.workers)
    result["per_run"] = runs
    result["settings"] = dict(item.split("=", 1) for item in args.set)
    if args.profile:
        result["profile"] = bench.profile_summary(args.profile_top)
    last = runs[-1]
    from newsletter.models import Digest

    newsletter_id = Digest.objects.get(pk=last["digest_id"]).newsletter_id
    rate = result["recipients_per_s"]
    if args.raw_n:
        raw = bench.raw_ceiling(last["digest_id"], args.raw_n)
        result["raw_ceiling_recipients_per_s"] = raw["recipients_per_s"]
        result["raw_ceiling_n"] = raw["n"]
        result["ratio_vs_raw_ceiling"] = round(rate / raw["recipients_per_s"], 3)
        # The digest's own batch backend (newsletter/mailgun_backend.py):
        # the same loop over the transport the digest path really uses.
        from newsletter.services import digest_sending

        own = digest_sending.BATCH_BACKENDS["mailgun"]
        same = bench.raw_ceiling(last["digest_id"], args.raw_n, backend=own)
        result["raw_ceiling_same_backend_recipients_per_s"] = same["recipients_per_s"]
        result["ratio_vs_raw_ceiling_same_backend"] = round(rate / same["recipients_per_s"], 3)
        # CPU per recipient: the workers' (claim, re-check, personal links, send, record)
        # against the raw loop's (send only) over the same backend.
        result["raw_ceiling_same_backend_cpu_us_per_recipient"] = same["cpu_us_per_recipient"]
        result["worker_cpu_vs_raw_cpu"] = round(
            result["cpu_us_per_recipient"] / max(same["cpu_us_per_recipient"], 0.1), 2
        )
    if args.naive_n:
        naive = bench.naive(last["digest_id"], newsletter_id, min(args.naive_n, args.n))
        result["naive_recipients_per_s"] = naive["recipients_per_s"]
        result["naive_n"] = naive["n"]
        result["ratio_vs_naive"] = round(rate / naive["recipients_per_s"], 1)
    if args.faults:
        faults = {}
        scenarios = args.fault_scenarios.split(",")

        def scenario(label: str, config: dict | None = None) -> dict:
            runs = [bench.send_digest(label, args.n, config) for _i in range(args.runs)]
            summary = summarise(runs, args.workers)
            summary["provider_rate_per_s"] = median([r["provider_rate_per_s"] or 0 for r in runs])
            summary["api_attempts"] = median([r["api_attempts"] for r in runs])
            summary["per_run"] = runs
            return summary

        if "fail_every_7" in scenarios:
            fail7 = scenario("fail_every_7", {"fail_every": 7})
            fail7["rate_vs_fault_free"] = round(fail7["recipients_per_s"] / rate, 3)
            faults["fail_every_7"] = fail7
        if "latency_500ms" in scenarios:
            faults["latency_500ms"] = scenario("latency_500ms", {"latency": 0.5})
        if "rate_limit" in scenarios:
            bench.start_workers(NEWSLETTER_SEND_RATE=str(args.rate))
            limited = scenario("rate_limit")
            limited["configured_rate"] = args.rate
            limited["provider_rate_vs_limit"] = round(limited["provider_rate_per_s"] / args.rate, 3)
            faults["rate_limit"] = limited
        if "kill_3x" in scenarios:
            # Its own fault-free run first, same workers, settings and provider latency.
            bench.start_workers(**KILL_SETTINGS)
            latency = {"latency": 0.5}
            clean = [bench.send_digest("kill_baseline", args.kill_n, latency)]
            killed = [bench.send_digest_with_kills("kill_3x", args.kill_n, latency)]
            summary = summarise(killed, args.workers)
            summary["fault_free_recipients_per_s"] = clean[0]["recipients_per_s"]
            summary["rate_vs_fault_free"] = round(
                summary["recipients_per_s"] / clean[0]["recipients_per_s"], 3
            )
            summary["start_to_first_claim_s"] = killed[0]["start_to_first_claim_s"]
            summary["settings"] = KILL_SETTINGS
            summary["per_run"] = clean + killed
            faults["kill_3x"] = summary
        result["faults"] = faults
    result["machine"] = {**machine, "load_before": load_before, "load_after": loadavg()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
