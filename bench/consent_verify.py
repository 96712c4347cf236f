"""How fast `manage.py consent_verify` walks the consent chain.

    .venv/bin/python bench/consent_verify.py                 # N = 100,000
    .venv/bin/python bench/consent_verify.py --n 1000000

It builds its own PostgreSQL database, seeds N consent events with set-based SQL (signups with
IP, user agent and page, confirmation mails, confirmations, revocations), chains them in one
pass of the same hashing the writes use (newsletter/chain.py) and times the command as an
operator runs it. It then changes one IP in the middle with SQL and checks that the command
names that row. Progress goes to stderr; the last line of stdout is one JSON object with
events/s and the time extrapolated to 10 million events (the goal: at most 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    PY,
    ROOT,
    base_env,
    consent_chain_link,
    cpu_seconds,
    db_recreate,
    db_url,
    loadavg,
    log,
    machine_info,
    manage,
    secondary_indexes_set_aside,
)

GOAL_EVENTS = 10_000_000
GOAL_SECONDS = 120

# Signups with IP, user agent and page, confirmation mails, confirmations and revocations, four
# events per address, nine seconds apart; hashes empty until consent_chain_link writes them.
SEED_SQL = """
    INSERT INTO newsletter_consentevent (newsletter_id, address_hmac, kind, at, ip,
        user_agent, url, channel, form, consent_text_id, text_sha256, message_id, note,
        chain_seq, prev_hash, row_hash, personal_digest, prune_digest, redacted)
    SELECT %(newsletter)s,
           md5((g / 4)::text) || md5('x' || (g / 4)::text),
           (ARRAY['requested', 'confirmation_sent', 'confirmed', 'revoked'])[g %% 4 + 1],
           now() - interval '3 years' + g * interval '9 seconds',
           CASE WHEN g %% 4 IN (0, 2)
                THEN ('203.0.' || (g %% 250) || '.' || (g %% 199))::inet END,
           CASE WHEN g %% 4 IN (0, 2)
                THEN 'Mozilla/5.0 (X11; Linux x86_64) bench ' || (g %% 97) ELSE '' END,
           CASE WHEN g %% 4 = 0
                THEN 'https://zeitung.example/artikel/a-' || (g %% 5000) || '/' ELSE '' END,
           CASE WHEN g %% 4 = 3 THEN 'link' ELSE '' END,
           CASE WHEN g %% 4 = 0 THEN 'signup_box' ELSE '' END,
           CASE WHEN g %% 4 = 0 THEN %(text)s END,
           CASE WHEN g %% 4 = 0 THEN %(sha)s ELSE '' END,
           CASE WHEN g %% 4 = 1 THEN '<' || g || '.bench@zeitung.example>' ELSE '' END,
           '', g, '', '', '', '', false
    FROM generate_series(1, %(n)s) AS g
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="consent events in the chain")
    parser.add_argument("--db", default="bench_consent_verify")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database a previous run seeded with the same N and only verify again "
        "(seeding ten million events takes far longer than verifying them)",
    )
    return parser.parse_args(argv)


def seed(n: int) -> float:
    """N events in one INSERT … SELECT, then one streaming pass that writes their chain."""
    import django

    django.setup()
    from django.db import connection

    from newsletter.models import ConsentText
    from newsletter.services.consent import consent_text_default_publish
    from tests.newsletter.factories import NewsletterFactory

    started = time.perf_counter()
    newsletter = NewsletterFactory(slug="bench", name="Bench")
    consent_text_default_publish(newsletter=newsletter)
    text = ConsentText.objects.get(newsletter=newsletter, language="de")
    with secondary_indexes_set_aside("newsletter_consentevent"):
        with connection.cursor() as cursor:
            cursor.execute(
                SEED_SQL, {"newsletter": newsletter.id, "text": text.id, "sha": text.sha256, "n": n}
            )
        log(f"inserted {n:,} events in {time.perf_counter() - started:.1f} s; chaining them")
        consent_chain_link()
    return time.perf_counter() - started


