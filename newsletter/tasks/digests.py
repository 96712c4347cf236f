"""Tasks of digest delivery (tick, fan-out, drain, reconcile).

Messages are wake-up calls only: each task loads ids, calls one service and is safe to run
twice or to be lost (the periodic reconcile finds stalled work in the database).
"""

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from newsletter.services.digest_sending import digest_drain
from newsletter.services.digests import digest_fan_out, digest_kick_stalled, digest_tick


@shared_task(ignore_result=True)
def digest_tick_task() -> None:
    digest_tick()


@shared_task(ignore_result=True)
def digest_fan_out_task(digest_id: int) -> None:
    digest_fan_out(digest_id=digest_id)


@shared_task(ignore_result=True)
def digest_drain_task(digest_id: int) -> None:
    result = digest_drain(digest_id=digest_id)
    if result.wake_in is not None:
        # Short countdowns only (well under the broker's visibility timeout); anything later
        # is picked up by the periodic reconcile.
        countdown = min(result.wake_in, settings.NEWSLETTER_RETRY_MAX_SECONDS)
        digest_drain_task.apply_async((digest_id,), countdown=countdown)


@shared_task(ignore_result=True)
def digest_reconcile_task() -> None:
    digest_kick_stalled()


@worker_ready.connect
def digest_work_on_start(**_kwargs) -> None:
    """A worker that starts while a digest is sending (after a crash, a deploy, a scale-up)
    asks for work at once instead of waiting for the next reconcile tick; the reconcile runs
    in a pool child (the parent never opens a database connection its forks would share)."""
    digest_reconcile_task.delay()
