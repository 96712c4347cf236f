"""Probes for the container and the load balancer, run by django-health-check.

`/healthz` says the process serves requests (liveness: restart me if this fails) and touches
nothing else. `/readyz` says this instance can do useful work (readiness: send me traffic):
the database answers, every schema migration the code expects is applied, and Redis and the
Celery broker answer. Each dependency gets a short timeout so a hanging one turns into a quick
503 instead of a probe that itself times out. Bodies name the failing check and the class of
the error only; the details go to the log, not to whoever can reach the URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from typing import Any
from urllib.parse import urlparse

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from kombu import Connection
from redis.asyncio import Redis as AsyncRedis

PROBE_TIMEOUT = datetime.timedelta(seconds=2)


@dataclasses.dataclass
class Migrations(HealthCheck):
    """Every migration the code knows is applied (an instance of new code before `migrate`)."""

    def plan(self) -> None:
        executor = MigrationExecutor(connections["default"])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            pending = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
            detail = RuntimeError(f"{len(plan)} migration(s) not applied: {pending}")
            raise ServiceUnavailable("migrations not applied") from detail

    async def run(self) -> None:
        # On the request's own thread and database connection, like any view's query.
        await sync_to_async(self.plan)()


@dataclasses.dataclass
class Broker(HealthCheck):
    """A non-Redis Celery broker (AMQP, ...) accepts a connection."""

    url: str = dataclasses.field(repr=False)
    timeout = PROBE_TIMEOUT

    def run(self) -> None:
        seconds = self.timeout.total_seconds()
        try:
            with Connection(self.url, connect_timeout=seconds) as conn:
                conn.ensure_connection(max_retries=1, timeout=seconds)
        except Exception as exc:
            raise ServiceUnavailable("broker unreachable") from exc


def redis_ping(url: str) -> Redis:
    timeout = PROBE_TIMEOUT.total_seconds()
    return Redis(
        client_factory=lambda: AsyncRedis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
        )
    )


def readiness_checks() -> dict[str, HealthCheck]:
    """The checks that apply to the current settings; in-memory brokers need none.

    The broker is checked on its own even when it is the cache's Redis URL: the probe then
    names what is missing (cache or task queue), and the two may be split at any time."""
    checks: dict[str, HealthCheck] = {"database": Database(), "migrations": Migrations()}
    redis_url = getattr(settings, "REDIS_CACHE_URL", "")  # "redis" is the cache's server
    broker_url = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if redis_url:
        checks["redis"] = redis_ping(redis_url)
    if broker_url and not broker_url.startswith("memory://"):
        is_redis = urlparse(broker_url).scheme in {"redis", "rediss"}
        checks["broker"] = redis_ping(broker_url) if is_redis else Broker(url=broker_url)
    return checks


def _result(result: HealthCheckResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"ok": result.error is None}
    if result.error is not None:
        # The class of what went wrong underneath (ConnectionError, OperationalError, ...).
        entry["error"] = type(result.error.__cause__ or result.error).__name__
    entry["ms"] = round(result.time_taken * 1000, 1)
    return entry


class ProbeView(HealthCheckView):
    """django-health-check's view answering in the probes' JSON, whatever the Accept header:
    {"status": "ok" | "unavailable", "checks": {name: {"ok", "error", "ms"}}}, 200 or 503."""

    http_method_names = ["get", "head"]

    def get_named_checks(self) -> dict[str, HealthCheck]:
        return {}

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        named = self.get_named_checks()
        with self.get_executor() as executor:
            results = await asyncio.gather(*(c.get_result(executor) for c in named.values()))
        checks = {name: _result(result) for name, result in zip(named, results, strict=True)}
        ready = all(check["ok"] for check in checks.values())
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable"}
        if checks:
            body["checks"] = checks
        return JsonResponse(body, status=200 if ready else 503)


class ReadinessView(ProbeView):
    def get_named_checks(self) -> dict[str, HealthCheck]:
        return readiness_checks()


healthz = ProbeView.as_view()
readyz = ReadinessView.as_view()
