"""Probes for the container and the load balancer.

`/healthz` says the process serves requests (liveness: restart me if this fails) and touches
nothing else. `/readyz` says this instance can do useful work (readiness: send me traffic):
the database answers, every schema migration the code expects is applied, and Redis and the
Celery broker answer. Each dependency gets a short timeout so a hanging one turns into a quick
503 instead of a probe that itself times out. Bodies name the failing check and the error
class only; the details go to the log, not to whoever can reach the URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0


def _database() -> None:
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _migrations() -> None:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections["default"])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        pending = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        raise RuntimeError(f"{len(plan)} migration(s) not applied: {pending}")


def _redis_ping(url: str) -> None:
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )
    try:
        client.ping()
    finally:
        client.close()


def _broker_ping(url: str) -> None:
    if urlparse(url).scheme in {"redis", "rediss"}:
        _redis_ping(url)
        return
    from kombu import Connection

    with Connection(url, connect_timeout=PROBE_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)


def readiness_checks() -> dict[str, Callable[[], None]]:
    """The checks that apply to the current settings; in-memory brokers need none.

    The broker is checked on its own even when it is the cache's Redis URL: the probe then
    names what is missing (cache or task queue), and the two may be split at any time."""
    checks: dict[str, Callable[[], None]] = {"database": _database, "migrations": _migrations}
    redis_url = getattr(settings, "REDIS_CACHE_URL", "")  # "redis" is the cache's server
    broker_url = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if redis_url:
        checks["redis"] = lambda: _redis_ping(redis_url)
    if broker_url and not broker_url.startswith("memory://"):
        checks["broker"] = lambda: _broker_ping(broker_url)
    return checks


def _run(name: str, check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure of a dependency means "not ready", never a 500
        logger.warning("readiness check %s failed: %s", name, exc, extra={"check": name})
        result: dict[str, Any] = {"ok": False, "error": type(exc).__name__}
    else:
        result = {"ok": True}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process is up and answers; no dependency is touched."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every dependency answers and migrations are applied, else 503."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in readiness_checks().items():
        # Without a database there is no migration state to read; report it as failed too.
        if name == "migrations" and not results["database"]["ok"]:
            results[name] = {"ok": False, "error": "DatabaseUnavailable", "ms": 0.0}
            continue
        results[name] = _run(name, check)
    ready = all(result["ok"] for result in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
