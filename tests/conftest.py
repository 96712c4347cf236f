"""Shared fixtures: the real services the suite runs against, real Celery workers, Chromium."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    """The suite needs the real PostgreSQL and Redis: stop at once, loudly, when one is gone."""
    missing = [
        name
        for name, url, port in (
            ("PostgreSQL", os.environ.get("DATABASE_URL", "postgres://127.0.0.1:5432"), 5432),
            ("Redis", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"), 6379),
        )
        if not _reachable(url, port)
    ]
    if missing:
        pytest.exit(
            f"{' and '.join(missing)} not reachable; start them (see README, 'Tests').",
            returncode=3,
        )


# Tests that start real processes (Celery workers, gunicorn, a browser, a live server, the local
# run, a container build) or run a benchmark: the slow lane, left out by `make test-fast`.
SLOW_FIXTURES = {
    "celery_workers",
    "browser_page",
    "browser_pages",
    "csp_page",
    "gunicorn_server",
    "live_server",
}
SLOW_PATHS = (
    "tests/bench/",
    "tests/site/test_local_run.py",
    "tests/site/test_run_script.py",
    "tests/site/test_make_run.py",
    "tests/ops/test_image.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames) or item.nodeid.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def suite_database_url() -> str:
    """The suite's test database as a DATABASE_URL, for the processes a test starts."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def spawn_group(
    args: list[str], *, env: dict[str, str], log_path: Path, cwd: Path = ROOT
) -> subprocess.Popen:
    """A child in a process group of its own, output appended to `log_path`, so that
    stop_group ends it with everything it forked (pool children, gunicorn workers)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the group (a warm shutdown); what still runs after `timeout` gets SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class WorkerProcess:
    """A real `celery worker` subprocess on the test database and a queue of its own."""

    def __init__(self, env: dict[str, str], concurrency: int, log_path: Path) -> None:
        self.env = env
        self.concurrency = concurrency
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.proc = spawn_group(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "-Q",
                self.env["CELERY_TASK_DEFAULT_QUEUE"],
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            env=self.env,
            log_path=self.log_path,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the whole process group: the parent and its pool children die mid-task."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 5) -> None:
        """Warm shutdown; a worker still busy after `timeout` is killed (its messages stay)."""
        if self.proc:
            stop_group(self.proc, timeout)


def _forget_routing(app) -> None:
    """Celery caches the default queue on first use; drop it so a changed queue applies."""
    for name in ("default_queue", "queues", "router"):
        app.amqp.__dict__.pop(name, None)


@pytest.fixture
def celery_workers(transactional_db, tmp_path, settings) -> Iterator:
    """Start real workers with `celery_workers(concurrency=2, env={...})`; all stop at teardown.

    The test process stops running tasks eagerly for the duration, so `.delay()` goes through
    Redis to the workers, which read and write the same (committed) test database. The queue is
    the suite's own (named after its test database, see tests/settings.py; Celery fixes its
    routing at first use, so it cannot change per test) and is purged before and after.
    """
    from config.celery import app

    queue = app.conf.task_default_queue
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": suite_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }
    old_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    _purge(app, queue)
    _forget_routing(app)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    started: list[WorkerProcess] = []

    def start(concurrency: int = 2, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(
            {**base_env, **(env or {})}, concurrency, tmp_path / f"worker{len(started)}.log"
        )
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        # The test is over: a warm shutdown (1.5 s idle, 3-5 s on a loaded machine) would
        # prove nothing here. What a killed worker held stays un-acked in Redis for the
        # visibility timeout (an hour), names rows this test's flush removes, and is safe to
        # run twice like every task; the kill tests do the same mid-test on purpose.
        for worker in started:
            worker.kill()
        _purge(app, queue)
        app.conf.task_always_eager = old_eager


def _purge(app, queue: str) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)
        _forget_routing(app)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    # Never skipped: `make test` installs it (scripts/test-tools.sh), so a gap fails loudly.
    if not CHROMIUM:
        pytest.fail("Chromium is missing: apt-get install chromium (or run `make test`)")
    return CHROMIUM


@pytest.fixture
def browser_pages(chromium_path, live_server) -> Iterator:
    """Opens Playwright pages in Debian's Chromium (never a downloaded browser), each in a
    context of its own: `browser_pages(locale="en-GB", width=390)`."""
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        contexts = []

        def open_page(*, locale: str = "de-DE", width: int = 1280, height: int = 800):
            context = browser.new_context(
                locale=locale,
                timezone_id="Europe/Berlin",
                viewport={"width": width, "height": height},
            )
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(15_000)
            return page

        try:
            yield open_page
        finally:
            for context in contexts:
                context.close()
            browser.close()
            # Playwright's sync API runs an event loop in this thread, so Django keeps the
            # test's database connections per context here: close them while that context
            # lasts, or they outlive the test and hold the test database open.
            connections.close_all()


@pytest.fixture
def browser_page(browser_pages) -> Iterator:
    """A Playwright page in Chromium with a German browser."""
    return browser_pages(locale="de-DE")


@pytest.fixture(autouse=True)
def _german_after_each_test() -> Iterator[None]:
    """A request to an /en/ page leaves English active in this thread (the locale middleware
    activates a language per request and never resets it): the next test starts in German."""
    yield
    translation.activate("de")


# The migrations that make the managers' group and grant it each newer permission.
GROUP_MIGRATIONS = [
    ("articles.migrations.0004_editor_groups", "create_groups"),
    ("newsletter.migrations.0005_digest_test_send_and_preview_permissions", "grant_to_managers"),
    ("newsletter.migrations.0009_consent_hash_chain", "managers_see_checkpoints"),
    ("newsletter.migrations.0010_campaigns_mailing_kind_and_branding", "grant_to_managers"),
    (
        "newsletter.migrations.0012_console_reports_indexes_weekdays_and_labels",
        "grant_import_to_managers",
    ),
]


@pytest.fixture
def managers_group(db):
    """The managers' group exactly as the migrations make it: the flush after any earlier
    transactional test drops what data migrations created. (Not serialized_rollback: its flush
    skips post_migrate and would leave the next transactional test without permissions.)"""
    state_apps = MigrationLoader(connection).project_state().apps
    for module, function in GROUP_MIGRATIONS:
        getattr(importlib.import_module(module), function)(state_apps, None)
    return Group.objects.get(name="Newsletter-Verwaltung")