def seeded_check(n: int) -> None:
    """--reuse only measures a database holding exactly the chain a run with this N seeded."""
    import django

    django.setup()
    from newsletter.models import ChainHead

    head = ChainHead.objects.filter(id=1).first()
    if head is None or head.seq != n:
        raise SystemExit(f"--reuse: the database holds no chain of {n:,} events; run without it")


def verify_cpu() -> dict[str, float]:
    """The same walk in this process: wall time and the CPU seconds of each side. PostgreSQL
    streams while Python hashes, so on an idle machine the wall time is near the larger one."""
    from django.db import connection

    from newsletter.services.ledger import chain_verify

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    pg_before, py_before = cpu_seconds([backend]), time.process_time()
    started = time.perf_counter()
    report = chain_verify()
    wall = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"chain broken: {report.breaks}")
    return {
        "wall": wall,
        "python_cpu": time.process_time() - py_before,
        "postgres_cpu": cpu_seconds([backend]) - pg_before,
    }


def verify(env: dict[str, str]) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [PY, "manage.py", "consent_verify"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    redis_url = "redis://127.0.0.1:6379/15"
    database_url = db_url(args.db) if args.reuse else db_recreate(args.db)
    env = base_env(database_url=database_url, redis_url=redis_url, queue="bench")
    os.environ.update(env)
    load_before = loadavg()
    if args.reuse:
        seed_seconds = None
        seeded_check(args.n)
    else:
        manage(env, "migrate", "--noinput")
        seed_seconds = seed(args.n)
        seed_seconds = round(seed_seconds, 1)
        log(f"seeded and chained {args.n:,} events in {seed_seconds:.1f} s; verifying")
    code, output, seconds = verify(env)
    if code != 0:
        raise SystemExit(f"consent_verify failed on an untouched chain:\n{output}")
    inner = float(re.search(r"([\d.]+) s$", output.strip())[1])
    log(output.strip())
    split = verify_cpu()
    log(f"in process: {split}")

    import psycopg

    middle = args.n // 2 - (args.n // 2) % 4  # a signup, which has an IP
    url = env["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        event_id, ip = conn.execute(
            "SELECT id, ip FROM newsletter_consentevent WHERE chain_seq = %s", [middle]
        ).fetchone()
        conn.execute("UPDATE newsletter_consentevent SET ip = '10.9.9.9' WHERE id = %s", [event_id])
        tamper_code, tamper_output, tamper_seconds = verify(env)
        # Put it back, so that --reuse finds an intact chain next time.
        conn.execute("UPDATE newsletter_consentevent SET ip = %s WHERE id = %s", [ip, event_id])
    found = f"position {middle} (event id {event_id}): personal_digest" in tamper_output
    log(f"after changing the IP of position {middle}: {tamper_output.strip()[:200]}")
    rate = args.n / inner
    busiest = max(split["python_cpu"], split["postgres_cpu"])
    return {
        "n": args.n,
        "seed_seconds": seed_seconds,
        "verify_seconds": round(inner, 2),
        "command_seconds": round(seconds, 2),
        "events_per_s": round(rate),
        "extrapolated_10m_seconds": round(GOAL_EVENTS / rate, 1),
        "goal_10m_seconds": GOAL_SECONDS,
        "python_cpu_seconds": round(split["python_cpu"], 2),
        "postgres_cpu_seconds": round(split["postgres_cpu"], 2),
        "cpu_bound_events_per_s": round(args.n / busiest),
        "cpu_bound_10m_seconds": round(GOAL_EVENTS / args.n * busiest, 1),
        "load_before": load_before,
        "load_after": loadavg(),
        "machine": machine_info(redis_url=redis_url),
        "tamper_found": found and tamper_code == 1,
        "tamper_seconds": round(tamper_seconds, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
