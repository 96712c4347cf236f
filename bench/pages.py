"""Page speed under load: gunicorn on PostgreSQL + Redis, driven by wrk on loopback.

    .venv/bin/python bench/pages.py                 # 3 runs of 10 s per scenario
    .venv/bin/python bench/pages.py --only article_uncached --runs 1

Scenarios, each run --runs times (the JSON reports the median run and every run's figures):
- article_cached, list_cached: one article page (without a feature image) and the article
  list, served from the page cache (what nearly every reader gets).
- article_uncached: article pages that are not in the cache: every request asks for another
  article of an archive of --archive articles that no request has asked for before, so each
  one is built from the database; what the whole site shares (navigation, signup offer) is
  warm, as it is in production. These archive articles have no feature image.
- article_image_cached, article_image_uncached: the same two with a feature image (the
  `<picture>` with six renditions, figure caption, Open Graph and Twitter image tags), drawn
  from the other half of the archive; `vs_plain` is their rps against the pages without
  (run alternately with them, the median of the rounds' ratios, when both are measured).
- article_cache_off, list_cache_off: the article page and the list with the cache switched
  off altogether (CACHE_PAGE_SECONDS=0, a second server): the floor, when even the shared
  parts are built on every request.
- signup_post: a valid signup (CSRF cookie and token, empty honeypot, a signed fill-time token
  older than the minimum, a new address per request).
- signup_states: the same POST for an address in each state (new, pending, confirmed,
  unsubscribed, suppressed), one request at a time, the states in a random order every round
  (so load from elsewhere on the machine falls on all of them alike) for --seconds x --runs
  per state; reports each state's p50 and p90 and the spread of the p50s (the page must not
  tell the states apart).
- article_during_digest: the cached article page while two real Celery workers send a digest
  of --digest-n recipients to the fake provider, at the CPU priority --worker-nice gives them.
Progress goes to stderr; the last line of stdout is one JSON object with rps, p50_ms and
p99_ms per scenario.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    PY,
    base_env,
    db_recreate,
    free_port,
    log,
    manage,
    median,
    redis_flush,
    spawn,
    stop,
    wait_port,
)

WRK = shutil.which("wrk") or "/usr/bin/wrk"
# Archive article 0: a copy of a demo article without a feature image, which no uncached
# request asks for; the demo article itself has one (seed_demo draws it).
ARTICLE = "/artikel/archiv-0/"
ARTICLE_IMAGE = "/artikel/gold-als-versicherung/"

_DONE_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, "
    .. "\\"errors\\": %d, \\"status_errors\\": %d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""

_POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "csrftoken=%(csrf_cookie)s"
local form = "%(form)s"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  local body = form .. "&email=%(prefix)s" .. tid .. "x" .. n .. "%%40example.org"
  return wrk.format(nil, "%(path)s", nil, body)
end
"""


ADDRESS_STATES = ("new", "pending", "confirmed", "unsubscribed", "suppressed")

SCENARIOS = (
    "article_cached",
    "list_cached",
    "signup_post",
    "signup_states",
    "article_during_digest",
    "article_uncached",
    "article_image_cached",
    "article_image_uncached",
    "article_cache_off",
    "list_cache_off",
)


