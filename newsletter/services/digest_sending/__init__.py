"""Digest sending: claim a batch, re-check it, send it in one provider call, record the outcome.

The batch is the unit of claiming, sending, retrying and recording (docs/design.md, "Digest
delivery"). On the happy path a batch costs one claim transaction, one read (re-check), one
provider call and one UPDATE of its own row. The claim writes the batch's delivery rows (one
INSERT … SELECT of the audience's next readers); later they are only written for exceptions.

The package is cut by purpose: ``claim`` (readers, ranges and leases), ``recheck`` (who may
still get it), ``provider`` (the connection and how its errors are read), ``send`` (one batch),
``record`` (its outcome), ``reconcile`` (leases, uncertain batches) and ``drain`` (the loop).
"""

from newsletter.services.digest_sending.claim import batch_claim
from newsletter.services.digest_sending.drain import DrainResult, digest_drain
from newsletter.services.digest_sending.finish import (
    ACTIVE_BATCH_STATES,
    delivery_mark_failed,
    digest_finish_check,
)
from newsletter.services.digest_sending.provider import (
    BATCH_BACKENDS,
    Refused,
    Transient,
    Uncertain,
    batch_mode,
    provider_name,
    refused_addresses,
)
from newsletter.services.digest_sending.recheck import batch_recheck
from newsletter.services.digest_sending.reconcile import digest_reconcile
from newsletter.services.digest_sending.send import SendOutcome, batch_send

__all__ = [
    "ACTIVE_BATCH_STATES",
    "BATCH_BACKENDS",
    "DrainResult",
    "Refused",
    "SendOutcome",
    "Transient",
    "Uncertain",
    "batch_claim",
    "batch_mode",
    "batch_recheck",
    "batch_send",
    "delivery_mark_failed",
    "digest_drain",
    "digest_finish_check",
    "digest_reconcile",
    "provider_name",
    "refused_addresses",
]
