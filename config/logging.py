"""Structured logging: one JSON object per line, carrying the request or task it belongs to.

`LOG_FORMAT=json` switches the console handler to `JsonFormatter` (python-json-logger). Every
record passes through `ContextFilter`, which adds `request_id` (django-guid's id of the request
being served), the Celery `task_id` (bound by the signal receivers below) and any fields bound
with `log_context`.
Fields passed as `extra={"digest_id": ..., "batch_id": ..., "delivery_id": ...}` appear as keys
of the JSON object as they are. Inside a Celery task, its `task_id`, its name and its arguments
named `*_id` (tasks take ids: `digest_drain_task(digest_id)`) are on every line it logs.

In tasks, either pass `extra=` on each call or bind the ids once for the whole body::

    with log_context(digest_id=digest.pk, batch_id=batch.pk):
        logger.info("batch sent", extra={"recipients": n})
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import logging.config
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django_guid.log_filters import CorrelationId
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

# The ids of the unit of work in progress (request or task), plus fields bound by log_context.
_context: ContextVar[dict[str, Any]] = ContextVar("log_context", default={})  # noqa: B039

# Attributes every LogRecord has; anything else on a record came from `extra` or the filter.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def log_context_get() -> dict[str, Any]:
    """The fields bound to the current request or task."""
    return _context.get()


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields to every record logged inside the block (nested blocks add to the outer)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_bind(**fields: Any) -> Any:
    """Bind fields until `log_context_reset(token)`; for hooks that cannot use a with-block."""
    return _context.set({**_context.get(), **fields})


def log_context_reset(token: Any) -> None:
    """Undo one `log_context_bind`."""
    _context.reset(token)


class ContextFilter(CorrelationId):
    """django-guid's request id as `request_id` (None outside a request) and the bound
    request/task fields on each record."""

    def __init__(self) -> None:
        super().__init__(correlation_id_field="request_id")

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


# Path segments that are credentials: the signed tokens of the links in our mails (the routes
# of newsletter/urls_unprefixed.py). They grant unsubscribing, confirming and the preference
# centre, so no log line may carry one; tests/ops/test_logging.py checks every token route.
TOKEN_PATH = re.compile(
    r"(/n/(?:bestaetigen|abmelden|einstellungen|daten-export|daten-loeschen)/)[^/\s?#\"'<>]+"
)
TOKEN_PLACEHOLDER = "<token>"


def redact_tokens(text: str) -> str:
    """The text with the token of every personal link path replaced by a placeholder."""
    return TOKEN_PATH.sub(rf"\g<1>{TOKEN_PLACEHOLDER}", text) if "/n/" in text else text


class RedactTokensFilter(logging.Filter):
    """Rewrites the message, extra fields, exception and stack of a record so that no token
    of a personal link reaches a log line (request lines, runserver's and gunicorn's lines,
    Django's "Not Found: <path>" warnings with the request attached)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is reported by the handler, as before
            return True
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        for key, value in list(vars(record).items()):
            if key in _RECORD_ATTRS or value is None or isinstance(value, bool | int | float):
                continue
            # Objects (Django's `request`) are written with str() by the JSON formatter; one
            # that names a token path is replaced by its redacted text.
            text = value if isinstance(value, str) else str(value)
            if redact_tokens(text) != text:
                setattr(record, key, redact_tokens(text))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_tokens(record.exc_text)
            # Formatters render exc_info afresh when it is set (python-json-logger prefers it
            # to exc_text): leave them only the redacted text.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_tokens(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """Human-readable lines for the local run, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            # A copy: other handlers (JSON, pytest's) must still see the record unchanged.
            record = logging.makeLogRecord(vars(record))
            record.request_id = getattr(record, "task_id", None) or "-"
        return super().format(record)


class JsonFormatter(BaseJsonFormatter):
    """python-json-logger, one object per line: `time` (UTC, ISO 8601), `level`, `logger`,
    `message`, `request_id`, then every `extra` field; `exception` and `stack` when present.
    Odd values (UUID, datetime, model) are written with str(), so a log call never fails."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}{request_id}",
            style="{",
            timestamp="time",
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
                "stack_info": "stack",
            },
            json_ensure_ascii=False,
        )


def logging_configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG hook: apply LOGGING, and send Python warnings through it too."""
    logging.config.dictConfig(config)
    # gunicorn's own loggers keep their handlers (they log before Django is loaded), so the
    # token filter goes on the loggers: "Error handling request <path>" must not carry a token.
    for name in ("gunicorn.error", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokensFilter) for f in logger.filters):
            logger.addFilter(RedactTokensFilter())
    # Otherwise warnings go to stderr as plain text and break one-JSON-object-per-line.
    logging.captureWarnings(True)


def _task_ids(task: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The task's `*_id` arguments (tasks take ids), so `digest_id=7` is on every line it logs."""
    try:
        bound = inspect.signature(task.run).bind_partial(*args, **kwargs)
    except (AttributeError, TypeError, ValueError):
        return {}
    return {
        name: value
        for name, value in bound.arguments.items()
        if name.endswith("_id") and isinstance(value, int | str)
    }


def _celery_connect() -> None:
    """Bind the task id to every record a task logs, and leave logging to Django's LOGGING.

    Connecting `setup_logging` tells Celery not to install its own root handler, so workers
    and beat log through the same handler and format (text or JSON) as the web processes.
    """
    try:
        from celery import signals
    except ImportError:  # gunicorn's config may load this module before the app's deps
        return

    tokens: dict[str, Any] = {}

    def keep_django_logging(**kwargs: Any) -> None:
        return None

    def task_bind(
        task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
    ) -> None:
        if task_id:
            fields = _task_ids(task, args or (), kwargs or {})
            fields.update(task_id=task_id, task=getattr(task, "name", None))
            tokens[task_id] = log_context_bind(**fields)

    def task_unbind(task_id: str | None = None, **kwargs: Any) -> None:
        token = tokens.pop(task_id, None) if task_id else None
        if token is not None:
            with contextlib.suppress(ValueError):
                log_context_reset(token)

    signals.setup_logging.connect(keep_django_logging, weak=False, dispatch_uid="config-log")
    signals.task_prerun.connect(task_bind, weak=False, dispatch_uid="config-log-bind")
    signals.task_postrun.connect(task_unbind, weak=False, dispatch_uid="config-log-unbind")


_celery_connect()