_ARCHIVE_LUA = """
local n = %(first)d
function request()
  n = n + 1
  return wrk.format(nil, "/artikel/archiv-" .. n .. "/")
end
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median reported)")
    parser.add_argument(
        "--archive", type=int, default=40_000, help="archive articles for the uncached pages"
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=1)
    parser.add_argument(
        "--digest-n",
        type=int,
        default=800_000,
        help="recipients in the digest (enough to outlast every run of wrk during it)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=19,
        help="CPU priority of the digest workers, as `nice -n` (0 = same as the web); 19 is "
        "the lowest, as docker/compose.yml gives the worker (cpu_shares 16 of 1024)",
    )
    parser.add_argument(
        "--digest-rate",
        type=float,
        default=0,
        help="NEWSLETTER_SEND_RATE of the digest workers in msgs/s (0 = unlimited): how a "
        "publisher running web and workers on one small host keeps the site responsive",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SCENARIOS,
        default=list(SCENARIOS),
        help="run only these scenarios (the ratio during the digest needs article_cached)",
    )
    parser.add_argument("--db", default="bench_pages")
    parser.add_argument("--redis-db", type=int, default=14)
    return parser.parse_args(argv)


class Pages:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-pages-"))
        self.redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
        # The web's mail tasks (signup confirmations) go to a queue nobody reads during the
        # bench; the digest has a queue of its own with real workers.
        self.web_queue = f"bench-web-{uuid.uuid4().hex[:8]}"
        self.digest_queue = f"bench-pages-digest-{uuid.uuid4().hex[:8]}"

    def setup(self) -> None:
        redis_flush(self.redis_url)
        self.database_url = db_recreate(self.args.db)
        self.env = base_env(
            database_url=self.database_url,
            redis_url=self.redis_url,
            queue=self.web_queue,
            # Each wrk request is a new reader as far as the limits go: raise them for the bench.
            NEWSLETTER_RATE_LIMIT_IP="100000000/3600",
            NEWSLETTER_RATE_LIMIT_ADDRESS="100000000/3600",
            SITE_URL="http://127.0.0.1",
            # seed_demo's pictures go to the bench's own folder, not the checkout's var/.
            MEDIA_ROOT=str(self.tmp / "media"),
        )
        manage(self.env, "migrate", "--noinput")
        manage(self.env, "seed_demo")
        self.seed_archive(self.args.archive)

    def seed_archive(self, n: int) -> None:
        """`n` older articles, `archiv-1` … `archiv-n` (and `archiv-0`), one an hour back from
        the oldest demo article, each a copy of a demo article with its topics, authors and
        disclaimer: the archive the uncached pages are read from (and that the related-articles
        query, the navigation and the list pages run over). The second half also keeps the
        demo article's feature image; `archiv-0`, outside both halves, is the cached page
        without one. Set-based SQL: a few seconds for 40,000."""
        import psycopg

        started = time.monotonic()
        demo = """WITH demo AS (
            SELECT a.*, row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS c
            FROM articles_article a
            WHERE status = 'published' AND published_at <= now() AND left(slug, 7) <> 'archiv-')"""
        source_of_copy = "demo d ON d.k = mod(substr(n.slug, 8)::int, d.c)"
        with psycopg.connect(self.database_url, autocommit=False) as conn:
            conn.execute(
                demo
                + """
                INSERT INTO articles_article (title, slug, kind, lead, body_markdown, body_html,
                    status, published_at, meta_description, created_at, modified_at,
                    disclaimer_version_id, feature_image_id)
                SELECT d.title || ' (' || g || ')', 'archiv-' || g, d.kind, d.lead,
                    d.body_markdown, d.body_html, 'published',
                    (SELECT min(published_at) FROM demo) - g * interval '1 hour',
                    d.meta_description, now(), now(), d.disclaimer_version_id,
                    CASE WHEN g > %s THEN d.feature_image_id END
                FROM generate_series(0, %s) g JOIN demo d ON d.k = mod(g, d.c)""",
                (n // 2, n),
            )
            for relation, column in (("topics", "topic_id"), ("authors", "author_id")):
                conn.execute(
                    demo
                    + f"""
                    INSERT INTO articles_article_{relation} (article_id, {column})
                    SELECT n.id, m.{column} FROM articles_article n
                    JOIN {source_of_copy}
                    JOIN articles_article_{relation} m ON m.article_id = d.id
                    WHERE left(n.slug, 7) = 'archiv-'"""
                )
            conn.execute("ANALYZE")
        log(f"seeded an archive of {n} articles in {time.monotonic() - started:.1f}s")

    def serve(self, **extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = self.args
        self.server = spawn(
            [
                str(Path(PY).with_name("gunicorn")),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(args.gunicorn_workers),
                "--threads",
                str(args.gunicorn_threads),
                "--worker-class",
                "gthread" if args.gunicorn_threads > 1 else "sync",
                "--keep-alive",
                "5",
                "--log-level",
                "warning",
            ],
            env={**self.env, **extra},
            log_path=self.tmp / "gunicorn.log",
        )
        wait_port(self.port, proc=self.server)
        for path in (ARTICLE, ARTICLE_IMAGE, "/"):
            for _i in range(3):
                with urllib.request.urlopen(self.base + path, timeout=30) as response:
                    assert response.status == 200, (path, response.status)

    def stop_server(self) -> None:
        stop(self.server)

    def measure(self, name: str, path: str, script: Callable[[int], str] | str = "") -> dict:
        """`--runs` runs of wrk: the median of each figure, with every run's beside them."""
        return self.summary(
            name, [self.run(name, run, path, script) for run in range(self.args.runs)]
        )

    def measure_paired(self, plain: tuple, pictured: tuple) -> tuple[dict, dict]:
        """Two scenarios (name, path, script) run by run in turn, which goes first swapping
        every round, so load from elsewhere on the machine falls on both alike; `vs_plain` is
        the median of the rounds' ratios (pictured rps / plain rps)."""
        plain_runs, pictured_runs = [], []
        for run in range(self.args.runs):
            pair = [(plain, plain_runs), (pictured, pictured_runs)]
            for (name, path, script), runs in pair if run % 2 == 0 else pair[::-1]:
                runs.append(self.run(name, run, path, script))
        pictured_result = self.summary(pictured[0], pictured_runs)
        pictured_result["vs_plain"] = round(
            median(
                [
                    p["rps"] / max(q["rps"], 0.001)
                    for p, q in zip(pictured_runs, plain_runs, strict=True)
                ]
            ),
            3,
        )
        log(f"{pictured[0]}: vs_plain by round {pictured_result['vs_plain']}")
        return self.summary(plain[0], plain_runs), pictured_result

    def run(self, name: str, run: int, path: str, script: Callable[[int], str] | str) -> dict:
        lua = script(run) if callable(script) else script
        return self.wrk(f"{name}[{run + 1}/{self.args.runs}]", path, lua)

    def summary(self, name: str, runs: list[dict]) -> dict:
        result = {key: median([r[key] for r in runs]) for key in ("rps", "p50_ms", "p99_ms")}
        result["errors"] = sum(r["errors"] + r["status_errors"] for r in runs)
        result["runs"] = [
            {key: r[key] for key in ("rps", "p50_ms", "p99_ms", "requests")} for r in runs
        ]
        log(f"{name}: median {result}")
        return result

    def wrk(self, name: str, path: str, script: str = "") -> dict:
        lua = self.tmp / "scenario.lua"
        lua.write_text(script + _DONE_LUA)
        args = self.args
        completed = subprocess.run(
            [
                WRK,
                "-t1",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(lua),
                self.base + path,
            ],
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
            check=True,
        )
        line = next(x for x in completed.stdout.splitlines() if x.startswith("WRKJSON "))
        raw = json.loads(line.removeprefix("WRKJSON "))
        result = {
            "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "p50_ms": round(raw["p50_us"] / 1000, 2),
            "p99_ms": round(raw["p99_us"] / 1000, 2),
            "requests": raw["requests"],
            "errors": raw["errors"],
            "status_errors": raw["status_errors"],
        }
        log(f"{name}: {result}")
        return result

    def archive_script(self, run: int) -> str:
        """Each run starts where no earlier request went: every request is a page miss. The
        first half of the archive has no feature images."""
        return _ARCHIVE_LUA % {"first": run * self.per_run()}

    def archive_image_script(self, run: int) -> str:
        """As archive_script, over the second half (with feature images)."""
        return _ARCHIVE_LUA % {"first": self.args.archive // 2 + run * self.per_run()}

    def per_run(self) -> int:
        return self.args.archive // 2 // self.args.runs

    def signup_script(self) -> str:
        """A valid signup form as the page serves it: CSRF cookie and token, the hidden fields,
        an empty honeypot; the fill-time token is left to age past the minimum."""
        csrf_cookie, form = self.signup_form()
        return _POST_LUA % {
            "csrf_cookie": csrf_cookie,
            "form": form,
            "prefix": f"w{uuid.uuid4().hex[:6]}",
            "path": "/newsletter/anmelden/",
        }

    def seed_address_states(self, slug: str) -> dict[str, str]:
        """One address per state in the demo newsletter (the task that would change them
        runs nowhere during the bench, so they stay as seeded)."""
        from django.utils import timezone

        from newsletter.addresses import address_hmac
        from newsletter.models import Newsletter, Subscription, Suppression

        newsletter = Newsletter.objects.get(slug=slug)
        now = timezone.now()
        tag = uuid.uuid4().hex[:6]
        fields = {
            "pending": {"state": "pending"},
            "confirmed": {"state": "confirmed", "confirmed_at": now},
            "unsubscribed": {"state": "unsubscribed", "confirmed_at": now, "unsubscribed_at": now},
            "suppressed": {"state": "suppressed", "confirmed_at": now, "unsubscribed_at": now},
        }
        addresses = {"new": ""}
        for state, values in fields.items():
            email = f"{state}-{tag}@example.org"
            Subscription.objects.create(
                email=email,
                address_hmac=address_hmac(email),
                newsletter=newsletter,
                requested_at=now,
                **values,
            )
            if state == "suppressed":
                Suppression.objects.create(address_hmac=address_hmac(email), reason="hard_bounce")
            addresses[state] = email
        return addresses

    def signup_states(self) -> dict:
        """The signup POST per address state, one request at a time over one keep-alive
        connection, the states in a new random order every round: whatever else loads the
        machine falls on every state alike, and each request's own time is measured (what
        someone timing the page to probe an address would see)."""
        csrf_cookie, form = self.signup_form()
        slug = urllib.parse.parse_qs(form)["newsletter"][0]
        addresses = self.seed_address_states(slug)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie}",
        }
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        samples: dict[str, list[float]] = {state: [] for state in ADDRESS_STATES}
        errors = dict.fromkeys(ADDRESS_STATES, 0)
        shuffle = random.Random(7).shuffle
        rounds = 0
        deadline = time.monotonic() + self.args.seconds * self.args.runs * len(ADDRESS_STATES)
        while time.monotonic() < deadline:
            order = list(ADDRESS_STATES)
            shuffle(order)
            for state in order:
                email = addresses[state] or f"new-{uuid.uuid4().hex[:12]}@example.org"
                body = f"{form}&email={urllib.parse.quote(email)}"
                started = time.perf_counter()
                connection.request("POST", "/newsletter/anmelden/", body, headers)
                response = connection.getresponse()
                response.read()
                elapsed_ms = (time.perf_counter() - started) * 1000
                if response.status != 303:
                    errors[state] += 1
                # The first rounds warm the worker's caches and connections.
                if rounds >= 5:
                    samples[state].append(elapsed_ms)
            rounds += 1
        connection.close()
        result: dict = {}
        for state in ADDRESS_STATES:
            times = sorted(samples[state])
            result[state] = {
                "requests": len(times),
                "p50_ms": round(median(times), 2),
                "p90_ms": round(times[int(len(times) * 0.9)], 2) if times else 0.0,
                "errors": errors[state],
            }
        p50s = [result[state]["p50_ms"] for state in ADDRESS_STATES]
        result["p50_spread"] = round(max(p50s) / max(min(p50s), 0.001) - 1, 3)
        log(f"signup_states: {result}")
        return result

    def signup_form(self) -> tuple[str, str]:
        """The CSRF cookie and the url-encoded signup form (without the address), aged past
        the minimum fill time, checked by one POST that must be the success redirect."""
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(self.base + "/newsletter/anmelden/", timeout=30) as response:
            html = response.read().decode()
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
        for required in ("csrfmiddlewaretoken", "newsletter", "started"):
            assert required in fields, (required, fields)
        csrf_cookie = next(c.value for c in jar if c.name == "csrftoken")
        fields["website"] = ""
        form = urllib.parse.urlencode(fields)
        from django.conf import settings

        time.sleep(settings.NEWSLETTER_SIGNUP_MIN_SECONDS + 0.5)
        # One POST by hand first: it must be the success redirect, not a re-shown form.
        request = urllib.request.Request(
            self.base + "/newsletter/anmelden/",
            data=(form + "&email=probe%40example.org").encode(),
            headers={"Cookie": f"csrftoken={csrf_cookie}"},
        )
        no_redirect = urllib.request.build_opener(_NoRedirect)
        try:
            no_redirect.open(request, timeout=30)
            raise AssertionError("signup POST did not redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 303, exc.code
        return csrf_cookie, form

    def during_digest(self) -> tuple[dict, dict]:
        """The article page while two workers send a digest to the fake provider."""
        from bench.digest import Bench, parse_args

        digest_args = parse_args(
            [
                "--worker-nice",
                str(self.args.worker_nice),
                # The ESP runs on its own machines: its stand-in must not take the web's CPU.
                "--provider-nice",
                "19",
                "--n",
                str(self.args.digest_n),
                "--db",
                self.args.db,
                "--redis-db",
                str(self.args.redis_db),
                "--set",
                f"NEWSLETTER_SEND_RATE={self.args.digest_rate}",
            ]
        )
        bench = Bench(digest_args)
        bench.queue = self.digest_queue
        bench.attach(database_url=self.database_url, redis_url=self.redis_url)
        newsletter = bench.seed_newsletter("pages", self.args.digest_n)
        from newsletter.models import Digest

        digest_id = bench.trigger(newsletter)
        deadline = time.monotonic() + 120
        while Digest.objects.get(pk=digest_id).state == "fanning_out":
            if time.monotonic() > deadline:
                raise RuntimeError("digest did not fan out")
            time.sleep(0.05)
        during = self.measure("article_during_digest", ARTICLE)
        state = Digest.objects.get(pk=digest_id).state
        if state != "sending":
            raise RuntimeError(f"the digest was {state} before wrk finished: raise --digest-n")
        result = bench.wait_and_count(digest_id, newsletter.pk)
        bench.stop_workers()
        return during, result


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    pages = Pages(args)
    pages.setup()
    # This process only starts the digest: its tasks go to the digest workers' queue.
    os.environ.update({**pages.env, "CELERY_TASK_DEFAULT_QUEUE": pages.digest_queue})
    import django

    django.setup()
    results: dict = {}
    only = set(args.only)
    pages.serve()
    cached = ("article_cached", ARTICLE, "")
    cached_image = ("article_image_cached", ARTICLE_IMAGE, "")
    uncached = ("article_uncached", "/", pages.archive_script)
    uncached_image = ("article_image_uncached", "/", pages.archive_image_script)
    for plain, pictured in ((cached, cached_image), (uncached, uncached_image)):
        if {plain[0], pictured[0]} <= only:
            results[plain[0]], results[pictured[0]] = pages.measure_paired(plain, pictured)
        else:
            for name, path, script in (plain, pictured):
                if name in only:
                    results[name] = pages.measure(name, path, script)
        if plain[0] == "article_cached" and "list_cached" in only:
            results["list_cached"] = pages.measure("list_cached", "/")
    for name in ("article_uncached", "article_image_uncached"):
        if name in results and max(r["requests"] for r in results[name]["runs"]) > pages.per_run():
            raise RuntimeError("some uncached requests were cache hits: raise --archive")
    if "signup_post" in only:
        results["signup_post"] = pages.measure(
            "signup_post", "/newsletter/anmelden/", pages.signup_script()
        )
    if "signup_states" in only:
        results["signup_states"] = pages.signup_states()
    if "article_during_digest" in only:
        during, digest = pages.during_digest()
        during["digest"] = {
            k: digest[k] for k in ("n", "recipients_per_s", "accepted", "duplicates", "missing")
        }
        if "article_cached" in results:
            idle_p99 = max(results["article_cached"]["p99_ms"], 0.001)
            during["p99_vs_idle"] = round(during["p99_ms"] / idle_p99, 2)
        results["article_during_digest"] = during
    pages.stop_server()
    if only & {"article_cache_off", "list_cache_off"}:
        pages.serve(CACHE_PAGE_SECONDS="0")
        if "article_cache_off" in only:
            results["article_cache_off"] = pages.measure("article_cache_off", ARTICLE)
        if "list_cache_off" in only:
            results["list_cache_off"] = pages.measure("list_cache_off", "/")
        pages.stop_server()
    results["config"] = {
        "gunicorn_workers": args.gunicorn_workers,
        "gunicorn_threads": args.gunicorn_threads,
        "wrk_connections": args.connections,
        "seconds": args.seconds,
        "runs": args.runs,
        "archive": args.archive,
        "digest_worker_nice": args.worker_nice,
        "digest_rate": args.digest_rate,
    }
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
