"""Gunicorn settings for the web container; every value can be overridden from the environment.

Workers: the usual (2 x CPUs) + 1 for synchronous workers, capped so a large host does not
open more database connections than PostgreSQL allows (each worker holds one per thread).
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int(
    "GUNICORN_WORKERS",
    min(multiprocessing.cpu_count() * 2 + 1, _int("GUNICORN_MAX_WORKERS", 12)),
)
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so a slow leak never grows unbounded; jitter avoids all at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# Heartbeat files on tmpfs: a container's overlay filesystem can stall them under load.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Requests are logged by config.middleware.RequestIdMiddleware (with request ids, as JSON when
# LOG_FORMAT=json); gunicorn's own access log would only duplicate them. If it is ever
# turned on, its lines still carry no link token: config.logging filters gunicorn's loggers.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The proxy in front sets X-Forwarded-*; FORWARDED_ALLOW_IPS (read by gunicorn itself) says
# whose headers to trust. Django decides on https via SECURE_PROXY_SSL_HEADER.
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
        "filters": {"context": {"()": "config.logging.ContextFilter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "gunicorn.error": {
                "handlers": ["console"],
                "level": loglevel.upper(),
                "propagate": False,
            }
        },
    }
