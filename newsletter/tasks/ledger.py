"""The daily check of the consent chain (see newsletter.services.ledger)."""

from celery import shared_task

from newsletter.services.ledger import chain_checkpoint_write


@shared_task(acks_late=True)
def chain_checkpoint_task() -> int | None:
    checkpoint = chain_checkpoint_write()
    return checkpoint.seq if checkpoint else None
