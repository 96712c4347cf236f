"""The canonical form of a consent event and the hashes that chain the ledger.

One chain per deployment: every event gets the next position (`chain_seq`) and
`row_hash = SHA-256(prev_hash ‖ canonical content)`. The content is pseudonymous (the keyed
address hash, never the address); the personal fields (IP, user agent, page, note) enter only
as `personal_digest`, an HMAC under a key derived from NEWSLETTER_ADDRESS_HMAC_KEY, so erasure
can blank them without breaking the chain while a changed IP on a live row still shows.

Every text field is length-prefixed (`<len>:<value>`), so no content can move from one field
to the next without changing the hash. The acting staff user and the structured change
(`actor_id`, `data`) were added later: a row with neither hashes exactly as rows written
before them did; a row with either appends `extension_text` to its canonical text.
`CANONICAL_SQL` and `PERSONAL_SQL` build the very same strings inside PostgreSQL for the
verifier, which then only hashes (and adds the extension, see EXTENSION_SQL); the tests hold
both in step.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from django.conf import settings

GENESIS_HASH = "0" * 64
AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def personal_key() -> bytes:
    """The ledger's own key, derived so that it never equals the address-hash key itself."""
    return hmac.digest(
        settings.NEWSLETTER_ADDRESS_HMAC_KEY.encode(), b"consent-ledger-personal-v1", "sha256"
    )


def hmac_sha256_hex(key: bytes) -> Callable[[bytes], str]:
    """HMAC-SHA256 (RFC 2104) with the key's pads hashed once: a third of the time per call of
    hmac.digest, which looks the digest up again on every call; the verifier calls it per row."""
    block = (
        key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    )
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))

    def digest(message: bytes) -> str:
        first = inner.copy()
        first.update(message)
        second = outer.copy()
        second.update(first.digest())
        return second.hexdigest()

    return digest


def sha256_hex() -> Callable[[bytes], str]:
    """SHA-256 from a copied empty state, cheaper per call than a new hashlib object."""
    empty = hashlib.sha256()

    def digest(message: bytes) -> str:
        state = empty.copy()
        state.update(message)
        return state.hexdigest()

    return digest


def _field(value: object) -> str:
    text = "" if value is None else str(value)
    return f"{len(text)}:{text}"


def personal_text(*, ip: str | None, user_agent: str, url: str, note: str) -> str:
    return "".join(_field(value) for value in (ip, user_agent, url, note))


# What an erased row's personal fields read as: erasure blanks all four.
BLANK_PERSONAL = personal_text(ip=None, user_agent="", url="", note="")


def data_json(data: dict | None) -> str:
    """One spelling of a JSON value: sorted keys, no spaces, text as written (not escaped)."""
    return json.dumps(data or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def extension_text(*, actor_id: int | None, data: dict | None) -> str:
    """The part of the canonical text that covers actor and structured data; empty for a row
    with neither, so rows written before these fields existed keep their hashes."""
    if actor_id is None and not data:
        return ""
    return _field(actor_id) + _field(data_json(data))


def personal_digest(*, key: bytes, ip: str | None, user_agent: str, url: str, note: str) -> str:
    text = personal_text(ip=ip, user_agent=user_agent, url=url, note=note)
    return hmac.digest(key, text.encode(), "sha256").hex()


def at_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime(AT_FORMAT)


def canonical_text(
    *,
    chain_seq: int,
    kind: str,
    at: datetime,
    newsletter_id: int,
    address_hmac: str,
    channel: str,
    form: str,
    consent_text_id: int | None,
    text_sha256: str,
    message_id: str,
    prune_digest: str,
    actor_id: int | None = None,
    data: dict | None = None,
) -> str:
    """`prune_digest` is set on retention events only (see prune_records_digest)."""
    base = "".join(
        _field(value)
        for value in (
            chain_seq,
            kind,
            at_text(at),
            newsletter_id,
            address_hmac,
            channel,
            form,
            consent_text_id,
            text_sha256,
            message_id,
            prune_digest,
        )
    )
    return base + extension_text(actor_id=actor_id, data=data)


def row_hash(*, prev_hash: str, canonical: str, personal_digest: str) -> str:
    return hashlib.sha256(f"{prev_hash}{canonical}{personal_digest}".encode()).hexdigest()


def prune_records_digest(records: Iterable[tuple[int, str]]) -> str:
    """SHA-256 over the (chain_seq, row_hash) of the rows a retention run deleted, in seq order."""
    digest = hashlib.sha256()
    for seq, hashed in records:
        digest.update(f"{seq}:{hashed}\n".encode())
    return digest.hexdigest()


def _sql_field(expr: str) -> str:
    return f"length({expr})::text || ':' || {expr}"


# The same strings as canonical_text and personal_text, built by PostgreSQL for table alias `e`.
CANONICAL_SQL = " || ".join(
    _sql_field(expr)
    for expr in (
        "e.chain_seq::text",
        "e.kind",
        "to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        "e.newsletter_id::text",
        "e.address_hmac",
        "e.channel",
        "e.form",
        "coalesce(e.consent_text_id::text, '')",
        "e.text_sha256",
        "e.message_id",
        "e.prune_digest",
    )
)
# jsonb's text form is not data_json's spelling, so PostgreSQL hands over actor and data as
# they are (NULL for a row with neither) and the verifier adds extension_text itself.
EXTENSION_SQL = (
    "CASE WHEN e.actor_id IS NULL AND e.data = '{}'::jsonb THEN NULL "
    "ELSE coalesce(e.actor_id::text, '') END AS actor, "
    "CASE WHEN e.actor_id IS NULL AND e.data = '{}'::jsonb THEN NULL ELSE e.data::text END AS data"
)
PERSONAL_SQL = " || ".join(
    _sql_field(expr) for expr in ("coalesce(host(e.ip), '')", "e.user_agent", "e.url", "e.note")
)
