"""The hash chain over the consent ledger: appending, pruning, verifying, checkpointing.

Appends serialise on the single ChainHead row, locked as the last step before the insert so the
lock is held only from there to the commit of the caller's transaction. The verifier streams
the chain in position order with COPY: PostgreSQL builds each row's canonical text
(newsletter/chain.py keeps the SQL and the Python form together) while Python only hashes.
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, QuerySet

from newsletter import chain
from newsletter.emails.ledger import chain_checkpoint_message_build
from newsletter.models import (
    CHAIN_HEAD_ID,
    ChainCheckpoint,
    ChainHead,
    ChainPrune,
    ConsentEvent,
    ConsentEventKind,
    Subscription,
)

logger = logging.getLogger(__name__)

NULL = "\\N"

# Where a subscription keeps the time of the event of a kind: a second witness for `at`.
_SUBSCRIPTION_TIME_OF_KIND = {
    ConsentEventKind.REQUESTED: "requested_at",
    ConsentEventKind.CONFIRMED: "confirmed_at",
    ConsentEventKind.CONFIRMATION_SENT: "last_confirmation_sent_at",
}


def _ip_text(value: str | None) -> str | None:
    # Hash what PostgreSQL's host(inet) gives back, whatever spelling the caller used.
    return str(ipaddress.ip_address(value)) if value else None


def _head_locked() -> tuple[int, str]:
    head = (
        ChainHead.objects.select_for_update()
        .filter(pk=CHAIN_HEAD_ID)
        .values_list("seq", "row_hash")
        .first()
    )
    if head is not None:
        return head
    # A database emptied by hand (or a test's flush): the head is rebuilt from the chain's
    # end, and racing writers settle on one row through the primary key.
    ends = [
        *ConsentEvent.objects.order_by("-chain_seq").values_list("chain_seq", "row_hash")[:1],
        *ChainPrune.objects.order_by("-chain_seq").values_list("chain_seq", "row_hash")[:1],
    ]
    last = max(ends, default=(0, chain.GENESIS_HASH))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ChainHead._meta.db_table} (id, seq, row_hash) VALUES (%s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            [CHAIN_HEAD_ID, last[0], last[1]],
        )
    return (
        ChainHead.objects.select_for_update()
        .filter(pk=CHAIN_HEAD_ID)
        .values_list("seq", "row_hash")
        .get()
    )


def chain_append(*, event: ConsentEvent) -> ConsentEvent:
    """Insert an unsaved event as the next link of the chain; the head stays locked until the
    caller's transaction ends, so concurrent appends never fork or leave a gap."""
    if event.ip:
        event.ip = _ip_text(event.ip)
    event.personal_digest = chain.personal_digest(
        key=chain.personal_key(),
        ip=event.ip,
        user_agent=event.user_agent,
        url=event.url,
        note=event.note,
    )
    with transaction.atomic(savepoint=False):
        seq, prev_hash = _head_locked()
        event.chain_seq = seq + 1
        event.prev_hash = prev_hash
        event.row_hash = chain.row_hash(
            prev_hash=prev_hash,
            canonical=_canonical_of(event),
            personal_digest=event.personal_digest,
        )
        event.save(force_insert=True)
        ChainHead.objects.filter(pk=CHAIN_HEAD_ID).update(
            seq=event.chain_seq, row_hash=event.row_hash
        )
    return event


def chain_append_many(*, events: list[ConsentEvent], batch_size: int = 2000) -> None:
    """Insert unsaved events as the next links of the chain, in list order, under one lock of
    the head and with bulk INSERTs: what an import of a hundred thousand rows needs, where
    chain_append's statement per event held the head for minutes. Same hashes, same rule."""
    if not events:
        return
    key = chain.personal_key()
    for event in events:
        if event.ip:
            event.ip = _ip_text(event.ip)
        event.personal_digest = chain.personal_digest(
            key=key, ip=event.ip, user_agent=event.user_agent, url=event.url, note=event.note
        )
    with transaction.atomic(savepoint=False):
        seq, prev_hash = _head_locked()
        for event in events:
            seq += 1
            event.chain_seq = seq
            event.prev_hash = prev_hash
            event.row_hash = chain.row_hash(
                prev_hash=prev_hash,
                canonical=_canonical_of(event),
                personal_digest=event.personal_digest,
            )
            prev_hash = event.row_hash
        ConsentEvent.objects.bulk_create(events, batch_size=batch_size)
        ChainHead.objects.filter(pk=CHAIN_HEAD_ID).update(seq=seq, row_hash=prev_hash)


