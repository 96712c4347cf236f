"""Signed, purpose-salted tokens (django.core.signing): nothing secret is stored.

A token of one purpose never validates for another because each purpose has its own salt.
Confirm tokens expire; unsubscribe and preference tokens do not (a link in an old mail must
keep working). Single use comes from the state check in the service, not from the token.
"""

from django.conf import settings
from django.core import signing

CONFIRM = "newsletter.confirm"
UNSUBSCRIBE = "newsletter.unsubscribe"
PREFERENCES = "newsletter.preferences"


class TokenInvalid(Exception):
    """Tampered, cross-purpose or malformed."""


class TokenExpired(TokenInvalid):
    """Authentic but older than its purpose allows."""


def make_token(*, purpose: str, value: int | str) -> str:
    return signing.dumps(value, salt=purpose, compress=False)


def read_token(*, purpose: str, token: str, max_age: int | None = None) -> int | str:
    try:
        return signing.loads(token, salt=purpose, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise TokenExpired(str(exc)) from exc
    except signing.BadSignature as exc:
        raise TokenInvalid(str(exc)) from exc


def make_confirm_token(subscription_id: int) -> str:
    return make_token(purpose=CONFIRM, value=subscription_id)


def read_confirm_token(token: str) -> int:
    return _as_id(
        read_token(purpose=CONFIRM, token=token, max_age=settings.NEWSLETTER_CONFIRM_MAX_AGE)
    )


def make_unsubscribe_token(subscription_id: int) -> str:
    return make_token(purpose=UNSUBSCRIBE, value=subscription_id)


def read_unsubscribe_token(token: str) -> int:
    return _as_id(read_token(purpose=UNSUBSCRIBE, token=token))


def make_preferences_token(address_hmac: str) -> str:
    return make_token(purpose=PREFERENCES, value=address_hmac)


def read_preferences_token(token: str) -> str:
    value = read_token(purpose=PREFERENCES, token=token)
    if not isinstance(value, str):
        raise TokenInvalid("preferences token carries no address key")
    return value


def _as_id(value: int | str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise TokenInvalid("token carries no subscription id")
    return value
