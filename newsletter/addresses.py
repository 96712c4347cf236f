"""Addresses: one normal form for storage and comparison, its validation and its keyed hash."""

import contextlib
import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

ADDRESS_MAX_LENGTH = 254

_email_validator = EmailValidator(
    message=_("Bitte geben Sie eine gültige E-Mail-Adresse ein."), code="invalid"
)


def address_normalise(email: str) -> str:
    """Lower-case the domain (IDN to its ASCII form); the local part is kept as typed."""
    local, _sep, domain = email.strip().rpartition("@")
    if not local:
        return email.strip()
    with contextlib.suppress(UnicodeError, ValueError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain.lower()}"


def address_validate(email: str) -> str:
    """Return the normal form of a deliverable-looking address or raise ValidationError.

    Line breaks are refused before anything else: an address ends up in mail headers.
    """
    if any(char in email for char in "\r\n\x00"):
        raise ValidationError(
            _("Die E-Mail-Adresse darf keine Zeilenumbrüche enthalten."), code="line_break"
        )
    normal = address_normalise(email)
    if len(normal) > ADDRESS_MAX_LENGTH or len(email) > 4 * ADDRESS_MAX_LENGTH:
        raise ValidationError(
            _("Die E-Mail-Adresse ist zu lang (höchstens %(max)d Zeichen)."),
            code="too_long",
            params={"max": ADDRESS_MAX_LENGTH},
        )
    _email_validator(normal)
    # The validator accepts some Unicode domains that IDNA refuses; those cannot be mailed.
    domain = normal.rpartition("@")[2]
    if not domain.isascii():
        raise ValidationError(_email_validator.message, code="invalid")
    return normal


def address_hmac(email: str) -> str:
    """Keyed hash of the normalised address, stable across SECRET_KEY rotations."""
    key = settings.NEWSLETTER_ADDRESS_HMAC_KEY.encode()
    value = address_normalise(email).lower().encode()
    return hmac.new(key, value, hashlib.sha256).hexdigest()
