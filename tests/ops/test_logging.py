"""Structured logging: one JSON object per line, with request ids and task/digest fields."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import shared_task

from config.logging import ContextFilter, JsonFormatter, log_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """Records of the root logger as the JSON handler writes them, parsed line by line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        text = stream.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_json_record_has_the_fixed_keys_and_extra_fields(json_lines):
    logging.getLogger("newsletter.digests").warning(
        "batch %s of %s\nsecond line", 3, "digest", extra={"digest_id": 17, "batch_id": 3}
    )
    [entry] = json_lines()
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "newsletter.digests"
    assert entry["message"] == "batch 3 of digest\nsecond line"
    assert entry["digest_id"] == 17 and entry["batch_id"] == 3
    assert entry["request_id"] is None
    assert entry["time"].endswith("+00:00")


def test_json_record_carries_the_exception_and_odd_values(json_lines):
    try:
        raise ValueError("kaputt")
    except ValueError:
        logging.getLogger("x").exception("failed", extra={"when": object()})
    [entry] = json_lines()
    assert "ValueError: kaputt" in entry["exception"]
    assert entry["when"].startswith("<object object")


def test_log_context_binds_fields_until_the_block_ends(json_lines):
    log = logging.getLogger("newsletter.tasks")
    with log_context(digest_id=5):
        with log_context(batch_id=9):
            log.info("inner")
        log.info("outer", extra={"delivery_id": 44})
    log.info("after")
    inner, outer, after = json_lines()
    assert (inner["digest_id"], inner["batch_id"]) == (5, 9)
    assert outer["digest_id"] == 5 and "batch_id" not in outer and outer["delivery_id"] == 44
    assert "digest_id" not in after


@pytest.mark.django_db
def test_requests_log_their_id_and_echo_it(client, settings, json_lines):
    settings.LOG_REQUESTS = True
    response = client.get("/gibt-es-nicht/", HTTP_X_REQUEST_ID="lb-4711.abc")
    assert response["X-Request-ID"] == "lb-4711.abc"
    lines = [entry for entry in json_lines() if entry["logger"] == "config.request"]
    assert lines == [
        {
            **lines[0],
            "request_id": "lb-4711.abc",
            "method": "GET",
            "path": "/gibt-es-nicht/",
            "status": 404,
        }
    ]


@pytest.mark.parametrize("incoming", ["", "x" * 200, "evil\r\nSet-Cookie: a=b", "a b"])
@pytest.mark.django_db
def test_missing_or_unsafe_request_ids_are_replaced(client, incoming):
    response = client.get("/gibt-es-nicht/", HTTP_X_REQUEST_ID=incoming)
    generated = response["X-Request-ID"]
    assert generated != incoming
    assert len(generated) == 32 and generated.isalnum()


@pytest.mark.django_db
def test_each_request_gets_its_own_id(client):
    first = client.get("/gibt-es-nicht/")["X-Request-ID"]
    second = client.get("/gibt-es-nicht/")["X-Request-ID"]
    assert first != second


@shared_task(name="tests.ops.log_digest_step")
def log_digest_step(digest_id: int) -> None:
    logging.getLogger("newsletter.tasks").info("step", extra={"digest_id": digest_id})


def test_tasks_log_with_their_task_id_and_the_ids_passed_in_extra(json_lines):
    result = log_digest_step.apply(args=(21,))
    [entry] = [e for e in json_lines() if e["logger"] == "newsletter.tasks"]
    assert entry["task_id"] == result.id
    assert entry["task"] == "tests.ops.log_digest_step"
    assert entry["digest_id"] == 21
    logging.getLogger("after").info("outside the task")
    assert "task_id" not in json_lines()[-1]


@shared_task(name="tests.ops.send_batch")
def send_batch(digest_id: int, batch_id: int, note: str = "") -> None:
    logging.getLogger("newsletter.tasks").info("sending")


def test_a_tasks_id_arguments_are_on_every_line_it_logs(json_lines):
    send_batch.apply(args=(7,), kwargs={"batch_id": 12, "note": "nicht mitloggen"})
    [entry] = [e for e in json_lines() if e["logger"] == "newsletter.tasks"]
    assert (entry["digest_id"], entry["batch_id"]) == (7, 12)
    assert "note" not in entry


def test_log_format_json_configures_the_whole_process():
    """With the setting, everything a process logs (Django's own loggers too) is JSON lines."""
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('newsletter').info('eins', extra={'delivery_id': 8}); "
        "logging.getLogger('django.request').warning('zwei')"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV_FILE": "/nonexistent/.env",
        "DJANGO_DEBUG": "1",
        "LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("newsletter", "eins"),
        ("django.request", "zwei"),
    ]
    assert entries[0]["delivery_id"] == 8


def test_an_unknown_log_format_is_refused():
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV_FILE": "/nonexistent/.env",
        "DJANGO_DEBUG": "1",
        "LOG_FORMAT": "xml",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "LOG_FORMAT" in result.stderr


