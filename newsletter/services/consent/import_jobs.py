"""CSV imports too large for a request: checked and written by a worker, reported on a page.

All or nothing per file, as within the request (importing.py): a manager who gets "rows 1 to
60,000 imported, then an error" has to find out which rows to send again, and a file cut in
chunks would leave the list half imported for as long as it takes to fix the rest. Checking is
the slow part and writes nothing; the writing is a few bulk INSERTs in one transaction that
also ends the job, so a job is either imported with its report or not imported at all.

A job is claimed with a conditional update that counts the attempt; every later write of the
job names that attempt, so a worker that wakes after its job was taken over changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from newsletter.enqueue import SUBSCRIPTION_IMPORT_RUN, task_enqueue_on_commit
from newsletter.models import ImportState, Newsletter, SubscriptionImport
from newsletter.services.consent.events import clean_line
from newsletter.services.consent.importing import (
    IMPORT_JOB_MAX_BYTES,
    IMPORT_JOB_MAX_ROWS,
    ImportReport,
    subscription_import_check,
    subscription_import_write,
)

# A job still checking or writing after this long lost its worker (a file of 100,000 rows
# takes about a minute): the next delivery of its message starts it again from the file.
IMPORT_STALE_AFTER = timedelta(minutes=15)


def subscription_import_queue(
    *, newsletter: Newsletter, file_name: str, data: bytes, user: AbstractBaseUser
) -> SubscriptionImport:
    """Keep the file as a job and wake a worker after commit."""
    job = SubscriptionImport.objects.create(
        newsletter=newsletter,
        file_name=clean_line(file_name, 200),
        data=data,
        lines=max(data.count(b"\n") - 1, 0) + (not data.endswith(b"\n")),
        created_by=user,
        user_name=user.get_username(),
    )
    task_enqueue_on_commit(SUBSCRIPTION_IMPORT_RUN, job.pk)
    return job


def _claim(import_id: int) -> int | None:
    now = timezone.now()
    claimed = SubscriptionImport.objects.filter(
        Q(state=ImportState.QUEUED)
        | Q(
            state__in=(ImportState.CHECKING, ImportState.WRITING),
            started_at__lt=now - IMPORT_STALE_AFTER,
        ),
        pk=import_id,
    ).update(state=ImportState.CHECKING, started_at=now, attempts=F("attempts") + 1, rows_checked=0)
    if not claimed:
        return None
    return SubscriptionImport.objects.filter(pk=import_id).values_list("attempts", flat=True)[0]


def _report_fields(report: ImportReport) -> dict:
    fields = asdict(report)
    fields["errors"] = [list(pair) for pair in report.errors]
    del fields["file_name"]
    return fields


def subscription_import_run(*, import_id: int) -> str | None:
    """Check and write one queued import (safe to run twice: the claim decides); returns the
    job's final state, or None when there was nothing to claim or the claim was lost."""
    attempt = _claim(import_id)
    if attempt is None:
        return None
    job = SubscriptionImport.objects.select_related("newsletter").get(pk=import_id)
    mine = SubscriptionImport.objects.filter(pk=import_id, attempts=attempt)

    def progress(rows: int) -> None:
        mine.filter(state=ImportState.CHECKING).update(rows_checked=rows)

    checked = subscription_import_check(
        newsletter=job.newsletter,
        file_name=job.file_name,
        data=bytes(job.data),
        max_rows=IMPORT_JOB_MAX_ROWS,
        max_bytes=IMPORT_JOB_MAX_BYTES,
        progress=progress,
    )
    report = checked.report
    if not report.imported:
        return _end(mine, report=report, state=ImportState.REFUSED)
    if not mine.filter(state=ImportState.CHECKING).update(
        state=ImportState.WRITING, rows_checked=report.rows
    ):
        return None
    try:
        with transaction.atomic():
            if not mine.select_for_update().filter(state=ImportState.WRITING).exists():
                return None
            subscription_import_write(
                newsletter=job.newsletter, checked=checked, actor=job.created_by
            )
            return _end(mine, report=report, state=ImportState.IMPORTED)
    except IntegrityError:
        # Someone signed up with an address of the file while it was being written.
        report = ImportReport(
            file_name=job.file_name,
            rows=report.rows,
            file_error=_(
                "Während des Imports hat sich eine Adresse der Datei angemeldet. Es wurde "
                "nichts übernommen; bitte die Datei erneut hochladen."
            ),
        )
        return _end(mine, report=report, state=ImportState.REFUSED)


def _end(mine, *, report: ImportReport, state: str) -> str | None:
    ended = mine.filter(state__in=(ImportState.CHECKING, ImportState.WRITING)).update(
        state=state, finished_at=timezone.now(), data=b"", **_report_fields(report)
    )
    return state if ended else None
