"""Signed, purpose-salted tokens (django.core.signing): nothing secret is stored.

A token of one purpose never validates for another because each purpose has its own salt.
Confirm tokens expire; unsubscribe and preference tokens do not (a link in an old mail must
keep working). Single use comes from the state check in the service, not from the token.

Every token names a subscription id. Ids come from a sequence and are never handed out twice,
so a link issued before an erasure opens nothing after the address signs up again.
"""

import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes

CONFIRM = "newsletter.confirm"
UNSUBSCRIBE = "newsletter.unsubscribe"
PREFERENCES = "newsletter.preferences"
DELIVERY_REF = "newsletter.delivery-ref"

# The preference centre's export and erasure each ask for a fresh link mailed to the address;
# those links expire (NEWSLETTER_DATA_LINK_MAX_AGE) and one never stands in for the other.
DATA_EXPORT = "newsletter.data-export"
DATA_ERASE = "newsletter.data-erase"
DATA_PURPOSES = (DATA_EXPORT, DATA_ERASE)


class TokenInvalid(Exception):
    """Tampered, cross-purpose or malformed."""


class TokenExpired(TokenInvalid):
    """Authentic but older than its purpose allows."""


def make_token(*, purpose: str, value: int | str) -> str:
    return signing.dumps(value, salt=purpose, compress=False)


# What JSON writes verbatim between quotes (no escapes): the values our links sign.
_JSON_PLAIN = re.compile(r"[A-Za-z0-9._:-]*")


