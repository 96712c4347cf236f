"""The dashboard's daily roll-up, run by beat; repeating it recounts the same days."""

from celery import shared_task

from newsletter.services.stats import daily_counts_roll_up


@shared_task(acks_late=True)
def daily_counts_roll_up_task() -> int:
    return daily_counts_roll_up()