def _canonical_of(event: ConsentEvent) -> str:
    return chain.canonical_text(
        chain_seq=event.chain_seq,
        kind=event.kind,
        at=event.at,
        newsletter_id=event.newsletter_id,
        address_hmac=event.address_hmac,
        channel=event.channel,
        form=event.form,
        consent_text_id=event.consent_text_id,
        text_sha256=event.text_sha256,
        message_id=event.message_id,
        prune_digest=event.prune_digest,
        actor_id=event.actor_id,
        data=event.data,
    )


def chain_prune(*, events: QuerySet[ConsentEvent], at: datetime) -> int:
    """Delete events for the retention job and keep each one's position and hash, with one
    chained `retention` event per newsletter whose content covers those prune records."""
    rows = list(
        events.order_by("chain_seq").values_list("id", "chain_seq", "row_hash", "newsletter")
    )
    if not rows:
        return 0
    ConsentEvent.objects.filter(id__in=[row[0] for row in rows]).delete()
    by_newsletter: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for _id, seq, hashed, newsletter_id in rows:
        by_newsletter[newsletter_id].append((seq, hashed))
    for newsletter_id, links in sorted(by_newsletter.items()):
        retention = chain_append(
            event=ConsentEvent(
                newsletter_id=newsletter_id,
                address_hmac="",
                kind=ConsentEventKind.RETENTION,
                at=at,
                prune_digest=chain.prune_records_digest(links),
            )
        )
        ChainPrune.objects.bulk_create(
            ChainPrune(chain_seq=seq, row_hash=hashed, retention_seq=retention.chain_seq)
            for seq, hashed in links
        )
    return len(rows)


@dataclass
class ChainBreak:
    seq: int
    event_id: int | None
    field: str
    detail: str

    def __str__(self) -> str:
        where = f"event id {self.event_id}" if self.event_id else "no event"
        return f"chain broken at position {self.seq} ({where}): {self.field}: {self.detail}"


@dataclass
class ChainReport:
    from_seq: int
    last_seq: int
    last_hash: str
    last_event_id: int | None
    events: int
    pruned: int
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


# Positions per COPY of the walk: the prune records of one window are held in memory while its
# events stream, so memory stays bounded however many links a retention run removed.
CHAIN_WINDOW = 200_000


def _sql_chain_events(after_seq: int, until_seq: int) -> str:
    """The events of one window in chain order, an index scan that PostgreSQL streams. (A
    UNION ALL with the prune records under one ORDER BY made it sort every link first: at ten
    million links a 4.5 GB sort before the first row, so Python had nothing to hash meanwhile.
    PostgreSQL 15 builds no merge of the two index scans for it.)"""
    # Inlined as integers: COPY takes no parameters.
    return f"""
        SELECT e.chain_seq, e.id, e.prev_hash, e.row_hash, e.personal_digest, e.redacted,
               e.address_hmac, e.kind,
               {chain.CANONICAL_SQL} AS canonical,
               {chain.PERSONAL_SQL} AS personal,
               {chain.EXTENSION_SQL},
               e.prune_digest
        FROM {ConsentEvent._meta.db_table} e
        WHERE e.chain_seq > {int(after_seq)} AND e.chain_seq <= {int(until_seq)}
        ORDER BY e.chain_seq
    """


