"""Claiming: a due retry, or the next readers after a language's cursor, under a lease.

Each claim takes the batch's next attempt number, the fencing token every later write for
the batch is checked against (fence.py)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, Digest, DigestState
from newsletter.selectors.mailings import mailing_audience_next
from newsletter.services.digest_sending.lease import lease_end
from newsletter.services.digest_sending.provider import provider_name

logger = logging.getLogger(__name__)


def _claimed(batch: Batch) -> Batch:
    # Real-worker tests and the bench read this line (a newly started worker gets work).
    logger.info(
        "claimed batch %s of digest %s (%s-%s), token %s",
        batch.pk,
        batch.digest_id,
        batch.first_delivery_id,
        batch.last_delivery_id,
        batch.attempts,
        extra={"batch_id": batch.pk, "digest_id": batch.digest_id, "token": batch.attempts},
    )
    return batch


def batch_claim(*, digest_id: int, now: datetime | None = None) -> Batch | None:
    """Take a due retry, or the next readers of the mailing's audience as a new batch, under
    the digest row lock, with a lease; two workers never get the same readers, and a repeat
    finds nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        digest = (
            Digest.objects.select_for_update(of=("self",))
            .select_related("newsletter", "campaign")
            .filter(pk=digest_id)
            .first()
        )
        if digest is None or digest.state != DigestState.SENDING:
            return None
        retry = (
            Batch.objects.filter(
                digest_id=digest_id, state=BatchState.RETRY, next_attempt_at__lte=now
            )
            .order_by("next_attempt_at", "pk")
            .first()
        )
        if retry is not None:
            taken = Batch.objects.filter(
                pk=retry.pk, state=BatchState.RETRY, attempts=retry.attempts
            ).update(
                state=BatchState.SENDING,
                lease_until=lease_end(now),
                attempts=retry.attempts + 1,
                call_started_at=None,
                esp=provider_name(),
            )
            if taken:
                retry.state, retry.attempts = BatchState.SENDING, retry.attempts + 1
                retry.lease_until, retry.call_started_at = lease_end(now), None
                retry.esp = provider_name()
                return _claimed(retry)
        while languages := digest.audience_languages_open():
            batch = _batch_from_next_readers(digest, language=languages[0], now=now)
            if batch is not None:
                return _claimed(batch)
        return None


def _batch_from_next_readers(digest: Digest, *, language: str, now: datetime) -> Batch | None:
    """Write the delivery rows of the language's next readers and make them one batch; the
    cursor moves past them in the same transaction (the caller holds the digest row lock).

    Rows are written here, a batch at a time, rather than all before the first send: at ten
    million readers one INSERT of every row took minutes before anything was sent."""
    size = settings.NEWSLETTER_BATCH_SIZE
    readers = mailing_audience_next(digest, language=language, limit=size)
    write = (
        _deliveries_write_postgresql
        if connection.vendor == "postgresql"
        else _deliveries_write_portable
    )
    count, last_reader, written, first_id, last_id = write(
        digest, readers=readers, language=language
    )
    # A short chunk is the language's last one.
    cursors = dict(digest.audience_cursors)
    cursors[language] = last_reader if count == size else digest.audience_last_id
    digest.audience_cursors = cursors
    digest.save(update_fields=["audience_cursors"])
    if not written:
        return None
    return Batch.objects.create(
        digest_id=digest.pk,
        first_delivery_id=first_id,
        last_delivery_id=last_id,
        size=written,
        language=language,
        state=BatchState.SENDING,
        esp=provider_name(),
        lease_until=lease_end(now),
        attempts=1,
    )


# (readers taken, the last one's subscription id, rows written, first and last delivery id)
Written = tuple[int, int | None, int, int | None, int | None]


def _deliveries_write_postgresql(digest: Digest, *, readers: QuerySet, language: str) -> Written:
    """One statement: the readers are read, written and counted in the database."""
    readers_sql, params = readers.query.sql_with_params()
    with connection.cursor() as cursor:
        # The planner expects few matching readers and rates the statement costly enough to
        # compile with JIT, about 6 ms per claim for a statement that runs in a few.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"""
            WITH chunk AS ({readers_sql}),
            written AS (
                INSERT INTO {Delivery._meta.db_table}
                    (digest_id, subscription_id, language, state, reason)
                SELECT %s, chunk.id, %s, NULL, '' FROM chunk ORDER BY chunk.id
                ON CONFLICT (digest_id, subscription_id) DO NOTHING
                RETURNING id
            )
            SELECT (SELECT count(*) FROM chunk), (SELECT max(id) FROM chunk),
                   count(*), min(id), max(id)
            FROM written
            """,
            [*params, digest.pk, language],
        )
        return cursor.fetchone()


def _deliveries_write_portable(digest: Digest, *, readers: QuerySet, language: str) -> Written:
    """The same in four statements, for the local run's SQLite (which has no INSERT in a
    WITH clause); the caller's lock on the digest row keeps them together.

    Readers who already have their row (claimed in the other language before they switched)
    are left out before the INSERT, as ON CONFLICT leaves them out of RETURNING: counted in,
    their old rows would stretch the batch's range over other batches' rows."""
    ids = [pk for pk, _language in readers]
    written_before = set(
        Delivery.objects.filter(digest=digest, subscription_id__in=ids).values_list(
            "subscription_id", flat=True
        )
    )
    new = [pk for pk in ids if pk not in written_before]
    Delivery.objects.bulk_create(
        [Delivery(digest=digest, subscription_id=pk, language=language) for pk in new]
    )
    rows = Delivery.objects.filter(digest=digest, subscription_id__in=new).aggregate(
        n=Count("id"), first=Min("id"), last=Max("id")
    )
    return len(ids), max(ids, default=None), rows["n"], rows["first"], rows["last"]
