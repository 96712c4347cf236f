"""The proof of one subscription's consent as a document a court or an authority can read.

Built once as plain lines (German, or the subscription's language; times as the site shows
them), from which the printable page and the PDF are both rendered, so they say the same. The
document's fingerprint is the SHA-256 of those lines; issuing one logs it, so the publisher can
later tell a copy it issued from an altered one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from newsletter import chain
from newsletter.models import (
    ChainCheckpoint,
    ConsentEvent,
    ConsentEventKind,
    RevocationChannel,
    Subscription,
    SubscriptionState,
)
from newsletter.services.ledger import chain_links_check, chain_verify

logger = logging.getLogger(__name__)


def local_time(value: datetime) -> str:
    """A time as the site shows it: Europe/Berlin, "dd.mm.yyyy hh:mm Uhr"."""
    local = timezone.localtime(value, ZoneInfo(settings.TIME_ZONE))
    return _("%(date)s %(time)s Uhr") % {
        "date": local.strftime("%d.%m.%Y"),
        "time": local.strftime("%H:%M"),
    }


@dataclass
class ProofStep:
    number: int
    when: str
    title: str
    details: list[tuple[str, str]]
    chain: str
    intact: bool


@dataclass
class ProofDocument:
    language: str
    title: str
    publisher: list[str]
    issued: str
    facts: list[tuple[str, str]]
    consent_texts: list[tuple[str, str]]
    steps: list[ProofStep]
    chain_summary: str
    chain_intact: bool
    statement: list[str]
    fingerprint: str = ""
    headings: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The document as text, in reading order: what the fingerprint covers."""
        out = [self.title, *self.publisher, f"{self.headings['issued']}: {self.issued}", ""]
        out += [f"{label}: {value}" for label, value in self.facts]
        for heading, text in self.consent_texts:
            out += ["", heading, text]
        out += ["", self.headings["steps"]]
        for step in self.steps:
            out.append(f"{step.number}. {step.when} – {step.title}")
            out += [f"   {label}: {value}" for label, value in step.details]
            out.append(f"   {step.chain}")
        out += ["", self.headings["chain"], self.chain_summary, "", *self.statement]
        return out


def _form(value: str) -> str:
    names = {
        "signup_box": _("Anmeldekasten auf einer Seite der Website"),
        "signup_page": _("Anmeldeseite des Newsletters"),
        "preferences": _("Einstellungsseite des Newsletters"),
    }
    return names.get(value, value)


def _channel(value: str) -> str:
    return str(RevocationChannel(value).label) if value in RevocationChannel.values else value


def _network(event: ConsentEvent) -> list[tuple[str, str]]:
    details = []
    if event.ip:
        details.append((_("IP-Adresse"), event.ip))
    if event.user_agent:
        details.append((_("Browser (User-Agent)"), event.user_agent))
    return details


def _changes(event: ConsentEvent) -> str:
    """A structured change as one line: "language: de → en; frequency: daily → weekly"."""
    return "; ".join(
        f"{name}: {change.get('old', '–')} → {change.get('new', '–')}"
        for name, change in sorted(event.data.items())
        if isinstance(change, dict)
    )


def _actor(event: ConsentEvent) -> list[tuple[str, str]]:
    return [(_("Bearbeitet von"), event.actor.get_username())] if event.actor else []


def _step_text(event: ConsentEvent) -> tuple[str, list[tuple[str, str]]]:
    kind = event.kind
    if kind == ConsentEventKind.REQUESTED:
        details = [(_("Formular"), _form(event.form)), (_("Seite"), event.url), *_network(event)]
        if event.consent_text is not None:
            details.append(
                (
                    _("Angezeigter Einwilligungstext"),
                    _("Version %(version)s, SHA-256 %(sha)s")
                    % {"version": event.consent_text.version, "sha": event.text_sha256},
                )
            )
        return _("Anmeldung mit dem Anmeldeformular"), [(k, v) for k, v in details if v]
    if kind == ConsentEventKind.CONFIRMATION_SENT:
        return _("Bestätigungsmail versandt"), [(_("Message-ID"), event.message_id or "–")]
    if kind == ConsentEventKind.CONFIRMED:
        details = _network(event)
        if event.note == "suppression lifted":
            details.append((_("Vermerk"), _("Eine frühere Sperre der Adresse wurde aufgehoben.")))
        return _("Bestätigung über den Link in der Bestätigungsmail"), details
    if kind == ConsentEventKind.REVOKED:
        details = [(_("Weg"), _channel(event.channel)), *_network(event), *_actor(event)]
        if event.note:
            details.append((_("Vermerk"), event.note))
        return _("Widerruf der Einwilligung"), details
    if kind == ConsentEventKind.SUPPRESSED:
        return _("Versand gesperrt"), [
            (_("Weg"), _channel(event.channel)),
            (_("Grund"), event.note or "–"),
        ]
    if kind == ConsentEventKind.PREFERENCES_CHANGED:
        # Events written before changes were structured kept them as prose in the note.
        return _("Einstellungen geändert"), [(_("Änderung"), _changes(event) or event.note or "–")]
    if kind == ConsentEventKind.EXPORTED:
        return _("Auskunft über die gespeicherten Daten erteilt"), []
    return str(ConsentEventKind(kind).label), [(_("Vermerk"), event.note)] if event.note else []