def _prune_links(after_seq: int, until_seq: int) -> list[list[str]]:
    """The links a retention run removed in one window, in the walk's row form."""
    rows = (
        ChainPrune.objects.filter(chain_seq__gt=after_seq, chain_seq__lte=until_seq)
        .order_by("chain_seq")
        .values_list("chain_seq", "row_hash", "retention_seq")
    )
    return [
        [str(seq), NULL, NULL, row_hash, *[NULL] * 8, str(retention_seq)]
        for seq, row_hash, retention_seq in rows
    ]


def _chain_rows_windowed(after_seq: int, until_seq: int | None) -> Iterator[list[str]]:
    """PostgreSQL's walk: window by window, the prune records read first, then the events
    streamed by COPY and merged with them in chain order. Run in one REPEATABLE READ
    transaction (chain_verify), every window sees the same snapshot."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT greatest((SELECT max(chain_seq) FROM {ConsentEvent._meta.db_table}), "
            f"(SELECT max(chain_seq) FROM {ChainPrune._meta.db_table}))"
        )
        last = cursor.fetchone()[0] or 0
    if until_seq is not None:
        last = min(last, until_seq)
    start = after_seq
    while start < last:
        end = min(start + CHAIN_WINDOW, last)
        pruned = _prune_links(start, end)
        events = _chain_rows(_sql_chain_events(start, end))
        try:
            if not pruned:
                yield from events
            else:
                yield from heapq.merge(events, pruned, key=lambda row: int(row[0]))
        finally:
            events.close()
        start = end


_COPY_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}
_COPY_ESCAPE = re.compile(r"\\(.)")


def _copy_unescape(value: str) -> str:
    return _COPY_ESCAPE.sub(lambda match: _COPY_ESCAPES.get(match[1], match[1]), value)


def _chain_links(after_seq: int, until_seq: int | None) -> Iterator[list[str]]:
    """The chain's links after `after_seq` in the text form the verifier reads: streamed by
    PostgreSQL's COPY in production, built row by row from the ORM on the local run's SQLite."""
    if connection.vendor == "postgresql":
        return _chain_rows_windowed(after_seq, until_seq)
    return _chain_rows_portable(after_seq, until_seq)


def _text(value: object) -> str:
    return NULL if value is None else str(value)


def _chain_rows_portable(after_seq: int, until_seq: int | None) -> Iterator[list[str]]:
    """The same rows as _chain_rows_windowed's, computed in Python (chain.py holds both forms)."""
    upper = until_seq or 2**63 - 1
    events = ConsentEvent.objects.filter(chain_seq__gt=after_seq, chain_seq__lte=upper)
    prunes = ChainPrune.objects.filter(chain_seq__gt=after_seq, chain_seq__lte=upper)
    links: list[tuple[int, list[str]]] = []
    for e in events.iterator(chunk_size=2000):
        canonical = chain.canonical_text(
            chain_seq=e.chain_seq,
            kind=e.kind,
            at=e.at,
            newsletter_id=e.newsletter_id,
            address_hmac=e.address_hmac,
            channel=e.channel,
            form=e.form,
            consent_text_id=e.consent_text_id,
            text_sha256=e.text_sha256,
            message_id=e.message_id,
            prune_digest=e.prune_digest,
        )
        personal = chain.personal_text(ip=e.ip, user_agent=e.user_agent, url=e.url, note=e.note)
        actor = data = None
        if e.actor_id is not None or e.data != {}:
            actor, data = e.actor_id or "", json.dumps(e.data, ensure_ascii=False)
        row = [e.chain_seq, e.id, e.prev_hash, e.row_hash, e.personal_digest]
        row += ["t" if e.redacted else "f", e.address_hmac, e.kind, canonical, personal]
        row += [actor, data]
        links.append((e.chain_seq, [*map(_text, row), _text(e.prune_digest)]))
    for p in prunes.iterator(chunk_size=2000):
        row = [p.chain_seq, None, None, p.row_hash, None, None, None, None, None, None, None, None]
        links.append((p.chain_seq, [*map(_text, row), str(p.retention_seq)]))
    links.sort(key=lambda link: link[0])
    for _seq, fields in links:
        yield fields


