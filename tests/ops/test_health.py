"""/healthz and /readyz: JSON, 200 or 503, reachable by probes over plain HTTP by IP."""

import socket
import subprocess
import time

import pytest
from django.db.migrations.recorder import MigrationRecorder

from tests.conftest import free_port


def _closed_port() -> int:
    """A port nothing listens on (bound once to pick it, then released)."""
    return free_port()


def test_healthz_answers_without_touching_dependencies(client, settings):
    # No django_db mark: any database access would raise; Redis points at a closed port.
    settings.REDIS_CACHE_URL = settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ready_when_database_redis_and_migrations_are(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert {"database", "migrations", "redis"} <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values())
    assert "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_reports_unreachable_redis_as_not_ready(client, settings):
    settings.REDIS_CACHE_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == {
        "ok": False,
        "error": "ConnectionError",
        "ms": body["checks"]["redis"]["ms"],
    }
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_checks_the_broker_even_when_it_is_the_cache_redis(client, settings):
    # As in the compose stack: REDIS_URL and CELERY_BROKER_URL name the same server.
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is True
    assert checks["redis"]["ok"] is True


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker(client, settings, scheme):
    settings.CELERY_BROKER_URL = f"{scheme}://127.0.0.1:{_closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_follows_a_real_redis_going_away(client, settings, tmp_path):
    """A throw-away redis-server of our own: ready while it runs, not ready once it is killed."""
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        settings.REDIS_CACHE_URL = settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        assert client.get("/readyz").status_code == 200
        server.kill()
        server.wait(10)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"]["ok"] is False
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)


@pytest.mark.django_db
def test_readyz_reports_unapplied_migrations_as_not_ready(client):
    # Inside the test's transaction (rolled back afterwards): the database looks as if the
    # newest sessions migration had not been applied yet, as during an upgrade before migrate.
    recorder = MigrationRecorder.Migration.objects
    deleted, _ = recorder.filter(app="sessions").delete()
    assert deleted
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["migrations"] == {
        "ok": False,
        "error": "RuntimeError",
        "ms": checks["migrations"]["ms"],
    }
    assert checks["database"]["ok"] is True


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.django_db
def test_probes_work_over_plain_http_by_ip_in_production(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["meinung.example.org"]
    response = client.get(path, HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    # Everything else still gets the host check and the https redirect.
    assert client.get("/", HTTP_HOST="10.0.0.7:8000").status_code == 400
    assert client.get("/", HTTP_HOST="meinung.example.org").status_code == 301


@pytest.mark.parametrize("path", ["/en/healthz", "/de/readyz"])
@pytest.mark.django_db
def test_probes_have_no_language_prefix(client, path):
    assert client.get(path).status_code == 404


def test_probes_refuse_writes(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.parametrize("accept", ["text/html", "text/plain", "*/*"])
@pytest.mark.django_db
def test_probes_answer_json_whatever_the_client_accepts(client, accept):
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_ACCEPT=accept)
        assert response["Content-Type"] == "application/json"
        assert response.json()["status"] == "ok"


def test_probes_answer_head_and_refuse_other_methods(client):
    assert client.head("/healthz").status_code == 200
    assert client.options("/healthz").status_code == 405
