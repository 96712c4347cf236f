"""Celery finds tasks here; each module holds the tasks of one flow."""

from . import consent, digests, stats  # noqa: F401
