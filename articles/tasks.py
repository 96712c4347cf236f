from celery import shared_task

from .services import articles_publish_due


@shared_task(name="articles.tasks.articles_publish_due_task", ignore_result=True)
def articles_publish_due_task() -> int:
    """Run every minute by the beat: scheduled articles whose minute came become published."""
    return articles_publish_due()