def _chain_rows(sql: str) -> Iterator[list[str]]:
    """The chain as COPY text rows: PostgreSQL streams while Python hashes, so both cores work
    and memory stays at one network block. NULL arrives as \\N."""
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
        rest = b""
        for block in copy:
            lines = (rest + bytes(block)).split(b"\n")
            rest = lines.pop()
            for line in lines:
                text = line.decode()
                fields = text.split("\t")
                # Most rows hold a NULL (\N: no actor, no consent text) and no other escape;
                # unescaping only where one is left keeps the walk at a few µs per link.
                if "\\" in text.replace(NULL, ""):
                    fields = [f if f == NULL else _copy_unescape(f) for f in fields]
                yield fields


def _content_diagnosis(event_id: int) -> tuple[str, str]:
    """Which field of a row whose hash no longer matches differs from a second witness."""
    event = ConsentEvent.objects.select_related("consent_text", "subscription").get(id=event_id)
    if event.consent_text is not None and event.text_sha256 != event.consent_text.sha256:
        return (
            "text_sha256",
            f"row has {event.text_sha256!r}, consent text {event.consent_text_id} has "
            f"{event.consent_text.sha256!r}",
        )
    attribute = _SUBSCRIPTION_TIME_OF_KIND.get(event.kind)
    subscription: Subscription | None = event.subscription
    witness = getattr(subscription, attribute, None) if subscription and attribute else None
    if witness is not None and witness != event.at:
        return (
            "at",
            f"row has {chain.at_text(event.at)}, subscription's {attribute} is "
            f"{chain.at_text(witness)}",
        )
    return (
        "row_hash",
        "kind, at, newsletter, address hash, channel, form, consent text, text_sha256, "
        "message_id, actor or data differ from what was hashed when the row was written",
    )


def _erased_after(after_seq: int) -> dict[str, int]:
    """The last erasure of each erased address: what justifies its redacted rows before it."""
    return dict(
        ConsentEvent.objects.filter(kind=ConsentEventKind.ERASED, chain_seq__gt=after_seq)
        .values("address_hmac")
        .annotate(last=Max("chain_seq"))
        .values_list("address_hmac", "last")
    )


def _prune_digest_of(retention_seq: int) -> str:
    return chain.prune_records_digest(
        ChainPrune.objects.filter(retention_seq=retention_seq)
        .order_by("chain_seq")
        .values_list("chain_seq", "row_hash")
    )


