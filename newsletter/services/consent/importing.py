"""Import of subscribers from a CSV file: proof of consent, or a double opt-in.

A row that carries proof (time, IP, source and version of the text the person agreed to)
becomes a confirmed subscription with an `imported` consent event naming the file and the
importing user; a row without proof becomes pending, with a `requested` event naming the file,
the user and the text the confirmation mail asks about, and gets that mail after commit.
Suppressed addresses and addresses the newsletter already knows are never re-added.
The file is checked whole before anything is written, and written in one transaction: a file
with a single bad row imports nothing and answers with every problem by line.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from newsletter.addresses import address_hmac, address_validate
from newsletter.enqueue import CONFIRMATION_SEND, task_enqueue_on_commit
from newsletter.models import (
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
    event_record,
    language_or_default,
)

BERLIN = ZoneInfo("Europe/Berlin")
# Synchronous within one request and one transaction (10,000 rows took 34 s on the loaded
# 2-core test machine, one ledger INSERT per row): beyond this a file is refused whole
# (and can be split) rather than imported in part or left to time out.
IMPORT_MAX_ROWS = 2_000
IMPORT_MAX_BYTES = 5 * 1024 * 1024
ERRORS_SHOWN = 200
PROOF_COLUMNS = ("consent_at", "ip", "source", "text_version")
KNOWN_COLUMNS = ("email", "language", *PROOF_COLUMNS)


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
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationError(
            _(
                "Die Datei ist nicht UTF-8-kodiert, sondern UTF-16. Bitte als „CSV UTF-8“ "
                "speichern und erneut hochladen."
            ),
            code="encoding",
        )
    if b"\x00" in data:
        raise ValidationError(_("Die Datei ist keine Textdatei."), code="binary")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            _(
                "Die Datei ist nicht UTF-8-kodiert (Byte %(pos)d). Bitte als „CSV UTF-8“ "
                "speichern und erneut hochladen."
            )
            % {"pos": exc.start + 1},
            code="encoding",
        ) from None


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


def _parse(*, text: str, newsletter: Newsletter, report: ImportReport) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
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
        if number - 1 > IMPORT_MAX_ROWS:
            report.file_error = _(
                "Die Datei hat mehr als %(max)d Zeilen. Bitte in kleinere Dateien aufteilen."
            ) % {"max": IMPORT_MAX_ROWS}
            return []
        if None in record:
            report.error_add(number, _("Mehr Felder als Spaltennamen."))
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        if not any(values.values()):
            continue
        report.rows += 1
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


def subscription_import(
    *, newsletter: Newsletter, file_name: str, data: bytes, actor: AbstractBaseUser | None
) -> ImportReport:
    """Import a CSV file whole or not at all (see module doc); confirmation mails of the rows
    without proof go out after commit."""
    report = ImportReport(file_name=clean_line(file_name, 200))
    if len(data) > IMPORT_MAX_BYTES:
        report.file_error = _("Die Datei ist größer als %(mb)d MB.") % {
            "mb": IMPORT_MAX_BYTES // (1024 * 1024)
        }
        return report
    try:
        text = _decode(data)
    except ValidationError as exc:
        report.file_error = " ".join(exc.messages)
        return report
    try:
        rows = _parse(text=text, newsletter=newsletter, report=report)
    except csv.Error as exc:
        report.file_error = _("Die Datei ist kein lesbares CSV: %(error)s") % {"error": exc}
        return report
    if not report.imported:
        return report
    if not rows:
        report.file_error = _("Die Datei enthält keine Adressen.")
        return report

    keys = [row.key for row in rows]
    suppressed = set(
        Suppression.objects.filter(address_hmac__in=keys).values_list("address_hmac", flat=True)
    )
    texts = {
        language: consent_text_current(newsletter=newsletter, language=language)
        for language in {row.language for row in rows}
    }
    if any(text is None for text in texts.values()):
        report.file_error = _("Für diesen Newsletter ist keine Einwilligungserklärung hinterlegt.")
        return report
    now = timezone.now()
    frequency = Frequency.DAILY if newsletter.offers_daily else Frequency.WEEKLY
    source = clean_line(f"import: {report.file_name}", 80)
    with transaction.atomic():
        existing = set(
            Subscription.objects.filter(newsletter=newsletter, address_hmac__in=keys)
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
        # One INSERT for all subscriptions; the unique constraints still guard each row.
        created = Subscription.objects.bulk_create(
            [
                _subscription(newsletter=newsletter, row=row, frequency=frequency, now=now)
                for row in new
            ],
            batch_size=2000,
        )
        for row, subscription in zip(new, created, strict=True):
            facts = {"file": report.file_name, "line": row.line}
            if row.proof is None:
                event_record(
                    subscription=subscription,
                    kind=ConsentEventKind.REQUESTED,
                    at=now,
                    form=source,
                    consent_text=texts[row.language],
                    text_sha256=texts[row.language].sha256,
                    actor=actor,
                    data=facts,
                )
                task_enqueue_on_commit(CONFIRMATION_SEND, subscription.id)
                report.pending += 1
            else:
                _proof_record(
                    newsletter=newsletter,
                    subscription=subscription,
                    row=row,
                    now=now,
                    facts=facts,
                    actor=actor,
                )
                report.confirmed += 1
    return report


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


def _proof_record(
    *,
    newsletter: Newsletter,
    subscription: Subscription,
    row: _Row,
    now: datetime,
    facts: dict,
    actor: AbstractBaseUser | None,
) -> None:
    proof = row.proof or {}
    consent_text = _consent_text(newsletter, row.language, proof["text_version"])
    event_record(
        subscription=subscription,
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
