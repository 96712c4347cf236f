"""Claiming: a due retry, or the next readers after a language's cursor, under a lease.

Each claim takes the batch's next attempt number, the fencing token every later write for
the batch is checked against (fence.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
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
        while digest.audience_open():
            batch = _batches_from_next_readers(digest, now=now)
            if batch is not None:
                return _claimed(batch)
        return None


@dataclass(frozen=True)
class Written:
    """What one claim's INSERT did: the readers it took (their count and the last one's
    subscription id, where the cursor moves) and, per mail language, the rows it wrote as
    one contiguous id range."""

    readers: int
    last_reader: int | None
    ranges: dict[str, tuple[int, int, int]]  # language: (rows, first id, last id)


def _batches_from_next_readers(digest: Digest, *, now: datetime) -> Batch | None:
    """Write the delivery rows of the audience's next readers, one contiguous id range per
    mail language, and make each range a batch; the cursor moves past them in the same
    transaction (the caller holds the digest row lock). The first batch is this claim's;
    another language's is queued as due at once, for the next claim to take.

    Rows are written here, a batch at a time, rather than all before the first send: at ten
    million readers one INSERT of every row took minutes before anything was sent. One
    cursor for all languages, so that each reader's turn comes exactly once, in the
    language they have when it comes."""
    size = settings.NEWSLETTER_BATCH_SIZE
    readers = mailing_audience_next(digest, limit=size)
    write = (
        _deliveries_write_postgresql
        if connection.vendor == "postgresql"
        else _deliveries_write_portable
    )
    written = write(digest, readers=readers)
    # A short chunk is the audience's last one.
    digest.audience_cursor = (
        written.last_reader if written.readers == size else digest.audience_last_id
    )
    digest.save(update_fields=["audience_cursor"])
    batches = [
        Batch(
            digest_id=digest.pk,
            first_delivery_id=first_id,
            last_delivery_id=last_id,
            size=rows,
            language=language,
            esp=provider_name(),
            state=BatchState.RETRY,
            next_attempt_at=now,
            attempts=0,
        )
        for language, (rows, first_id, last_id) in sorted(written.ranges.items())
    ]
    if not batches:
        return None
    mine = batches[0]
    mine.state, mine.next_attempt_at = BatchState.SENDING, None
    mine.lease_until, mine.attempts = lease_end(now), 1
    Batch.objects.bulk_create(batches)
    return mine


def _deliveries_write_postgresql(digest: Digest, *, readers: QuerySet) -> Written:
    """One statement: the readers are read, written (grouped by language, so that each
    language's rows are one id range) and counted in the database."""
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
                SELECT %s, chunk.id, chunk.mail_language, NULL, '' FROM chunk
                ORDER BY chunk.mail_language, chunk.id
                ON CONFLICT (digest_id, subscription_id) DO NOTHING
                RETURNING id, language
            )
            SELECT c.n, c.last, w.language, w.n, w.first, w.last
            FROM (SELECT count(*) AS n, max(id) AS last FROM chunk) c
            LEFT JOIN (SELECT language, count(*) AS n, min(id) AS first, max(id) AS last
                       FROM written GROUP BY language) w ON true
            """,
            [*params, digest.pk],
        )
        rows = cursor.fetchall()
    return Written(
        readers=rows[0][0],
        last_reader=rows[0][1],
        ranges={row[2]: (row[3], row[4], row[5]) for row in rows if row[2] is not None},
    )


def _deliveries_write_portable(digest: Digest, *, readers: QuerySet) -> Written:
    """The same in a few statements, for the local run's SQLite (which has no INSERT in a
    WITH clause); the caller's lock on the digest row keeps them together. Readers who
    already have their row are left out before the INSERT, as ON CONFLICT leaves them out of
    RETURNING: counted in, their old rows would stretch a batch's range over other rows."""
    taken = list(readers)
    ids = [pk for pk, _language in taken]
    written_before = set(
        Delivery.objects.filter(digest=digest, subscription_id__in=ids).values_list(
            "subscription_id", flat=True
        )
    )
    new = sorted((language, pk) for pk, language in taken if pk not in written_before)
    created = Delivery.objects.bulk_create(
        [Delivery(digest=digest, subscription_id=pk, language=language) for language, pk in new]
    )
    # Written in (language, id) order, so each language's new ids are one range.
    ranges: dict[str, tuple[int, int, int]] = {}
    for row in created:
        rows, first, _last = ranges.get(row.language, (0, row.pk, row.pk))
        ranges[row.language] = (rows + 1, first, row.pk)
    return Written(readers=len(ids), last_reader=max(ids, default=None), ranges=ranges)
