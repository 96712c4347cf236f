import pytest
from django.db import connection

from config.celery import app


def test_suite_runs_on_postgresql(db):
    assert connection.vendor == "postgresql"


@pytest.mark.worker
def test_real_worker_starts_and_answers(celery_workers):
    celery_workers(concurrency=1)
    replies = app.control.ping(timeout=5)
    assert replies, "no worker answered the broadcast ping"