def proof_document_build(
    *, subscription: Subscription, issued_at: datetime | None = None
) -> ProofDocument:
    """The proof of one subscription: its stored events in plain words, each with its chain
    position and the result of verifying the chain up to it, and the document's fingerprint."""
    issued_at = issued_at or timezone.now()
    newsletter = subscription.newsletter
    events = list(
        ConsentEvent.objects.filter(subscription=subscription)
        .select_related("consent_text", "actor")
        .order_by("chain_seq")
    )
    with translation.override(subscription.language or "de"):
        target = events[-1].chain_seq if events else 0
        checkpoint = ChainCheckpoint.objects.filter(seq__lte=target).order_by("-seq", "-id").first()
        report = chain_verify(
            after_seq=checkpoint.seq if checkpoint else 0,
            prev_hash=checkpoint.row_hash if checkpoint else chain.GENESIS_HASH,
            until_seq=target,
        )
        # Rows a checkpoint covered are rechecked one by one, so a change since is still seen.
        link_breaks = chain_links_check(seqs=[event.chain_seq for event in events])
        broken_at = report.breaks[0].seq if report.breaks else None
        steps = []
        for number, event in enumerate(events, start=1):
            title, details = _step_text(event)
            intact = event.chain_seq not in link_breaks and (
                broken_at is None or event.chain_seq < broken_at
            )
            status = _("unverändert") if intact else _("NICHT bestätigt")
            steps.append(
                ProofStep(
                    number=number,
                    when=local_time(event.at),
                    title=title,
                    details=details,
                    chain=_(
                        "Kettenposition %(seq)s, Hash %(hash)s – Kette bis hier geprüft: %(status)s"
                    )
                    % {"seq": event.chain_seq, "hash": event.row_hash, "status": status},
                    intact=intact,
                )
            )
        first_break = report.breaks[0] if report.breaks else None
        if link_breaks:
            first_break = link_breaks[min(link_breaks)]
        parts = []
        if checkpoint is not None:
            checked = _("Die Kette war bis Position %(seq)s am %(time)s geprüft (Hash %(hash)s).")
            parts.append(
                checked
                % {
                    "seq": checkpoint.seq,
                    "time": local_time(checkpoint.created_at),
                    "hash": checkpoint.row_hash,
                }
            )
        start = checkpoint.seq + 1 if checkpoint else 1
        if target >= start:
            parts.append(
                _("Beim Ausstellen wurden die Positionen %(first)s bis %(last)s geprüft.")
                % {"first": start, "last": target}
            )
        parts.append(
            _("Jeder Eintrag dieses Nachweises wurde beim Ausstellen einzeln neu berechnet.")
        )
        parts.append(
            _("Ergebnis: %(result)s.")
            % {
                "result": _("unverändert")
                if first_break is None
                else _("Bruch bei Position %(seq)s (%(field)s)")
                % {"seq": first_break.seq, "field": first_break.field}
            }
        )
        summary = " ".join(parts)
        texts = []
        seen = set()
        for event in events:
            text = event.consent_text
            if text is None or text.id in seen:
                continue
            seen.add(text.id)
            texts.append(
                (
                    _(
                        "Einwilligungstext, wie bei der Anmeldung angezeigt (Version %(version)s, "
                        "Sprache %(language)s, SHA-256 %(sha)s)"
                    )
                    % {"version": text.version, "language": text.language, "sha": text.sha256},
                    text.text,
                )
            )
        publisher = [newsletter.sender_name or newsletter.name]
        publisher += [line for line in newsletter.imprint_text.splitlines() if line.strip()]
        if newsletter.imprint_url:
            publisher.append(_("Impressum: %(url)s") % {"url": newsletter.imprint_url})
        document = ProofDocument(
            language=subscription.language or "de",
            title=_("Nachweis der Einwilligung in den Newsletter-Empfang (Double-Opt-in)"),
            publisher=publisher,
            issued=local_time(issued_at),
            facts=[
                (_("E-Mail-Adresse"), subscription.email),
                (_("Newsletter"), newsletter.name),
                (_("Aktueller Stand"), str(SubscriptionState(subscription.state).label)),
            ],
            consent_texts=texts,
            steps=steps,
            chain_summary=summary,
            chain_intact=first_break is None,
            statement=[
                _(
                    "Dieser Nachweis gibt die gespeicherten Einträge unverändert wieder. Jeder "
                    "Eintrag ist Glied einer Hash-Kette (SHA-256) über alle Einwilligungsnachweise "
                    "dieser Website: eine nachträgliche Änderung, Löschung, Einfügung oder "
                    "Umstellung eines Eintrags fällt bei der Prüfung der Kette auf."
                ),
                _(
                    "Die Kette belegt nicht, wer einen Eintrag ursprünglich geschrieben hat; sie "
                    "belegt, dass die Einträge seit ihrer Aufnahme in die Kette nicht verändert "
                    "wurden. Zeiten in mitteleuropäischer Zeit (Europe/Berlin)."
                ),
            ],
            headings={
                "issued": _("Ausgestellt am"),
                "steps": _("Ablauf"),
                "chain": _("Prüfung der Hash-Kette"),
                "fingerprint": _(
                    "Fingerabdruck dieses Dokuments (SHA-256 über seinen Text ohne diese Zeile)"
                ),
            },
        )
        document.fingerprint = hashlib.sha256("\n".join(document.lines()).encode()).hexdigest()
    logger.info(
        "consent proof issued for subscription %s: fingerprint %s",
        subscription.id,
        document.fingerprint,
        extra={"subscription_id": subscription.id, "fingerprint": document.fingerprint},
    )
    return document