@pytest.mark.worker
def test_celery_workers_log_json_lines_through_django_logging(celery_workers):
    """Celery keeps its hands off logging: a real worker's records come out as JSON too."""
    import time

    from articles.tasks import articles_publish_due_task

    worker = celery_workers(concurrency=1, env={"LOG_FORMAT": "json"})
    # Named queue: the app may have fixed its default queue before the fixture changed it.
    result = articles_publish_due_task.apply_async(queue=worker.env["CELERY_TASK_DEFAULT_QUEUE"])
    deadline = time.monotonic() + 30
    while f"[{result.id}] succeeded" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    entries = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert any(entry["message"].endswith(" ready.") for entry in entries)
    [done] = [entry for entry in entries if f"[{result.id}] succeeded" in entry["message"]]
    assert done["logger"] == "celery.app.trace"
    assert done["task_id"] == result.id
    assert done["level"] == "INFO"


# --- Tokens of personal links never reach a log line ------------------------------------


@pytest.fixture
def console_lines():
    """What the project's own root handler (settings.LOGGING's "console") writes, as text and,
    with json=True, as JSON objects."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    # Swap the stream without setStream(): that flushes the old one first, and the handler
    # holds whatever sys.stderr was when Django configured logging, which pytest's capture
    # may already have closed by the time this runs later in a session.
    with handler.lock:
        old_stream, handler.stream = handler.stream, stream
    old_formatter = handler.formatter
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.INFO)

    def use_json() -> None:
        handler.setFormatter(JsonFormatter())

    try:
        yield stream.getvalue, use_json
    finally:
        with handler.lock:
            handler.stream = old_stream
        handler.setFormatter(old_formatter)
        root.setLevel(old_level)


def _personal_paths(sub) -> dict[str, str]:
    from django.urls import reverse

    from newsletter import tokens

    return {
        "confirm": reverse(
            "newsletter_confirm", kwargs={"token": tokens.make_confirm_token(sub.id, 1)}
        ),
        "unsubscribe": reverse(
            "newsletter_unsubscribe", kwargs={"token": tokens.make_unsubscribe_token(sub.id)}
        ),
        "preferences": reverse(
            "newsletter_preferences",
            kwargs={"token": tokens.make_preferences_token(sub.id, sub.address_hmac)},
        ),
    }


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.django_db
def test_request_lines_and_django_warnings_carry_no_link_token(
    client, settings, console_lines, fmt
):
    from tests.newsletter.factories import SubscriptionFactory

    output, use_json = console_lines
    if fmt == "json":
        use_json()
    settings.LOG_REQUESTS = True
    sub = SubscriptionFactory()
    paths = _personal_paths(sub)
    for path in paths.values():
        assert client.get(path).status_code == 200
    # A tampered token: Django's "Bad Request: <path>" warning carries the request too.
    assert client.get("/n/abmelden/Geheim1234:abcdef/").status_code == 400
    text = output()
    for path in [*paths.values(), "/n/abmelden/Geheim1234:abcdef/"]:
        token = path.rstrip("/").rsplit("/", 1)[1]
        assert token not in text
    for prefix in ("/n/bestaetigen/", "/n/abmelden/", "/n/einstellungen/"):
        assert f"{prefix}<token>/" in text
    assert "Bad Request: /n/abmelden/<token>/" in text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_server_lines_exceptions_and_extra_fields_carry_no_link_token(console_lines, fmt):
    output, use_json = console_lines
    if fmt == "json":
        use_json()
    token = "eyJ0b2tlbiI6MX0:1uXyZ:Abc-def_123"
    # runserver's access line, gunicorn's error line, an exception, an extra field.
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /n/einstellungen/{token}/ HTTP/1.1", 200, 1234
    )
    logging.getLogger("gunicorn.error").error("Error handling request /n/abmelden/%s/", token)
    try:
        raise ValueError(f"no such page /n/bestaetigen/{token}/")
    except ValueError:
        logging.getLogger("x").exception("failed", extra={"url": f"/n/abmelden/{token}/?x=1"})
    text = output()
    assert token not in text
    assert "/n/einstellungen/<token>/ HTTP/1.1" in text
    assert "Error handling request /n/abmelden/<token>/" in text
    assert "no such page /n/bestaetigen/<token>/" in text
    if fmt == "json":  # the text format does not print extra fields
        assert "/n/abmelden/<token>/?x=1" in text


def test_gunicorn_loggers_redact_through_their_own_handlers():
    """gunicorn configures its loggers' handlers itself; the filter sits on the loggers."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("gunicorn.access")
    access.addHandler(handler)
    old_level, old_propagate = access.level, access.propagate
    access.setLevel(logging.INFO)
    access.propagate = False
    try:
        access.info('127.0.0.1 "GET /n/abmelden/AbC:1:xyz/ HTTP/1.1" 200')
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
        access.propagate = old_propagate
    assert stream.getvalue() == '127.0.0.1 "GET /n/abmelden/<token>/ HTTP/1.1" 200\n'


def test_every_token_route_is_redacted():
    """A new route with a token in its path must be added to config.logging.TOKEN_PATH."""
    from django.urls import URLPattern, URLResolver, get_resolver

    from config.logging import redact_tokens

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    routes = [route for route in walk(get_resolver().url_patterns) if "<str:token>" in route]
    assert len(routes) >= 3, routes
    for route in routes:
        path = "/" + route.replace("<str:token>", "SECRET-tok:en_1")
        assert "SECRET" not in redact_tokens(path), route