def chain_verify(
    *,
    after_seq: int = 0,
    prev_hash: str = chain.GENESIS_HASH,
    until_seq: int | None = None,
) -> ChainReport:
    """Walk the chain after `after_seq` (whose hash is `prev_hash`) up to `until_seq` (default:
    the head) in constant memory and stop at the first link that does not hold: a gap, a
    changed row, a redaction without erasure."""
    personal_hmac = chain.hmac_sha256_hex(chain.personal_key())
    row_sha256 = chain.sha256_hex()
    report = ChainReport(
        from_seq=after_seq,
        last_seq=after_seq,
        last_hash=prev_hash,
        last_event_id=None,
        events=0,
        pruned=0,
    )
    expected = after_seq + 1
    last_hash = prev_hash
    awaiting_retention: dict[int, int] = {}

    def broken(seq: int, event_id: int | None, name: str, detail: str) -> ChainReport:
        report.breaks.append(ChainBreak(seq=seq, event_id=event_id, field=name, detail=detail))
        return report

    erased_after = _erased_after(after_seq)
    # The head as it is before the walk: appends committed while it runs may lie beyond what
    # the walk sees, but every link up to this head must be there, ending in its hash.
    head = ChainHead.objects.filter(pk=CHAIN_HEAD_ID).values_list("seq", "row_hash").first()
    head_seq = head[0] if head is not None and until_seq is None else -1
    hash_at_head = None
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # One snapshot for every window of the walk (see _chain_rows_windowed).
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rows: Iterator[list[str]] | None = _chain_links(after_seq, until_seq)
        while rows is not None:
            current, rows = rows, None
            for (
                seq_text,
                event_id_text,
                row_prev,
                stored,
                personal_stored,
                redacted,
                address,
                kind,
                canonical,
                personal,
                actor,
                data,
                extra,
            ) in current:
                seq = int(seq_text)
                event_id = None if event_id_text == NULL else int(event_id_text)
                if seq != expected:
                    current.close()
                    if seq < expected:
                        return broken(seq, event_id, "chain_seq", "position appears twice")
                    return broken(
                        expected,
                        None,
                        "chain_seq",
                        f"positions {expected}–{seq - 1} are missing and no retention "
                        f"run recorded deleting them (next is event id {event_id})",
                    )
                if event_id is None:
                    # A link the retention job deleted: only its hash is left.
                    awaiting_retention.setdefault(int(extra), seq)
                    report.pruned += 1
                    last_hash = stored
                    expected = seq + 1
                    if seq == head_seq:
                        hash_at_head = stored
                    continue
                fault = None
                if row_prev != last_hash:
                    fault = (
                        "prev_hash",
                        f"row points to {row_prev[:16]}…, the previous link's hash is "
                        f"{last_hash[:16]}… (a row before it was removed, added or moved)",
                    )
                elif redacted == "t":
                    if erased_after.get(address, 0) <= seq:
                        fault = (
                            "redacted",
                            "personal fields are marked erased but no later erasure of this "
                            "address is in the chain",
                        )
                    elif personal != chain.BLANK_PERSONAL:
                        fault = (
                            "redacted",
                            "the row is marked erased but still holds an ip, user agent, "
                            "page or note",
                        )
                elif personal_hmac(personal.encode()) != personal_stored:
                    fault = (
                        "personal_digest",
                        "ip, user_agent, url or note differ from what was hashed when the row "
                        "was written",
                    )
                if actor != NULL:
                    # A row naming its actor or a structured change (see chain.extension_text).
                    canonical += chain.extension_text(
                        actor_id=int(actor) if actor else None, data=json.loads(data)
                    )
                if (
                    fault is None
                    and row_sha256(f"{row_prev}{canonical}{personal_stored}".encode()) != stored
                ):
                    current.close()  # the diagnosis needs the connection
                    fault = _content_diagnosis(event_id)
                if fault is not None:
                    current.close()
                    return broken(seq, event_id, *fault)
                report.last_event_id = event_id
                report.events += 1
                last_hash = stored
                expected = seq + 1
                if seq == head_seq:
                    hash_at_head = stored
                if kind == ConsentEventKind.RETENTION:
                    # Its prune records are read with a query of their own, so the stream
                    # stops here and starts again after it (a retention run is rare).
                    current.close()
                    if _prune_digest_of(seq) != extra:
                        return broken(
                            seq,
                            event_id,
                            "prune_digest",
                            "the prune records of this retention run were changed",
                        )
                    awaiting_retention.pop(seq, None)
                    rows = _chain_links(seq, until_seq)
                    break
        report.last_seq = expected - 1
        report.last_hash = last_hash
    if until_seq is not None:
        if report.last_seq < until_seq:
            return broken(
                report.last_seq + 1, None, "chain_seq", f"the chain ends before {until_seq}"
            )
        # A retention event after the end of this stretch may still cover its prune records.
        return report
    if awaiting_retention:
        retention_seq, pruned_seq = min(awaiting_retention.items(), key=lambda item: item[1])
        return broken(
            pruned_seq,
            None,
            "prune record",
            f"names retention event at position {retention_seq}, which is not in the chain",
        )
    if head is not None and head_seq > after_seq and report.last_seq < head_seq:
        return broken(
            report.last_seq + 1,
            None,
            "head",
            f"the chain ends at position {report.last_seq}, its head says {head_seq} "
            "(events at the end were deleted)",
        )
    if head is not None and head_seq > after_seq and hash_at_head != head[1]:
        return broken(
            head_seq,
            None,
            "head",
            f"the link at the head's position has hash {hash_at_head}, the head says {head[1]}",
        )
    return report


