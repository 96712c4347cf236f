"""Import of subscribers from a CSV file: proof of consent, or a double opt-in.

A row that carries proof (time, IP, source and version of the text the person agreed to)
becomes a confirmed subscription with an `imported` consent event naming the file and the
importing user; a row without proof becomes pending, with a `requested` event naming the file,
the user and the text the confirmation mail asks about, and gets that mail after commit:
not one task per row, but one per IMPORT_CONFIRMATION_CHUNK pending rows, each naming only
its newsletter, the import's request time and an id range (a 100,000-row file queues 100
messages, not 100,000, and none of them carries a list of ids).
Suppressed addresses and addresses the newsletter already knows are never re-added.
The file is checked whole before anything is written, and written in one transaction: a file
with a single bad row imports nothing and answers with every problem by line. Up to
IMPORT_MAX_ROWS rows this happens within the request; a larger file becomes a
SubscriptionImport job (import_jobs.py) that a worker checks and writes by the same rules.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from newsletter.addresses import address_hmac, address_validate
from newsletter.csvcells import FORMULA_PREFIXES
from newsletter.enqueue import IMPORT_CONFIRMATIONS_SEND, task_enqueue_on_commit
from newsletter.models import (
    ConsentEvent,
    ConsentEventKind,
    ConsentText,
    Frequency,
    Newsletter,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.selectors.consent import consent_text_current
from newsletter.services.consent.events import (
    clean_ip,
    clean_line,
    language_or_default,
)
from newsletter.services.consent.signup import subscription_confirmation_send
from newsletter.services.ledger import chain_append_many

logger = logging.getLogger(__name__)

BERLIN = ZoneInfo("Europe/Berlin")
# Within the request up to this many rows; a larger file goes to a worker as a job, up to
# IMPORT_JOB_MAX_ROWS (a file of 100,000 rows is about 10 MB).
IMPORT_MAX_ROWS = 2_000
IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_JOB_MAX_ROWS = 200_000
IMPORT_JOB_MAX_BYTES = 40 * 1024 * 1024
PROGRESS_EVERY = 5_000
ERRORS_SHOWN = 200
# Stripped cells: a leading tab or CR is already gone.
FORMULA_STARTS = tuple(p for p in FORMULA_PREFIXES if p.strip())
PROOF_COLUMNS = ("consent_at", "ip", "source", "text_version")
KNOWN_COLUMNS = ("email", "language", *PROOF_COLUMNS)
# Pending rows per confirmation task: a few minutes of sending, well inside the broker's
# visibility timeout, and few enough messages for the largest file.
IMPORT_CONFIRMATION_CHUNK = 1_000


@dataclass
class ImportReport:
    file_name: str
    rows: int = 0
    confirmed: int = 0
    pending: int = 0
    existing: int = 0
    suppressed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0
    # A problem with the file as a whole (encoding, size, header): no rows were looked at.
    file_error: str = ""

    @property
    def imported(self) -> bool:
        return not self.file_error and not self.error_count

    def error_add(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_SHOWN:
            self.errors.append((line, message))


@dataclass(frozen=True)
class _Row:
    line: int
    email: str
    key: str
    language: str
    proof: dict | None


def _decode(data: bytes) -> str:
    # UTF-16 with its byte-order mark (Excel's "Unicode text") says what it is: read it.
    # Anything else must be UTF-8; a Latin-1 or Windows-1252 file is refused with the line
    # of its first foreign byte rather than guessed, since a wrong guess changes addresses.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValidationError(
                _("Die Datei gibt sich als UTF-16 aus, ist es aber nicht."), code="encoding"
            ) from None
    if b"\x00" in data:
        raise ValidationError(_("Die Datei ist keine Textdatei."), code="binary")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            _(
                "Die Datei ist nicht UTF-8-kodiert (Zeile %(line)d, Byte %(pos)d; vermutlich "
                "Latin-1 oder Windows-1252). Bitte als „CSV UTF-8“ speichern und erneut "
                "hochladen."
            )
            % {"line": data[: exc.start].count(b"\n") + 1, "pos": exc.start + 1},
            code="encoding",
        ) from None


def _delimiter(text: str) -> str:
    """Comma, or the semicolon of German spreadsheets, or a tab: whichever the header uses."""
    header = text.split("\n", 1)[0]
    found = [(header.find(d), d) for d in (",", ";", "\t") if d in header]
    return min(found)[1] if found else ","


def _consent_at(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            _("„consent_at“ ist kein Zeitpunkt (erwartet z. B. 2025-03-01T09:30:00+01:00).")
        ) from None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=BERLIN)
    if value > timezone.now():
        raise ValueError(_("„consent_at“ liegt in der Zukunft."))
    return value


def _parse(
    *,
    text: str,
    newsletter: Newsletter,
    report: ImportReport,
    max_rows: int,
    progress: Callable[[int], None] | None = None,
) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    if "email" not in header:
        report.file_error = _(
            "Die erste Zeile muss die Spaltennamen enthalten, mindestens „email“ "
            "(dazu optional: %(columns)s)."
        ) % {"columns": ", ".join(KNOWN_COLUMNS[1:])}
        return []
    reader.fieldnames = header
    rows: list[_Row] = []
    first_line: dict[str, int] = {}
    for number, record in enumerate(reader, start=2):
        if number - 1 > max_rows:
            report.file_error = _(
                "Die Datei hat mehr als %(max)d Zeilen. Bitte in kleinere Dateien aufteilen."
            ) % {"max": max_rows}
            return []
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number - 1)
        if None in record:
            report.error_add(number, _("Mehr Felder als Spaltennamen."))
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        if not any(values.values()):
            continue
        report.rows += 1
        formula = next((k for k, v in values.items() if k and v.startswith(FORMULA_STARTS)), None)
        if formula is not None:
            # A cell a spreadsheet would run as a formula is no address, source or version
            # anyone typed: the file is refused rather than the formula kept as evidence.
            report.error_add(
                number,
                _("Spalte „%(column)s“ beginnt wie eine Tabellenformel (=, +, -, @).")
                % {"column": formula[:40]},
            )
            continue
        try:
            email = address_validate(values.get("email", ""))
        except ValidationError as exc:
            report.error_add(number, " ".join(exc.messages))
            continue
        key = address_hmac(email)
        if key in first_line:
            report.error_add(
                number,
                _("Adresse doppelt (schon in Zeile %(line)d).") % {"line": first_line[key]},
            )
            continue
        first_line[key] = number
        given = [c for c in PROOF_COLUMNS if values.get(c)]
        proof = None
        if given and len(given) < len(PROOF_COLUMNS):
            missing = ", ".join(c for c in PROOF_COLUMNS if c not in given)
            report.error_add(
                number, _("Nachweis unvollständig, es fehlt: %(missing)s.") % {"missing": missing}
            )
            continue
        if given:
            ip = clean_ip(values["ip"])
            if ip is None:
                report.error_add(number, _("„ip“ ist keine IP-Adresse."))
                continue
            try:
                at = _consent_at(values["consent_at"])
            except ValueError as exc:
                report.error_add(number, str(exc))
                continue
            proof = {
                "consent_at": at,
                "ip": ip,
                "source": clean_line(values["source"], 80),
                "text_version": clean_line(values["text_version"], 40),
            }
        language = language_or_default(values.get("language"), fallback=newsletter.language)
        rows.append(_Row(line=number, email=email, key=key, language=language, proof=proof))
    return rows


def _consent_text(newsletter: Newsletter, language: str, version: str) -> ConsentText | None:
    if not version.isdigit():
        return None
    return ConsentText.objects.filter(
        newsletter=newsletter, language=language, version=int(version)
    ).first()


@dataclass
class ImportChecked:
    """A file that passed every check, ready to be written; `report` says why not otherwise."""

    report: ImportReport
    rows: list[_Row] = field(default_factory=list)
    texts: dict[str, ConsentText] = field(default_factory=dict)


def subscription_import_check(
    *,
    newsletter: Newsletter,
    file_name: str,
    data: bytes,
    max_rows: int = IMPORT_MAX_ROWS,
    max_bytes: int = IMPORT_MAX_BYTES,
    progress: Callable[[int], None] | None = None,
) -> ImportChecked:
    """Read and check a whole CSV file without writing anything: encoding, header, every row."""
    report = ImportReport(file_name=clean_line(file_name, 200))
    checked = ImportChecked(report=report)
    if len(data) > max_bytes:
        report.file_error = _("Die Datei ist größer als %(mb)d MB.") % {
            "mb": max_bytes // (1024 * 1024)
        }
        return checked
    try:
        text = _decode(data)
    except ValidationError as exc:
        report.file_error = " ".join(exc.messages)
        return checked
    try:
        rows = _parse(
            text=text, newsletter=newsletter, report=report, max_rows=max_rows, progress=progress
        )
    except csv.Error as exc:
        report.file_error = _("Die Datei ist kein lesbares CSV: %(error)s") % {"error": exc}
        return checked
    if not report.imported:
        return checked
    if not rows:
        report.file_error = _("Die Datei enthält keine Adressen.")
        return checked
    texts = {
        language: consent_text_current(newsletter=newsletter, language=language)
        for language in {row.language for row in rows}
    }
    if any(text is None for text in texts.values()):
        report.file_error = _("Für diesen Newsletter ist keine Einwilligungserklärung hinterlegt.")
        return checked
    checked.rows = rows
    checked.texts = texts
    return checked


def subscription_import_write(
    *, newsletter: Newsletter, checked: ImportChecked, actor: AbstractBaseUser | None
) -> ImportReport:
    """Write a checked file in the caller's transaction: new addresses only, never one on the
    suppression list; the ledger in one chained bulk append; mails after commit."""
    report, rows, texts = checked.report, checked.rows, checked.texts
    keys = [row.key for row in rows]
    now = timezone.now()
    frequency = Frequency.DAILY if newsletter.offers_daily else Frequency.WEEKLY
    source = clean_line(f"import: {report.file_name}", 80)
    suppressed: set[str] = set()
    existing: set[str] = set()
    for start in range(0, len(keys), 10_000):
        chunk = keys[start : start + 10_000]
        suppressed.update(
            Suppression.objects.filter(address_hmac__in=chunk).values_list(
                "address_hmac", flat=True
            )
        )
        existing.update(
            Subscription.objects.filter(newsletter=newsletter, address_hmac__in=chunk)
            .select_for_update()
            .values_list("address_hmac", flat=True)
        )
    new = []
    for row in rows:
        if row.key in suppressed:
            report.suppressed += 1
        elif row.key in existing:
            report.existing += 1
        else:
            new.append(row)
    # One INSERT per 2,000 subscriptions; the unique constraints still guard each row.
    created = Subscription.objects.bulk_create(
        [
            _subscription(newsletter=newsletter, row=row, frequency=frequency, now=now)
            for row in new
        ],
        batch_size=2000,
    )
    events = []
    pending_ids: list[int] = []
    # The text each proof names, looked up once per (language, version), not once per row.
    named: dict[tuple[str, str], ConsentText | None] = {}
    for row, subscription in zip(new, created, strict=True):
        facts = {"file": report.file_name, "line": row.line}
        if row.proof is None:
            events.append(
                ConsentEvent(
                    subscription=subscription,
                    newsletter_id=newsletter.pk,
                    address_hmac=subscription.address_hmac,
                    kind=ConsentEventKind.REQUESTED,
                    at=now,
                    form=source,
                    consent_text=texts[row.language],
                    text_sha256=texts[row.language].sha256,
                    actor=actor,
                    data=facts,
                )
            )
            pending_ids.append(subscription.id)
            report.pending += 1
        else:
            events.append(
                _proof_event(
                    newsletter=newsletter,
                    subscription=subscription,
                    row=row,
                    now=now,
                    facts=facts,
                    actor=actor,
                    named=named,
                )
            )
            report.confirmed += 1
    chain_append_many(events=events)
    for start in range(0, len(pending_ids), IMPORT_CONFIRMATION_CHUNK):
        chunk = pending_ids[start : start + IMPORT_CONFIRMATION_CHUNK]
        # min/max, not first/last: ids of one INSERT need not come back ascending.
        task_enqueue_on_commit(
            IMPORT_CONFIRMATIONS_SEND, newsletter.pk, now.isoformat(), min(chunk), max(chunk)
        )
    return report


def import_confirmations_send(
    *, newsletter_id: int, requested_at: datetime, first_id: int, last_id: int
) -> int:
    """Send the double-opt-in mail to every subscription an import left pending in an id
    range; returns how many went out. The import's request time tells its rows from any other
    signup whose id fell in the range. Each row goes through subscription_confirmation_send,
    so the ledger event, the resend limits and the guard are those of a single signup: a
    repeated run sends nothing that was sent. A row that fails does not hold up the rest of
    the range; the first failure is raised at the end, so a retry can pick up what failed."""
    pending = (
        Subscription.objects.filter(
            newsletter_id=newsletter_id,
            id__range=(first_id, last_id),
            state=SubscriptionState.PENDING,
            requested_at=requested_at,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )
    sent = 0
    failure: Exception | None = None
    for subscription_id in list(pending):
        try:
            sent += subscription_confirmation_send(subscription_id=subscription_id)
        except Exception as exc:
            logger.warning("confirmation mail of subscription %s failed: %r", subscription_id, exc)
            failure = failure or exc
    if failure is not None:
        raise failure
    return sent


def subscription_import(
    *, newsletter: Newsletter, file_name: str, data: bytes, actor: AbstractBaseUser | None
) -> ImportReport:
    """Import a CSV file of at most IMPORT_MAX_ROWS rows whole or not at all (see module doc);
    confirmation mails of the rows without proof go out after commit."""
    checked = subscription_import_check(newsletter=newsletter, file_name=file_name, data=data)
    if not checked.report.imported:
        return checked.report
    with transaction.atomic():
        return subscription_import_write(newsletter=newsletter, checked=checked, actor=actor)


def _subscription(
    *, newsletter: Newsletter, row: _Row, frequency: str, now: datetime
) -> Subscription:
    proof = row.proof
    return Subscription(
        newsletter=newsletter,
        email=row.email,
        address_hmac=row.key,
        language=row.language,
        frequency=frequency,
        state=SubscriptionState.CONFIRMED if proof else SubscriptionState.PENDING,
        created_at=now,
        requested_at=proof["consent_at"] if proof else now,
        confirmed_at=proof["consent_at"] if proof else None,
    )


def _proof_event(
    *,
    newsletter: Newsletter,
    subscription: Subscription,
    row: _Row,
    now: datetime,
    facts: dict,
    actor: AbstractBaseUser | None,
    named: dict[tuple[str, str], ConsentText | None],
) -> ConsentEvent:
    proof = row.proof or {}
    key = (row.language, proof["text_version"])
    if key not in named:
        named[key] = _consent_text(newsletter, *key)
    consent_text = named[key]
    return ConsentEvent(
        subscription=subscription,
        newsletter_id=newsletter.pk,
        address_hmac=subscription.address_hmac,
        kind=ConsentEventKind.IMPORTED,
        at=now,
        ip=proof["ip"],
        form=proof["source"],
        consent_text=consent_text,
        text_sha256=consent_text.sha256 if consent_text else "",
        actor=actor,
        # The address's IP is in `ip`, which erasure can blank; the chained data holds none.
        data={
            **facts,
            "consent_at": proof["consent_at"].isoformat(),
            "source": proof["source"],
            "text_version": proof["text_version"],
        },
    )
