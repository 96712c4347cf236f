"""Work a service wants done after its transaction commits, named by task.

Tasks import services (a task's body calls one), so services never import tasks: they name the
task here, and the task is looked up by its dotted path when the transaction has committed. A
rollback sends nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from celery import Task
from django.db import transaction

SIGNUP_REQUEST_APPLY = "newsletter.tasks.consent.signup_request_apply_task"
CONFIRMATION_SEND = "newsletter.tasks.consent.subscription_confirmation_send_task"
IMPORT_CONFIRMATIONS_SEND = "newsletter.tasks.consent.import_confirmations_send_task"
WELCOME_SEND = "newsletter.tasks.consent.subscription_welcome_send_task"
PREFERENCES_LINK_SEND = "newsletter.tasks.consent.preferences_link_send_task"
DATA_LINK_SEND = "newsletter.tasks.consent.data_link_send_task"
SUBSCRIPTION_IMPORT_RUN = "newsletter.tasks.consent.subscription_import_run_task"
DIGEST_FAN_OUT = "newsletter.tasks.digests.digest_fan_out_task"
DIGEST_DRAIN = "newsletter.tasks.digests.digest_drain_task"


def task_by_path(path: str) -> Task:
    """The task object at a dotted path (its module is imported if no one has yet, as in a
    management command that never loaded the tasks)."""
    module, _sep, name = path.rpartition(".")
    return getattr(import_module(module), name)


def task_enqueue_on_commit(task_path: str, *args: Any) -> None:
    """Send the task with these arguments once the current transaction commits (at once
    outside one); under CELERY_TASK_ALWAYS_EAGER it runs in the process, as delay() would."""
    transaction.on_commit(lambda: task_by_path(task_path).apply_async(args=args))