def chain_verify_from_checkpoint() -> ChainReport:
    """Verify only what was appended after the last checkpoint, linked to its hash."""
    last = ChainCheckpoint.objects.order_by("-seq", "-id").first()
    if last is None:
        return chain_verify()
    return chain_verify(after_seq=last.seq, prev_hash=last.row_hash)


def chain_head_anchor_check(*, seq: int, row_hash: str) -> ChainBreak | None:
    """Compare a head kept outside (an archived checkpoint mail) with the link at its position."""
    stored = ConsentEvent.objects.filter(chain_seq=seq).values_list("id", "row_hash").first()
    if stored is None:
        pruned = ChainPrune.objects.filter(chain_seq=seq).values_list("row_hash", flat=True)
        stored = (None, pruned[0]) if pruned else None
    if stored is None:
        return ChainBreak(seq=seq, event_id=None, field="anchor", detail="no link at position")
    if stored[1] != row_hash:
        return ChainBreak(
            seq=seq,
            event_id=stored[0],
            field="anchor",
            detail=f"hash is {stored[1]}, the archived head says {row_hash}",
        )
    return None


def chain_checkpoint_write() -> ChainCheckpoint | None:
    """Verify what was appended since the last checkpoint; if the chain holds, record and log
    its head and mail it to the archive address after commit. A break is logged, not recorded."""
    report = chain_verify_from_checkpoint()
    if not report.ok:
        logger.error("consent chain broken: %s", report.breaks[0])
        return None
    previous = ChainCheckpoint.objects.order_by("-seq", "-id").first()
    with transaction.atomic():
        checkpoint = ChainCheckpoint.objects.create(
            seq=report.last_seq,
            row_hash=report.last_hash,
            event_id=report.last_event_id or (previous.event_id if previous else None),
            verified_from_seq=report.from_seq,
            events_verified=report.events,
        )
        logger.info(
            "consent chain head: position %s hash %s (%s events verified after %s)",
            checkpoint.seq,
            checkpoint.row_hash,
            report.events,
            report.from_seq,
            extra={"chain_seq": checkpoint.seq, "chain_hash": checkpoint.row_hash},
        )
        address = settings.NEWSLETTER_EVIDENCE_ARCHIVE_EMAIL
        if address:
            transaction.on_commit(
                partial(chain_checkpoint_mail, checkpoint_id=checkpoint.id, to=address)
            )
    return checkpoint


def chain_checkpoint_mail(*, checkpoint_id: int, to: str) -> None:
    """Send a checkpoint's head to the archive and note where it went."""
    checkpoint = ChainCheckpoint.objects.get(id=checkpoint_id)
    chain_checkpoint_message_build(checkpoint=checkpoint, to=to).send()
    ChainCheckpoint.objects.filter(id=checkpoint_id).update(mailed_to=to)


def chain_links_check(*, seqs: list[int]) -> dict[int, ChainBreak]:
    """Recheck single links now, whatever a checkpoint said: each row against its own hash and
    the next link's pointer to it. Cheap enough for the few events of one proof."""
    head = ChainHead.objects.filter(pk=CHAIN_HEAD_ID).values_list("seq", flat=True).first() or 0
    prev_of = dict(
        ConsentEvent.objects.filter(chain_seq__in=seqs).values_list("chain_seq", "prev_hash")
    )
    breaks = {}
    for seq in seqs:
        report = chain_verify(
            after_seq=seq - 1,
            prev_hash=prev_of.get(seq, chain.GENESIS_HASH),
            until_seq=min(seq + 1, max(head, seq)),
        )
        found = report.breaks[0] if report.breaks else None
        # The next row pointing elsewhere blames this one (rewritten with a new hash); any
        # other fault of the next row is its own.
        if found and (found.seq == seq or found.field == "prev_hash"):
            breaks[seq] = found
    return breaks