class _PreparedKey:
    """A signer for many tokens in a row, with Django's tokens bit for bit.

    Django's `salted_hmac` derives the HMAC key from salt and secret for every signature, and
    `TimestampSigner` base62-encodes the clock for every token; at a thousand readers per batch
    and three signatures each that is most of a batch's signing time. This derives the key once
    (the same derivation: hash(salt + "signer" + key) with the signer's algorithm), copies a
    prepared HMAC per value, encodes the timestamp once a second, and writes the JSON of an
    int or a plain string directly. Verifying (`unsign`, any key) is Django's own."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        hasher = getattr(hashlib, self.algorithm)
        derived = hasher(force_bytes(self.salt + "signer") + force_bytes(self.key)).digest()
        self._mac = hmac.new(derived, digestmod=hasher)
        self._second, self._stamp = -1, ""

    def signature(self, value, key=None) -> str:
        if key is not None and key != self.key:
            return super().signature(value, key)
        mac = self._mac.copy()
        mac.update(value.encode() if type(value) is str else force_bytes(value))
        return _b64(mac.digest())

    def timestamp(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._stamp = second, signing.b62_encode(second)
        return self._stamp

    def sign_object(self, obj, serializer=signing.JSONSerializer, compress=False) -> str:
        if serializer is signing.JSONSerializer and not compress:
            if type(obj) is int:
                return self.sign(_b64(str(obj).encode()))
            if type(obj) is str and _JSON_PLAIN.fullmatch(obj):
                return self.sign(_b64(f'"{obj}"'.encode()))
        return super().sign_object(obj, serializer=serializer, compress=compress)


def _b64(data: bytes) -> str:
    # signing.b64_encode(data).decode(), without base64's Python-level wrappers.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


_URLSAFE = bytes.maketrans(b"+/", b"-_")


class BatchTimestampSigner(_PreparedKey, signing.TimestampSigner):
    """`signing.TimestampSigner` with the key derived once (see _PreparedKey)."""


class BatchSigner(_PreparedKey, signing.Signer):
    """`signing.Signer` with the key derived once (see _PreparedKey)."""


@dataclass(frozen=True)
class LinkSigners:
    """The signers of the two links every newsletter mail carries, made once per batch.

    `signing.dumps` builds a fresh signer (and derives its key) for every token; a batch of a
    thousand readers signs with these two instead. Their tokens are `signing.dumps` tokens bit
    for bit.
    """

    unsubscribe: signing.TimestampSigner = field(
        default_factory=lambda: BatchTimestampSigner(salt=UNSUBSCRIBE)
    )
    preferences: signing.TimestampSigner = field(
        default_factory=lambda: BatchTimestampSigner(salt=PREFERENCES)
    )


def read_token(*, purpose: str, token: str, max_age: int | None = None) -> int | str:
    if not isinstance(token, str) or len(token) > 500:
        raise TokenInvalid("not a token")
    try:
        return signing.loads(token, salt=purpose, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise TokenExpired(str(exc)) from exc
    except signing.BadSignature as exc:
        raise TokenInvalid(str(exc)) from exc


def make_confirm_token(subscription_id: int, confirm_round: int = 1) -> str:
    """Confirm token for one opt-in round: an old link cannot confirm a later request."""
    return make_token(purpose=CONFIRM, value=f"{subscription_id}.{confirm_round}")


def read_confirm_token(token: str) -> tuple[int, int]:
    """(subscription id, round) of an authentic, unexpired confirm token."""
    value = read_token(purpose=CONFIRM, token=token, max_age=settings.NEWSLETTER_CONFIRM_MAX_AGE)
    if not isinstance(value, str):
        raise TokenInvalid("confirm token carries no subscription round")
    sub_id, _sep, confirm_round = value.partition(".")
    if not (sub_id.isdigit() and confirm_round.isdigit()):
        raise TokenInvalid("confirm token carries no subscription round")
    return _as_id(int(sub_id)), _as_id(int(confirm_round))


def make_unsubscribe_token(subscription_id: int, signers: LinkSigners | None = None) -> str:
    if signers is None:
        return make_token(purpose=UNSUBSCRIBE, value=subscription_id)
    return signers.unsubscribe.sign_object(subscription_id, compress=False)


def read_unsubscribe_token(token: str) -> int:
    return _as_id(read_token(purpose=UNSUBSCRIBE, token=token))


def preferences_token_value(subscription_id: int, address_hmac: str) -> str:
    """What a preference token signs: the subscription it was issued for and the address key
    the centre shows."""
    return f"{subscription_id}.{address_hmac}"


def make_preferences_token(
    subscription_id: int, address_hmac: str, signers: LinkSigners | None = None
) -> str:
    value = preferences_token_value(subscription_id, address_hmac)
    if signers is None:
        return make_token(purpose=PREFERENCES, value=value)
    return signers.preferences.sign_object(value, compress=False)


def read_preferences_token(token: str) -> tuple[int, str]:
    """(subscription id, address key) of an authentic preference token. Tokens that carried
    only the address key (before erasure could end them) are refused."""
    value = read_token(purpose=PREFERENCES, token=token)
    if not isinstance(value, str):
        raise TokenInvalid("preferences token carries no subscription")
    sub_id, _sep, key = value.partition(".")
    if not (sub_id.isdigit() and len(key) == 64):
        raise TokenInvalid("preferences token carries no subscription")
    return _as_id(int(sub_id)), key


def make_data_token(purpose: str, subscription_id: int, address_hmac: str) -> str:
    if purpose not in DATA_PURPOSES:
        raise ValueError(f"not a data purpose: {purpose!r}")
    return make_token(purpose=purpose, value=preferences_token_value(subscription_id, address_hmac))


def read_data_token(purpose: str, token: str) -> tuple[int, str]:
    """(subscription id, address key) of an authentic export or erasure link, younger than
    NEWSLETTER_DATA_LINK_MAX_AGE."""
    if purpose not in DATA_PURPOSES:
        raise ValueError(f"not a data purpose: {purpose!r}")
    value = read_token(purpose=purpose, token=token, max_age=settings.NEWSLETTER_DATA_LINK_MAX_AGE)
    if not isinstance(value, str):
        raise TokenInvalid("data token carries no subscription")
    sub_id, _sep, key = value.partition(".")
    if not (sub_id.isdigit() and len(key) == 64):
        raise TokenInvalid("data token carries no subscription")
    return _as_id(int(sub_id)), key


def delivery_ref_signer() -> signing.Signer:
    """One per batch: each reference then costs one HMAC with a key derived once."""
    return BatchSigner(salt=DELIVERY_REF)


def make_delivery_ref(delivery_id: int, signer: signing.Signer | None = None) -> str:
    """The delivery a mail belongs to, as the provider echoes it back in its webhooks: signed,
    so that nobody can name another reader's delivery by counting ids. Never expires (a bounce
    may come days later), carries no timestamp (short: ``123:<43 characters>``)."""
    return (signer or delivery_ref_signer()).sign(str(delivery_id))


def read_delivery_ref(ref: object) -> int:
    """The delivery id of an authentic reference; raises TokenInvalid for anything else
    (a bare id, a token of another purpose, garbage)."""
    if not isinstance(ref, str) or len(ref) > 100:
        raise TokenInvalid("not a delivery reference")
    try:
        value = delivery_ref_signer().unsign(ref)
    except signing.BadSignature as exc:
        raise TokenInvalid(str(exc)) from exc
    if not (value.isascii() and value.isdigit()):
        raise TokenInvalid("delivery reference carries no id")
    return _as_id(int(value))


def _as_id(value: int | str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise TokenInvalid("token carries no subscription id")
    return value
