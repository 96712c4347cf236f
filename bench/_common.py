"""Shared plumbing of the benchmarks: a private database, child processes that always die with
the bench, and figures read from /proc (CPU time, peak RSS) of the processes under test."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
CLK_TCK = os.sysconf("SC_CLK_TCK")

_children: list[subprocess.Popen] = []


def log(message: str) -> None:
    """Progress goes to stderr; stdout ends with the one JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _cleanup(*_args) -> None:
    for proc in reversed(_children):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in reversed(_children):
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    _children.clear()


def _on_signal(signum, _frame) -> None:
    _cleanup()
    sys.exit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def spawn(
    args: list[str],
    *,
    env: dict[str, str],
    log_path: Path,
    pipe_stdout: bool = False,
    nice: int = 0,
) -> subprocess.Popen:
    """A child in its own process group (so its pool children die with it) that the bench
    stops at exit, whatever way it exits. `nice` lowers the CPU priority of the child and all
    it forks."""
    out = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if pipe_stdout else out,
        stderr=out if pipe_stdout else subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    if nice:
        _lower_autogroup_priority(proc.pid, nice)
    _children.append(proc)
    return proc


def _lower_autogroup_priority(pid: int, nice: int) -> None:
    """A new session is a new scheduler autogroup on Linux (kernel.sched_autogroup_enabled),
    and the kernel shares CPU between autogroups before it looks at nice values inside one:
    without this, `nice` on a child started in its own session changes nothing."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc in _children:
        _children.remove(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def db_url(name: str) -> str:
    return f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


def db_recreate(name: str) -> str:
    """Drop and create a private database; returns its DATABASE_URL."""
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return db_url(name)


def consent_chain_link() -> None:
    """Write the hash chain (newsletter/chain.py) over consent events a bench inserted with SQL
    (chain_seq set, hashes empty): one streaming pass in chain order, then one UPDATE, and the
    chain head moved to the last link, as event_record would have left it."""
    import hmac
    import io

    from django.db import connection, transaction

    from newsletter import chain
    from newsletter.models import ChainHead

    key = chain.personal_key()
    prev = chain.GENESIS_HASH
    last = 0
    buffer = io.StringIO()
    with transaction.atomic():
        reader = connection.chunked_cursor()
        reader.execute(
            f"SELECT e.chain_seq, {chain.CANONICAL_SQL}, {chain.PERSONAL_SQL} "
            "FROM newsletter_consentevent e ORDER BY e.chain_seq"
        )
        while rows := reader.fetchmany(20_000):
            for seq, canonical, personal in rows:
                digest = hmac.digest(key, personal.encode(), "sha256").hex()
                row = chain.row_hash(prev_hash=prev, canonical=canonical, personal_digest=digest)
                buffer.write(f"{seq}\t{prev}\t{row}\t{digest}\n")
                prev, last = row, seq
        reader.close()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE links (seq bigint PRIMARY KEY, prev text, row text, pd text)"
        )
        with cursor.cursor.copy("COPY links FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cursor.execute(
            "UPDATE newsletter_consentevent e SET prev_hash = l.prev, row_hash = l.row, "
            "personal_digest = l.pd FROM links l WHERE e.chain_seq = l.seq"
        )
        cursor.execute("DROP TABLE links")
        # The UPDATE wrote the new row versions in its join's order. event_record appends
        # rows in chain order, so put them back in that order (and drop the dead versions):
        # the verifier's ordered walk then reads the table as production would.
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'newsletter_consentevent' "
            "AND indexdef LIKE 'CREATE UNIQUE INDEX %% (chain_seq)'"
        )
        cursor.execute(f'CLUSTER newsletter_consentevent USING "{cursor.fetchone()[0]}"')
        cursor.execute("ANALYZE newsletter_consentevent")
    ChainHead.objects.update_or_create(id=1, defaults={"seq": last, "row_hash": prev})


@contextlib.contextmanager
def secondary_indexes_set_aside(table: str):
    """Drop the table's indexes that back no constraint while a bench seeds it, and build them
    again afterwards: PostgreSQL then writes each row once instead of updating every index per
    row, which at ten million rows is the difference between minutes and an hour (the chain's
    UPDATE rewrites every row). The primary key and unique constraints stay, so the seed is
    still checked and chain order is still an index scan."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [table],
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for _name, definition in indexes:
                cursor.execute(definition)
        log(f"rebuilt {len(indexes)} indexes of {table} in {time.perf_counter() - started:.1f} s")


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def base_env(*, database_url: str, redis_url: str, queue: str, **extra: str) -> dict[str, str]:
    """Production-like settings (DEBUG off) pointed at the bench's own database, Redis db and
    queue; DEBUG off also keeps Django from recording every query in memory."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-not-a-secret-" + "x" * 40,
        "NEWSLETTER_ADDRESS_HMAC_KEY": "bench-only-address-key",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_MANIFEST_STATIC": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_CACHE_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CACHE_KEY_PREFIX": queue,
        "SITE_URL": "https://zeitung.example",
        "LOG_LEVEL": "WARNING",
        "LOG_REQUESTS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


# --- /proc figures ------------------------------------------------------------------------
def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants (a Celery worker and its pool children)."""
    result, stack = [], [pid]
    while stack:
        current = stack.pop()
        result.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                stack.extend(int(c) for c in (task / "children").read_text().split())
    return result


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def http_json(url: str, payload: dict | None = None, timeout: float = 30) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def machine_info(*, redis_url: str) -> dict:
    """What the figures were measured on: absolute rates move between machines (and with the
    load of a shared one), so every bench result carries this beside its ratios. Call after
    django.setup()."""
    import platform

    import django
    import redis
    from django.db import connection

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    return {
        "cpu_model": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": postgres,
        "redis": redis.Redis.from_url(url=redis_url).info("server").get("redis_version"),
    }


def loadavg() -> list[float]:
    """The 1-, 5- and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]
